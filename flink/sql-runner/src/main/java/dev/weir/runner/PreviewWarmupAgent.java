package dev.weir.runner;

import java.lang.instrument.Instrumentation;

/**
 * The pre-warm-up of a preview TaskManager as a Java agent, for TaskManagers whose main
 * class Weir does not choose: on Kubernetes, Flink's native resource manager starts every
 * TaskManager pod with its own entry point (KubernetesTaskExecutorRunner). The preview
 * session cluster adds
 *
 * <pre>env.java.opts.taskmanager: -javaagent:/opt/weir/sql-runner.jar</pre>
 *
 * so the JVM loads the classes a preview needs (the list of {@link PreviewTaskManager})
 * before the TaskManager's main starts and registers with the JobManager. Flink's own jars
 * are on the JVM's class path there, so the system class loader finds them. Prints the
 * same {@code WEIR_WARMUP} line on stderr as {@link PreviewTaskManager}.
 */
public final class PreviewWarmupAgent {
    private PreviewWarmupAgent() {}

    public static void premain(String args, Instrumentation instrumentation) throws Exception {
        PreviewTaskManager.warmUpAndReport(ClassLoader.getSystemClassLoader());
    }
}
