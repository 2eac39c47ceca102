package dev.weir.runner;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.client.DuplicateJobSubmissionException;
import org.apache.flink.runtime.client.JobCancellationException;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonProcessingException;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.table.api.internal.TableEnvironmentInternal;
import org.apache.flink.table.operations.ModifyOperation;
import org.apache.flink.table.operations.Operation;
import org.apache.flink.table.operations.QueryOperation;

import java.net.URI;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Weir's application cluster: one JVM runs one Flink SQL job in an embedded MiniCluster
 * (JobManager + one TaskManager with {@code parallelism} slots) whose REST API is reachable
 * for status and checkpoints.
 *
 * <pre>java [jvm-options.txt] -cp sql-runner.jar:$(cat flink.classpath) dev.weir.runner.SqlRunner --spec job.json</pre>
 *
 * <p>stdout carries only single-line events, {@code WEIR_<EVENT> <json>}: JOB_SUBMITTED once
 * the job is accepted, then one of JOB_FINISHED, JOB_CANCELED, JOB_FAILED, JOB_SUSPENDED
 * (SIGTERM), SPEC_INVALID or RUNNER_ERROR. Logs go to stderr. Exit codes: 0 finished or
 * canceled, 1 the job failed, 2 the spec or its SQL is invalid (nothing ran), 3 the runner
 * itself broke, 143 SIGTERM.
 */
public final class SqlRunner {
    static final int EXIT_OK = 0;
    static final int EXIT_JOB_FAILED = 1;
    static final int EXIT_INVALID = 2;
    static final int EXIT_INTERNAL = 3;

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Set by the shutdown hook: a SIGTERM/SIGINT, not the job, ended the run. */
    private static volatile boolean terminating;

    /** The job once submitted, for the shutdown hook. */
    private static volatile JobClient submittedJob;

    /** Exactly one final event (everything after JOB_SUBMITTED) reaches stdout. */
    private static final AtomicBoolean FINAL_EMITTED = new AtomicBoolean();

    private SqlRunner() {}

    public static void main(String[] args) throws Exception {
        int code;
        try {
            code = run(args);
        } catch (InvalidSpecException e) {
            reportError("SPEC_INVALID", e);
            if (inApplicationCluster) throw e;
            code = EXIT_INVALID;
        } catch (Throwable t) {
            reportError("RUNNER_ERROR", t);
            if (inApplicationCluster) throw t instanceof Exception ? (Exception) t : new RuntimeException(t);
            code = EXIT_INTERNAL;
        }
        System.out.flush();
        System.err.flush();
        // In an application cluster this main() runs inside Flink's JobManager, which
        // decides what follows the job's end: exiting here would kill the JobManager, and
        // its Deployment would start it again to submit a job that already ended.
        if (inApplicationCluster) return;
        // Flink leaves non-daemon threads behind; a runner must not outlive its job.
        System.exit(code);
    }

    /** Set once the spec says application mode (a FlinkDeployment's JobManager runs main()). */
    private static volatile boolean inApplicationCluster;

    private static int run(String[] args) throws Exception {
        RunnerSpec spec = RunnerSpec.read(specPath(args));
        if (spec.application()) {
            inApplicationCluster = true;
            return runInApplicationCluster(spec);
        }
        EmbeddedExecutorLoader executors = new EmbeddedExecutorLoader();
        Runtime.getRuntime()
                .addShutdownHook(new Thread(() -> onSignal(executors), "weir-shutdown"));

        StreamExecutionEnvironment env =
                new StreamExecutionEnvironment(
                        executors, flinkConfiguration(spec), SqlRunner.class.getClassLoader());
        StreamTableEnvironment tableEnv = StreamTableEnvironment.create(env);

        JobClient job = submit((TableEnvironmentInternal) tableEnv, spec.statements());
        submittedJob = job;
        URI rest = executors.cluster().get(30, TimeUnit.SECONDS).getRestAddress().get(30, TimeUnit.SECONDS);
        Map<String, Object> submitted = new LinkedHashMap<>();
        submitted.put("jobId", job.getJobID().toHexString());
        submitted.put("name", spec.name());
        submitted.put("restPort", rest.getPort());
        submitted.put("restUrl", rest.toString());
        emit("JOB_SUBMITTED", submitted);

        try {
            job.getJobExecutionResult().get();
            emitFinal("JOB_FINISHED", Map.of("jobId", job.getJobID().toHexString()));
            return EXIT_OK;
        } catch (ExecutionException e) {
            if (terminating) {
                return EXIT_OK; // the shutdown hook reported JOB_SUSPENDED
            }
            if (hasCause(e, JobCancellationException.class)) {
                emitFinal("JOB_CANCELED", Map.of("jobId", job.getJobID().toHexString()));
                return EXIT_OK;
            }
            reportError("JOB_FAILED", e.getCause() == null ? e : e.getCause());
            return EXIT_JOB_FAILED;
        }
    }

    /**
     * Application mode (a FlinkDeployment): the cluster around this main() is Flink's own,
     * configured by the operator, so the runner takes the context environment, adds only
     * the job's own options, submits the INSERT and waits for it.
     */
    private static int runInApplicationCluster(RunnerSpec spec) throws Exception {
        Map<String, String> options = new LinkedHashMap<>();
        options.put("pipeline.name", spec.name());
        options.put("parallelism.default", Integer.toString(spec.parallelism()));
        options.put("execution.checkpointing.interval", spec.checkpointIntervalMs() + " ms");
        options.put("execution.checkpointing.dir", spec.checkpointDir());
        options.putAll(spec.config());
        StreamExecutionEnvironment env =
                StreamExecutionEnvironment.getExecutionEnvironment(Configuration.fromMap(options));
        StreamTableEnvironment tableEnv = StreamTableEnvironment.create(env);
        JobClient job = submit((TableEnvironmentInternal) tableEnv, spec.statements());
        emit("JOB_SUBMITTED", Map.of("jobId", job.getJobID().toHexString(), "name", spec.name()));
        job.getJobExecutionResult().get();
        emitFinal("JOB_FINISHED", Map.of("jobId", job.getJobID().toHexString()));
        return EXIT_OK;
    }

    /** Runs every statement but the last (DDL), then the last (the one INSERT) as the job. */
    private static JobClient submit(TableEnvironmentInternal tableEnv, List<String> statements)
            throws InvalidSpecException {
        for (int i = 0; i < statements.size(); i++) {
            boolean last = i == statements.size() - 1;
            String label = "statement " + (i + 1) + " of " + statements.size();
            try {
                List<Operation> operations = tableEnv.getParser().parse(statements.get(i));
                if (operations.size() != 1) {
                    throw new InvalidSpecException(label + " must be exactly one SQL statement");
                }
                Operation operation = operations.get(0);
                boolean isInsert = operation instanceof ModifyOperation;
                if (!last && (isInsert || operation instanceof QueryOperation)) {
                    throw new InvalidSpecException(
                            label + ": only the last statement may be a query or INSERT");
                }
                if (last && !isInsert) {
                    throw new InvalidSpecException(label + ": the last statement must be an INSERT");
                }
                TableResult result = tableEnv.executeInternal(operation);
                if (last) {
                    return result.getJobClient()
                            .orElseThrow(() -> new InvalidSpecException(label + " started no job"));
                }
            } catch (InvalidSpecException e) {
                throw e;
            } catch (RuntimeException e) {
                // A JobManager started again (HA) after its job ended: the job's id is in
                // the job result store, and Flink's application bootstrap takes this
                // exception (found among the causes) to mean "already done", not a failure.
                if (last && hasCause(e, DuplicateJobSubmissionException.class)) {
                    throw e;
                }
                // ValidationException, SqlParserException, TableException: Flink's own message.
                throw new InvalidSpecException(label + ": " + e.getMessage(), e);
            }
        }
        throw new IllegalStateException("unreachable: statements is never empty");
    }

    private static Configuration flinkConfiguration(RunnerSpec spec) {
        Map<String, String> options = new LinkedHashMap<>();
        options.put("execution.target", "local");
        options.put("execution.attached", "true");
        options.put("pipeline.name", spec.name());
        options.put("parallelism.default", Integer.toString(spec.parallelism()));
        options.put("taskmanager.numberOfTaskSlots", Integer.toString(spec.parallelism()));
        options.put("rest.address", spec.restAddress());
        options.put("rest.bind-address", spec.restAddress());
        options.put("rest.port", Integer.toString(spec.restPort()));
        options.put("execution.checkpointing.interval", spec.checkpointIntervalMs() + " ms");
        options.put("execution.checkpointing.dir", spec.checkpointDir());
        options.put(
                "execution.checkpointing.externalized-checkpoint-retention",
                "RETAIN_ON_CANCELLATION");
        if (spec.restoreFrom() != null) {
            options.put("execution.savepoint.path", spec.restoreFrom());
        }
        if (spec.jobId() != null) {
            // Same job id on every restart: checkpoints stay in <checkpointDir>/<jobId>/chk-N.
            options.put("$internal.pipeline.job-id", spec.jobId());
        }
        options.putAll(spec.config());
        return Configuration.fromMap(options);
    }

    private static Path specPath(String[] args) throws InvalidSpecException {
        if (args.length == 2 && args[0].equals("--spec")) {
            return Path.of(args[1]);
        }
        throw new InvalidSpecException("usage: SqlRunner --spec <path-to-spec.json>");
    }

    /**
     * SIGTERM/SIGINT: report first, then try to close the MiniCluster. Closing races with
     * Flink's and Pekko's own shutdown hooks and can hang, so it is bounded; either way the job
     * is only suspended (not a global end state) and its retained checkpoints stay for the next
     * start. The JVM exits 143 after a SIGTERM.
     */
    private static void onSignal(EmbeddedExecutorLoader executors) {
        terminating = true;
        JobClient job = submittedJob;
        if (job != null) {
            emitFinal("JOB_SUSPENDED", Map.of("jobId", job.getJobID().toHexString()));
        }
        MiniCluster cluster = executors.cluster().getNow(null);
        if (cluster == null) {
            return;
        }
        try {
            cluster.closeAsync().get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            System.err.println("weir: closing the MiniCluster on shutdown failed: " + e);
        }
    }

    private static boolean hasCause(Throwable t, Class<? extends Throwable> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) {
                return true;
            }
        }
        return false;
    }

    /** The whole cause chain on stderr, the top and root messages as one JSON line on stdout. */
    private static void reportError(String event, Throwable error) {
        Throwable root = error;
        StringBuilder chain = new StringBuilder("weir: " + event + ": " + error);
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
            chain.append("\n  caused by: ").append(root);
        }
        System.err.println(chain);
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("error", String.valueOf(error.getMessage()));
        fields.put("rootCause", root.toString());
        emitFinal(event, fields);
    }

    private static void emitFinal(String event, Map<String, ?> fields) {
        if (FINAL_EMITTED.compareAndSet(false, true)) {
            emit(event, fields);
        }
    }

    private static void emit(String event, Map<String, ?> fields) {
        String json;
        try {
            json = JSON.writeValueAsString(fields);
        } catch (JsonProcessingException e) {
            json = "{}";
        }
        System.out.println("WEIR_" + event + " " + json);
        System.out.flush();
    }
}
