// Progress of the snapshots moving in and out of one store: Raft catch-up snapshots (the
// transport's SendSnapshot streams) and admin installs (export, stream, verify, install). An
// operator polls it (SnapshotProgress RPC, store stats) to see a large transfer advance or why one
// failed. Transfers in flight are all kept; finished ones only the most recent few.

export type SnapshotTransferKind = 'raft' | 'admin';
export type SnapshotDirection = 'send' | 'receive';
export type SnapshotStage = 'export' | 'stream' | 'verify' | 'install' | 'done' | 'failed';

/** A transfer as reported (a copy; it does not change afterwards). */
export interface SnapshotTransferView {
  /** Unique per tracker, in start order. */
  id: number;
  kind: SnapshotTransferKind;
  direction: SnapshotDirection;
  regionId: bigint;
  /** The store on the other end (0 when unknown). */
  peerStoreId: bigint;
  stage: SnapshotStage;
  bytesDone: number;
  /** 0 until known. */
  bytesTotal: number;
  startedAtMs: number;
  /** 0 while running. */
  finishedAtMs: number;
  /** Why it failed ('' otherwise). */
  error: string;
}

export interface SnapshotTransferStart {
  kind: SnapshotTransferKind;
  direction: SnapshotDirection;
  regionId: bigint;
  peerStoreId?: bigint;
  bytesTotal?: number;
  /** Default: 'export' when sending, 'stream' when receiving. */
  stage?: SnapshotStage;
}

/** The handle of one running transfer. Calls after it finished are ignored. */
export class SnapshotTransfer {
  private readonly view: SnapshotTransferView;

  /** @internal created by SnapshotTracker.begin */
  constructor(
    private readonly tracker: SnapshotTracker,
    view: SnapshotTransferView,
  ) {
    this.view = view;
  }

  get id(): number {
    return this.view.id;
  }

  get finished(): boolean {
    return this.view.finishedAtMs !== 0;
  }

  get bytesDone(): number {
    return this.view.bytesDone;
  }

  /** Moves to a running stage (export, stream, verify, install). */
  stage(stage: Exclude<SnapshotStage, 'done' | 'failed'>): this {
    if (!this.finished) this.view.stage = stage;
    return this;
  }

  total(bytes: number): this {
    if (!this.finished) this.view.bytesTotal = bytes;
    return this;
  }

  /** `bytes` more moved. */
  advance(bytes: number): this {
    if (!this.finished) this.view.bytesDone += bytes;
    return this;
  }

  done(): void {
    if (this.finished) return;
    this.view.stage = 'done';
    this.view.finishedAtMs = Date.now();
    this.tracker.finish(this.view);
  }

  fail(err: unknown): void {
    if (this.finished) return;
    this.view.stage = 'failed';
    this.view.error = err instanceof Error ? err.message : String(err);
    this.view.finishedAtMs = Date.now();
    this.tracker.finish(this.view);
  }

  /** Runs `fn`, marking the transfer done when it resolves and failed when it throws. */
  async run<T>(fn: (t: this) => Promise<T>): Promise<T> {
    try {
      const out = await fn(this);
      this.done();
      return out;
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }
}

export interface SnapshotTrackerStats {
  running: number;
  started: number;
  failed: number;
  bytesSent: number;
  bytesReceived: number;
  /** JSON-safe views (ids as strings), running first, then the most recent finished. */
  transfers: Record<string, string | number>[];
}

export class SnapshotTracker {
  private readonly running = new Map<number, SnapshotTransferView>();
  /** Oldest first. */
  private readonly finished: SnapshotTransferView[] = [];
  private nextId = 1;
  private failures = 0;
  private sent = 0;
  private received = 0;

  constructor(private readonly keepFinished = 64) {}

  begin(start: SnapshotTransferStart): SnapshotTransfer {
    const view: SnapshotTransferView = {
      id: this.nextId++,
      kind: start.kind,
      direction: start.direction,
      regionId: start.regionId,
      peerStoreId: start.peerStoreId ?? 0n,
      stage: start.stage ?? (start.direction === 'send' ? 'export' : 'stream'),
      bytesDone: 0,
      bytesTotal: start.bytesTotal ?? 0,
      startedAtMs: Date.now(),
      finishedAtMs: 0,
      error: '',
    };
    this.running.set(view.id, view);
    return new SnapshotTransfer(this, view);
  }

  /** @internal called by SnapshotTransfer */
  finish(view: SnapshotTransferView): void {
    if (!this.running.delete(view.id)) return;
    if (view.stage === 'failed') this.failures++;
    if (view.direction === 'send') this.sent += view.bytesDone;
    else this.received += view.bytesDone;
    this.finished.push(view);
    if (this.finished.length > this.keepFinished)
      this.finished.splice(0, this.finished.length - this.keepFinished);
  }

  /** Running transfers (oldest first), then finished ones (most recent first). */
  list(): SnapshotTransferView[] {
    const running = [...this.running.values()].map((v) => ({ ...v }));
    const done = this.finished.map((v) => ({ ...v })).reverse();
    return [...running, ...done];
  }

  stats(): SnapshotTrackerStats {
    let sent = this.sent;
    let received = this.received;
    for (const v of this.running.values()) {
      if (v.direction === 'send') sent += v.bytesDone;
      else received += v.bytesDone;
    }
    return {
      running: this.running.size,
      started: this.nextId - 1,
      failed: this.failures,
      bytesSent: sent,
      bytesReceived: received,
      transfers: this.list().map((v) => ({
        ...v,
        regionId: String(v.regionId),
        peerStoreId: String(v.peerStoreId),
      })),
    };
  }
}
