/**
 * Replies as values, encoded only when written: a command's reply does not depend on the
 * connection's protocol (RESP2 or RESP3 after `HELLO 3`), and EXEC collects the replies of its
 * queued commands, possibly from several attempts of one transaction, before anything is sent.
 */

export type Reply =
  | { readonly t: 'simple'; readonly v: string }
  /** The error line without its leading `-` (e.g. `ERR syntax error`). */
  | { readonly t: 'error'; readonly v: string }
  | { readonly t: 'int'; readonly v: number | bigint }
  | { readonly t: 'bulk'; readonly v: Buffer | string }
  /** Missing value: `$-1` in RESP2, `_` in RESP3. */
  | { readonly t: 'null' }
  /** Missing aggregate (EXEC aborted by WATCH): `*-1` in RESP2, `_` in RESP3. */
  | { readonly t: 'nullArray' }
  | { readonly t: 'array'; readonly v: readonly Reply[] }
  /** A map in RESP3, a flat key/value array in RESP2. */
  | { readonly t: 'map'; readonly v: readonly (readonly [Reply, Reply])[] }
  /** A set in RESP3, an array in RESP2. */
  | { readonly t: 'set'; readonly v: readonly Reply[] }
  /** A double in RESP3, a bulk string in RESP2. */
  | { readonly t: 'double'; readonly v: number }
  /** A boolean in RESP3, `:1` / `:0` in RESP2. */
  | { readonly t: 'bool'; readonly v: boolean }
  /** A verbatim string in RESP3 (`=len\r\ntxt:...`), a bulk string in RESP2. */
  | { readonly t: 'verbatim'; readonly format: string; readonly v: string };

export const OK: Reply = { t: 'simple', v: 'OK' };
export const QUEUED: Reply = { t: 'simple', v: 'QUEUED' };
export const PONG: Reply = { t: 'simple', v: 'PONG' };
export const NULL: Reply = { t: 'null' };
export const NULL_ARRAY: Reply = { t: 'nullArray' };
export const EMPTY_BULK: Reply = { t: 'bulk', v: '' };
export const ZERO: Reply = { t: 'int', v: 0 };
export const ONE: Reply = { t: 'int', v: 1 };
export const EMPTY_ARRAY: Reply = { t: 'array', v: [] };

export const simple = (v: string): Reply => ({ t: 'simple', v });
export const int = (v: number | bigint): Reply => (v === 0 ? ZERO : v === 1 ? ONE : { t: 'int', v });
export const bulk = (v: Buffer | string): Reply => ({ t: 'bulk', v });
export const bulkOrNull = (v: Buffer | undefined): Reply => (v === undefined ? NULL : { t: 'bulk', v });
export const array = (v: readonly Reply[]): Reply => ({ t: 'array', v });
export const map = (v: readonly (readonly [Reply, Reply])[]): Reply => ({ t: 'map', v });
export const set = (v: readonly Reply[]): Reply => ({ t: 'set', v });
export const verbatim = (v: string, format = 'txt'): Reply => ({ t: 'verbatim', format, v });
export const errorReply = (v: string): Reply => ({ t: 'error', v });

/** A map with string keys, the common shape of HELLO, COMMAND DOCS … */
export function stringMap(entries: readonly (readonly [string, Reply])[]): Reply {
  return map(entries.map(([k, v]) => [bulk(k), v] as const));
}
