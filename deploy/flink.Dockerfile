# The Flink image of Weir's jobs: the official Flink image of the pinned version plus
# Weir's SQL runner (flink/sql-runner), the Kafka, Postgres CDC and JDBC SQL connectors,
# and the S3 filesystem
# for checkpoints, savepoints and HA metadata. Build from the repository root:
#   docker build -f deploy/flink.Dockerfile -t weir/flink:1.20.3-java17 .
# Versions must match flink/pom.xml (Flink 1.20.3, flink-connector-kafka 3.4.0-1.20,
# flink-sql-connector-postgres-cdc 3.5.0, flink-connector-jdbc 3.3.0-1.20).

FROM maven:3.9-eclipse-temurin-17 AS build
WORKDIR /src
COPY flink/ ./flink/
RUN mvn -q -B -f flink/pom.xml -pl sql-runner -am package -DskipTests \
 && mkdir -p /out \
 && cp flink/sql-runner/target/sql-runner.jar /out/ \
 && mvn -q -B dependency:copy \
      -Dartifact=org.apache.flink:flink-sql-connector-kafka:3.4.0-1.20 \
      -DoutputDirectory=/out \
 && mvn -q -B dependency:copy \
      -Dartifact=org.apache.flink:flink-sql-connector-postgres-cdc:3.5.0 \
      -DoutputDirectory=/out \
 && mvn -q -B dependency:copy \
      -Dartifact=org.apache.flink:flink-connector-jdbc:3.3.0-1.20 \
      -DoutputDirectory=/out

FROM flink:1.20.3-java17
# The runner is thin: Flink's own classes come from /opt/flink/lib of this image.
COPY --from=build --chown=flink:flink /out/sql-runner.jar /opt/weir/sql-runner.jar
COPY --from=build --chown=flink:flink /out/flink-sql-connector-kafka-3.4.0-1.20.jar /out/flink-sql-connector-postgres-cdc-3.5.0.jar /out/flink-connector-jdbc-3.3.0-1.20.jar /opt/flink/lib/
# s3:// for state; a plugin (own class loader), as Flink requires for filesystems.
RUN mkdir -p /opt/flink/plugins/s3-fs-presto \
 && cp /opt/flink/opt/flink-s3-fs-presto-1.20.3.jar /opt/flink/plugins/s3-fs-presto/ \
 && mkdir -p /opt/weir/spec \
 && chown -R flink:flink /opt/weir
# The image's `flink` user (uid 9999), as the pod templates' runAsNonRoot expects.
USER flink
