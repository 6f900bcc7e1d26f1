/**
 * The paged scan state: pages move from a run's work area into the state folder, and a run that
 * planned on an older state than the one it finds (another scan of the prefix completed meanwhile)
 * never names a page that is gone.
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

const run = (runId: string): Omit<StateIndex, 'format' | 'pages'> => ({ runId, finishedAt: '2026-12-02T00:00:00Z', out: '/out', flaggedFraction: 0, scored: 0 });

describe('scan state', () => {
  const store = new LocalStore(mkdtempSync(path.join(tmpdir(), 'ood-state-')));
  // Each run's work area holds the pages its planning found new.
  let runDir = 'r1';
  const workKey = (id: string): string => `work/${runDir}/state/${id}.json`;
  const put = async (key: string, objects: Record<string, string>): Promise<void> => store.put(key, JSON.stringify({ objects }));
  const a = page({ 'a/1.jpg': 'e1', 'a/2.jpg': 'e2' });
  const b = page({ 'b/1.jpg': 'e3' });
  const b2 = page({ 'b/1.jpg': 'e4' });
  const c = page({ 'c/1.jpg': 'e5' });

  it('writes only new pages, then deletes the pages no index names', async () => {
    for (const p of [a, b]) await put(workKey(p.ref.id), p.objects);
    const first = await writeScanState({ state: { store, prefix: 'state' }, work: { store, pageKey: workKey }, previous: undefined, base: null, pages: [a.ref, b.ref], failedRanges: [], run: run('r1') });
    expect(first.pages.map((p) => p.id)).toEqual([a.ref.id, b.ref.id]);
    // r2 planned on r1: page a unchanged (not in its work area), b changed.
    runDir = 'r2';
    await put(workKey(b2.ref.id), b2.objects);
    const second = await writeScanState({ state: { store, prefix: 'state' }, work: { store, pageKey: workKey }, previous: first, base: 'r1', pages: [a.ref, b2.ref], failedRanges: [], run: run('r2') });
    expect(second.pages.map((p) => p.id)).toEqual([a.ref.id, b2.ref.id]);
    expect(await store.head(`state/${STATE_KEYS.page(b.ref.id)}`)).toBeUndefined();
    expect(await readStatePage(store, 'state', a.ref.id)).toEqual(a.objects);
  });

  it('drops pages it kept from an older state when another scan removed them meanwhile', async () => {
    // r3 planned on r1's state (a, b kept; c new), but r2 completed first and deleted b.
    runDir = 'r3';
    await put(workKey(c.ref.id), c.objects);
    const now = await readStateIndex(store, 'state');
    expect(now?.runId).toBe('r2');
    const third = await writeScanState({ state: { store, prefix: 'state' }, work: { store, pageKey: workKey }, previous: now, base: 'r1', pages: [a.ref, b.ref, c.ref], failedRanges: [], run: run('r3') });
    // b is gone: its keys are left out (the next incremental scan scans them again), never named while missing.
    expect(third.pages.map((p) => p.id)).toEqual([a.ref.id, c.ref.id]);
    for (const ref of third.pages) expect(await store.head(`state/${STATE_KEYS.page(ref.id)}`)).toBeDefined();
    // r2's page that r3 does not name is removed with r2's index.
    expect(await store.head(`state/${STATE_KEYS.page(b2.ref.id)}`)).toBeUndefined();
  });

  it('leaves out the keys of shards that were not scored', async () => {
    runDir = 'r4';
    const now = await readStateIndex(store, 'state');
    const fourth = await writeScanState({ state: { store, prefix: 'state' }, work: { store, pageKey: workKey }, previous: now, base: 'r3', pages: [a.ref, c.ref], failedRanges: [{ first: 'a/2.jpg', last: 'a/2.jpg' }], run: run('r4') });
    expect(fourth.pages[0]!.count).toBe(1);
    expect(await readStatePage(store, 'state', fourth.pages[0]!.id)).toEqual({ 'a/1.jpg': 'e1' });
  });
});
