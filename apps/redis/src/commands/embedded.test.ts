import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedBackend } from '../backend/embedded.js';
import { defineCommandSuite } from '../testing/command-suite.js';

defineCommandSuite('embedded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nokv-redis-'));
  const backend = await EmbeddedBackend.open({ workdir: dir });
  return {
    backend,
    async cleanup() {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
