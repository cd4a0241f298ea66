import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parseScenario, readScenario, rewriteScenario } from './datadriven.js';
import { InteractionEnv } from './interaction-env.js';

// Scenario tests: each testdata/*.txt file is a sequence of commands and the output they must
// produce. After an intended behaviour change, regenerate with
//   NOKV_REWRITE=1 npx vitest run packages/raftstore/src/raft/scenario
// and review the diff like code.
const dir = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const rewrite = process.env.NOKV_REWRITE === '1';

describe('raft scenarios', () => {
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()) {
    test(file, () => {
      const path = join(dir, file);
      const text = readScenario(path);
      const { cases } = parseScenario(path, text);
      const env = new InteractionEnv();
      const outputs: string[] = [];
      for (const tc of cases) {
        const actual = env.run(tc);
        outputs.push(actual);
        if (!rewrite) expect(actual, `${file}:${tc.line}: ${tc.source}`).toBe(tc.expected);
      }
      if (rewrite) rewriteScenario(path, text, outputs);
    });
  }
});
