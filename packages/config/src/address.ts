/** `host:port` addresses: a host name, an IPv4 address or a bracketed IPv6 address, then a port. */

export interface HostPort {
  /** Without brackets for IPv6 (`::1`). */
  host: string;
  port: number;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?):(\d{1,5})$/;

/**
 * Parses `host:port`; undefined when malformed. Port 0 (any free port, for listening) is accepted
 * only with `allowZeroPort`.
 */
export function parseHostPort(text: string, options: { allowZeroPort?: boolean } = {}): HostPort | undefined {
  const m = HOST_PORT.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535 || (port === 0 && !options.allowZeroPort)) return undefined;
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return { host, port };
}

/** `host:port` again, bracketing IPv6 hosts. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
