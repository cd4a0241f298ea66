import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitInlineArgs } from './inline.js';
import {
  MAX_HEADER_LINE,
  type ParseResult,
  type ParserLimits,
  parseStrictInt,
  RespParser,
} from './parser.js';

const small: ParserLimits = { maxArgs: 16, maxBulkBytes: 1024, maxInlineBytes: 256, maxRequestBytes: 4096 };

function drain(p: RespParser): ParseResult[] {
  const out: ParseResult[] = [];
  for (let r = p.next(); r !== undefined; r = p.next()) out.push(r);
  return out;
}

function parseAll(input: Buffer | string, limits: Partial<ParserLimits> = {}): ParseResult[] {
  const p = new RespParser(limits);
  p.feed(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
  return drain(p);
}

const cmd = (...args: string[]): ParseResult => ({
  kind: 'command',
  args: args.map((a) => Buffer.from(a, 'latin1')),
});
const error = (message: string, fatal: boolean): ParseResult => ({ kind: 'error', message, fatal });

function multibulk(args: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

describe('RespParser', () => {
  it('parses multibulk and inline commands', () => {
    expect(parseAll('*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nSET a "b c"\n')).toEqual([
      cmd('GET', 'k'),
      cmd('PING'),
      cmd('SET', 'a', 'b c'),
    ]);
  });

  it('skips empty multibulks and blank inline lines', () => {
    expect(parseAll('*0\r\n*-1\r\n\r\n   \r\n\nPING\r\n')).toEqual([cmd('PING')]);
  });

  it('waits for more input at every split point', () => {
    const input = Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nECHO x\r\n');
    for (let cut = 0; cut <= input.length; cut++) {
      const p = new RespParser();
      p.feed(input.subarray(0, cut));
      const first = drain(p);
      p.feed(input.subarray(cut));
      expect([...first, ...drain(p)]).toEqual([cmd('SET', 'k', 'hello'), cmd('ECHO', 'x')]);
    }
  });

  it('reports Redis protocol errors, fatal where the stream cannot resync', () => {
    expect(parseAll('*x\r\n')).toEqual([error('ERR Protocol error: invalid multibulk length', true)]);
    expect(parseAll('*3000000000\r\n')).toEqual([
      error('ERR Protocol error: invalid multibulk length', true),
    ]);
    expect(parseAll('*1\r\n$-1\r\n')).toEqual([error('ERR Protocol error: invalid bulk length', true)]);
    expect(parseAll('*1\r\n$01\r\n')).toEqual([error('ERR Protocol error: invalid bulk length', true)]);
    expect(parseAll('*1\r\n:1\r\n')).toEqual([error("ERR Protocol error: expected '$', got ':'", true)]);
    expect(parseAll('ECHO "a\r\nPING\r\n')).toEqual([
      error('ERR Protocol error: unbalanced quotes in request', false),
      cmd('PING'),
    ]);
    // Nothing after a fatal error is parsed.
    const p = new RespParser();
    p.feed(Buffer.from('*x\r\nPING\r\n'));
    expect(drain(p)).toHaveLength(1);
    p.feed(Buffer.from('PING\r\n'));
    expect(drain(p)).toEqual([]);
  });

  it('rejects over-long header lines', () => {
    const p = new RespParser();
    p.feed(Buffer.from(`*${'1'.repeat(MAX_HEADER_LINE + 1)}`));
    expect(drain(p)).toEqual([error('ERR Protocol error: too big mbulk count string', true)]);
    const q = new RespParser();
    q.feed(Buffer.from(`*1\r\n$${'1'.repeat(MAX_HEADER_LINE + 1)}`));
    expect(drain(q)).toEqual([error('ERR Protocol error: too big bulk count string', true)]);
  });

  it('skips commands over the limits without buffering them, then goes on', () => {
    const p = new RespParser(small);
    const big = multibulk([Buffer.from('SET'), Buffer.from('k'), Buffer.alloc(5000, 0x61)]);
    // Fed in pieces: the skipped bulk never accumulates.
    for (let i = 0; i < big.length; i += 100) {
      p.feed(big.subarray(i, i + 100));
      expect(p.bufferedBytes).toBeLessThan(200);
      const r = drain(p);
      if (i + 100 < big.length) expect(r).toEqual([]);
      else expect(r).toEqual([error('ERR Protocol error: invalid bulk length', false)]);
    }
    p.feed(Buffer.from('PING\r\n'));
    expect(drain(p)).toEqual([cmd('PING')]);
    const many = multibulk(Array.from({ length: 17 }, () => Buffer.from('x')));
    expect(parseAll(Buffer.concat([many, Buffer.from('PING\r\n')]), small)).toEqual([
      error('ERR Protocol error: invalid multibulk length', false),
      cmd('PING'),
    ]);
    expect(parseAll(`ECHO ${'x'.repeat(300)}\r\nPING\r\n`, small)).toEqual([
      error('ERR Protocol error: too big inline request', false),
      cmd('PING'),
    ]);
    const q = new RespParser(small);
    q.feed(Buffer.from(`ECHO ${'x'.repeat(300)}`));
    expect(drain(q)).toEqual([error('ERR Protocol error: too big inline request', false)]);
    q.feed(Buffer.from(`${'y'.repeat(300)}\r\nPING\r\n`));
    expect(drain(q)).toEqual([cmd('PING')]);
    const wide = multibulk(Array.from({ length: 8 }, () => Buffer.alloc(1000, 0x62)));
    expect(parseAll(Buffer.concat([wide, Buffer.from('PING\r\n')]), small)).toEqual([
      error('ERR Protocol error: request larger than 4096 bytes', false),
      cmd('PING'),
    ]);
  });

  it('does not check the two bytes after a bulk (as Redis)', () => {
    expect(parseAll('*1\r\n$3\r\nabcXYPING\r\n')).toEqual([cmd('abc'), cmd('PING')]);
  });
});

describe('parseStrictInt (string2ll)', () => {
  it('accepts what Redis accepts', () => {
    const p = (s: string): number | undefined => parseStrictInt(Buffer.from(s), 0, s.length);
    expect(p('0')).toBe(0);
    expect(p('-12')).toBe(-12);
    expect(p('123456')).toBe(123456);
    for (const bad of ['', '-', '+1', '01', '-0', ' 1', '1 ', '1a', '99999999999999999999999']) {
      expect(p(bad)).toBeUndefined();
    }
  });
});

describe('splitInlineArgs (sdssplitargs)', () => {
  const split = (s: string): string[] | undefined =>
    splitInlineArgs(Buffer.from(s, 'latin1'))?.map((b) => b.toString('latin1'));
  it('splits like redis-server', () => {
    expect(split('set a b')).toEqual(['set', 'a', 'b']);
    expect(split('  set   "a b"  \'c d\' ')).toEqual(['set', 'a b', 'c d']);
    expect(split('"\\x41\\n\\t\\r\\b\\a\\"\\\\"')).toEqual(['A\n\t\r\b\x07"\\']);
    expect(split("'it\\'s'")).toEqual(["it's"]);
    expect(split("'\\n'")).toEqual(['\\n']);
    expect(split('""')).toEqual(['']);
    expect(split('a"b"')).toEqual(['a"b"'].map((s) => s.replace(/"/g, '')));
    expect(split('"abc"x')).toBeUndefined();
    expect(split('"abc')).toBeUndefined();
    expect(split("'abc")).toBeUndefined();
    expect(split('a\0b c')).toEqual(['a']);
    expect(split('')).toEqual([]);
  });
});

describe('RespParser under fuzzing', () => {
  const bound = MAX_HEADER_LINE + small.maxRequestBytes + small.maxInlineBytes;

  it('never throws, always terminates and stays bounded on random bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 512 }), { maxLength: 40 }), (chunks) => {
        const p = new RespParser(small);
        for (const c of chunks) {
          p.feed(Buffer.from(c));
          let steps = 0;
          for (let r = p.next(); r !== undefined; r = p.next()) {
            if (r.kind === 'command') expect(r.args.length).toBeGreaterThan(0);
            if (++steps > 100_000) throw new Error('parser does not make progress');
          }
          expect(p.bufferedBytes).toBeLessThanOrEqual(bound + c.length);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on protocol-shaped noise', () => {
    const token = fc.constantFrom(
      '*',
      '$',
      '\r\n',
      '\r',
      '\n',
      '-1',
      '0',
      '1',
      '3',
      '16',
      '17',
      '1025',
      'x',
      '"',
      "'",
      ' ',
      'PING',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 200 }), fc.integer({ min: 1, max: 16 }), (tokens, step) => {
        const input = Buffer.from(tokens.join(''), 'latin1');
        const p = new RespParser(small);
        for (let i = 0; i < input.length; i += step) {
          p.feed(input.subarray(i, i + step));
          drain(p);
          expect(p.bufferedBytes).toBeLessThanOrEqual(bound + step);
        }
      }),
      { numRuns: 500 },
    );
  });

  const arg = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
  const command = fc.array(arg, { minLength: 1, maxLength: 8 });

  it('returns exactly the commands sent, whatever the chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 64 })),
        (cmds, sizes) => {
          const input = Buffer.concat(cmds.map(multibulk));
          const p = new RespParser(small);
          const got: ParseResult[] = [];
          let i = 0;
          let k = 0;
          while (i < input.length) {
            const n = sizes.length > 0 ? sizes[k++ % sizes.length]! : input.length;
            p.feed(input.subarray(i, i + n));
            got.push(...drain(p));
            i += n;
          }
          expect(got).toEqual(cmds.map((args) => ({ kind: 'command', args })));
          expect(p.idle).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('yields a prefix of the commands for truncated input, and no error', () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 10 }), fc.nat(), (cmds, cutSeed) => {
        const input = Buffer.concat(cmds.map(multibulk));
        const cut = cutSeed % (input.length + 1);
        const got = parseAll(input.subarray(0, cut), small);
        expect(got.every((r) => r.kind === 'command')).toBe(true);
        expect(got).toEqual(cmds.slice(0, got.length).map((args) => ({ kind: 'command', args })));
      }),
      { numRuns: 300 },
    );
  });

  it('inline commands of plain tokens round-trip', () => {
    const tokenArb = fc.stringMatching(/^[a-zA-Z0-9:_-]{1,12}$/);
    fc.assert(
      fc.property(
        fc.array(fc.array(tokenArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 10 }),
        (lines) => {
          const input = lines.map((l) => `${l.join(' ')}\r\n`).join('');
          expect(parseAll(input, small)).toEqual(lines.map((l) => cmd(...l)));
        },
      ),
      { numRuns: 200 },
    );
  });
});
