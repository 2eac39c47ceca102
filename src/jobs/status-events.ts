import { EventEmitter } from 'node:events';
import type { ActualState, DesiredState, JobKind } from './job.table.js';

export interface StatusChange {
  readonly accountId: string;
  readonly kind: JobKind;
  readonly jobId: string;
  readonly desiredState: DesiredState;
  readonly state: ActualState;
  readonly reason: string | null;
  readonly at: Date;
}

/**
 * Status transitions of pipelines and connections, per account, for subscriptions.
 * In process: the reconciler that observed a transition publishes it here.
 */
export class StatusEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    // One listener per open subscription; the count is bounded by connections, not by a constant.
    this.emitter.setMaxListeners(0);
  }

  publish(change: StatusChange): void {
    this.emitter.emit(change.accountId, change);
  }

  subscribe(accountId: string, listener: (change: StatusChange) => void): () => void {
    this.emitter.on(accountId, listener);
    return () => this.emitter.off(accountId, listener);
  }
}
