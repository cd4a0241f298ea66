import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/** What the HTTP endpoints read from the running node. */
export interface HttpSources {
  registry: Registry;
  /** The `/stats` payload (may hold bigints: they are written as strings). */
  stats(): unknown;
}

/** JSON with bigints as decimal strings. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), indent);
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', `${toJson(value)}\n`);
}

/**
 * The node's HTTP server: `GET /metrics` (Prometheus text), `GET /stats` (JSON), `GET /healthz`
 * (`ok`). Anything else is a JSON error: 404 for an unknown path, 405 for another method.
 */
export function createHttpServer(sources: HttpSources): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const known = path === '/metrics' || path === '/stats' || path === '/healthz';
    if (!known) {
      sendJson(res, 404, { error: 'not found', path, endpoints: ['/metrics', '/stats', '/healthz'] });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, { error: `method ${req.method} not allowed`, path });
      return;
    }
    if (path === '/healthz') {
      send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    }
    if (path === '/stats') {
      try {
        sendJson(res, 200, sources.stats());
      } catch (err) {
        sendJson(res, 500, { error: (err as Error).message });
      }
      return;
    }
    sources.registry.metrics().then(
      (text) => send(res, 200, sources.registry.contentType, text),
      (err: unknown) => sendJson(res, 500, { error: (err as Error).message }),
    );
  });
}
