/** Codes of wire-contract failures. */
export type ProtoErrorCode = 'MalformedMessage' | 'ValueOutOfRange';

/**
 * A payload that does not decode as the expected message, or a value that cannot be encoded
 * (a negative or wider-than-64-bit id, an unknown enum value). Carries a typed `code`.
 */
export class ProtoError extends Error {
  override readonly name = 'ProtoError';
  constructor(
    readonly code: ProtoErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
