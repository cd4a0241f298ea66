/**
 * The shape of a compatibility script: a named list of steps (commands, raw bytes, pauses) run on
 * one or more fresh connections against an empty database. Every reply is compared byte for
 * byte unless its step names a normaliser, the few places where a correct server may answer
 * differently (timing, connection ids, version strings, hash order). Each normaliser says why.
 */

/** An argument resolved when it is sent: "now" plus an offset, for EXPIREAT/EXAT/PXAT. */
export interface ClockArg {
  readonly clock: 'unixSeconds' | 'unixMillis';
  readonly offset: number;
}

export type Arg = string | Uint8Array | ClockArg;

export type Normaliser =
  /** An integer reply within [min, max] on both servers (TTL/PTTL: time passes between steps). */
  | { readonly kind: 'intRange'; readonly min: number; readonly max: number }
  /** Only the reply's type byte is compared (ids, command tables, anything server-specific). */
  | { readonly kind: 'typeOnly'; readonly why: string }
  /** An array compared as a multiset (KEYS: Redis answers in hash-table order). */
  | { readonly kind: 'unordered' }
  /** A bulk / verbatim string that must contain each needle (INFO, CLIENT INFO). */
  | { readonly kind: 'contains'; readonly needles: readonly string[]; readonly why: string }
  /** A map (or RESP2 flat key/value array) with the values of some keys masked (HELLO: id, version). */
  | { readonly kind: 'maskKeys'; readonly keys: readonly string[]; readonly why: string };

export type Step =
  | {
      readonly kind: 'cmd';
      readonly args: readonly Arg[];
      readonly conn?: number;
      readonly norm?: Normaliser;
    }
  /**
   * Bytes sent as they are (inline commands, pipelines, protocol errors), then `replies` replies
   * read and compared byte for byte. `label` names the row of the compatibility table.
   */
  | {
      readonly kind: 'raw';
      readonly bytes: string | Uint8Array;
      readonly replies: number;
      readonly label: string;
      readonly conn?: number;
    }
  /**
   * A full SCAN iteration (`SCAN cursor ...args` from 0 until the cursor is 0 again): every reply
   * must be [cursor, [keys]], and the union of the keys is compared as a sorted set, because
   * cursors and the keys per call legitimately differ (Redis walks its hash table).
   */
  | { readonly kind: 'scanAll'; readonly args: readonly Arg[]; readonly conn?: number }
  | { readonly kind: 'sleep'; readonly ms: number };

export interface CompatScript {
  /** Unique, kebab-case. */
  readonly name: string;
  /** What it checks, one line. */
  readonly about: string;
  readonly steps: readonly Step[];
}

// --- A small DSL so the scripts read like redis-cli sessions. ---

export const cmd = (...args: Arg[]): Step => ({ kind: 'cmd', args });

/** The same step on another connection of the script (0 is the default one). */
export function on(conn: number, step: Step): Step {
  if (step.kind === 'sleep') return step;
  return { ...step, conn };
}

export const raw = (label: string, bytes: string | Uint8Array, replies = 1): Step => ({
  kind: 'raw',
  bytes,
  replies,
  label,
});

export const scanAll = (...args: Arg[]): Step => ({ kind: 'scanAll', args });

export const sleep = (ms: number): Step => ({ kind: 'sleep', ms });

export const nowSec = (offset: number): ClockArg => ({ clock: 'unixSeconds', offset });
export const nowMs = (offset: number): ClockArg => ({ clock: 'unixMillis', offset });

function withNorm(step: Step, norm: Normaliser): Step {
  if (step.kind !== 'cmd') throw new Error('normalisers apply to cmd steps');
  return { ...step, norm };
}

/** A TTL/PTTL-like integer in [min, max]. */
export const inRange = (min: number, max: number, step: Step): Step =>
  withNorm(step, { kind: 'intRange', min, max });

export const typeOnly = (why: string, step: Step): Step => withNorm(step, { kind: 'typeOnly', why });

export const unordered = (step: Step): Step => withNorm(step, { kind: 'unordered' });

export const contains = (needles: readonly string[], why: string, step: Step): Step =>
  withNorm(step, { kind: 'contains', needles, why });

export const maskKeys = (keys: readonly string[], why: string, step: Step): Step =>
  withNorm(step, { kind: 'maskKeys', keys, why });

/** An argument's bytes at send time. */
export function resolveArg(a: Arg, now = Date.now()): Uint8Array | string {
  if (typeof a === 'string' || a instanceof Uint8Array) return a;
  const v = a.clock === 'unixSeconds' ? Math.floor(now / 1000) + a.offset : now + a.offset;
  return String(v);
}

/** An argument as the compatibility table and diffs show it. */
export function showArg(a: Arg): string {
  if (typeof a === 'string') return /^[\x21-\x7e]+$/.test(a) ? a : JSON.stringify(a);
  if (a instanceof Uint8Array) return `<${a.length} bytes>`;
  const unit = a.clock === 'unixSeconds' ? 's' : 'ms';
  return `<now${unit}${a.offset >= 0 ? '+' : ''}${a.offset}>`;
}

/**
 * The table row a step belongs to: the command name, with the subcommand for container commands
 * (CLIENT SETNAME, COMMAND COUNT); raw steps carry their own label.
 */
export function commandOf(step: Step): string | undefined {
  switch (step.kind) {
    case 'sleep':
      return undefined;
    case 'raw':
      return step.label;
    case 'scanAll':
      return 'SCAN';
    case 'cmd': {
      const first = step.args[0];
      const name = typeof first === 'string' ? first.toUpperCase() : '';
      const second = step.args[1];
      if ((name === 'CLIENT' || name === 'COMMAND') && typeof second === 'string')
        return `${name} ${second.toUpperCase()}`;
      return name;
    }
  }
}

/** The normaliser's rule as a short note for the table. */
export function describeNorm(n: Normaliser): string {
  switch (n.kind) {
    case 'intRange':
      return 'an integer within a range, e.g. [99, 100] for TTL right after EX 100 (time passes between steps)';
    case 'typeOnly':
      return `reply type only (${n.why})`;
    case 'unordered':
      return 'array compared as a multiset (Redis answers in hash order)';
    case 'contains':
      return `only required substrings compared (${n.why})`;
    case 'maskKeys':
      return `values of ${n.keys.join(', ')} masked (${n.why})`;
  }
}
