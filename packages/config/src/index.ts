/**
 * @nokv/config: NoKV's topology file (`nokv.config.json`): schema, loading, validation and address
 * resolution, shared by the node, the CLI, the lab and tests.
 *
 *     const topology = await loadTopology('nokv.config.json');
 *     storeAddress(topology, 1n, 'host'); // '127.0.0.1:20170'
 *     regionMetas(topology);              // RegionMeta[] to bootstrap
 */

export { formatHostPort, type HostPort, parseHostPort } from './address.js';
export { ConfigError, type ConfigErrorCode, type ConfigIssue, formatPath, isConfigError } from './errors.js';
export { compareKeys, formatKey, keyProblem, parseKey, showKey } from './keys.js';
export {
  type AddressScope,
  DEFAULT_CLUSTER_NAME,
  findStore,
  loadTopology,
  type PeerConfig,
  parseTopology,
  type RegionConfig,
  regionMetas,
  regionMetasOfStore,
  requireStore,
  resolveWorkdir,
  type StoreConfig,
  storeAddress,
  storeAddressResolver,
  storeHttpAddress,
  type Topology,
  type TopologyFile,
} from './topology.js';
