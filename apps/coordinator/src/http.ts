import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

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

const ENDPOINTS = ['/metrics', '/view', '/healthz'];

/** `GET /metrics` (Prometheus), `GET /view` (JSON cluster view), `GET /healthz` (`ok`). */
export function createHttpServer(sources: { registry: Registry; view(): unknown }): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!ENDPOINTS.includes(path)) {
      sendJson(res, 404, { error: 'not found', path, endpoints: ENDPOINTS });
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
    if (path === '/view') {
      try {
        sendJson(res, 200, sources.view());
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
