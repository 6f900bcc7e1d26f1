/**
 * The paged scan state: index.json names the pages a run wrote; pages the index stops naming are
 * retired for one scan (a scan that planned on the state before the last one still finds them), then
 * deleted with their rows and aggregates; a state written before score rows were kept is read.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pageId, readStateIndex, readStatePage, STATE_KEYS, writeScanState, type PageRef, type StateIndex } from '../../src/shared/outputs/scan-state.js';
import { LocalStore } from '../../src/shared/storage/local-store.js';

function page(objects: Record<string, string>): { ref: PageRef; objects: Record<string, string> } {
  const keys = Object.keys(objects).sort();
  return { ref: { id: pageId(objects), first: keys[0]!, last: keys[keys.length - 1]!, count: keys.length }, objects };
}

const CARRY = '0123456789abcdef';
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
    const first = await writeScanState({ state, previous: undefined, pages: [a.ref, b.ref], run: run('r1') });
    expect(first).toMatchObject({ format: 'ood-audit-scan-state@3', carry: CARRY, retired: [] });
    expect(first.pages.map((p) => p.id)).toEqual([a.ref.id, b.ref.id]);
    // r2 changed b: b is retired, still there for a scan that planned on r1.
    await put(b2);
    const second = await writeScanState({ state, previous: first, pages: [a.ref, b2.ref], run: run('r2') });
    expect(second.retired).toEqual([b.ref.id]);
    expect(await has(b.ref.id)).toEqual([true, true, true]);
    // r3 changed b again: r2's retired page b goes (every file of it), b2 is retired in turn.
    await put(b3);
    const third = await writeScanState({ state, previous: (await readStateIndex(store, 'state'))!, pages: [a.ref, b3.ref], run: run('r3') });
    expect(third.retired).toEqual([b2.ref.id]);
    expect(await has(b.ref.id)).toEqual([false, false, false]);
    expect(await has(b2.ref.id)).toEqual([true, true, true]);
    expect(await readStatePage(store, 'state', a.ref.id)).toEqual(a.objects);
  });

  it('keeps a retired page that the new index names again', async () => {
    // r4 (planned on r2's state) names b2 again: r3's retired b2 stays.
    const now = (await readStateIndex(store, 'state'))!;
    const fourth = await writeScanState({ state, previous: now, pages: [a.ref, b2.ref], run: run('r4') });
    expect(fourth.pages.map((p) => p.id)).toEqual([a.ref.id, b2.ref.id]);
    expect(fourth.retired).toEqual([b3.ref.id]);
    expect(await has(b2.ref.id)).toEqual([true, true, true]);
  });

  it('reads a state written before score rows were kept (no carry binding: nothing is carried from it)', async () => {
    const old = { store: new LocalStore(mkdtempSync(path.join(tmpdir(), 'ood-state2-'))), prefix: '' };
    await old.store.put(STATE_KEYS.index, JSON.stringify({ format: 'ood-audit-scan-state@2', runId: 'r0', finishedAt: '2026-12-01T00:00:00Z', out: '/o', flaggedFraction: 0.1, scored: 3, pages: [a.ref] }));
    const index = await readStateIndex(old.store, old.prefix);
    expect(index).toMatchObject({ format: 'ood-audit-scan-state@2', retired: [] });
    expect(index?.carry).toBeUndefined();
  });
});
