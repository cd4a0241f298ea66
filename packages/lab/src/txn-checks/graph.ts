/**
 * A compact directed multigraph with typed edges, and the graph algorithms the transactional
 * checkers need: Tarjan's strongly connected components (iterative, so deep graphs cannot overflow
 * the stack), shortest paths by breadth-first search, and reachability between the components of a
 * subgraph (bitset transitive closure). Every algorithm takes an edge-type mask and only follows
 * edges whose type is in it.
 */

/** Edge types, as bits so a mask can select a subgraph. */
export const WW = 1;
export const WR = 2;
export const RW = 4;
export const RT = 8;
export const ALL_EDGES = WW | WR | RW | RT;

/** A graph in compressed sparse row form: edges of node `u` are `order[offsets[u] .. offsets[u+1])`. */
export class Graph {
  readonly nodeCount: number;
  readonly from: Int32Array;
  readonly to: Int32Array;
  readonly type: Uint8Array;
  /** Caller's tag per edge (e.g. the index of the edge in a larger graph, or of its witness). */
  readonly tag: Int32Array;
  readonly offsets: Int32Array;
  /** Edge indices sorted by source. */
  readonly order: Int32Array;

  constructor(nodeCount: number, from: Int32Array, to: Int32Array, type: Uint8Array, tag: Int32Array) {
    this.nodeCount = nodeCount;
    this.from = from;
    this.to = to;
    this.type = type;
    this.tag = tag;
    const offsets = new Int32Array(nodeCount + 1);
    for (let e = 0; e < from.length; e++) offsets[from[e]! + 1]!++;
    for (let u = 0; u < nodeCount; u++) offsets[u + 1]! += offsets[u]!;
    const fill = offsets.slice(0, nodeCount);
    const order = new Int32Array(from.length);
    for (let e = 0; e < from.length; e++) order[fill[from[e]!]!++] = e;
    this.offsets = offsets;
    this.order = order;
  }

  get edgeCount(): number {
    return this.from.length;
  }
}

/** Accumulates edges, then freezes them into a `Graph`. */
export class GraphBuilder {
  private from: number[] = [];
  private to: number[] = [];
  private type: number[] = [];
  private tag: number[] = [];

  constructor(readonly nodeCount: number) {}

  add(from: number, to: number, type: number, tag: number): void {
    this.from.push(from);
    this.to.push(to);
    this.type.push(type);
    this.tag.push(tag);
  }

  build(): Graph {
    return new Graph(
      this.nodeCount,
      Int32Array.from(this.from),
      Int32Array.from(this.to),
      Uint8Array.from(this.type),
      Int32Array.from(this.tag),
    );
  }
}

/** Strongly connected components: `comp[u]` for every node, numbered in reverse topological order. */
export interface Components {
  readonly comp: Int32Array;
  readonly count: number;
  readonly size: Int32Array;
}

/**
 * Tarjan's algorithm over the edges whose type is in `mask`, iterative. Components are numbered in
 * the order Tarjan completes them, which is a reverse topological order of the condensation: every
 * edge between two components goes from a higher number to a lower one.
 */
export function stronglyConnected(g: Graph, mask: number): Components {
  const n = g.nodeCount;
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const comp = new Int32Array(n).fill(-1);
  const stack = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const callNode = new Int32Array(n);
  const callEdge = new Int32Array(n); // next position in `order` to look at
  let sp = 0;
  let counter = 0;
  let count = 0;
  const sizes: number[] = [];
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    let depth = 0;
    callNode[0] = root;
    callEdge[0] = g.offsets[root]!;
    index[root] = low[root] = counter++;
    stack[sp++] = root;
    onStack[root] = 1;
    while (depth >= 0) {
      const u = callNode[depth]!;
      const end = g.offsets[u + 1]!;
      let pos = callEdge[depth]!;
      let descended = false;
      while (pos < end) {
        const e = g.order[pos++]!;
        if ((g.type[e]! & mask) === 0) continue;
        const v = g.to[e]!;
        if (index[v] === -1) {
          callEdge[depth] = pos;
          depth++;
          callNode[depth] = v;
          callEdge[depth] = g.offsets[v]!;
          index[v] = low[v] = counter++;
          stack[sp++] = v;
          onStack[v] = 1;
          descended = true;
          break;
        }
        if (onStack[v] === 1 && index[v]! < low[u]!) low[u] = index[v]!;
      }
      if (descended) continue;
      if (low[u] === index[u]) {
        let size = 0;
        let w: number;
        do {
          w = stack[--sp]!;
          onStack[w] = 0;
          comp[w] = count;
          size++;
        } while (w !== u);
        sizes.push(size);
        count++;
      }
      depth--;
      if (depth >= 0) {
        const parent = callNode[depth]!;
        if (low[u]! < low[parent]!) low[parent] = low[u]!;
      }
    }
  }
  return { comp, count, size: Int32Array.from(sizes) };
}

/**
 * The edges of a shortest path from `source` to `target` following edges in `mask` (as edge
 * indices, in order), or undefined when there is none. `source === target` asks for a non-empty
 * cycle. `allowed`, when given, restricts the nodes the path may visit.
 */
export function shortestPath(
  g: Graph,
  source: number,
  target: number,
  mask: number,
  allowed?: (node: number) => boolean,
): number[] | undefined {
  const via = new Int32Array(g.nodeCount).fill(-1); // edge by which a node was first reached
  const queue = new Int32Array(g.nodeCount);
  let head = 0;
  let tail = 0;
  queue[tail++] = source;
  let found = -1;
  search: while (head < tail) {
    const u = queue[head++]!;
    for (let pos = g.offsets[u]!; pos < g.offsets[u + 1]!; pos++) {
      const e = g.order[pos]!;
      if ((g.type[e]! & mask) === 0) continue;
      const v = g.to[e]!;
      if (v === target) {
        found = e;
        break search;
      }
      if (via[v] !== -1 || v === source) continue;
      if (allowed !== undefined && !allowed(v)) continue;
      via[v] = e;
      queue[tail++] = v;
    }
  }
  if (found === -1) return undefined;
  const path = [found];
  let node = g.from[found]!;
  while (node !== source) {
    const e = via[node]!;
    path.push(e);
    node = g.from[e]!;
  }
  return path.reverse();
}

/**
 * Reachability between the components of `components` (computed with `mask`): `reaches(a, b)` is
 * true when some node of component `a` reaches some node of component `b` along edges in `mask`.
 * A bitset transitive closure over the condensation, built in one pass thanks to Tarjan's reverse
 * topological numbering: O(edges × components / 32) time, components² / 8 bytes.
 */
export class ComponentReachability {
  private readonly words: number;
  private readonly bits: Uint32Array;

  constructor(g: Graph, components: Components, mask: number) {
    const c = components.count;
    this.words = (c + 31) >>> 5;
    this.bits = new Uint32Array(c * this.words);
    // Group nodes by component so each component's out-edges are visited when it is processed.
    const start = new Int32Array(c + 1);
    for (let u = 0; u < g.nodeCount; u++) start[components.comp[u]! + 1]!++;
    for (let i = 0; i < c; i++) start[i + 1]! += start[i]!;
    const fill = start.slice(0, c);
    const members = new Int32Array(g.nodeCount);
    for (let u = 0; u < g.nodeCount; u++) members[fill[components.comp[u]!]!++] = u;
    for (let a = 0; a < c; a++) {
      const row = a * this.words;
      this.bits[row + (a >>> 5)]! |= 1 << (a & 31);
      for (let m = start[a]!; m < start[a + 1]!; m++) {
        const u = members[m]!;
        for (let pos = g.offsets[u]!; pos < g.offsets[u + 1]!; pos++) {
          const e = g.order[pos]!;
          if ((g.type[e]! & mask) === 0) continue;
          const b = components.comp[g.to[e]!]!;
          if (b === a) continue;
          // b < a: already complete.
          const other = b * this.words;
          for (let w = 0; w < this.words; w++) this.bits[row + w]! |= this.bits[other + w]!;
        }
      }
    }
  }

  reaches(a: number, b: number): boolean {
    return (this.bits[a * this.words + (b >>> 5)]! & (1 << (b & 31))) !== 0;
  }
}
