package dev.weir.runner;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The runner's only input: a JSON file named by {@code --spec}. See flink/README.md for the
 * format. Parsed strictly (unknown fields are an error) so a typo on the TypeScript side
 * fails loudly instead of silently running without, say, checkpoints.
 */
record RunnerSpec(
        String name,
        int parallelism,
        String restAddress,
        int restPort,
        String checkpointDir,
        long checkpointIntervalMs,
        String restoreFrom,
        String jobId,
        Map<String, String> config,
        List<String> statements,
        boolean application) {

    private static final Pattern JOB_ID = Pattern.compile("[0-9a-f]{32}");
    private static final List<String> FIELDS =
            List.of(
                    "name",
                    "parallelism",
                    "restAddress",
                    "restPort",
                    "checkpointDir",
                    "checkpointIntervalMs",
                    "restoreFrom",
                    "jobId",
                    "config",
                    "statements",
                    "mode");

    static RunnerSpec read(Path file) throws InvalidSpecException {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(file));
        } catch (IOException e) {
            throw new InvalidSpecException("cannot read spec " + file + ": " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw new InvalidSpecException("spec must be a JSON object");
        }
        for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
            String field = it.next();
            if (!FIELDS.contains(field)) {
                throw new InvalidSpecException("unknown spec field '" + field + "'");
            }
        }

        String name = requiredText(root, "name");
        int parallelism = root.path("parallelism").asInt(1);
        if (parallelism < 1) {
            throw new InvalidSpecException("parallelism must be >= 1");
        }
        int restPort = root.path("restPort").asInt(0);
        if (restPort < 0 || restPort > 65535) {
            throw new InvalidSpecException("restPort must be 0 (any free port) or a port number");
        }
        String checkpointDir = requiredText(root, "checkpointDir");
        if (!checkpointDir.contains("://")) {
            throw new InvalidSpecException("checkpointDir must be a URI, e.g. file:///var/weir/ckpt/p1");
        }
        long intervalMs = root.path("checkpointIntervalMs").asLong(10_000);
        if (intervalMs < 10) {
            throw new InvalidSpecException("checkpointIntervalMs must be >= 10");
        }
        String jobId = optionalText(root, "jobId");
        if (jobId != null && !JOB_ID.matcher(jobId).matches()) {
            throw new InvalidSpecException("jobId must be 32 lower-case hex characters");
        }

        Map<String, String> config = new LinkedHashMap<>();
        JsonNode configNode = root.path("config");
        if (!configNode.isMissingNode() && !configNode.isNull()) {
            if (!configNode.isObject()) {
                throw new InvalidSpecException("config must be an object of string values");
            }
            configNode.fields().forEachRemaining(e -> config.put(e.getKey(), e.getValue().asText()));
        }

        JsonNode statementsNode = root.path("statements");
        if (!statementsNode.isArray() || statementsNode.isEmpty()) {
            throw new InvalidSpecException("statements must be a non-empty array of strings");
        }
        List<String> statements = new ArrayList<>();
        for (JsonNode s : statementsNode) {
            if (!s.isTextual() || s.asText().isBlank()) {
                throw new InvalidSpecException("every statement must be a non-blank string");
            }
            statements.add(s.asText());
        }

        String mode = textOr(root, "mode", "embedded");
        if (!mode.equals("embedded") && !mode.equals("application")) {
            throw new InvalidSpecException("mode must be 'embedded' or 'application'");
        }

        return new RunnerSpec(
                name,
                parallelism,
                textOr(root, "restAddress", "127.0.0.1"),
                restPort,
                checkpointDir,
                intervalMs,
                optionalText(root, "restoreFrom"),
                jobId,
                Collections.unmodifiableMap(config),
                List.copyOf(statements),
                mode.equals("application"));
    }

    private static String requiredText(JsonNode root, String field) throws InvalidSpecException {
        String value = optionalText(root, field);
        if (value == null) {
            throw new InvalidSpecException("spec field '" + field + "' is required");
        }
        return value;
    }

    private static String optionalText(JsonNode root, String field) {
        JsonNode node = root.path(field);
        if (node.isMissingNode() || node.isNull() || node.asText().isBlank()) {
            return null;
        }
        return node.asText();
    }

    private static String textOr(JsonNode root, String field, String fallback) {
        String value = optionalText(root, field);
        return value == null ? fallback : value;
    }
}
