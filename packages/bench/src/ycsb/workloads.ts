/** The six YCSB core workloads (proportions as in YCSB's workloads/workload[a-f]). */

export type Operation = 'read' | 'update' | 'insert' | 'scan' | 'rmw';
export type KeyDistribution = 'zipfian' | 'latest';

export interface Workload {
  name: string;
  description: string;
  mix: Partial<Record<Operation, number>>;
  distribution: KeyDistribution;
  /** Scan lengths are uniform in [1, maxScanLength]. */
  maxScanLength: number;
}

export const WORKLOADS: Record<string, Workload> = {
  A: {
    name: 'A',
    description: '50% read, 50% update',
    mix: { read: 0.5, update: 0.5 },
    distribution: 'zipfian',
    maxScanLength: 0,
  },
  B: {
    name: 'B',
    description: '95% read, 5% update',
    mix: { read: 0.95, update: 0.05 },
    distribution: 'zipfian',
    maxScanLength: 0,
  },
  C: { name: 'C', description: '100% read', mix: { read: 1 }, distribution: 'zipfian', maxScanLength: 0 },
  D: {
    name: 'D',
    description: '95% read latest, 5% insert',
    mix: { read: 0.95, insert: 0.05 },
    distribution: 'latest',
    maxScanLength: 0,
  },
  E: {
    name: 'E',
    description: '95% scan (1-100), 5% insert',
    mix: { scan: 0.95, insert: 0.05 },
    distribution: 'zipfian',
    maxScanLength: 100,
  },
  F: {
    name: 'F',
    description: '50% read, 50% read-modify-write',
    mix: { read: 0.5, rmw: 0.5 },
    distribution: 'zipfian',
    maxScanLength: 0,
  },
};
