import { ValidationError } from '../platform/errors.js';
import type { StreamKind } from '../streams/stream.table.js';

/** An input stream, as much of it as a start position needs. */
export interface InputStream {
  readonly id: string;
  readonly name: string;
  readonly kind: StreamKind;
}

/** Where an input stream is read from when a job starts without state. */
export const START_FROM = ['EARLIEST', 'LATEST', 'TIMESTAMP'] as const;
export type StartFrom = (typeof START_FROM)[number];

/** What a state is restored from at activation: the latest there is, or none (start over). */
export const RESTORE_MODES = ['LATEST', 'NONE'] as const;
export type RestoreMode = (typeof RESTORE_MODES)[number];

/** A start position as the API takes it: for one input stream, or (no stream) for every input. */
export interface StartPositionInput {
  readonly streamId?: string | null;
  readonly from: StartFrom;
  readonly timestamp?: Date | null;
}

/**
 * A start position as a job runs it, resolved at activation: LATEST is the offset the
 * stream had then, so a restart before the first checkpoint starts from the same place.
 */
export type StartPosition =
  | { readonly from: 'EARLIEST' }
  | { readonly from: 'OFFSET'; readonly offset: string }
  | { readonly from: 'TIMESTAMP'; readonly timestampMs: number };

/** Start positions by input stream id; an input not listed starts from EARLIEST. */
export type StartPositions = Readonly<Record<string, StartPosition>>;

/** The offset the next committed record of a stream will have (its end, to a read_committed reader). */
export type LatestOffsetOf = (stream: InputStream) => Promise<bigint>;

/**
 * Checks the requested start positions against the streams the job reads and resolves
 * them. Throws ValidationError (naming the entry) for anything it cannot honour.
 */
export async function resolveStartPositions(
  requested: readonly StartPositionInput[],
  inputs: readonly InputStream[],
  latestOffset: LatestOffsetOf,
  now: Date,
  path: readonly (string | number)[],
): Promise<Record<string, StartPosition>> {
  if (requested.length > 0 && inputs.length === 0) {
    throw ValidationError.of([...path, 0], 'this job reads no stream: a start position has nothing to apply to');
  }
  const byId = new Map(inputs.map((s) => [s.id, s]));
  const chosen = new Map<string, { input: StartPositionInput; at: number }>();
  let fallback: { input: StartPositionInput; at: number } | undefined;
  requested.forEach((input, at) => {
    const here = [...path, at];
    if (input.from === 'TIMESTAMP') {
      if (!input.timestamp) throw ValidationError.of([...here, 'timestamp'], 'is required with from: TIMESTAMP');
      if (input.timestamp.getTime() > now.getTime()) throw ValidationError.of([...here, 'timestamp'], 'is in the future');
    } else if (input.timestamp) {
      throw ValidationError.of([...here, 'timestamp'], 'is only taken with from: TIMESTAMP');
    }
    if (input.streamId == null) {
      if (fallback) throw ValidationError.of(here, 'a second start position without a stream');
      fallback = { input, at };
      return;
    }
    if (!byId.has(input.streamId)) throw ValidationError.of([...here, 'stream'], 'is not a stream this job reads');
    if (chosen.has(input.streamId)) throw ValidationError.of([...here, 'stream'], 'has a start position already');
    chosen.set(input.streamId, { input, at });
  });
  const resolved: Record<string, StartPosition> = {};
  for (const stream of inputs) {
    const choice = chosen.get(stream.id) ?? fallback;
    if (!choice || choice.input.from === 'EARLIEST') continue;
    const here = [...path, choice.at];
    if (stream.kind === 'CHANGE') {
      // A change stream's table is its whole log: read from anywhere else it would be wrong.
      throw ValidationError.of([...here, 'from'], `stream "${stream.name}" is a CHANGE stream, always read from EARLIEST`);
    }
    resolved[stream.id] =
      choice.input.from === 'LATEST'
        ? { from: 'OFFSET', offset: (await latestOffset(stream)).toString() }
        : { from: 'TIMESTAMP', timestampMs: choice.input.timestamp!.getTime() };
  }
  return resolved;
}

/** Flink's Kafka connector options for a stream read from `position` (streams have one partition). */
export function startupOptions(position: StartPosition | undefined): Record<string, string> {
  switch (position?.from) {
    case undefined:
    case 'EARLIEST':
      return { 'scan.startup.mode': 'earliest-offset' };
    case 'OFFSET':
      return { 'scan.startup.mode': 'specific-offsets', 'scan.startup.specific-offsets': `partition:0,offset:${position.offset}` };
    case 'TIMESTAMP':
      return { 'scan.startup.mode': 'timestamp', 'scan.startup.timestamp-millis': String(position.timestampMs) };
  }
}
