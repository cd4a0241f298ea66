import { formatKey, showKey } from '@nokv/config';
import { open } from '@nokv/engine';
import { type RegionLocalState, RegionState } from '@nokv/proto';
import { readRegionStates } from '@nokv/raftstore';
import { toJson } from '../format.js';
import type { Output } from '../output.js';

const STATE_NAMES: Record<number, string> = {
  [RegionState.Unspecified]: 'unspecified',
  [RegionState.New]: 'new',
  [RegionState.Running]: 'running',
  [RegionState.Removing]: 'removing',
  [RegionState.Tombstone]: 'tombstone',
};

/**
 * `nokv regions --workdir DIR [--json]`: the store's region catalog (every RegionLocalState in its
 * engine), read from a read-only open: works on a workdir a running store holds.
 */
export async function regionsCommand(
  options: { workdir: string; json?: boolean },
  out: Output,
): Promise<void> {
  const db = await open({ dir: options.workdir, readOnly: true, allowedModes: ['cluster'] });
  let states: RegionLocalState[];
  try {
    states = await readRegionStates(db);
  } finally {
    await db.close();
  }
  states.sort((a, b) => (a.region.id < b.region.id ? -1 : a.region.id > b.region.id ? 1 : 0));
  if (options.json) {
    out.write(toJson({ regions: states.map(regionJson) }));
    return;
  }
  out.write(states.length === 0 ? `no regions in ${options.workdir}` : states.map(renderRegion).join('\n'));
}

/** Keys as in the topology file: "" unbounded, plain printable text, else `hex:...`. */
export function regionJson(s: RegionLocalState): Record<string, unknown> {
  const r = s.region;
  return {
    id: r.id,
    state: STATE_NAMES[r.state] ?? String(r.state),
    startKey: formatKey(r.startKey),
    endKey: formatKey(r.endKey),
    epoch: { version: r.epoch.version, confVersion: r.epoch.confVersion },
    peers: r.peers.map((p) => ({ storeId: p.storeId, peerId: p.peerId, learner: p.learner })),
    appliedIndex: s.appliedIndex,
    appliedTerm: s.appliedTerm,
    truncatedIndex: s.truncatedIndex,
    truncatedTerm: s.truncatedTerm,
  };
}

/** `id=1 state=running epoch={ver:1 conf:1} range=[-, m) peers=[{store:1 peer:101} ...] applied=12` */
export function renderRegion(s: RegionLocalState): string {
  const r = s.region;
  const peers = r.peers
    .map((p) => `{store:${p.storeId} peer:${p.peerId}${p.learner ? ' learner' : ''}}`)
    .join(' ');
  return (
    `id=${r.id} state=${STATE_NAMES[r.state] ?? r.state} epoch={ver:${r.epoch.version} conf:${r.epoch.confVersion}} ` +
    `range=[${showKey(r.startKey)}, ${showKey(r.endKey)}) peers=[${peers}] applied=${s.appliedIndex}`
  );
}
