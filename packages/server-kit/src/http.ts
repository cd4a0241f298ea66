import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/** What the HTTP endpoints serve. */
export interface HttpEndpoints {
  /** `GET /metrics`: this registry in the Prometheus text format. */
  registry: Registry;
  /** `GET <path>`: the function's value as JSON (bigints are written as strings), 500 if it throws. */
  json: Record<string, () => unknown>;
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
 * A server's HTTP side: `GET /metrics` (Prometheus text), `GET` on each JSON path, `GET /healthz`
 * (`ok`). Anything else is a JSON error: 404 for an unknown path (listing the endpoints), 405 for a
 * method other than GET or HEAD. Not listening yet: see `listenHttp`.
 */
export function createHttpServer(endpoints: HttpEndpoints): Server {
  const json = new Map(Object.entries(endpoints.json));
  const paths = ['/metrics', ...json.keys(), '/healthz'];
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!paths.includes(path)) {
      sendJson(res, 404, { error: 'not found', path, endpoints: paths });
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
    const read = json.get(path);
    if (read) {
      try {
        sendJson(res, 200, read());
      } catch (err) {
        sendJson(res, 500, { error: (err as Error).message });
      }
      return;
    }
    endpoints.registry.metrics().then(
      (text) => send(res, 200, endpoints.registry.contentType, text),
      (err: unknown) => sendJson(res, 500, { error: (err as Error).message }),
    );
  });
}
