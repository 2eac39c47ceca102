package dev.weir.runner;

import org.apache.flink.runtime.taskexecutor.TaskManagerRunner;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

/**
 * A preview TaskManager, pre-warmed: before it starts (and registers with the JobManager)
 * it loads the classes its one preview will need — the Kafka client and source, the JSON
 * format, the collect sink, table runtime operators — listed in
 * {@code preview-taskmanager-classes.txt}. A TaskManager in the warm pool is then warm in
 * more than name: the leased preview does not wait for class loading and verification.
 *
 * <pre>java [jvm-options] -cp sql-runner.jar:$(cat flink.classpath) dev.weir.runner.PreviewTaskManager --configDir conf -D ...</pre>
 *
 * <p>On Kubernetes, where Flink picks the TaskManager's main class, {@link PreviewWarmupAgent}
 * does the same as a Java agent. Arguments are {@link TaskManagerRunner}'s. One line on stderr tells how many classes
 * were loaded, how many were missing, and how long it took.
 */
public final class PreviewTaskManager {
    static final String CLASS_LIST = "preview-taskmanager-classes.txt";

    private PreviewTaskManager() {}

    public static void main(String[] args) throws Exception {
        warmUpAndReport(PreviewTaskManager.class.getClassLoader());
        TaskManagerRunner.main(args);
    }

    /** Loads the listed classes and prints one {@code WEIR_WARMUP} line on stderr. */
    static void warmUpAndReport(ClassLoader loader) throws IOException {
        long started = System.nanoTime();
        int[] counts = warmUp(loader);
        System.err.printf(
                "WEIR_WARMUP loaded=%d missing=%d ms=%d%n",
                counts[0], counts[1], (System.nanoTime() - started) / 1_000_000);
    }

    /** Loads every listed class; returns {loaded, missing}. */
    static int[] warmUp(ClassLoader loader) throws IOException {
        int loaded = 0;
        int missing = 0;
        try (InputStream in = PreviewTaskManager.class.getResourceAsStream(CLASS_LIST)) {
            if (in == null) throw new IOException(CLASS_LIST + " is not on the classpath");
            BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line; (line = reader.readLine()) != null; ) {
                String name = line.trim();
                if (name.isEmpty() || name.startsWith("#")) continue;
                try {
                    // Not initialised: no static initialiser runs before Flink configures the JVM.
                    Class.forName(name, false, loader);
                    loaded++;
                } catch (ClassNotFoundException | LinkageError e) {
                    missing++;
                }
            }
        }
        return new int[] {loaded, missing};
    }
}
