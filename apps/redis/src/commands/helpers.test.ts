import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeReply } from '../resp/encoder.js';
import { array, bulk, map, NULL, NULL_ARRAY, type Reply, set, simple, verbatim } from '../resp/reply.js';
import { globMatch, literalPrefix } from './glob.js';
import { prefixRange, storageKey } from './keyspace.js';
import { addLongDouble, formatLongDouble, parseLongDouble } from './long-double.js';
import { parseInt64 } from './numbers.js';
import { parseCursor, ScanCursors } from './scan-cursors.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('globMatch (stringmatchlen)', () => {
  const m = (p: string, s: string): boolean => globMatch(b(p), b(s));
  it('matches like Redis', () => {
    // Redis quirk: the matcher never matches an empty string (KEYS * has its own fast path).
    expect(m('*', '')).toBe(false);
    expect(m('*', 'x')).toBe(true);
    expect(m('h?llo', 'hello')).toBe(true);
    expect(m('h*llo', 'heeeello')).toBe(true);
    expect(m('h[ae]llo', 'hallo')).toBe(true);
    expect(m('h[ae]llo', 'hillo')).toBe(false);
    expect(m('h[^e]llo', 'hallo')).toBe(true);
    expect(m('h[^e]llo', 'hello')).toBe(false);
    expect(m('h[a-b]llo', 'hbllo')).toBe(true);
    expect(m('h[b-a]llo', 'hallo')).toBe(true);
    expect(m('h\\*llo', 'h*llo')).toBe(true);
    expect(m('h\\*llo', 'hello')).toBe(false);
    expect(m('a*b*c', 'aXXbYYc')).toBe(true);
    expect(m('a*b*c', 'aXXbYY')).toBe(false);
    expect(m('[abc', 'a')).toBe(true);
    expect(m('abc', 'abcd')).toBe(false);
    expect(m('a**', 'a')).toBe(true);
  });

  it('terminates quickly on pathological patterns', () => {
    const t0 = Date.now();
    expect(m(`${'a*'.repeat(30)}b`, 'a'.repeat(60))).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('agrees with a regex translation on simple patterns', () => {
    const chars = fc.constantFrom('a', 'b', '*', '?');
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 8 }), fc.stringMatching(/^[ab]{1,10}$/), (pat, s) => {
        const re = new RegExp(`^${pat.map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c)).join('')}$`, 's');
        expect(globMatch(b(pat.join('')), b(s))).toBe(re.test(s));
      }),
    );
  });

  it('literal prefixes bound the scan range', () => {
    expect(literalPrefix(b('user:*')).toString()).toBe('user:');
    expect(literalPrefix(b('a\\*b?')).toString()).toBe('a*b');
    expect(literalPrefix(b('*x')).toString()).toBe('');
    const r = prefixRange(b('ab'));
    expect(r.start).toEqual(storageKey(b('ab')));
    expect(r.end).toEqual(storageKey(b('ac')));
    const ff = prefixRange(Buffer.from([0x61, 0xff]));
    expect(ff.end).toEqual(storageKey(b('b')));
  });
});

describe('INCRBYFLOAT arithmetic (x87 long double)', () => {
  const add = (a: string, c: string): string | undefined => {
    const x = parseLongDouble(b(a));
    const y = parseLongDouble(b(c));
    if (x === undefined || y === undefined) return 'invalid';
    const s = addLongDouble(x, y);
    return s === undefined ? undefined : formatLongDouble(s);
  };
  it('reproduces redis-server 7 output', () => {
    // Checked against redis-server 7.0.15 on x86-64.
    expect(add('10.5', '0.1')).toBe('10.6');
    expect(add('10.6', '-5e3')).toBe('-4989.39999999999999991');
    expect(add('-4989.39999999999999991', '1.0e1')).toBe('-4979.39999999999999991');
    expect(add('0.1', '0.2')).toBe('0.3');
    expect(add('3.0', '1.1')).toBe('4.1');
    expect(add('0', '1e-20')).toBe('0');
    expect(add('15', '0x10')).toBe('31');
    expect(add('1e308', '1e308')).toBe(
      '199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096',
    );
    expect(add('0', 'inf')).toBeUndefined();
  });
  it('rejects what strtold-with-Redis-checks rejects', () => {
    for (const bad of ['', ' 1', '1 ', 'nan', 'abc', '1e', '.', '-', '0x', '1e99999', '1e-99999', '--1']) {
      expect(parseLongDouble(b(bad))).toBeUndefined();
    }
    for (const good of ['1', '+1', '-1.5', '.5', '5.', '1E5', '0x1p3', 'INF', '-infinity', '0e99999']) {
      expect(parseLongDouble(b(good))).toBeDefined();
    }
  });
  it('agrees with doubles where doubles are exact', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e9, max: 1e9 }), fc.integer({ min: -1e9, max: 1e9 }), (x, y) => {
        expect(add(String(x / 4), String(y / 8))).toBe(String(x / 4 + y / 8));
      }),
    );
  });
});

describe('numbers and cursors', () => {
  it('parseInt64 follows string2ll', () => {
    expect(parseInt64(b('9223372036854775807'))).toBe(9223372036854775807n);
    expect(parseInt64(b('-9223372036854775808'))).toBe(-9223372036854775808n);
    expect(parseInt64(b('9223372036854775808'))).toBeUndefined();
    expect(parseInt64(b('-0'))).toBeUndefined();
    expect(parseInt64(b('007'))).toBeUndefined();
  });
  it('scan cursors are numbers, bounded, and unknown ones restart', () => {
    const c = new ScanCursors(2, 10n);
    const a = c.issue(b('a'));
    const x = c.issue(b('x'));
    expect([a, x]).toEqual(['10', '11']);
    expect(c.resolve(10n)?.toString()).toBe('a');
    c.issue(b('y'));
    expect(c.resolve(10n)).toBeUndefined();
    expect(c.size).toBe(2);
    expect(parseCursor(b('18446744073709551615'))).toBe(18446744073709551615n);
    expect(parseCursor(b('18446744073709551616'))).toBeUndefined();
    expect(parseCursor(b('-1'))).toBeUndefined();
  });
});

describe('reply encoding', () => {
  const both = (r: Reply): [string, string] => [encodeReply(r, 2).toString(), encodeReply(r, 3).toString()];
  it('encodes RESP2 and RESP3 forms', () => {
    expect(both(NULL)).toEqual(['$-1\r\n', '_\r\n']);
    expect(both(NULL_ARRAY)).toEqual(['*-1\r\n', '_\r\n']);
    expect(both(map([[bulk('a'), simple('b')]]))).toEqual([
      '*2\r\n$1\r\na\r\n+b\r\n',
      '%1\r\n$1\r\na\r\n+b\r\n',
    ]);
    expect(both(set([simple('x')]))).toEqual(['*1\r\n+x\r\n', '~1\r\n+x\r\n']);
    expect(both({ t: 'double', v: 1.5 })).toEqual(['$3\r\n1.5\r\n', ',1.5\r\n']);
    expect(both({ t: 'double', v: Number.POSITIVE_INFINITY })).toEqual(['$3\r\ninf\r\n', ',inf\r\n']);
    expect(both({ t: 'bool', v: true })).toEqual([':1\r\n', '#t\r\n']);
    expect(both(verbatim('hi'))).toEqual(['$2\r\nhi\r\n', '=6\r\ntxt:hi\r\n']);
    expect(both(array([bulk('é')]))).toEqual(['*1\r\n$2\r\né\r\n', '*1\r\n$2\r\né\r\n']);
    expect(both({ t: 'error', v: 'ERR a\r\nb' })).toEqual(['-ERR a  b\r\n', '-ERR a  b\r\n']);
  });
});
