/**
 * Which connections WATCH which keys, so a write through this gateway marks its watchers dirty at
 * once, as Redis's `touchWatchedKey` does: EXEC then aborts even if the write left the key
 * byte-identical. Writes through other gateways (cluster) are caught by EXEC's re-read of the
 * watched keys and by the guard conflict instead.
 *
 * Marking happens when a transaction's function finishes (`KeyTxn.finish`), i.e. at its place in
 * the serial order, not when its commit is acknowledged: an EXEC that runs after the write in the
 * backend's order sees the mark. A write that then fails to commit only causes a needless abort.
 */

import type { ClientState } from './types.js';

export class WatchRegistry {
  private readonly watchers = new Map<string, Set<ClientState>>();
  private readonly byClient = new Map<ClientState, Set<string>>();

  get empty(): boolean {
    return this.watchers.size === 0;
  }

  watch(client: ClientState, key: string): void {
    let set = this.watchers.get(key);
    if (set === undefined) {
      set = new Set();
      this.watchers.set(key, set);
    }
    set.add(client);
    let keys = this.byClient.get(client);
    if (keys === undefined) {
      keys = new Set();
      this.byClient.set(client, keys);
    }
    keys.add(key);
  }

  /** Forgets every key the client watches and clears its dirty mark (EXEC, DISCARD, UNWATCH, close). */
  unwatchAll(client: ClientState): void {
    for (const key of this.byClient.get(client) ?? []) {
      const set = this.watchers.get(key);
      if (set === undefined) continue;
      set.delete(client);
      if (set.size === 0) this.watchers.delete(key);
    }
    this.byClient.delete(client);
    client.watched.clear();
    client.watchDirty = false;
  }

  /** Marks the watchers of these keys (latin1 Redis keys) dirty. */
  touch(keys: Iterable<string>): void {
    if (this.watchers.size === 0) return;
    for (const key of keys) {
      const set = this.watchers.get(key);
      if (set !== undefined) for (const c of set) c.watchDirty = true;
    }
  }
}
