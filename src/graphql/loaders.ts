import type { Actor } from '../accounts/actor.js';
import type { ConnectionRow } from '../connections/connection.table.js';
import type { PipelineRow } from '../pipelines/pipeline.table.js';
import { BatchLoader } from '../platform/batch-loader.js';
import { NotFoundError } from '../platform/errors.js';
import type { Services } from '../services.js';
import type { StreamRow } from '../streams/stream.table.js';

/**
 * Per-request loaders for relation fields: a page of N rows costs one query per
 * relation, not N. Each batch goes through a service, so roles and account scoping hold.
 */
export interface Loaders {
  /** A stream of the caller's account; NOT_FOUND if there is none with this id. */
  stream(id: string): Promise<StreamRow>;
  /** The streams a pipeline reads, in the order they are linked. */
  inputStreamsOf(pipelineId: string): Promise<StreamRow[]>;
  outputStreamOf(pipelineId: string): Promise<StreamRow>;
  /** Pipelines that read or write a stream, oldest first. */
  pipelinesOf(streamId: string): Promise<PipelineRow[]>;
  /** Connections that feed or drain a stream, oldest first. */
  connectionsOf(streamId: string): Promise<ConnectionRow[]>;
}

/** `signal`: the request's deadline; no batch starts after it. */
export function createLoaders(services: Services, actor: Actor | null, signal?: AbortSignal): Loaders {
  const streams = new BatchLoader<string, StreamRow>(
    async (ids) => new Map((await services.streams.byIds(actor, ids)).map((row) => [row.id, row])),
    signal,
  );
  const links = new BatchLoader((ids: readonly string[]) => services.pipelines.streamIdsOf(actor, ids), signal);
  const pipelines = new BatchLoader((ids: readonly string[]) => services.streams.pipelinesOf(actor, ids), signal);
  const connections = new BatchLoader((ids: readonly string[]) => services.streams.connectionsOf(actor, ids), signal);

  async function stream(id: string): Promise<StreamRow> {
    const row = await streams.load(id);
    if (!row) throw new NotFoundError('Stream', id);
    return row;
  }

  return {
    stream,
    async inputStreamsOf(pipelineId) {
      const found = await streams.loadMany((await links.load(pipelineId))?.inputIds ?? []);
      return found.filter((row): row is StreamRow => row !== undefined);
    },
    async outputStreamOf(pipelineId) {
      const link = await links.load(pipelineId);
      if (!link) throw new NotFoundError('Pipeline', pipelineId);
      return stream(link.outputId);
    },
    pipelinesOf: async (streamId) => (await pipelines.load(streamId)) ?? [],
    connectionsOf: async (streamId) => (await connections.load(streamId)) ?? [],
  };
}
