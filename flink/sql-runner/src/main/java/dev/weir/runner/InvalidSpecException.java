package dev.weir.runner;

/** The spec or its SQL is wrong: nothing was (or will be) submitted. Exit code 2. */
final class InvalidSpecException extends Exception {
    InvalidSpecException(String message) {
        super(message);
    }

    InvalidSpecException(String message, Throwable cause) {
        super(message, cause);
    }
}
