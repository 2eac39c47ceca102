# The Weir gateway. Build from the repository root:
#   docker build -f deploy/gateway.Dockerfile -t weir/gateway:0.1.0 .
# It runs the TypeScript sources with tsx (a runtime dependency), as `npm start` does.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; esbuild (under tsx) takes its binary from its optional
# platform package, so no install scripts need to run.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    WEIR_DATA_DIR=/tmp/weir
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY migrations ./migrations
# The Flink memory settings of the preview session cluster's pods, and the log config of
# every Flink pod Weir deploys.
COPY flink/memory.json ./flink/memory.json
COPY flink/conf/log4j2-console.properties ./flink/conf/log4j2-console.properties
# A fixed non-root user matching the Deployment's runAsUser; the root filesystem can be
# read-only (only WEIR_DATA_DIR under /tmp is written, and only without DATABASE_URL).
USER 10001:10001
EXPOSE 4000
# No npm in between: SIGTERM reaches the gateway, which drains and exits.
CMD ["node", "--import", "tsx", "src/main.ts"]
