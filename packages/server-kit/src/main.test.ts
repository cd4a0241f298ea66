import { fileURLToPath } from 'node:url';
import { afterEach, expect, it, vi } from 'vitest';
import { isEntryModule, runIfEntry } from './main.js';

const here = fileURLToPath(import.meta.url);
const savedArgv = process.argv;
const savedExitCode = process.exitCode;

afterEach(() => {
  process.argv = savedArgv;
  process.exitCode = savedExitCode;
  vi.restoreAllMocks();
});

it('knows whether a module is the started script', () => {
  expect(isEntryModule(import.meta.url, here)).toBe(true);
  expect(isEntryModule(import.meta.url, fileURLToPath(new URL('./main.ts', import.meta.url)))).toBe(false);
  expect(isEntryModule(import.meta.url, '/no/such/script.js')).toBe(false);
  expect(isEntryModule(import.meta.url, undefined)).toBe(false);
});

it('does nothing when the module was imported', async () => {
  const parse = vi.fn(() => 'options');
  const run = vi.fn(async () => 0);
  await runIfEntry(import.meta.url, parse, run);
  expect(parse).not.toHaveBeenCalled();
  expect(run).not.toHaveBeenCalled();
});

it('parses the flags and runs, the result becoming the exit code', async () => {
  process.argv = [process.execPath, here, '--port', '7'];
  const run = vi.fn(async (options: string) => (options === '--port=7' ? 3 : 0));
  await runIfEntry(import.meta.url, async (argv) => argv.join('='), run);
  expect(run).toHaveBeenCalledOnce();
  expect(process.exitCode).toBe(3);
});

it('a bad command line prints `error: <message>` and exits 2 without running', async () => {
  process.argv = [process.execPath, here, '--bogus'];
  const written: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    written.push(String(chunk));
    return true;
  });
  const run = vi.fn(async () => 0);
  await runIfEntry(
    import.meta.url,
    () => {
      throw new Error("unknown option '--bogus'");
    },
    run,
  );
  expect(run).not.toHaveBeenCalled();
  expect(written).toEqual(["error: unknown option '--bogus'\n"]);
  expect(process.exitCode).toBe(2);
});
