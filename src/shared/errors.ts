/**
 * The error taxonomy. Every error ood-audit raises on purpose is an `OodError` with a stable `code`
 * and a `retryable` flag: permanent input faults are never retried, transient storage and queue
 * faults are. Errors cross process boundaries (sandboxed processors, child processes) as plain
 * objects, so callers match on `code`, never on `instanceof` alone.
 */

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'BAD_IMAGE'
  | 'NOT_FOUND'
  | 'ENCODER_MISMATCH'
  | 'UNKNOWN_ENCODER'
  | 'MODEL_INVALID'
  | 'SHAPE_MISMATCH'
  | 'BACKEND_UNAVAILABLE'
  | 'STORAGE_TRANSIENT'
  | 'STORAGE_PERMANENT'
  | 'KEY_UNSAFE'
  | 'PAYLOAD_INVALID'
  | 'ABORTED'
  | 'INTERNAL';

const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['STORAGE_TRANSIENT', 'INTERNAL']);

export class OodError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OodError';
    this.code = code;
    this.retryable = RETRYABLE.has(code);
  }
}

export function configError(option: string, value: unknown, expected: string): OodError {
  return new OodError('CONFIG_INVALID', `invalid ${option}: expected ${expected}, got ${JSON.stringify(value)}`);
}

/** Turns any throwable into an OodError, keeping codes that crossed a process boundary as plain objects. */
export function coerceError(err: unknown): OodError {
  if (err instanceof OodError) return err;
  if (typeof err === 'object' && err !== null) {
    const rec = err as { code?: unknown; message?: unknown };
    const message = typeof rec.message === 'string' ? rec.message : String(err);
    if (typeof rec.code === 'string' && isErrorCode(rec.code)) return new OodError(rec.code, message, { cause: err });
    return new OodError('INTERNAL', message, { cause: err });
  }
  return new OodError('INTERNAL', String(err));
}

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'CONFIG_INVALID', 'BAD_IMAGE', 'NOT_FOUND', 'ENCODER_MISMATCH', 'UNKNOWN_ENCODER', 'MODEL_INVALID',
  'SHAPE_MISMATCH', 'BACKEND_UNAVAILABLE', 'STORAGE_TRANSIENT', 'STORAGE_PERMANENT', 'KEY_UNSAFE',
  'PAYLOAD_INVALID', 'ABORTED', 'INTERNAL',
]);

export function isErrorCode(code: string): code is ErrorCode {
  return CODES.has(code);
}
