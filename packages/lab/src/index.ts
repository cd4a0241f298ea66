/**
 * @nokv/lab: tools for testing NoKV as a distributed system. Today, a linearizability checker for
 * operation histories and transactional anomaly checks (list-append cycles, the bank invariant);
 * chaos experiments and workloads will live here too.
 *
 *     import { checkHistory, kvModel } from '@nokv/lab';
 *     const verdict = checkHistory(kvModel, history, { timeoutMs: 10_000 });
 *     if (verdict.result === 'illegal') console.error(verdict.explanation);
 */

export type { LabErrorCode } from './errors.js';
export { HistoryError, InvalidArgumentError, LabError, ModelError } from './errors.js';
export type {
  CheckIllegal,
  CheckOk,
  CheckOptions,
  CheckResult,
  CheckUnknown,
  IllegalPartial,
} from './linearizability/checker.js';
export { checkHistory } from './linearizability/checker.js';
export type { KvInput, KvOp, KvOutput, KvState } from './linearizability/kv-model.js';
export { kvModel } from './linearizability/kv-model.js';
export type { Model, Operation, Partition, StepResult } from './linearizability/model.js';
export { partitionByKey } from './linearizability/partition.js';
export { ANOMALIES, isForbidden } from './txn-checks/anomalies.js';
export type {
  BankAnomaly,
  BankOp,
  BankOptions,
  BankProblem,
  BankResult,
  BankTxn,
} from './txn-checks/bank.js';
export { checkBank } from './txn-checks/bank.js';
export { checkListAppend } from './txn-checks/list-append.js';
export type { SimulateOptions } from './txn-checks/simulate.js';
export { simulateListAppend } from './txn-checks/simulate.js';
export type {
  Anomaly,
  AnomalyType,
  BadElementAnomaly,
  Consistency,
  CycleAnomaly,
  CycleAnomalyType,
  CycleStep,
  DependencyType,
  IncompatibleOrderAnomaly,
  InternalAnomaly,
  Key,
  ListAppendOp,
  ListAppendOptions,
  ListAppendResult,
  ListAppendStats,
  ListAppendTxn,
  LostUpdateAnomaly,
  ReadAnomaly,
  TxnId,
  TxnStatus,
} from './txn-checks/types.js';
