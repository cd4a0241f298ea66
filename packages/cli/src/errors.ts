/** A command failed in a way the user can act on: printed as `error: <message>`, exit code 1. */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A command already printed what went wrong and only needs its exit code returned. */
export class ExitCode extends Error {
  readonly exitCode: number;

  constructor(exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'ExitCode';
    this.exitCode = exitCode;
  }
}
