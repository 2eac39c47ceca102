package dev.weir.runner;

import org.apache.flink.client.deployment.executors.LocalExecutor;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.PipelineExecutor;
import org.apache.flink.core.execution.PipelineExecutorFactory;
import org.apache.flink.core.execution.PipelineExecutorServiceLoader;
import org.apache.flink.runtime.minicluster.MiniCluster;

import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;

/**
 * Flink's own "local" executor (one MiniCluster per job, shut down when the job ends), with
 * one difference: it hands out the MiniCluster it creates. The runner needs it to learn the
 * REST port the cluster really bound (restPort 0 = any free port) and to close it on SIGTERM.
 */
final class EmbeddedExecutorLoader implements PipelineExecutorServiceLoader {
    private final CompletableFuture<MiniCluster> cluster = new CompletableFuture<>();

    CompletableFuture<MiniCluster> cluster() {
        return cluster;
    }

    @Override
    public PipelineExecutorFactory getExecutorFactory(Configuration configuration) {
        return new PipelineExecutorFactory() {
            @Override
            public String getName() {
                return LocalExecutor.NAME;
            }

            @Override
            public boolean isCompatibleWith(Configuration config) {
                return true;
            }

            @Override
            public PipelineExecutor getExecutor(Configuration config) {
                return LocalExecutor.createWithFactory(
                        config,
                        miniClusterConfig -> {
                            MiniCluster miniCluster = new MiniCluster(miniClusterConfig);
                            if (!cluster.complete(miniCluster)) {
                                throw new IllegalStateException("the runner runs exactly one job");
                            }
                            return miniCluster;
                        });
            }
        };
    }

    @Override
    public Stream<String> getExecutorNames() {
        return Stream.of(LocalExecutor.NAME);
    }
}
