import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

test('gen/ is what scripts/gen.mjs makes from proto/ (run `pnpm --filter @nokv/proto gen` after editing a .proto)', () => {
  const out = mkdtempSync(join(tmpdir(), 'nokv-proto-gen-'));
  try {
    execFileSync(process.execPath, [join(packageDir, 'scripts/gen.mjs'), '--out', out], { stdio: 'pipe' });
    const committed = readdirSync(join(packageDir, 'gen')).sort();
    expect(readdirSync(out).sort()).toEqual(committed);
    for (const file of committed) {
      expect(readFileSync(join(out, file), 'utf8'), file).toBe(
        readFileSync(join(packageDir, 'gen', file), 'utf8'),
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
