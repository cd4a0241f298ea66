import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeCommand, parseReply, RawRespClient, RespProtocolError, showBytes } from './resp-client.js';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('parseReply', () => {
  test('every RESP2 type, nulls included', () => {
    expect(parseReply(b('+OK\r\n'))?.value).toEqual({ type: 'simple', value: 'OK' });
    expect(parseReply(b('-ERR x\r\n'))?.value).toEqual({ type: 'error', value: 'ERR x' });
    expect(parseReply(b(':-9223372036854775808\r\n'))?.value).toEqual({
      type: 'integer',
      value: -9223372036854775808n,
    });
    expect(parseReply(b('$3\r\na\r\n\r\n'))?.value).toEqual({ type: 'bulk', value: b('a\r\n') });
    expect(parseReply(b('$-1\r\n'))?.value).toEqual({ type: 'bulk', value: null });
    expect(parseReply(b('*-1\r\n'))?.value).toEqual({ type: 'array', value: null });
    expect(parseReply(b('*0\r\n'))?.value).toEqual({ type: 'array', value: [] });
  });

  test('every RESP3 type, nested, and the end offset', () => {
    const text =
      '%2\r\n$1\r\na\r\n*3\r\n_\r\n,1.5\r\n#t\r\n+b\r\n~2\r\n(123\r\n!3\r\nbad\r\n' +
      '>2\r\n=7\r\ntxt:abc\r\n|1\r\n+k\r\n:1\r\n:5\r\n' +
      'tail';
    const r = parseReply(b(text))!;
    expect(r.value).toEqual({
      type: 'map',
      value: [
        [
          { type: 'bulk', value: b('a') },
          {
            type: 'array',
            value: [{ type: 'null' }, { type: 'double', value: '1.5' }, { type: 'boolean', value: true }],
          },
        ],
        [
          { type: 'simple', value: 'b' },
          {
            type: 'set',
            value: [
              { type: 'bignum', value: '123' },
              { type: 'blobError', value: b('bad') },
            ],
          },
        ],
      ],
    });
    const second = parseReply(b(text), r.end)!;
    expect(second.end).toBe(text.length - 4);
    expect(parseReply(b(text), second.end)).toBeUndefined(); // 'tail' is not a whole reply
    expect(second.value).toEqual({
      type: 'push',
      value: [
        { type: 'verbatim', format: 'txt', value: b('abc') },
        {
          type: 'attributed',
          attributes: [
            [
              { type: 'simple', value: 'k' },
              { type: 'integer', value: 1n },
            ],
          ],
          value: { type: 'integer', value: 5n },
        },
      ],
    });
  });

  test('streamed strings and aggregates', () => {
    expect(parseReply(b('$?\r\n;2\r\nab\r\n;1\r\nc\r\n;0\r\n'))?.value).toEqual({
      type: 'bulk',
      value: b('abc'),
    });
    expect(parseReply(b('*?\r\n:1\r\n:2\r\n.\r\n'))?.value).toEqual({
      type: 'array',
      value: [
        { type: 'integer', value: 1n },
        { type: 'integer', value: 2n },
      ],
    });
    expect(parseReply(b('%?\r\n+a\r\n:1\r\n.\r\n'))?.value).toEqual({
      type: 'map',
      value: [
        [
          { type: 'simple', value: 'a' },
          { type: 'integer', value: 1n },
        ],
      ],
    });
  });

  test('every proper prefix of a reply is incomplete, never an error', () => {
    const full = b('*3\r\n$5\r\nhello\r\n%1\r\n+k\r\n*2\r\n:1\r\n_\r\n=9\r\ntxt:a\r\nbc\r\n');
    for (let i = 0; i < full.length; i++) expect(parseReply(full.subarray(0, i))).toBeUndefined();
    expect(parseReply(full)?.end).toBe(full.length);
  });

  test('bytes that are not RESP throw', () => {
    expect(() => parseReply(b('?x\r\n'))).toThrow(RespProtocolError);
    expect(() => parseReply(b('$3\r\nabcd\r\n'))).toThrow(RespProtocolError);
    expect(() => parseReply(b(':1.5\r\n'))).toThrow(RespProtocolError);
    expect(() => parseReply(b('*x\r\n'))).toThrow(RespProtocolError);
  });

  test('encodeCommand and showBytes', () => {
    expect(encodeCommand(['SET', 'k', Buffer.from([0, 255])]).toString('latin1')).toBe(
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\x00\xff\r\n',
    );
    expect(showBytes(b('$2\r\n\x00\\\r\n'))).toBe('$2\\r\\n\\x00\\\\\\r\\n');
  });
});

describe('RawRespClient', () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    // Answers each line with a reply split over several writes, to exercise reassembly.
    server = createServer((sock) => {
      sock.on('data', (d) => {
        const text = d.toString();
        if (text.includes('QUIT')) {
          sock.end('+OK\r\n');
          return;
        }
        if (text.includes('SILENT')) return;
        const reply = '*2\r\n$5\r\nhello\r\n:42\r\n';
        for (let i = 0; i < reply.length; i += 3) {
          const part = reply.slice(i, i + 3);
          setTimeout(() => sock.write(part), i);
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const addr = server.address();
    port = typeof addr === 'object' && addr ? addr.port : 0;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('reads one reply from pieces, its exact bytes, then closed / timeout', async () => {
    const c = await RawRespClient.connect(port);
    const r = await c.command(['ANY']);
    expect(r.kind).toBe('reply');
    if (r.kind === 'reply') expect(r.raw.toString()).toBe('*2\r\n$5\r\nhello\r\n:42\r\n');
    expect((await c.command(['SILENT'], 100)).kind).toBe('timeout');
    const q = await c.command(['QUIT']);
    expect(q.kind === 'reply' && q.raw.toString()).toBe('+OK\r\n');
    expect((await c.command(['PING'], 1000)).kind).toBe('closed');
    c.close();
  });
});
