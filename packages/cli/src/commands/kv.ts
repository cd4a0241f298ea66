import type { Output } from '../output.js';

export interface KvFlags {
  config: string;
  /** Route through the coordinator at this address instead of the topology file's regions. */
  coordinator?: string;
  json: boolean;
  timeoutMs: number;
}

/** A raw KV client routed by the coordinator (`--coordinator`) or by the topology file's regions. */
async function client(flags: KvFlags) {
  if (flags.coordinator !== undefined) {
    const { connectCluster } = await import('@nokv/raftstore');
    const cluster = await connectCluster({ coordinatorAddr: flags.coordinator, timeoutMs: flags.timeoutMs });
    const c = cluster.client;
    const close = c.close.bind(c);
    c.close = () => {
      close();
      cluster.coordinator.close();
    };
    return c;
  }
  const [{ loadTopology, regionMetas, storeAddressResolver }, { RawClient }] = await Promise.all([
    import('@nokv/config'),
    import('@nokv/raftstore'),
  ]);
  const topology = await loadTopology(flags.config);
  return new RawClient({
    resolveStoreAddress: storeAddressResolver(topology, 'host'),
    regions: regionMetas(topology),
    timeoutMs: flags.timeoutMs,
  });
}

export async function kvCommand(
  op: 'get' | 'put' | 'delete' | 'scan',
  args: string[],
  flags: KvFlags & { limit?: number },
  out: Output,
): Promise<void> {
  const c = await client(flags);
  try {
    if (op === 'get') {
      const v = await c.get(args[0]!);
      if (flags.json)
        out.write(JSON.stringify({ key: args[0], found: v !== undefined, value: v?.toString() }));
      else out.write(v === undefined ? '(not found)' : v.toString());
    } else if (op === 'put') {
      await c.put(args[0]!, args[1]!);
      out.write(flags.json ? JSON.stringify({ ok: true }) : 'OK');
    } else if (op === 'delete') {
      await c.delete(args[0]!);
      out.write(flags.json ? JSON.stringify({ ok: true }) : 'OK');
    } else {
      const rows = await c.scan(args[0] ?? '', args[1] ?? '', flags.limit ?? 100);
      if (flags.json) {
        out.write(JSON.stringify(rows.map((r) => ({ key: r.key.toString(), value: r.value.toString() }))));
      } else {
        for (const r of rows) out.write(`${r.key.toString()}\t${r.value.toString()}`);
        out.write(`(${rows.length} keys)`);
      }
    }
  } finally {
    c.close();
  }
}
