/**
 * Accounting: every entry listed under a scanned prefix ends up in exactly one of scored,
 * failed (failures.csv, with the reason) or skipped (counted by reason; named in skipped.csv unless
 * it is only "unchanged" or "not sampled"). The report job checks the equation
 * listed = scored + failed + skipped before it writes summary.json: a run that lost an entry fails.
 */
import { OodError } from '../errors.js';

/** Why a listed entry is not scanned, besides what the store says of entries it could not list. */
export const SKIP_REASONS = {
  notImage: 'not an image (file extension)',
  unchanged: 'unchanged since the previous scan',
  notSampled: 'not in the --limit sample',
} as const;

export interface Accounting {
  readonly listed: number;
  readonly scored: number;
  readonly failed: number;
  readonly skipped: number;
  readonly skippedByReason: Readonly<Record<string, number>>;
}

export function accounting(listed: number, scored: number, failed: number, skippedByReason: Readonly<Record<string, number>>, where: string): Accounting {
  const skipped = Object.values(skippedByReason).reduce((a, b) => a + b, 0);
  if (listed !== scored + failed + skipped) {
    throw new OodError('INTERNAL', `${where}: accounting does not add up: ${listed} listed, but ${scored} scored + ${failed} failed + ${skipped} skipped = ${scored + failed + skipped}`);
  }
  return { listed, scored, failed, skipped, skippedByReason };
}

/** One line: "204 listed = 200 scored + 4 failed + 1 skipped (1 not an image (file extension))". */
export function formatAccounting(a: Accounting): string {
  const reasons = Object.entries(a.skippedByReason).map(([r, n]) => `${n} ${r}`);
  return `${a.listed} listed = ${a.scored} scored + ${a.failed} failed + ${a.skipped} skipped${reasons.length > 0 ? ` (${reasons.join(', ')})` : ''}`;
}
