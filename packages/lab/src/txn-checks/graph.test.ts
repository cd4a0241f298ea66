import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ComponentReachability, GraphBuilder, RW, shortestPath, stronglyConnected, WR, WW } from './graph.js';

function graph(n: number, edges: [number, number, number][]) {
  const b = new GraphBuilder(n);
  edges.forEach(([u, v, t], i) => {
    b.add(u, v, t, i);
  });
  return b.build();
}

/** Reachability by brute force (Floyd–Warshall on booleans), over edges in `mask`. */
function closure(n: number, edges: [number, number, number][], mask: number): boolean[][] {
  const r = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => i === j));
  for (const [u, v, t] of edges) if (t & mask) r[u]![v] = true;
  for (let k = 0; k < n; k++)
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (r[i]![k] && r[k]![j]) r[i]![j] = true;
  return r;
}

const randomGraph = fc
  .integer({ min: 1, max: 9 })
  .chain((n) =>
    fc
      .array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1), fc.constantFrom(WW, WR, RW)), { maxLength: 20 })
      .map((edges) => ({ n, edges: edges as [number, number, number][] })),
  );

describe('graph algorithms', () => {
  it('components, reachability and shortest paths agree with brute force', () => {
    fc.assert(
      fc.property(randomGraph, fc.constantFrom(WW, WW | WR, WW | WR | RW), ({ n, edges }, mask) => {
        const g = graph(n, edges);
        const reach = closure(n, edges, mask);
        const comps = stronglyConnected(g, mask);
        const closed = new ComponentReachability(g, comps, mask);
        for (let u = 0; u < n; u++) {
          for (let v = 0; v < n; v++) {
            expect(comps.comp[u] === comps.comp[v]).toBe(reach[u]![v]! && reach[v]![u]!);
            expect(closed.reaches(comps.comp[u]!, comps.comp[v]!)).toBe(reach[u]![v]!);
            const path = shortestPath(g, u, v, mask);
            const cyclic =
              u === v ? edges.some(([a, b, t]) => t & mask && a === u && reach[b]![u]) : reach[u]![v]!;
            expect(path !== undefined).toBe(cyclic);
            if (path !== undefined) {
              expect(g.from[path[0]!]).toBe(u);
              expect(g.to[path[path.length - 1]!]).toBe(v);
              for (let i = 0; i + 1 < path.length; i++) expect(g.to[path[i]!]).toBe(g.from[path[i + 1]!]);
              for (const e of path) expect(g.type[e]! & mask).not.toBe(0);
            }
          }
        }
        // Reverse topological numbering: edges between components go from higher to lower.
        for (const [u, v, t] of edges)
          if (t & mask) expect(comps.comp[u]!).toBeGreaterThanOrEqual(comps.comp[v]!);
      }),
      { numRuns: 300 },
    );
  });

  it('handles a 200,000-node path without overflowing the stack', () => {
    const n = 200_000;
    const edges: [number, number, number][] = [];
    for (let i = 0; i + 1 < n; i++) edges.push([i, i + 1, WW]);
    edges.push([n - 1, 0, WW]);
    const comps = stronglyConnected(graph(n, edges), WW);
    expect(comps.count).toBe(1);
    expect(comps.size[0]).toBe(n);
  });
});
