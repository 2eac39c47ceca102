import type { StreamField, StreamKind } from '../streams/stream.table.js';
import type { ConnectionType, PropertyValue } from '../connections/connection.table.js';
import type { StartPositions } from './start-position.js';
import type { DeliveryGuarantee, JobKind, TaskSize } from './job.table.js';

/** A stream as a job sees it: enough to register it as a table. */
export interface StreamBinding {
  readonly id: string;
  readonly name: string;
  readonly kind: StreamKind;
  readonly fields: readonly StreamField[];
  readonly primaryKey: readonly string[];
}

export type JobProgram =
  | {
      readonly type: 'PIPELINE';
      readonly sql: string;
      readonly inputs: readonly StreamBinding[];
      readonly output: StreamBinding;
    }
  | {
      readonly type: 'CONNECTION';
      readonly connector: string;
      readonly connectionType: ConnectionType;
      readonly properties: Readonly<Record<string, PropertyValue>>;
      /** Handed to the runtime only; never logged, never returned over the API. */
      readonly secretProperties: Readonly<Record<string, PropertyValue>>;
      readonly stream: StreamBinding;
      /** The external table declares the stream's primary key (ConnectorDefinition.keyed). */
      readonly keyed?: boolean;
    };

/** The streams a job reads: a pipeline's inputs, a sink connection's stream. */
export function inputsOf(spec: JobSpec): readonly StreamBinding[] {
  const program = spec.program;
  return program.type === 'PIPELINE' ? program.inputs : program.connectionType === 'SINK' ? [program.stream] : [];
}

/** The streams a job reads or writes: a pipeline's inputs and output, a connection's stream. */
export function streamsOf(spec: JobSpec): StreamBinding[] {
  const program = spec.program;
  return program.type === 'PIPELINE' ? [...program.inputs, program.output] : [program.stream];
}

export interface JobRef {
  readonly kind: JobKind;
  readonly id: string;
  readonly accountId: string;
}

/**
 * Where a job's state lives and where it starts without any. A runtime keeps the state
 * of each generation apart and restores the latest snapshot of the spec's generation;
 * with none, the job reads its inputs from their start positions.
 */
export interface JobState {
  readonly generation: number;
  readonly startPositions: StartPositions;
  /**
   * The savepoint the generation starts from (an activation from a chosen snapshot),
   * restored while the generation has no snapshot of its own. null: its start positions.
   */
  readonly initialSnapshot?: string | null;
}

/** Everything a runtime needs to run one job: its own Flink application cluster. */
export interface JobSpec extends JobRef {
  readonly name: string;
  /** Bumped on every change of what runs; a runtime re-deploys when it differs. */
  readonly specVersion: number;
  readonly taskSize: TaskSize;
  /** Parallelism of the job. */
  readonly taskCount: number;
  /** How what the job writes is delivered (job-sql.ts writes it out). */
  readonly deliveryGuarantee: DeliveryGuarantee;
  /** null: the runtime's default. */
  readonly checkpointIntervalMs: number | null;
  readonly state: JobState;
  readonly program: JobProgram;
}

/** Every observed phase, as a value (the reconciler's decision table enumerates them). */
export const OBSERVED_PHASES = ['STARTING', 'RUNNING', 'RECOVERING', 'FAILED', 'FINISHED'] as const;
/**
 * The phase a runtime reports of a job it holds (stopped jobs are simply absent).
 * FINISHED: a bounded job (e.g. datagen with number-of-rows) ran to its end.
 */
export type ObservedPhase = (typeof OBSERVED_PHASES)[number];
