/**
 * A checker for list-append transaction histories, in the spirit of Jepsen's Elle: infer each key's
 * version order from the reads, derive the dependency graph between committed transactions, and
 * report the anomalies (Adya's G0–G2, plus lost updates and read-level problems) the history shows.
 */

import { isForbidden } from './anomalies.js';
import { findCycles } from './cycles.js';
import { GraphBuilder, RT, RW, WR, WW } from './graph.js';
import type {
  Anomaly,
  AnomalyType,
  CycleAnomalyType,
  CycleStep,
  DependencyType,
  Key,
  ListAppendOptions,
  ListAppendResult,
  ListAppendTxn,
} from './types.js';
import { show, validateListAppend } from './validate.js';

/** Values listed in full up to this length; longer lists are elided in the middle. */
const SHOW_VALUES = 8;

type WithoutForbidden<T> = T extends unknown ? Omit<T, 'forbidden'> : never;

/** A read of a committed transaction. */
interface Read {
  readonly txn: number;
  readonly op: number;
  readonly value: readonly number[];
  /** The first operation of its transaction on this key: it saw only other transactions' writes. */
  readonly external: boolean;
  /** A prefix of the key's version order. */
  compatible: boolean;
}

interface KeyState {
  readonly key: Key;
  /** value → index of the transaction that appended it. */
  readonly writer: Map<number, number>;
  /** A value that is not its writer's last append to the key → that last append. */
  readonly nonFinal: Map<number, number>;
  readonly reads: Read[];
  /** External reads followed by an append of the same key in the same committed transaction. */
  readonly readThenAppend: Read[];
  order: readonly number[];
}

/** Why an edge exists: key, and the two values involved (meaning depends on the edge type). */
interface Witness {
  readonly key: number;
  readonly a: number;
  readonly b: number;
}

const TYPE_NAMES: Record<number, DependencyType> = { [WW]: 'ww', [WR]: 'wr', [RW]: 'rw', [RT]: 'rt' };

const CYCLE_TITLES: Record<CycleAnomalyType, string> = {
  G0: 'G0 (write cycle)',
  G1c: 'G1c (circular information flow)',
  'G-single': 'G-single (read skew: one anti-dependency)',
  G2: 'G2 (write skew: two or more anti-dependencies)',
  'G0-realtime': 'G0-realtime (write cycle with real-time order)',
  'G1c-realtime': 'G1c-realtime (circular information flow with real-time order)',
  'G-single-realtime': 'G-single-realtime (one anti-dependency, with real-time order)',
  'G2-realtime': 'G2-realtime (two or more anti-dependencies, with real-time order)',
};

export function showList(values: readonly number[]): string {
  if (values.length <= SHOW_VALUES) return `[${values.join(', ')}]`;
  const head = values.slice(0, 3).join(', ');
  const tail = values.slice(-3).join(', ');
  return `[${head}, … ${values.length - 6} more …, ${tail}]`;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Checks a list-append history against `options.consistency`. See the package README
 * ("Transactional anomaly checks") for the anomalies and how the graph is inferred.
 *
 * Throws `InvalidArgumentError` for bad options or a non-array history and `HistoryError` for a
 * malformed transaction (including a value appended twice to one key); an anomalous history is a
 * normal result.
 */
export function checkListAppend(
  history: readonly ListAppendTxn[],
  options: ListAppendOptions,
): ListAppendResult {
  const started = performance.now();
  validateListAppend(history, options);
  const { consistency } = options;
  const realTime = options.realTime ?? false;
  const maxCycles = options.maxCyclesPerType ?? 10;
  const n = history.length;
  const anomalies: Anomaly[] = [];
  const add = (anomaly: WithoutForbidden<Anomaly>) =>
    anomalies.push({ ...anomaly, forbidden: isForbidden(anomaly.type, consistency) } as Anomaly);
  const tid = (t: number) => history[t]!.id;
  const name = (t: number) => `T${show(tid(t))}`;

  // Pass 1: writers, reads, and each committed transaction's internal consistency.
  const keyIndex = new Map<Key, number>();
  const keys: KeyState[] = [];
  const keyOf = (key: Key): number => {
    let k = keyIndex.get(key);
    if (k === undefined) {
      k = keys.length;
      keyIndex.set(key, k);
      keys.push({
        key,
        writer: new Map(),
        nonFinal: new Map(),
        reads: [],
        readThenAppend: [],
        order: [],
      });
    }
    return k;
  };
  for (let t = 0; t < n; t++) {
    const txn = history[t]!;
    const ok = txn.status === 'ok';
    // Per key: own appends so far, and what the transaction last knew of the list (undefined: only
    // its own appends are known, on top of an unseen prefix).
    const lastAppend = new Map<number, number>();
    const known = new Map<number, { base: readonly number[] | undefined; own: number[] }>();
    const externalRead = new Map<number, Read>();
    for (let j = 0; j < txn.ops.length; j++) {
      const op = txn.ops[j]!;
      const k = keyOf(op.key);
      const state = keys[k]!;
      let mine = known.get(k);
      if (op.f === 'append') {
        const firstAppend = !lastAppend.has(k);
        lastAppend.set(k, op.value);
        state.writer.set(op.value, t);
        if (mine === undefined) {
          mine = { base: undefined, own: [] };
          known.set(k, mine);
        }
        mine.own.push(op.value);
        const ext = externalRead.get(k);
        if (ext !== undefined && firstAppend) state.readThenAppend.push(ext);
        continue;
      }
      if (!ok) continue;
      const value = op.value ?? [];
      const read: Read = { txn: t, op: j, value, external: mine === undefined, compatible: true };
      state.reads.push(read);
      if (mine === undefined) {
        externalRead.set(k, read);
      } else {
        const { base, own } = mine;
        const expected = base === undefined ? undefined : [...base, ...own];
        const consistent =
          expected !== undefined
            ? sameList(value, expected)
            : value.length >= own.length && sameList(value.slice(value.length - own.length), own);
        if (!consistent) {
          const shown = expected !== undefined ? showList(expected) : `[…, ${own.join(', ')}]`;
          add({
            type: 'Internal',
            txns: [txn.id],
            key: op.key,
            reader: txn.id,
            read: value,
            expected: shown,
            explanation:
              `${name(t)} read key ${show(op.key)} = ${showList(value)} (op ${j}), but its own earlier operations ` +
              `on key ${show(op.key)} imply ${shown}.`,
          });
        }
      }
      known.set(k, { base: value, own: [] });
    }
    // nonFinal maps a value to the writer's next append; make it point at the final one.
    for (const [k, last] of lastAppend) {
      const nonFinal = keys[k]!.nonFinal;
      for (const op of txn.ops) {
        if (op.f === 'append' && op.value !== last && keyIndex.get(op.key) === k)
          nonFinal.set(op.value, last);
      }
    }
  }

  // Pass 2, per key: version order, read-level anomalies, and which info transactions committed.
  const committed = new Uint8Array(n);
  let infoCommitted = 0;
  for (let t = 0; t < n; t++) if (history[t]!.status === 'ok') committed[t] = 1;
  const observe = (writer: number | undefined) => {
    if (writer !== undefined && committed[writer] === 0 && history[writer]!.status === 'info') {
      committed[writer] = 1;
      infoCommitted++;
    }
  };
  for (const state of keys) {
    const { key, reads, writer } = state;
    if (reads.length === 0) continue;
    const byLength = reads.slice().sort((a, b) => b.value.length - a.value.length);
    const duplicates = (read: Read): number | undefined => {
      const seen = new Set<number>();
      for (const v of read.value) {
        if (seen.has(v)) return v;
        seen.add(v);
      }
      return undefined;
    };
    const reportDuplicate = (read: Read, v: number) => {
      read.compatible = false;
      add({
        type: 'DuplicateElements',
        txns: [tid(read.txn)],
        key,
        reader: tid(read.txn),
        value: v,
        read: read.value,
        explanation: `${name(read.txn)} read key ${show(key)} = ${showList(read.value)}, which holds ${v} more than once.`,
      });
    };
    let order: readonly number[] = [];
    for (const read of byLength) {
      const dup = duplicates(read);
      if (dup === undefined) {
        order = read.value;
        break;
      }
      reportDuplicate(read, dup);
    }
    state.order = order;
    const incompatible: Read[] = [];
    for (const read of reads) {
      if (!read.compatible) continue;
      const v = read.value;
      let prefix = v.length <= order.length;
      for (let i = 0; prefix && i < v.length; i++) if (v[i] !== order[i]) prefix = false;
      if (prefix) continue;
      read.compatible = false;
      const dup = duplicates(read);
      if (dup !== undefined) reportDuplicate(read, dup);
      else incompatible.push(read);
      for (const x of v) observe(writer.get(x));
    }
    if (incompatible.length > 0) {
      const reader = byLength.find((r) => r.value === order)!;
      const listed = incompatible.slice(0, 10);
      add({
        type: 'IncompatibleOrder',
        txns: [tid(reader.txn), ...listed.map((r) => tid(r.txn))],
        key,
        order,
        reads: listed.map((r) => ({ txn: tid(r.txn), value: r.value })),
        explanation: [
          `Reads of key ${show(key)} disagree on its order: the longest, by ${name(reader.txn)}, is ${showList(order)}, ` +
            `but ${incompatible.length} read(s) are not prefixes of it:`,
          ...listed.map((r) => `  ${name(r.txn)} read ${showList(r.value)}`),
        ].join('\n'),
      });
    }
    // A committed transaction that read the whole known order and then appended: its appends
    // (never observed, or the order would be longer) must follow directly, under both models. With
    // several such readers that is a lost update instead, and the order is left alone.
    const extenders = state.readThenAppend.filter((r) => r.compatible && r.value.length === order.length);
    if (extenders.length === 1) {
      const extender = extenders[0]!;
      const own: number[] = [];
      for (const op of history[extender.txn]!.ops) {
        if (op.f === 'append' && keyIndex.get(op.key) === keyIndex.get(key)) own.push(op.value);
      }
      order = [...order, ...own];
      state.order = order;
    }
    for (const x of order) observe(writer.get(x));

    // For each position of the order, the compatible read that first (shortest) observed it.
    const compatible = reads.filter((r) => r.compatible).sort((a, b) => a.value.length - b.value.length);
    const firstObserver = (position: number): Read => {
      let lo = 0;
      let hi = compatible.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compatible[mid]!.value.length > position) hi = mid;
        else lo = mid + 1;
      }
      return compatible[lo]!;
    };
    for (let p = 0; p < order.length; p++) {
      const x = order[p]!;
      const w = writer.get(x);
      if (w === undefined) {
        const reader = firstObserver(p);
        add({
          type: 'GarbageRead',
          txns: [tid(reader.txn)],
          key,
          reader: tid(reader.txn),
          value: x,
          read: reader.value,
          explanation: `${name(reader.txn)} read key ${show(key)} = ${showList(reader.value)}, but no transaction appended ${x} to key ${show(key)}.`,
        });
      } else if (history[w]!.status === 'fail') {
        const reader = firstObserver(p);
        add({
          type: 'G1a',
          txns: [tid(reader.txn), tid(w)],
          key,
          reader: tid(reader.txn),
          writer: tid(w),
          value: x,
          explanation:
            `Aborted read: ${name(reader.txn)} read key ${show(key)} = ${showList(reader.value)}, observing ${x}, ` +
            `which was appended by ${name(w)}, a transaction that failed.`,
        });
      }
    }
    // G1b: a read ending at another transaction's non-final append (once per value).
    const reported = new Set<number>();
    for (const read of compatible) {
      const L = read.value.length;
      if (L === 0) continue;
      const x = read.value[L - 1]!;
      const w = writer.get(x);
      const final = state.nonFinal.get(x);
      if (w === undefined || w === read.txn || final === undefined || reported.has(x)) continue;
      if (history[w]!.status === 'fail') continue; // already an aborted read
      reported.add(x);
      add({
        type: 'G1b',
        txns: [tid(read.txn), tid(w)],
        key,
        reader: tid(read.txn),
        writer: tid(w),
        value: x,
        explanation:
          `Intermediate read: ${name(read.txn)} read key ${show(key)} = ${showList(read.value)}, ending at ${x}, ` +
          `but ${name(w)} went on to append ${final} to key ${show(key)} in the same transaction.`,
      });
    }
  }

  // Lost updates: committed transactions that read the same version of a key, then appended to it.
  for (const state of keys) {
    const byVersion = new Map<number, Read[]>();
    for (const read of state.readThenAppend) {
      if (!read.compatible) continue;
      const group = byVersion.get(read.value.length);
      if (group === undefined) byVersion.set(read.value.length, [read]);
      else group.push(read);
    }
    for (const group of byVersion.values()) {
      if (group.length < 2) continue;
      const version = group[0]!.value;
      const appends = group.map((r) => {
        const own = history[r.txn]!.ops.find(
          (op, j) => j > r.op && op.f === 'append' && keyIndex.get(op.key) === keyIndex.get(state.key),
        );
        return `${name(r.txn)} appended ${own?.f === 'append' ? own.value : '?'}`;
      });
      add({
        type: 'LostUpdate',
        txns: group.map((r) => tid(r.txn)),
        key: state.key,
        read: version,
        explanation:
          `Lost update: ${group.length} committed transactions read the same version of key ${show(state.key)}, ` +
          `${showList(version)}, and each appended to it (${appends.join('; ')}).`,
      });
    }
  }

  // The dependency graph. Nodes 0..n-1 are transactions; real-time helper nodes follow.
  const witnesses: Witness[] = [];
  const edgeCounts = { ww: 0, wr: 0, rw: 0, rt: 0 };
  const edges: { from: number; to: number; type: number; witness: number }[] = [];
  const addEdge = (from: number, to: number, type: number, witness: number) => {
    edges.push({ from, to, type, witness });
    // rt is counted per transaction with a later starter (its edge into the helper chain).
    if (type !== RT || from < n) edgeCounts[TYPE_NAMES[type]!]++;
  };
  for (let k = 0; k < keys.length; k++) {
    const { order, writer, reads } = keys[k]!;
    // ww: consecutive committed writers in the version order.
    let prev = -1;
    let prevValue = 0;
    for (const x of order) {
      const w = writer.get(x);
      if (w === undefined || committed[w] === 0) continue;
      if (prev !== -1 && prev !== w) {
        witnesses.push({ key: k, a: prevValue, b: x });
        addEdge(prev, w, WW, witnesses.length - 1);
      }
      prev = w;
      prevValue = x;
    }
    for (const read of reads) {
      if (!read.compatible || !read.external) continue;
      const t = read.txn;
      const L = read.value.length;
      // An external read cannot contain the transaction's own appends.
      for (let p = 0; p < L; p++) {
        if (writer.get(order[p]!) !== t) continue;
        add({
          type: 'Internal',
          txns: [tid(t)],
          key: keys[k]!.key,
          reader: tid(t),
          read: read.value,
          expected: `no ${order[p]}`,
          explanation:
            `${name(t)} read key ${show(keys[k]!.key)} = ${showList(read.value)} (op ${read.op}) before appending ` +
            `${order[p]} to it, yet the read already holds ${order[p]}.`,
        });
        break;
      }
      // wr: the last committed append it observed.
      let source = -1;
      for (let p = L - 1; p >= 0; p--) {
        const w = writer.get(order[p]!);
        if (w === undefined || committed[w] === 0) continue;
        source = w;
        if (w !== t) {
          witnesses.push({ key: k, a: order[p]!, b: L });
          addEdge(w, t, WR, witnesses.length - 1);
        }
        break;
      }
      // rw: the first committed append it did not observe. Later appends of the transaction it read
      // from are skipped: having observed a non-final append is reported as G1b, not also as a cycle.
      for (let p = L; p < order.length; p++) {
        const w = writer.get(order[p]!);
        if (w === undefined || committed[w] === 0 || w === source) continue;
        if (w !== t) {
          witnesses.push({ key: k, a: L, b: order[p]! });
          addEdge(t, w, RW, witnesses.length - 1);
        }
        break;
      }
    }
  }
  // rt: T1 → T2 when T1 committed (ok) at end < T2's start. A chain of helper nodes, one per
  // distinct start time, keeps this linear: T1 → first start after T1's end → … → T2.
  let nodeCount = n;
  if (realTime) {
    const starters: number[] = [];
    for (let t = 0; t < n; t++) {
      const s = history[t]!.start;
      if (committed[t] === 1 && s !== undefined) starters.push(t);
    }
    starters.sort((a, b) => history[a]!.start! - history[b]!.start!);
    const times: number[] = [];
    for (const t of starters) {
      const s = history[t]!.start!;
      if (times.length === 0 || times[times.length - 1] !== s) {
        if (times.length > 0) addEdge(n + times.length - 1, n + times.length, RT, -1);
        times.push(s);
      }
      addEdge(n + times.length - 1, t, RT, -1);
    }
    nodeCount = n + times.length;
    for (let t = 0; t < n; t++) {
      const end = history[t]!.end;
      if (history[t]!.status !== 'ok' || end === undefined || !Number.isFinite(end)) continue;
      let lo = 0;
      let hi = times.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (times[mid]! > end) hi = mid;
        else lo = mid + 1;
      }
      if (lo < times.length) addEdge(t, n + lo, RT, -1);
    }
  }
  const builder = new GraphBuilder(nodeCount);
  for (let e = 0; e < edges.length; e++) builder.add(edges[e]!.from, edges[e]!.to, edges[e]!.type, e);
  const graph = builder.build();
  const search = findCycles(graph, realTime, maxCycles, (node) => node < n);

  // Render cycles: collapse helper-node chains into one rt step between transactions.
  const describe = (type: number, from: number, to: number, witness: number): CycleStep => {
    const t = TYPE_NAMES[type]!;
    if (type === RT) {
      return {
        from: tid(from),
        to: tid(to),
        type: t,
        explanation: `${name(from)} → ${name(to)} (rt): ${name(from)} committed at ${history[from]!.end} before ${name(to)} started at ${history[to]!.start}`,
      };
    }
    const w = witnesses[witness]!;
    const key = keys[w.key]!.key;
    const arrow = `${name(from)} → ${name(to)} (${t}): `;
    let why: string;
    if (type === WW) {
      why = `${name(to)} appended ${w.b} to key ${show(key)} after ${name(from)}'s append of ${w.a}`;
    } else if (type === WR) {
      why = `${name(to)} read key ${show(key)} and observed ${name(from)}'s append of ${w.a}`;
    } else {
      const seen = keys[w.key]!.order.slice(0, w.a);
      why = `${name(from)} read key ${show(key)} = ${showList(seen)} and did not observe ${name(to)}'s append of ${w.b}`;
    }
    return { from: tid(from), to: tid(to), type: t, key, explanation: arrow + why };
  };
  for (const cycle of search.cycles) {
    // Start at a transaction node.
    const first = cycle.edges.findIndex((e) => graph.from[e]! < n);
    const rotated = [...cycle.edges.slice(first), ...cycle.edges.slice(0, first)];
    const steps: CycleStep[] = [];
    for (let i = 0; i < rotated.length; i++) {
      const e = rotated[i]!;
      const from = graph.from[e]!;
      let to = graph.to[e]!;
      while (to >= n) to = graph.to[rotated[++i]!]!;
      steps.push(describe(graph.type[e]!, from, to, edges[graph.tag[e]!]!.witness));
    }
    const txns = steps.map((s) => s.from);
    add({
      type: cycle.type,
      txns,
      cycle: steps,
      explanation: [
        `${CYCLE_TITLES[cycle.type]} among ${txns.length} transactions:`,
        ...steps.map((s) => `  ${s.explanation}`),
      ].join('\n'),
    });
  }

  const anomalyTypes = [...new Set(anomalies.map((a) => a.type))].sort() as AnomalyType[];
  let ok = 0;
  let fail = 0;
  let info = 0;
  for (const txn of history) {
    if (txn.status === 'ok') ok++;
    else if (txn.status === 'fail') fail++;
    else info++;
  }
  return {
    valid: anomalies.every((a) => !a.forbidden),
    anomalies,
    anomalyTypes,
    stats: {
      transactions: n,
      ok,
      fail,
      info,
      infoCommitted,
      keys: keys.length,
      edges: edgeCounts,
      cyclicComponents: search.cyclicComponents,
      largestComponent: search.largestComponent,
      searchIncomplete: search.searchIncomplete,
      ms: performance.now() - started,
    },
  };
}
