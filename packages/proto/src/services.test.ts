import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { expect, test } from 'vitest';
import { SERVICES } from './services.js';

const protoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', 'proto');

test('the service descriptors match the services declared in the .proto files', () => {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(protoRoot, target);
  root.loadSync(
    [
      'nokv/kv/v1/kv.proto',
      'nokv/transport/v1/transport.proto',
      'nokv/admin/v1/admin.proto',
      'nokv/coordinator/v1/coordinator.proto',
    ],
    { keepCase: false },
  );
  root.resolveAll();
  const declared: Record<string, string[]> = {};
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const child of ns.nestedArray) {
      if (child instanceof protobuf.Service) {
        declared[child.fullName.slice(1)] = child.methodsArray.map(
          (m) =>
            `${m.name}(${m.requestStream ? 'stream ' : ''}${m.resolvedRequestType?.fullName.slice(1)}) → ${m.responseStream ? 'stream ' : ''}${m.resolvedResponseType?.fullName.slice(1)}`,
        );
      } else if (child instanceof protobuf.Namespace) {
        visit(child);
      }
    }
  };
  visit(root);

  const described: Record<string, string[]> = {};
  for (const [service, methods] of Object.entries(SERVICES)) {
    described[service] = Object.values(methods).map((m) => {
      expect(m.path).toBe(`/${service}/${m.name}`);
      const reqName = typeName(m.request);
      const resName = typeName(m.response);
      return `${m.name}(${m.requestStream ? 'stream ' : ''}${reqName}) → ${m.responseStream ? 'stream ' : ''}${resName}`;
    });
  }
  expect(described).toEqual(declared);
});

/** The protobuf full name of a pbjs static class, from its type URL. */
function typeName(codec: unknown): string {
  const url = (codec as { getTypeUrl(prefix?: string): string }).getTypeUrl('');
  return url.replace(/^\//, '');
}
