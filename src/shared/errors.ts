/**
 * The error taxonomy. Every error ood-audit raises on purpose is an `OodError` with a stable `code`.
 * ERROR_TABLE is the one place that says, per code, whether a job retries it (transient storage and
 * queue faults) or fails at once (everything else, unknown errors included), and which exit status
 * the CLI gives it. Errors cross process boundaries (sandboxed processors, child processes) as plain
 * objects, so callers match on `code`, never on `instanceof` alone.
 */

export const ERROR_TABLE = {
  /** A bad option, environment variable or argument (exit 2). */
  CONFIG_INVALID: { retryable: false, exit: 2 },
  UNKNOWN_ENCODER: { retryable: false, exit: 2 },
  BAD_IMAGE: { retryable: false, exit: 1 },
  NOT_FOUND: { retryable: false, exit: 1 },
  ENCODER_MISMATCH: { retryable: false, exit: 1 },
  /** A model folder, feature set, checkpoint or manifest that is incomplete or not ours. */
  MODEL_INVALID: { retryable: false, exit: 1 },
  SHAPE_MISMATCH: { retryable: false, exit: 1 },
  BACKEND_UNAVAILABLE: { retryable: false, exit: 1 },
  /** Throttling, 5xx, resets: retried with backoff. */
  STORAGE_TRANSIENT: { retryable: true, exit: 1 },
  /** Missing bucket, denied access, bad credentials. */
  STORAGE_PERMANENT: { retryable: false, exit: 1 },
  KEY_UNSAFE: { retryable: false, exit: 1 },
  /** One object that cannot be read (permission, I/O error): a per-image failure, not a job failure. */
  OBJECT_UNREADABLE: { retryable: false, exit: 1 },
  /** An object over its size limit: a per-image failure for an image (--max-bytes); a job failure for a state, model or JSON file. */
  OBJECT_TOO_LARGE: { retryable: false, exit: 1 },
  /** Job data that does not match the queue contract. */
  PAYLOAD_INVALID: { retryable: false, exit: 1 },
  ABORTED: { retryable: false, exit: 1 },
  /** Another command holds a lock this one needs right now (try again when it is done): exit 1, not a bad option. */
  BUSY: { retryable: false, exit: 1 },
  /** A run whose listing never completed (its planner failed or stopped). */
  LISTING_INCOMPLETE: { retryable: false, exit: 1 },
  /** A bug or an unexpected state: never retried (a retry would fail the same way). */
  INTERNAL: { retryable: false, exit: 1 },
} as const satisfies Record<string, { retryable: boolean; exit: number }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export class OodError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OodError';
    this.code = code;
  }

  get retryable(): boolean {
    return ERROR_TABLE[this.code].retryable;
  }

  get exitCode(): number {
    return ERROR_TABLE[this.code].exit;
  }
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_TABLE, code);
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
