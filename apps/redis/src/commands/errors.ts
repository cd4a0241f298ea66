/**
 * Error replies. A `RedisError` thrown by a command becomes its reply (`-<message>`), and because
 * commands validate before they write, throwing one also means the transaction writes nothing.
 * Messages are redis-server 7's, word for word: clients and tests match on them.
 */

export class RedisError extends Error {
  override readonly name = 'RedisError';
  /** The error prefix: `ERR`, `WRONGTYPE`, `EXECABORT` … (the reply's first word). */
  readonly code: string;

  /** `message` is the whole reply line without `-`; it must start with the code. */
  constructor(message: string) {
    super(message);
    const space = message.indexOf(' ');
    this.code = space < 0 ? message : message.slice(0, space);
  }
}

export const err = (text: string): RedisError => new RedisError(`ERR ${text}`);

export const SYNTAX = (): RedisError => err('syntax error');
export const NOT_INTEGER = (): RedisError => err('value is not an integer or out of range');
export const NOT_FLOAT = (): RedisError => err('value is not a valid float');
export const WRONGTYPE = (): RedisError =>
  new RedisError('WRONGTYPE Operation against a key holding the wrong kind of value');
export const INVALID_EXPIRE = (command: string): RedisError =>
  err(`invalid expire time in '${command}' command`);
export const WRONG_ARITY = (command: string): RedisError =>
  err(`wrong number of arguments for '${command}' command`);
export const STRING_TOO_LONG = (): RedisError =>
  err('string exceeds maximum allowed size (proto-max-bulk-len)');

/** Redis quotes at most 128 bytes of the name and of the arguments, with newlines blanked. */
export function unknownCommand(args: readonly Buffer[]): RedisError {
  const name = args[0]!.subarray(0, 128).toString('latin1');
  let rest = '';
  for (let i = 1; i < args.length && rest.length < 128; i++) {
    rest += `'${args[i]!.subarray(0, 128 - rest.length).toString('latin1')}' `;
  }
  return err(`unknown command '${name}', with args beginning with: ${rest}`);
}

export function unknownSubcommand(command: Buffer, sub: Buffer): RedisError {
  return err(
    `unknown subcommand '${sub.subarray(0, 128).toString('latin1')}'. Try ${command.toString('latin1').toUpperCase()} HELP.`,
  );
}
