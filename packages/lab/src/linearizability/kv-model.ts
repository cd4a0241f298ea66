import type { Model, StepResult } from './model.js';
import { partitionByKey } from './partition.js';

/** The KV operations the model knows. */
export type KvOp = 'get' | 'put' | 'append' | 'cas';

/**
 * A KV operation. `value` is required by put, append and cas (the new value) and refused by get.
 * `expected` is used by cas only: the value the key must hold for the swap to happen, where
 * `undefined` means "the key is absent" (so cas can create a key, but never matches a present one).
 */
export interface KvInput {
  readonly op: KvOp;
  readonly key: string;
  readonly value?: string;
  readonly expected?: string;
}

/**
 * What a KV operation returned: `{ value }` for get (`value` absent when the key is absent), `{}`
 * for put and append, `{ ok }` for cas (whether the swap happened).
 */
export interface KvOutput {
  readonly value?: string;
  readonly ok?: boolean;
}

/** The value of one key; `undefined` when the key is absent. */
export type KvState = string | undefined;

/** Single-quoted, with escapes, so empty strings and odd characters stay visible in reports. */
function quote(s: string): string {
  return `'${JSON.stringify(s).slice(1, -1).replace(/'/g, "\\'")}'`;
}

const show = (v: string | undefined) => (v === undefined ? 'absent' : quote(v));

const ILLEGAL: StepResult<KvState> = { ok: false };

/**
 * The sequential specification of a single-copy KV store, checked per key (operations on different keys
 * commute, so each key is an independent partition labelled `key 'k'`).
 *
 * - get: returns the key's value, or no value when absent.
 * - put: sets the value. append: sets it to the current value (absent: '') followed by `value`.
 * - cas: if the current value equals `expected` (`undefined`: the key is absent), sets `value` and
 *   returns `ok: true`; otherwise changes nothing and returns `ok: false`.
 *
 * With an unknown output every operation is legal and has its deterministic effect (a cas swaps
 * iff the value matches), so a pending operation can always be placed anywhere.
 */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  partition: (history) =>
    partitionByKey(
      history,
      (input) => input.key,
      (key) => `key ${quote(key)}`,
    ),

  init: () => undefined,

  step(state, input, output) {
    switch (input.op) {
      case 'get':
        return output === undefined || output.value === state ? { ok: true, state } : ILLEGAL;
      case 'put':
        return { ok: true, state: input.value };
      case 'append':
        return { ok: true, state: (state ?? '') + input.value };
      case 'cas': {
        const swaps = state === input.expected;
        if (output !== undefined && output.ok !== swaps) return ILLEGAL;
        return swaps ? { ok: true, state: input.value } : { ok: true, state };
      }
    }
  },

  // A failed cas is legal only where it changes nothing; a pending cas might have succeeded.
  readOnly: (input, output) => input.op === 'get' || (input.op === 'cas' && output?.ok === false),

  // A number cannot collide with any string, so "absent" and every value get distinct keys.
  stateKey: (state) => (state === undefined ? 0 : state),

  describeOperation(input, output) {
    const key = quote(input.key);
    const unknown = output === undefined;
    switch (input.op) {
      case 'get':
        return `get(${key}) → ${unknown ? '?' : show(output.value)}`;
      case 'put':
      case 'append':
        return `${input.op}(${key}, ${show(input.value)})${unknown ? ' → ?' : ''}`;
      case 'cas':
        return `cas(${key}, ${show(input.expected)} → ${show(input.value)}) → ${unknown ? '?' : output.ok ? 'ok' : 'failed'}`;
    }
  },

  describeState: show,

  validate(input, output) {
    if (typeof input !== 'object' || input === null) return 'input must be an object';
    if (typeof input.key !== 'string') return 'input.key must be a string';
    if (input.expected !== undefined && input.op !== 'cas') return `${input.op} takes no expected value`;
    if (output !== undefined && (typeof output !== 'object' || output === null))
      return 'output must be an object';
    switch (input.op) {
      case 'get':
        if (input.value !== undefined) return 'get takes no value';
        if (output !== undefined && output.value !== undefined && typeof output.value !== 'string') {
          return 'get output value must be a string or absent';
        }
        return undefined;
      case 'put':
      case 'append':
        return typeof input.value === 'string' ? undefined : `${input.op} needs a string value`;
      case 'cas':
        if (typeof input.value !== 'string') return 'cas needs a string value';
        if (input.expected !== undefined && typeof input.expected !== 'string') {
          return 'cas expected must be a string or absent';
        }
        if (output !== undefined && typeof output.ok !== 'boolean') return 'cas output needs a boolean ok';
        return undefined;
      default:
        return `unknown op ${JSON.stringify((input as { op: unknown }).op)}`;
    }
  },
};
