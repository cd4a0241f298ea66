import { readFileSync, writeFileSync } from 'node:fs';

/** One argument of a command: `key=value`, `key=(a,b)` or a bare word. */
export interface CommandArg {
  key: string;
  values: string[];
}

/** A command of a scenario file and the output recorded for it. */
export interface TestCase {
  /** 1-based line of the command in its file. */
  line: number;
  /** The command line as written. */
  source: string;
  command: string;
  args: CommandArg[];
  expected: string;
}

/** A malformed scenario file: names the file and line. */
export class ScenarioSyntaxError extends Error {
  override readonly name = 'ScenarioSyntaxError';
  readonly code = 'ScenarioSyntax';
}

/**
 * Parses a scenario file. Each case is a command line, a `----` line, and the expected output up
 * to the next blank line (outputs never contain blank lines). `#` lines between cases are comments.
 */
export function parseScenario(path: string, text: string): { cases: TestCase[]; preamble: string[][] } {
  const lines = text.split('\n');
  const cases: TestCase[] = [];
  // Comment and blank lines before each case, kept so a rewrite preserves them.
  const preamble: string[][] = [];
  let pending: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const raw = lines[i]!;
    if (raw.trim() === '' || raw.startsWith('#')) {
      pending.push(raw);
      i++;
      continue;
    }
    const line = i + 1;
    if (lines[i + 1] !== '----') {
      throw new ScenarioSyntaxError(`${path}:${line}: command '${raw}' must be followed by a '----' line`);
    }
    const out: string[] = [];
    i += 2;
    while (i < lines.length && lines[i]!.trim() !== '') out.push(lines[i++]!);
    const { command, args } = parseCommand(path, line, raw);
    cases.push({ line, source: raw, command, args, expected: out.join('\n') });
    preamble.push(pending);
    pending = [];
  }
  preamble.push(pending);
  return { cases, preamble };
}

function parseCommand(path: string, line: number, src: string): { command: string; args: CommandArg[] } {
  const tokens: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(src); m; m = re.exec(src)) tokens.push(m[1] ?? m[2]!);
  const command = tokens.shift();
  if (!command) throw new ScenarioSyntaxError(`${path}:${line}: empty command`);
  const args = tokens.map((t): CommandArg => {
    const eq = t.indexOf('=');
    if (eq < 0) return { key: t, values: [] };
    const key = t.slice(0, eq);
    let value = t.slice(eq + 1);
    if (value.startsWith('(') && value.endsWith(')')) {
      value = value.slice(1, -1);
      return { key, values: value === '' ? [] : value.split(',').map((v) => v.trim()) };
    }
    return { key, values: [value] };
  });
  return { command, args };
}

/** Writes the file back with `outputs` in place of the expected outputs (the rewrite flag). */
export function rewriteScenario(path: string, text: string, outputs: string[]): void {
  const { cases, preamble } = parseScenario(path, text);
  const parts: string[] = [];
  cases.forEach((c, i) => {
    // The preamble holds the blank line that ended the previous output, and any comments.
    parts.push(...preamble[i]!, c.source, '----', outputs[i]!);
  });
  parts.push(...preamble[cases.length]!);
  writeFileSync(path, `${parts.join('\n').replace(/\n*$/, '')}\n`);
}

/** Reads a scenario file. */
export function readScenario(path: string): string {
  return readFileSync(path, 'utf8');
}
