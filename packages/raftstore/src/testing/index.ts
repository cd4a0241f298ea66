export { defaultRegions, sleep, TestCluster, type TestClusterOptions } from './cluster.js';
