/** Schedules are checked before they are stored: cron fields, time zones, names, with one-line errors. */
import { describe, expect, it } from 'vitest';
import { OodError } from '../../src/shared/errors.js';
import { checkScheduleName, checkTimeZone, formatInZone, nextFirings } from '../../src/shared/queue/schedules.js';

const FROM = Date.parse('2026-03-27T12:00:00Z'); // a Friday, two days before Europe's switch to summer time
const iso = (ms: number[]): string[] => ms.map((t) => new Date(t).toISOString());

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(OodError);
    expect((err as OodError).code).toBe('CONFIG_INVALID');
    expect((err as OodError).message).not.toMatch(/\n/);
    return (err as OodError).message;
  }
  throw new Error('not refused');
}

describe('schedule checks', () => {
  it('gives the next three firings of 5-field, 6-field and macro expressions, in the schedule time zone', () => {
    expect(iso(nextFirings('0 2 * * *', 'UTC', FROM))).toEqual(['2026-03-28T02:00:00.000Z', '2026-03-29T02:00:00.000Z', '2026-03-30T02:00:00.000Z']);
    // 02:30 Paris: 01:30Z in winter, 00:30Z in summer; on the night of the switch 02:30 does not exist.
    const paris = iso(nextFirings('30 2 * * *', 'Europe/Paris', FROM));
    expect(paris[0]).toBe('2026-03-28T01:30:00.000Z');
    expect(paris[2]).toBe('2026-03-30T00:30:00.000Z');
    expect(iso(nextFirings('*/4 * * * * *', 'UTC', FROM))).toEqual(['2026-03-27T12:00:04.000Z', '2026-03-27T12:00:08.000Z', '2026-03-27T12:00:12.000Z']);
    expect(iso(nextFirings('@daily', 'UTC', FROM, 1))).toEqual(['2026-03-28T00:00:00.000Z']);
    expect(iso(nextFirings(' 0 2 * * MON-FRI ', 'UTC', FROM, 2))).toEqual(['2026-03-30T02:00:00.000Z', '2026-03-31T02:00:00.000Z']);
  });

  it('refuses a wrong number of fields, values out of range, unknown macros and zones, in one line', () => {
    expect(refusal(() => nextFirings('0 2 * *', 'UTC', FROM))).toBe('invalid --cron "0 2 * *": expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, got 4');
    expect(refusal(() => nextFirings('0 0 2 * * * *', 'UTC', FROM))).toMatch(/^invalid --cron "0 0 2 \* \* \* \*": expected 5 fields .* got 7$/);
    expect(refusal(() => nextFirings('61 * * * *', 'UTC', FROM))).toMatch(/^invalid --cron "61 \* \* \* \*": .*61/);
    expect(refusal(() => nextFirings('not a cron at all', 'UTC', FROM))).toMatch(/^invalid --cron "not a cron at all": /);
    expect(refusal(() => nextFirings('@reboot', 'UTC', FROM))).toMatch(/^invalid --cron "@reboot": expected one of @yearly/);
    expect(refusal(() => nextFirings('0 0 30 2 *', 'UTC', FROM))).toMatch(/^invalid --cron "0 0 30 2 \*": /);
    expect(refusal(() => checkTimeZone('Mars/Olympus'))).toBe('invalid --tz "Mars/Olympus": not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York)');
    expect(refusal(() => nextFirings('0 2 * * *', 'Europe/Pariss', FROM))).toMatch(/^invalid --tz "Europe\/Pariss"/);
    expect(checkTimeZone('America/New_York')).toBe('America/New_York');
  });

  it('takes names that can be scheduler and job ids', () => {
    expect(checkScheduleName('nightly-lake.v2_a')).toBe('nightly-lake.v2_a');
    for (const bad of ['', 'a:b', 'two words', '-lead', 'x'.repeat(65)]) expect(refusal(() => checkScheduleName(bad))).toMatch(/^invalid --name /);
  });

  it('shows a firing in the schedule time zone', () => {
    expect(formatInZone(Date.parse('2026-07-01T00:30:00Z'), 'Europe/Paris')).toBe('2026-07-01 02:30:00 Europe/Paris');
    expect(formatInZone(Date.parse('2026-07-01T00:30:00Z'), 'UTC')).toBe('2026-07-01 00:30:00 UTC');
  });
});
