import { defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript sources under the '@nokv/source' condition, so tests
// run against src/ directly and never against a stale dist/.
const conditions = ['@nokv/source', 'node', 'import', 'module', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@nokv/source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    env: { NOKV_INVARIANTS: '1' },
  },
});
