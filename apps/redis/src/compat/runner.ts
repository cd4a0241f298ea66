/**
 * Runs compatibility scripts against a server and compares two runs step by step.
 *
 * Each script gets an empty database (FLUSHDB on a separate admin connection) and fresh
 * connections, opened on first use. A step's outcome is one line of text per reply: the exact
 * bytes (escaped), or what its normaliser kept of them, or `<closed>` / `<timeout>` when no reply
 * came. Two targets agree on a script when every line is equal.
 */

import { RawRespClient, type ReadResult, type RespValue, showBytes } from './resp-client.js';
import { type CompatScript, commandOf, type Normaliser, resolveArg, type Step, showArg } from './script.js';

export interface Target {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface StepOutcome {
  /** Index of the step in the script. */
  readonly index: number;
  /** The table row it counts for (command name), undefined for pauses. */
  readonly command: string | undefined;
  /** What was sent, for diffs. */
  readonly sent: string;
  /** One line per reply. */
  readonly replies: readonly string[];
}

export interface ScriptRun {
  readonly script: string;
  readonly steps: readonly StepOutcome[];
  /** Bytes a connection received after the last step (a reply nobody asked for). */
  readonly extra: string | undefined;
}

export interface RunOptions {
  /** How long one reply may take (default 10 s: the cluster backend commits through Raft). */
  replyTimeoutMs?: number;
}

/** Empties the target's database; the gateway must run with FLUSHDB allowed. */
export async function flushTarget(target: Target): Promise<void> {
  const admin = await RawRespClient.connect(target.port, target.host);
  try {
    const r = await admin.command(['FLUSHDB'], 30_000);
    if (r.kind !== 'reply' || r.value.type !== 'simple' || r.value.value !== 'OK') {
      throw new Error(
        `FLUSHDB on ${target.name} failed: ${describe(r)} (start the gateway with FLUSHDB allowed)`,
      );
    }
  } finally {
    admin.close();
  }
}

function describe(r: ReadResult): string {
  switch (r.kind) {
    case 'reply':
      return showBytes(r.raw);
    case 'closed':
      return '<closed>';
    case 'timeout':
      return '<timeout>';
    case 'garbage':
      return `<not RESP: ${r.message}: ${showBytes(r.raw.subarray(0, 200))}>`;
  }
}

/** A parsed reply as deterministic text (for normalisers that rebuild a reply). */
export function canonical(v: RespValue): string {
  const bytes = (b: Buffer) => JSON.stringify(showBytes(b));
  switch (v.type) {
    case 'simple':
      return `+${JSON.stringify(v.value)}`;
    case 'error':
      return `-${JSON.stringify(v.value)}`;
    case 'integer':
      return `:${v.value}`;
    case 'bulk':
      return v.value === null ? '$nil' : `$${bytes(v.value)}`;
    case 'array':
      return v.value === null ? '*nil' : `*[${v.value.map(canonical).join(',')}]`;
    case 'null':
      return '_';
    case 'double':
      return `,${v.value}`;
    case 'boolean':
      return `#${v.value ? 't' : 'f'}`;
    case 'bignum':
      return `(${v.value}`;
    case 'blobError':
      return `!${bytes(v.value)}`;
    case 'verbatim':
      return `=${v.format}:${bytes(v.value)}`;
    case 'map':
      return `%{${v.value.map(([k, x]) => `${canonical(k)}:${canonical(x)}`).join(',')}}`;
    case 'set':
      return `~[${v.value.map(canonical).join(',')}]`;
    case 'push':
      return `>[${v.value.map(canonical).join(',')}]`;
    case 'attributed':
      return `|{${v.attributes.map(([k, x]) => `${canonical(k)}:${canonical(x)}`).join(',')}}${canonical(v.value)}`;
  }
}

const TYPE_BYTE: Record<RespValue['type'], string> = {
  simple: '+',
  error: '-',
  integer: ':',
  bulk: '$',
  array: '*',
  null: '_',
  double: ',',
  boolean: '#',
  bignum: '(',
  blobError: '!',
  verbatim: '=',
  map: '%',
  set: '~',
  push: '>',
  attributed: '|',
};

const textOf = (v: RespValue): string | undefined =>
  (v.type === 'simple' ? v.value : undefined) ??
  (v.type === 'bulk' && v.value !== null ? v.value.toString('latin1') : undefined);

/** Applies a step's normaliser to one reply: the line that is compared. */
export function normalise(r: ReadResult, norm: Normaliser | undefined): string {
  if (r.kind !== 'reply' || norm === undefined) return describe(r);
  const v = r.value;
  const exact = describe(r);
  switch (norm.kind) {
    case 'intRange':
      return v.type === 'integer' && v.value >= BigInt(norm.min) && v.value <= BigInt(norm.max)
        ? `<integer in [${norm.min}, ${norm.max}]>`
        : `${exact}  (expected an integer in [${norm.min}, ${norm.max}])`;
    case 'typeOnly':
      // A reply of the right type, but an error is an error: it keeps its text.
      return v.type === 'error' ? exact : `<reply of type ${TYPE_BYTE[v.type]}>`;
    case 'unordered':
      if (v.type !== 'array' && v.type !== 'set') return exact;
      if (v.value === null) return exact;
      return `<${TYPE_BYTE[v.type]} unordered [${v.value.map(canonical).sort().join(',')}]>`;
    case 'contains': {
      if (v.type !== 'bulk' && v.type !== 'verbatim') return exact;
      if (v.value === null) return exact;
      const text = v.value.toString('latin1');
      const missing = norm.needles.filter((n) => !text.includes(n));
      const kind = v.type === 'verbatim' ? `=${v.format}` : '$';
      return missing.length === 0
        ? `<${kind} containing ${norm.needles.map((n) => JSON.stringify(n)).join(' ')}>`
        : `<${kind} missing ${missing.map((n) => JSON.stringify(n)).join(' ')}: ${JSON.stringify(text.slice(0, 300))}>`;
    }
    case 'maskKeys': {
      const masked = (k: RespValue, x: RespValue): [RespValue, RespValue] => {
        const name = textOf(k);
        return [
          k,
          name !== undefined && norm.keys.includes(name) ? { type: 'simple', value: '<masked>' } : x,
        ];
      };
      if (v.type === 'map') return canonical({ type: 'map', value: v.value.map(([k, x]) => masked(k, x)) });
      if (v.type === 'array' && v.value !== null && v.value.length % 2 === 0) {
        const out: RespValue[] = [];
        for (let i = 0; i < v.value.length; i += 2) out.push(...masked(v.value[i]!, v.value[i + 1]!));
        return canonical({ type: 'array', value: out });
      }
      return exact;
    }
  }
}

function showStep(step: Step): string {
  const conn = step.kind !== 'sleep' && step.conn ? `[conn ${step.conn}] ` : '';
  switch (step.kind) {
    case 'sleep':
      return `(sleep ${step.ms} ms)`;
    case 'cmd':
      return conn + step.args.map(showArg).join(' ');
    case 'raw': {
      const bytes =
        typeof step.bytes === 'string' ? Buffer.from(step.bytes, 'latin1') : Buffer.from(step.bytes);
      const shown = showBytes(bytes);
      return `${conn}raw ${shown.length > 120 ? `${shown.slice(0, 120)}… (${bytes.length} bytes)` : shown}`;
    }
    case 'scanAll':
      return `${conn}SCAN <cursor> ${step.args.map(showArg).join(' ')} (until the cursor is 0)`;
  }
}

/** Runs SCAN from cursor 0 to 0; the sorted union of the keys, or the first bad reply. */
async function scanAllKeys(client: RawRespClient, args: readonly (string | Uint8Array)[], timeoutMs: number) {
  const keys = new Set<string>();
  let cursor = '0';
  for (let calls = 0; calls < 10_000; calls++) {
    const r = await client.command(['SCAN', cursor, ...args], timeoutMs);
    if (r.kind !== 'reply') return describe(r);
    const v = r.value;
    const [c, list] = v.type === 'array' && v.value !== null && v.value.length === 2 ? v.value : [];
    if (c?.type !== 'bulk' || c.value === null || list?.type !== 'array' || list.value === null)
      return `${describe(r)}  (not a [cursor, keys] reply)`;
    for (const k of list.value) {
      if (k.type !== 'bulk' || k.value === null) return `${describe(r)}  (a key that is not a bulk string)`;
      keys.add(showBytes(k.value));
    }
    cursor = c.value.toString('latin1');
    if (!/^\d+$/.test(cursor)) return `${describe(r)}  (cursor is not an unsigned integer)`;
    if (cursor === '0') return `<scan complete: ${JSON.stringify([...keys].sort())}>`;
  }
  return '<scan did not finish in 10000 calls>';
}

export async function runScript(
  script: CompatScript,
  target: Target,
  opts: RunOptions = {},
): Promise<ScriptRun> {
  const timeoutMs = opts.replyTimeoutMs ?? 10_000;
  await flushTarget(target);
  const conns = new Map<number, RawRespClient>();
  const connFor = async (i: number) => {
    let c = conns.get(i);
    if (!c) {
      c = await RawRespClient.connect(target.port, target.host);
      conns.set(i, c);
    }
    return c;
  };
  const steps: StepOutcome[] = [];
  try {
    for (const [index, step] of script.steps.entries()) {
      const base = { index, command: commandOf(step), sent: showStep(step) };
      if (step.kind === 'sleep') {
        await new Promise((r) => setTimeout(r, step.ms));
        continue;
      }
      const client = await connFor(step.conn ?? 0);
      if (step.kind === 'cmd') {
        const r = await client.command(
          step.args.map((a) => resolveArg(a)),
          timeoutMs,
        );
        steps.push({ ...base, replies: [normalise(r, step.norm)] });
      } else if (step.kind === 'raw') {
        client.send(typeof step.bytes === 'string' ? Buffer.from(step.bytes, 'latin1') : step.bytes);
        const replies: string[] = [];
        for (let i = 0; i < step.replies; i++) replies.push(describe(await client.read(timeoutMs)));
        steps.push({ ...base, replies });
      } else {
        const line = await scanAllKeys(
          client,
          step.args.map((a) => resolveArg(a)),
          timeoutMs,
        );
        steps.push({ ...base, replies: [line] });
      }
    }
    // A reply nobody asked for (e.g. an answer to a blank inline line) shows up here.
    await new Promise((r) => setTimeout(r, 30));
    const extra = [...conns.entries()]
      .filter(([, c]) => c.pending().length > 0)
      .map(([i, c]) => `conn ${i}: ${showBytes(c.pending().subarray(0, 300))}`)
      .join('; ');
    return { script: script.name, steps, extra: extra === '' ? undefined : extra };
  } finally {
    for (const c of conns.values()) c.close();
  }
}

export interface StepDiff {
  index: number;
  command: string | undefined;
  sent: string;
  expected: readonly string[];
  actual: readonly string[];
}

/** The steps whose outcome differs (and any unexpected extra bytes). */
export function compareRuns(reference: ScriptRun, candidate: ScriptRun): StepDiff[] {
  const diffs: StepDiff[] = [];
  const n = Math.max(reference.steps.length, candidate.steps.length);
  for (let i = 0; i < n; i++) {
    const a = reference.steps[i];
    const b = candidate.steps[i];
    const same =
      a !== undefined &&
      b !== undefined &&
      a.replies.length === b.replies.length &&
      a.replies.every((line, j) => line === b.replies[j]);
    if (!same) {
      const s = (a ?? b)!;
      diffs.push({
        index: s.index,
        command: s.command,
        sent: s.sent,
        expected: a?.replies ?? ['<no step>'],
        actual: b?.replies ?? ['<no step>'],
      });
    }
  }
  if (reference.extra !== candidate.extra) {
    diffs.push({
      index: -1,
      command: undefined,
      sent: '(after the last step)',
      expected: [reference.extra ?? '<nothing>'],
      actual: [candidate.extra ?? '<nothing>'],
    });
  }
  return diffs;
}

/** Runs every script; one run per script, in order. */
export async function runScripts(
  scripts: readonly CompatScript[],
  target: Target,
  opts: RunOptions = {},
): Promise<Map<string, ScriptRun>> {
  const out = new Map<string, ScriptRun>();
  for (const s of scripts) out.set(s.name, await runScript(s, target, opts));
  return out;
}

export interface ScriptComparison {
  script: string;
  diffs: StepDiff[];
}

export function compareAll(
  reference: Map<string, ScriptRun>,
  candidate: Map<string, ScriptRun>,
): ScriptComparison[] {
  return [...reference.keys()].map((name) => {
    const c = candidate.get(name);
    const r = reference.get(name)!;
    return {
      script: name,
      diffs: c
        ? compareRuns(r, c)
        : [{ index: -1, command: undefined, sent: '(script not run)', expected: [], actual: [] }],
    };
  });
}

const clipLine = (s: string) => (s.length > 600 ? `${s.slice(0, 600)}… (${s.length} chars)` : s);

/** A readable report of the differing scripts (empty string when none differ). */
export function formatDiffs(target: string, results: readonly ScriptComparison[], maxPerScript = 8): string {
  const bad = results.filter((r) => r.diffs.length > 0);
  if (bad.length === 0) return '';
  const lines = [
    `${bad.length} of ${results.length} scripts differ on ${target}: ${bad.map((b) => b.script).join(', ')}`,
  ];
  for (const b of bad) {
    lines.push(`\n## ${b.script} (${b.diffs.length} differing step${b.diffs.length === 1 ? '' : 's'})`);
    for (const d of b.diffs.slice(0, maxPerScript)) {
      lines.push(`  step ${d.index}: ${clipLine(d.sent)}`);
      lines.push(`    redis-server: ${clipLine(d.expected.join(' | '))}`);
      lines.push(`    ${target}: ${clipLine(d.actual.join(' | '))}`);
    }
    if (b.diffs.length > maxPerScript) lines.push(`  … ${b.diffs.length - maxPerScript} more`);
  }
  return lines.join('\n');
}
