/** What went wrong with a topology file. */
export type ConfigErrorCode =
  /** The file does not exist. */
  | 'ConfigNotFound'
  /** The file exists but cannot be read (permissions, a directory ...). */
  | 'ConfigUnreadable'
  /** The file is not JSON, or does not match the schema, or breaks a cross-field rule. */
  | 'InvalidConfig'
  /** A lookup named a store the topology does not have. */
  | 'UnknownStore'
  /** A store has no workdir in the file and none was given. */
  | 'MissingWorkdir';

/** One problem in a topology file: where (a JSON path such as `stores[1].addr`) and what. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/**
 * A topology file problem. The message names the file and, for `InvalidConfig`, the JSON path of
 * every problem found (all of them, not just the first), one per line when there are several.
 */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  /** The file (or the name the caller gave the JSON) the problem is in. */
  readonly source: string;
  readonly issues: readonly ConfigIssue[];

  constructor(
    code: ConfigErrorCode,
    source: string,
    message: string,
    issues: readonly ConfigIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ConfigError';
    this.code = code;
    this.source = source;
    this.issues = issues;
  }

  static invalid(source: string, issues: readonly ConfigIssue[]): ConfigError {
    const lines = issues.map((i) => `${i.path}: ${i.message}`);
    const message =
      lines.length === 1
        ? `invalid topology file ${source}: ${lines[0]}`
        : `invalid topology file ${source} (${lines.length} problems):\n  ${lines.join('\n  ')}`;
    return new ConfigError('InvalidConfig', source, message, issues);
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}

/** `['stores', 1, 'addr']` → `stores[1].addr`; the empty path is `(root)`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}
