/**
 * Test support: the fault-injecting filesystem and in-process crash simulation. Not for
 * production use; exported separately so it never rides along with the engine by accident.
 */

import type { Database } from './db/database.js';
import type { FaultVfs } from './vfs/fault-vfs.js';

export type { FaultRule, FaultTrigger } from './vfs/fault-vfs.js';
export { FaultVfs, InjectedFault, SimulatedCrash } from './vfs/fault-vfs.js';

/**
 * Simulates the death of the process holding `db`: the filesystem stops answering (and with
 * `loseUnsynced`, forgets what was not fsynced, as a power loss would), then the database object
 * is abandoned without closing anything. Reopen with a new `FaultVfs`.
 */
export async function simulateCrash(
  db: Database,
  vfs: FaultVfs,
  options: { loseUnsynced: boolean },
): Promise<void> {
  await vfs.crash(options);
  await db.abandonForCrashTest();
}
