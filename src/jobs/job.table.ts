import type { ColumnType, Generated, Selectable } from 'kysely';
import type { StartPositions } from './start-position.js';

/** Pipelines and connections are both jobs: they run on Flink when active. */
export type JobKind = 'PIPELINE' | 'CONNECTION';
export const DESIRED_STATES = ['ACTIVE', 'INACTIVE'] as const;
export type DesiredState = (typeof DESIRED_STATES)[number];
export const ACTUAL_STATES = ['STARTING', 'RUNNING', 'RECOVERING', 'STOPPING', 'STOPPED', 'FAILED', 'FINISHED'] as const;
export type ActualState = (typeof ACTUAL_STATES)[number];
export type TaskSize = 'S' | 'M' | 'L';
export const DELIVERY_GUARANTEES = ['EXACTLY_ONCE', 'AT_LEAST_ONCE'] as const;
export type DeliveryGuarantee = (typeof DELIVERY_GUARANTEES)[number];

export interface JobColumns {
  task_size: TaskSize;
  task_count: number;
  delivery_guarantee: ColumnType<DeliveryGuarantee, DeliveryGuarantee | undefined, DeliveryGuarantee>;
  /** null: the runtime's default interval. */
  checkpoint_interval_ms: ColumnType<number | null, number | null | undefined, number | null>;
  desired_state: ColumnType<DesiredState, DesiredState | undefined, DesiredState>;
  actual_state: ColumnType<ActualState, ActualState | undefined, ActualState>;
  actual_reason: ColumnType<string | null, string | null | undefined, string | null>;
  /**
   * The job's state folder: checkpoints and savepoints of one generation carry over
   * deactivations and resource changes; a new generation (restore NONE, a change of what
   * the job computes) starts without state, from its start positions.
   */
  state_generation: ColumnType<number, number | undefined, number>;
  /** Where each input stream (by id) is read from when the generation starts without state (JSON, written as text). */
  start_positions: ColumnType<StartPositions, string | undefined, string>;
  /** When the generation was first activated; null: never, so it has no state yet. */
  state_started_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** The savepoint the generation starts from (an activation from a snapshot); null: its start positions. */
  initial_snapshot: ColumnType<string | null, string | null | undefined, string | null>;
  /** Bumped on every change of what runs, so the runtime can tell a stale deployment. */
  spec_version: ColumnType<number, number | undefined, number>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
}

export interface JobTransitionTable {
  id: Generated<string>;
  account_id: string;
  job_kind: JobKind;
  job_id: string;
  state: ActualState;
  reason: string | null;
  at: ColumnType<Date, never, never>;
}

export type JobTransitionRow = Selectable<JobTransitionTable>;
