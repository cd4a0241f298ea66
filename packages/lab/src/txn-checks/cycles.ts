import {
  ComponentReachability,
  type Components,
  Graph,
  RT,
  RW,
  shortestPath,
  stronglyConnected,
  WR,
  WW,
} from './graph.js';
import type { CycleAnomalyType } from './types.js';

/** A cycle found in the dependency graph, as edge indices of that graph, in order. */
export interface FoundCycle {
  readonly type: CycleAnomalyType;
  readonly edges: readonly number[];
}

export interface CycleSearch {
  readonly cycles: FoundCycle[];
  readonly cyclicComponents: number;
  readonly largestComponent: number;
  readonly searchIncomplete: boolean;
}

/** Above this many components, the G-single search falls back from a bitset closure to bounded BFS. */
const CLOSURE_LIMIT = 24_000;
/** Edge visits the fallback may spend per strongly connected component. */
const FALLBACK_BUDGET = 50_000_000;

const NON_RW = WW | WR;
const NON_RT = WW | WR | RW;

/**
 * Finds and classifies cycles. Tarjan over the whole graph first: acyclic histories (the common
 * case) cost one linear pass. Within each non-trivial component, on the subgraph induced by it:
 *
 * - G0: a cycle through a ww edge in a component of the ww-only subgraph;
 * - G1c: a cycle through a wr edge in a component of the ww+wr subgraph;
 * - G-single: an rw edge u → v whose target reaches its source without rw edges (bitset
 *   reachability over the ww+wr condensation), closed by a shortest ww/wr path;
 * - G2: an rw edge that does not close a G-single, closed by a shortest path (which must then hold
 *   another rw edge);
 * - with real-time edges, the same with rt edges allowed, for cycles that need one (`*-realtime`).
 *
 * At most `maxPerType` cycles of each type are kept, one per component per type for G-single and
 * G2, one per sub-component for G0 and G1c. `isTxn(node)` says which nodes are transactions (the
 * rest are real-time helper nodes, not counted in component sizes).
 */
export function findCycles(
  g: Graph,
  realTime: boolean,
  maxPerType: number,
  isTxn: (node: number) => boolean,
): CycleSearch {
  const full = stronglyConnected(g, WW | WR | RW | (realTime ? RT : 0));
  const cycles: FoundCycle[] = [];
  const counts = new Map<CycleAnomalyType, number>();
  const want = (type: CycleAnomalyType) => (counts.get(type) ?? 0) < maxPerType;
  const keep = (type: CycleAnomalyType, local: Graph, edges: number[]) => {
    counts.set(type, (counts.get(type) ?? 0) + 1);
    cycles.push({ type, edges: edges.map((e) => local.tag[e]!) });
  };

  // Members of each component, grouped.
  const start = new Int32Array(full.count + 1);
  for (let u = 0; u < g.nodeCount; u++) start[full.comp[u]! + 1]!++;
  for (let c = 0; c < full.count; c++) start[c + 1]! += start[c]!;
  const fill = start.slice(0, full.count);
  const members = new Int32Array(g.nodeCount);
  for (let u = 0; u < g.nodeCount; u++) members[fill[full.comp[u]!]!++] = u;

  const local = new Int32Array(g.nodeCount).fill(-1);
  let cyclicComponents = 0;
  let largestComponent = 0;
  let searchIncomplete = false;

  for (let c = 0; c < full.count; c++) {
    if (full.size[c]! < 2) continue;
    cyclicComponents++;
    let txns = 0;
    const nodes = members.subarray(start[c]!, start[c + 1]!);
    for (let i = 0; i < nodes.length; i++) {
      local[nodes[i]!] = i;
      if (isTxn(nodes[i]!)) txns++;
    }
    if (txns > largestComponent) largestComponent = txns;
    const sub = induced(g, nodes, local);
    for (let i = 0; i < nodes.length; i++) local[nodes[i]!] = -1;

    // G0, G1c and (with real time) their -realtime variants: one cycle per sub-component through
    // an edge of the kind that makes the difference.
    const ww = stronglyConnected(sub, WW);
    const keepIfWanted = (type: CycleAnomalyType, p: number[]): boolean => {
      if (!want(type)) return false;
      keep(type, sub, p);
      return true;
    };
    if (want('G0')) closeEach(sub, ww, WW, WW, (p) => keepIfWanted('G0', p));
    const wwr = stronglyConnected(sub, NON_RW);
    if (want('G1c')) closeEach(sub, wwr, WR, NON_RW, (p) => keepIfWanted('G1c', p));
    let wwrt: Components | undefined;
    if (realTime) {
      wwrt = stronglyConnected(sub, NON_RW | RT);
      closeEach(sub, wwrt, RT, NON_RW | RT, (p) =>
        keepIfWanted(p.some((e) => sub.type[e] === WR) ? 'G1c-realtime' : 'G0-realtime', p),
      );
    }

    // Classify rw edges: does the target reach the source without another rw edge?
    const closes = reachTester(sub, wwr, NON_RW);
    const closesRt = wwrt === undefined ? undefined : reachTester(sub, wwrt, NON_RW | RT);
    const nonRt = realTime ? stronglyConnected(sub, NON_RT) : undefined;
    let single = -1;
    let singleRt = -1;
    let g2 = -1;
    let g2Rt = -1;
    for (let e = 0; e < sub.edgeCount; e++) {
      if (sub.type[e] !== RW) continue;
      const u = sub.from[e]!;
      const v = sub.to[e]!;
      const direct = closes.test(v, u);
      if (direct === true) {
        if (single === -1) single = e;
      } else if (closesRt !== undefined && closesRt.test(v, u) === true) {
        if (singleRt === -1) singleRt = e;
      } else if (direct === false && (closesRt === undefined || closesRt.test(v, u) === false)) {
        if (nonRt === undefined || nonRt.comp[u] === nonRt.comp[v]) {
          if (g2 === -1) g2 = e;
        } else if (g2Rt === -1) g2Rt = e;
      }
      if (single !== -1 && g2 !== -1 && (!realTime || (singleRt !== -1 && g2Rt !== -1))) break;
    }
    if (closes.incomplete || closesRt?.incomplete) searchIncomplete = true;
    const close = (type: CycleAnomalyType, e: number, mask: number) => {
      if (e === -1 || !want(type)) return;
      const path = shortestPath(sub, sub.to[e]!, sub.from[e]!, mask);
      if (path !== undefined) keep(type, sub, [e, ...path]);
    };
    close('G-single', single, NON_RW);
    close('G-single-realtime', singleRt, NON_RW | RT);
    close('G2', g2, NON_RT);
    close('G2-realtime', g2Rt, NON_RT | RT);
  }
  return { cycles, cyclicComponents, largestComponent, searchIncomplete };
}

/** The subgraph induced by `nodes` (`local[node]` is its index there, -1 outside), tagged with global edge indices. */
function induced(g: Graph, nodes: Int32Array, local: Int32Array): Graph {
  const from: number[] = [];
  const to: number[] = [];
  const type: number[] = [];
  const tag: number[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const u = nodes[i]!;
    for (let pos = g.offsets[u]!; pos < g.offsets[u + 1]!; pos++) {
      const e = g.order[pos]!;
      const v = local[g.to[e]!]!;
      if (v === -1) continue;
      from.push(i);
      to.push(v);
      type.push(g.type[e]!);
      tag.push(e);
    }
  }
  return new Graph(
    nodes.length,
    Int32Array.from(from),
    Int32Array.from(to),
    Uint8Array.from(type),
    Int32Array.from(tag),
  );
}

/**
 * For each non-trivial component of `comps` holding an edge of type `through` (both ends inside),
 * a shortest cycle through that edge using edges in `mask`; `report` returns false to stop.
 */
function closeEach(
  g: Graph,
  comps: Components,
  through: number,
  mask: number,
  report: (cycle: number[]) => boolean,
): void {
  const done = new Uint8Array(comps.count);
  for (let e = 0; e < g.edgeCount; e++) {
    if ((g.type[e]! & through) === 0) continue;
    const u = g.from[e]!;
    const v = g.to[e]!;
    const c = comps.comp[u]!;
    if (c !== comps.comp[v] || done[c] === 1) continue;
    done[c] = 1;
    const path = shortestPath(g, v, u, mask, (node) => comps.comp[node] === c);
    if (path !== undefined && !report([e, ...path])) return;
  }
}

/** Whether `from` reaches `to` along `mask`: true, false, or undefined when the budget ran out. */
interface ReachTester {
  test(from: number, to: number): boolean | undefined;
  readonly incomplete: boolean;
}

function reachTester(g: Graph, comps: Components, mask: number): ReachTester {
  if (comps.count <= CLOSURE_LIMIT) {
    const closure = new ComponentReachability(g, comps, mask);
    return {
      test: (from, to) => closure.reaches(comps.comp[from]!, comps.comp[to]!),
      incomplete: false,
    };
  }
  // Too many components for a closure: BFS from each source asked about, within a budget.
  let budget = FALLBACK_BUDGET;
  let lastSource = -1;
  const stamp = new Int32Array(g.nodeCount);
  let round = 0;
  const queue = new Int32Array(g.nodeCount);
  const tester = {
    incomplete: false,
    test(from: number, to: number): boolean | undefined {
      if (comps.comp[from] === comps.comp[to]) return true;
      if (from !== lastSource) {
        if (budget <= 0) {
          tester.incomplete = true;
          return undefined;
        }
        lastSource = from;
        round++;
        let head = 0;
        let tail = 0;
        queue[tail++] = from;
        stamp[from] = round;
        while (head < tail) {
          const u = queue[head++]!;
          for (let pos = g.offsets[u]!; pos < g.offsets[u + 1]!; pos++) {
            budget--;
            const e = g.order[pos]!;
            if ((g.type[e]! & mask) === 0) continue;
            const v = g.to[e]!;
            if (stamp[v] === round) continue;
            stamp[v] = round;
            queue[tail++] = v;
          }
        }
      }
      return stamp[to] === round;
    },
  };
  return tester;
}
