import { createServer as createNetServer } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { afterEach, expect, it } from 'vitest';
import { createHttpServer, toJson } from './http.js';
import { closeHttp, listenHttp } from './listen.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

class TestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
const listenFailed = (message: string, cause: Error) => new TestError('ListenFailed', message, { cause });

async function serveHttp(json: Record<string, () => unknown>): Promise<{ base: string; registry: Registry }> {
  const registry = new Registry();
  const counter = new Counter({ name: 'test_requests_total', help: 'test', registers: [registry] });
  counter.inc(3);
  const server = createHttpServer({ registry, json });
  const port = await listenHttp(server, '127.0.0.1', 0, listenFailed);
  cleanups.push(() => closeHttp(server));
  return { base: `http://127.0.0.1:${port}`, registry };
}

it('serves /metrics, the JSON paths and /healthz', async () => {
  const { base, registry } = await serveHttp({
    '/stats': () => ({ id: 7n, regions: [{ id: 1n }], name: 'x' }),
    '/view': () => ['v'],
  });
  const health = await fetch(`${base}/healthz`);
  expect(health.status).toBe(200);
  expect(health.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(await health.text()).toBe('ok\n');

  const metrics = await fetch(`${base}/metrics`);
  expect(metrics.status).toBe(200);
  expect(metrics.headers.get('content-type')).toBe(registry.contentType);
  expect(await metrics.text()).toMatch(/^test_requests_total 3$/m);

  const stats = await fetch(`${base}/stats?pretty=1`);
  expect(stats.status).toBe(200);
  expect(stats.headers.get('content-type')).toBe('application/json; charset=utf-8');
  expect(await stats.text()).toBe('{"id":"7","regions":[{"id":"1"}],"name":"x"}\n');
  expect(await (await fetch(`${base}/view`)).json()).toEqual(['v']);

  const head = await fetch(`${base}/stats`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(await head.text()).toBe('');
});

it('answers unknown paths with 404 and other methods with 405, as JSON', async () => {
  const { base } = await serveHttp({ '/stats': () => ({}) });
  const missing = await fetch(`${base}/nope`);
  expect(missing.status).toBe(404);
  expect(await missing.json()).toEqual({
    error: 'not found',
    path: '/nope',
    endpoints: ['/metrics', '/stats', '/healthz'],
  });
  for (const path of ['/stats', '/metrics', '/healthz']) {
    const res = await fetch(`${base}${path}`, { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect(await res.json()).toEqual({ error: 'method POST not allowed', path });
  }
});

it('answers 500 with the message when a JSON source throws', async () => {
  const { base } = await serveHttp({
    '/stats': () => {
      throw new Error('store not started');
    },
  });
  const res = await fetch(`${base}/stats`);
  expect(res.status).toBe(500);
  expect(await res.json()).toEqual({ error: 'store not started' });
});

it('reports a port in use through the factory, and closeHttp stops serving', async () => {
  const blocker = createNetServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => blocker.close(() => r())));
  const port = (blocker.address() as { port: number }).port;
  const server = createHttpServer({ registry: new Registry(), json: {} });
  const err = await listenHttp(server, '127.0.0.1', port, listenFailed).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TestError);
  expect(err).toMatchObject({
    code: 'ListenFailed',
    message: expect.stringMatching(
      new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${port} \\(HTTP\\): .*EADDRINUSE`),
    ),
    cause: expect.objectContaining({ code: 'EADDRINUSE' }),
  });
  await closeHttp(server); // not listening: resolves at once

  // The same server listens elsewhere afterwards; closeHttp closes it (keep-alive connections too).
  const bound = await listenHttp(server, '127.0.0.1', 0, listenFailed);
  expect((await fetch(`http://127.0.0.1:${bound}/healthz`)).status).toBe(200);
  await closeHttp(server);
  expect(server.listening).toBe(false);
  await expect(fetch(`http://127.0.0.1:${bound}/healthz`)).rejects.toThrow();
});

it('writes bigints as decimal strings', () => {
  expect(toJson({ a: 1n << 64n, b: [2n] })).toBe('{"a":"18446744073709551616","b":["2"]}');
  expect(toJson({ a: 1n }, 2)).toBe('{\n  "a": "1"\n}');
});
