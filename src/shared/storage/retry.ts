/**
 * Retry with jittered exponential backoff ("full jitter"): only errors whose code is retryable in
 * the error table (errors.ts) are retried; permanent ones are rethrown at once.
 */
import { coerceError } from '../errors.js';

export interface RetryOptions {
  /** Attempts in all, including the first. */
  readonly attempts: number;
  /** First backoff ceiling, ms. */
  readonly baseMs: number;
  /** Largest backoff ceiling, ms. */
  readonly maxMs: number;
  /** Names the operation in the final error. */
  readonly label?: string;
  readonly onRetry?: (attempt: number, delayMs: number, err: Error) => void;
}

export const DEFAULT_RETRY: RetryOptions = Object.freeze({ attempts: 8, baseMs: 200, maxMs: 10_000 });

export async function withRetry<T>(fn: () => Promise<T>, options: Partial<RetryOptions> = {}): Promise<T> {
  const o = { ...DEFAULT_RETRY, ...options };
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const e = coerceError(err);
      if (!e.retryable || attempt >= o.attempts) {
        if (e.retryable && attempt >= o.attempts) e.message = `${e.message} (gave up after ${attempt} attempts)`;
        throw e;
      }
      const ceiling = Math.min(o.maxMs, o.baseMs * 2 ** (attempt - 1));
      const delay = Math.random() * ceiling;
      o.onRetry?.(attempt, delay, e);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
