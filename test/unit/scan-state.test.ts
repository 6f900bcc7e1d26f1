/**
 * The paged scan state: index.json names the pages a run wrote; pages the index stops naming are
 * retired for one scan (a scan that planned on the state before the last one still finds them), then
 * deleted with their rows and aggregates; a run whose state another scan replaced meanwhile records
 * nothing (its index could name a page that scan deletes); a retried report that recorded its state
 * already changes nothing; the cursor reads one page ahead;
 * a state written before score rows were kept is read.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pageId, readStateIndex, readStatePage, STATE_KEYS, StateCursor, writeScanState, type PageRef, type StateIndex, type WriteStateParams } from '../../src/shared/outputs/scan-state.js';
import { LocalStore } from '../../src/shared/storage/local-store.js';

function page(objects: Record<string, string>): { ref: PageRef; objects: Record<string, string> } {
  const keys = Object.keys(objects).sort();
  return { ref: { id: pageId(objects), first: keys[0]!, last: keys[keys.length - 1]!, count: keys.length }, objects };
}

const CARRY = '0123456789abcdef';
/** writeScanState, which must record the state. */
async function record(p: WriteStateParams): Promise<StateIndex> {
  const r = await writeScanState(p);
  if (!r.recorded) throw new Error(`not recorded: ${r.reason}`);
  return r.index;
}

const run = (runId: string): Omit<StateIndex, 'format' | 'pages' | 'retired'> & { carry: string } => ({ runId, finishedAt: '2026-12-02T00:00:00Z', out: '/out', flaggedFraction: 0, scored: 0, carry: CARRY });

describe('scan state', () => {
  const store = new LocalStore(mkdtempSync(path.join(tmpdir(), 'ood-state-')));
  const state = { store, prefix: 'state' };
  /** A page's three files, as the report writes them. */
  const put = async (p: { ref: PageRef; objects: Record<string, string> }): Promise<void> => {
    await store.put(`state/${STATE_KEYS.page(p.ref.id)}`, JSON.stringify({ objects: p.objects }));
    await store.put(`state/${STATE_KEYS.rows(p.ref.id)}`, 'rows');
    await store.put(`state/${STATE_KEYS.aggregate(p.ref.id)}`, 'agg');
  };
  const has = async (id: string): Promise<boolean[]> => Promise.all([STATE_KEYS.page(id), STATE_KEYS.rows(id), STATE_KEYS.aggregate(id)].map(async (k) => (await store.head(`state/${k}`)) !== undefined));
  const a = page({ 'a/1.jpg': 'e1', 'a/2.jpg': 'e2' });
  const b = page({ 'b/1.jpg': 'e3' });
  const b2 = page({ 'b/1.jpg': 'e4' });
  const b3 = page({ 'b/1.jpg': 'e5' });

  it('names the pages of the run, retires the ones it drops for one scan, then deletes them', async () => {
    for (const p of [a, b]) await put(p);
    const first = await record({ state, previous: undefined, pages: [a.ref, b.ref], run: run('r1') });
    expect(first).toMatchObject({ format: 'ood-audit-scan-state@3', carry: CARRY, retired: [] });
    expect(first.pages.map((p) => p.id)).toEqual([a.ref.id, b.ref.id]);
    // r2 changed b: b is retired, still there for a scan that planned on r1.
    await put(b2);
    const second = await record({ state, previous: first, pages: [a.ref, b2.ref], run: run('r2') });
    expect(second.retired).toEqual([b.ref.id]);
    expect(await has(b.ref.id)).toEqual([true, true, true]);
    // r3 changed b again: r2's retired page b goes (every file of it), b2 is retired in turn.
    await put(b3);
    const third = await record({ state, previous: (await readStateIndex(store, 'state'))!, pages: [a.ref, b3.ref], run: run('r3') });
    expect(third.retired).toEqual([b2.ref.id]);
    expect(await has(b.ref.id)).toEqual([false, false, false]);
    expect(await has(b2.ref.id)).toEqual([true, true, true]);
    expect(await readStatePage(store, 'state', a.ref.id)).toEqual(a.objects);
  });

  it('keeps a retired page that the new index names again', async () => {
    // r4 (planned on r2's state) names b2 again: r3's retired b2 stays.
    const now = (await readStateIndex(store, 'state'))!;
    const fourth = await record({ state, previous: now, pages: [a.ref, b2.ref], run: run('r4') });
    expect(fourth.pages.map((p) => p.id)).toEqual([a.ref.id, b2.ref.id]);
    expect(fourth.retired).toEqual([b3.ref.id]);
    expect(await has(b2.ref.id)).toEqual([true, true, true]);
  });

  it('overlapping scans: a run whose state moved under it records nothing and says why', async () => {
    const r4 = (await readStateIndex(store, 'state'))!;
    const b4 = page({ 'b/1.jpg': 'e6' });
    // Scans X and Y both report on r4's state. Y records first: it retires b2 and deletes r4's retired b3.
    await put(b4);
    await record({ state, previous: r4, pages: [a.ref, b4.ref], run: run('r5') });
    expect(await has(b3.ref.id)).toEqual([false, false, false]);
    // X had written b3 again (b/1.jpg back to the ETag it had in r3) before Y deleted it: recording
    // X's index would name a deleted page. X records nothing; Y's state stands, and nothing is deleted.
    const x = await writeScanState({ state, previous: r4, pages: [a.ref, b3.ref], run: run('x') });
    expect(x).toEqual({ recorded: false, reason: 'scan r5 recorded the state of this prefix while this run was reporting; its state stands, and the next scan plans on it' });
    expect((await readStateIndex(store, 'state'))?.runId).toBe('r5');
    expect(await has(b2.ref.id)).toEqual([true, true, true]);
    expect(await has(b4.ref.id)).toEqual([true, true, true]);
    // A retried report of r5 (its first attempt recorded the index, then failed): nothing changes,
    // and r5's retired page b2 stays for a scan that planned on r4.
    const again = await writeScanState({ state, previous: undefined, pages: [a.ref, b4.ref], run: run('r5') });
    expect(again).toMatchObject({ recorded: true, index: { runId: 'r5', retired: [b2.ref.id] } });
    expect(await has(b2.ref.id)).toEqual([true, true, true]);
    // A first scan racing another first scan: the same.
    const fresh = { store: new LocalStore(mkdtempSync(path.join(tmpdir(), 'ood-state3-'))), prefix: '' };
    await record({ state: fresh, previous: undefined, pages: [a.ref], run: run('f1') });
    expect(await writeScanState({ state: fresh, previous: undefined, pages: [a.ref], run: run('f2') })).toMatchObject({ recorded: false, reason: expect.stringMatching(/^scan f1 recorded/) as unknown });
  });

  it('the cursor reads the next page ahead, and a page read ahead but never needed fails nothing', async () => {
    const c = page({ 'c/1.jpg': 'e8' });
    const d = page({ 'd/1.jpg': 'e9' });
    await put(c); // d's files are never written: reading it fails
    const cursor = new StateCursor(store, 'state', [a.ref, c.ref, d.ref]);
    expect(await cursor.etagOf('a/1.jpg')).toBe('e1');
    expect(await cursor.etagOf('c/1.jpg')).toBe('e8'); // c came from the read ahead; d is now read ahead and fails
    expect(cursor.pageId).toBe(c.ref.id);
    await new Promise((r) => setTimeout(r, 50)); // an unhandled rejection would fail this test
    await expect(cursor.etagOf('d/1.jpg')).rejects.toThrow(/pages\/[0-9a-f]{16}\.json/);
  });

  it('reads a state written before score rows were kept (no carry binding: nothing is carried from it)', async () => {
    const old = { store: new LocalStore(mkdtempSync(path.join(tmpdir(), 'ood-state2-'))), prefix: '' };
    await old.store.put(STATE_KEYS.index, JSON.stringify({ format: 'ood-audit-scan-state@2', runId: 'r0', finishedAt: '2026-12-01T00:00:00Z', out: '/o', flaggedFraction: 0.1, scored: 3, pages: [a.ref] }));
    const index = await readStateIndex(old.store, old.prefix);
    expect(index).toMatchObject({ format: 'ood-audit-scan-state@2', retired: [] });
    expect(index?.carry).toBeUndefined();
  });
});
