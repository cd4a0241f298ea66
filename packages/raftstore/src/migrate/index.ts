export { MigrateError, type MigrateErrorCode } from './errors.js';
export {
  type InitOptions,
  type InitResult,
  init,
  type LocalStatus,
  localStatus,
  type MigrationIds,
  PairDigest,
  type PlanReport,
  plan,
  seedRegion,
} from './local.js';
export {
  MIGRATION_STAGES,
  type MigrationProgress,
  type MigrationStage,
  PROGRESS_FILE,
  readProgress,
  resumeHint,
} from './progress.js';
export {
  type ExpandOptions,
  type ExpandResult,
  type ExpandTarget,
  expand,
  type PeerMoveOptions,
  type RemoteOptions,
  type RuntimeStatus,
  removePeer,
  runtimeStatus,
  transferLeader,
} from './remote.js';
export {
  type ClusterView,
  formatReport,
  jsonBigint,
  type MigrationReport,
  type MigrationStatus,
  report,
  type StatusOptions,
  status,
} from './report.js';
export { readSeed, seedDir } from './seed.js';
