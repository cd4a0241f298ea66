/**
 * Histories of transactions, and what the transactional checkers report about them.
 */

/** A transaction's identifier, as the workload named it (only used in reports). */
export type TxnId = string | number;

/** A key of the list-append workload. */
export type Key = string | number;

/**
 * How a transaction ended, as the client saw it: `'ok'` committed, `'fail'` definitely aborted (no
 * effect), `'info'` unknown (a timeout or an ambiguous error: it may or may not have committed).
 */
export type TxnStatus = 'ok' | 'fail' | 'info';

/**
 * A list-append micro-operation. `append` adds `value` to the end of the list stored at `key`
 * (values are unique per key across the whole history); `r` reads the whole list, `null` meaning
 * the key does not exist (the same as `[]`). In a `'fail'` or `'info'` transaction a read's value
 * may be `null` for "never returned": such reads are not used.
 */
export type ListAppendOp =
  | { readonly f: 'append'; readonly key: Key; readonly value: number }
  | { readonly f: 'r'; readonly key: Key; readonly value: readonly number[] | null };

/** One transaction of a list-append history. `start`/`end` are only used with `realTime: true`. */
export interface ListAppendTxn {
  readonly id: TxnId;
  readonly process: number;
  readonly ops: readonly ListAppendOp[];
  readonly status: TxnStatus;
  /** When the client began the transaction (any clock; ms, µs, ticks). */
  readonly start?: number;
  /** When the client learnt the outcome. Absent or Infinity for `'info'`. */
  readonly end?: number;
}

/** The consistency model a history is checked against. */
export type Consistency = 'snapshot-isolation' | 'serializable';

/** Dependency edge kinds: write-write, write-read, read-write (anti-dependency), real time. */
export type DependencyType = 'ww' | 'wr' | 'rw' | 'rt';

/** Cycle anomalies, by the edges their cycle needs. */
export type CycleAnomalyType =
  | 'G0'
  | 'G1c'
  | 'G-single'
  | 'G2'
  | 'G0-realtime'
  | 'G1c-realtime'
  | 'G-single-realtime'
  | 'G2-realtime';

/** Every anomaly the list-append checker reports. */
export type AnomalyType =
  | CycleAnomalyType
  | 'G1a'
  | 'G1b'
  | 'LostUpdate'
  | 'IncompatibleOrder'
  | 'GarbageRead'
  | 'DuplicateElements'
  | 'Internal';

/** One edge of a reported cycle, between two transactions (real-time chains collapsed to one). */
export interface CycleStep {
  readonly from: TxnId;
  readonly to: TxnId;
  readonly type: DependencyType;
  /** The key that induced a ww/wr/rw edge. */
  readonly key?: Key;
  /** E.g. `T3 → T7 (rw): T3 read 'x' = [1, 2] and did not observe T7's append of 4`. */
  readonly explanation: string;
}

/** Fields every anomaly has. */
interface AnomalyBase {
  /** Whether the checked consistency model forbids this anomaly. */
  readonly forbidden: boolean;
  /** The transactions involved, by id. */
  readonly txns: readonly TxnId[];
  /** Multi-line, human-readable. */
  readonly explanation: string;
}

/** A dependency cycle among committed transactions. `cycle[i].to === cycle[i + 1].from`, closing. */
export interface CycleAnomaly extends AnomalyBase {
  readonly type: CycleAnomalyType;
  readonly cycle: readonly CycleStep[];
}

/** A read that is not a prefix of the key's version order (the longest read of the key). */
export interface IncompatibleOrderAnomaly extends AnomalyBase {
  readonly type: 'IncompatibleOrder';
  readonly key: Key;
  /** The longest read, taken as the version order. */
  readonly order: readonly number[];
  /** The reads that are not prefixes of it (at most 10 listed). */
  readonly reads: readonly { readonly txn: TxnId; readonly value: readonly number[] }[];
}

/** A committed read observed an append of a failed transaction (G1a), or a non-final one (G1b). */
export interface ReadAnomaly extends AnomalyBase {
  readonly type: 'G1a' | 'G1b';
  readonly key: Key;
  readonly reader: TxnId;
  readonly writer: TxnId;
  readonly value: number;
}

/** Two committed transactions read the same version of a key and both appended to it. */
export interface LostUpdateAnomaly extends AnomalyBase {
  readonly type: 'LostUpdate';
  readonly key: Key;
  /** The version they all read (the list). */
  readonly read: readonly number[];
}

/** A read observed a value no transaction appended, or the same value twice. */
export interface BadElementAnomaly extends AnomalyBase {
  readonly type: 'GarbageRead' | 'DuplicateElements';
  readonly key: Key;
  readonly reader: TxnId;
  readonly value: number;
  readonly read: readonly number[];
}

/** A transaction's read contradicts its own earlier reads and appends of the key. */
export interface InternalAnomaly extends AnomalyBase {
  readonly type: 'Internal';
  readonly key: Key;
  readonly reader: TxnId;
  readonly read: readonly number[];
  /** What its own earlier operations imply (`…` marks an unknown prefix). */
  readonly expected: string;
}

export type Anomaly =
  | CycleAnomaly
  | IncompatibleOrderAnomaly
  | ReadAnomaly
  | LostUpdateAnomaly
  | BadElementAnomaly
  | InternalAnomaly;

/** Options of `checkListAppend`. */
export interface ListAppendOptions {
  readonly consistency: Consistency;
  /**
   * Add real-time edges (T1 → T2 when T1 ended before T2 started; both times needed, and only
   * committed outcomes count as ends). This checks the strong variants (strong snapshot isolation,
   * strict serializability); cycles that need such an edge are reported as `*-realtime`. Default
   * false.
   */
  readonly realTime?: boolean;
  /** At most this many cycle anomalies of each type are reported (default 10; at least 1). */
  readonly maxCyclesPerType?: number;
}

export interface ListAppendStats {
  readonly transactions: number;
  readonly ok: number;
  readonly fail: number;
  readonly info: number;
  /** Info transactions treated as committed because one of their appends was observed. */
  readonly infoCommitted: number;
  readonly keys: number;
  readonly edges: { readonly ww: number; readonly wr: number; readonly rw: number; readonly rt: number };
  /** Strongly connected components with more than one node (each holds at least one cycle). */
  readonly cyclicComponents: number;
  /** Transactions in the largest such component (0 when acyclic). */
  readonly largestComponent: number;
  /**
   * True when a component was too large for the exact G-single search and the bounded fallback
   * ran out: a G-single may have been reported as G2 or missed there.
   */
  readonly searchIncomplete: boolean;
  readonly ms: number;
}

export interface ListAppendResult {
  /** No anomaly the consistency model forbids. */
  readonly valid: boolean;
  readonly anomalies: readonly Anomaly[];
  /** The distinct anomaly types found, sorted. */
  readonly anomalyTypes: readonly AnomalyType[];
  readonly stats: ListAppendStats;
}
