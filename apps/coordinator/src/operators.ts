// The rest of the coordinator imports './operators.js'; the queue lives in ./operators/.
export {
  OPERATION_KINDS,
  OPERATION_STATES,
  type Operation,
  type OperationFilter,
  type OperationJson,
  type OperationKind,
  type OperationSource,
  type OperationSpec,
  type OperationState,
  type OperatorEnv,
  OperatorQueue,
  type OperatorQueueOptions,
  operationJson,
  type StepName,
} from './operators/index.js';
