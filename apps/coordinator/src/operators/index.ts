export { type OperationJson, operationJson } from './json.js';
export {
  OPERATION_KINDS,
  OPERATION_STATES,
  type Operation,
  type OperationFilter,
  type OperationKind,
  type OperationSource,
  type OperationSpec,
  type OperationState,
  type OperatorEnv,
  type OperatorQueueOptions,
  type StepName,
} from './model.js';
export { OperatorQueue } from './queue.js';
