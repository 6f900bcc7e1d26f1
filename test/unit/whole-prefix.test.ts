/**
 * The whole prefix as of a scan, without services: nights of a 100,000-object prefix go through the
 * planner's state pages (StatePages, StateCursor), rows as groups write them, the report's page
 * builder (buildWholePrefix) and the state index. An unchanged night reads one small aggregate per
 * page and reports the same prefix; a changed night rebuilds only the pages it touched and reports
 * exactly what a full rescan of the same images would; deleted objects leave; failed images are
 * retried; another model carries nothing; a corrupt aggregate fails naming its file, with no read
 * ahead left in flight; a missing page says whether another scan overtook this one; other report
 * settings rebuild the aggregates from the rows.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { calibrateScore } from '../../src/shared/calibration.js';
import { buildWholePrefix, PAGE_LOOKAHEAD, type WholePrefix } from '../../src/shared/jobs/whole-prefix.js';
import type { PageScoring } from '../../src/shared/outputs/prefix-pages.js';
import { readStateIndex, STATE_FORMAT, STATE_KEYS, StateCursor, writeScanState } from '../../src/shared/outputs/scan-state.js';
import { decodeScoreRows, encodeScoreRows, gatherRows } from '../../src/shared/outputs/score-rows.js';
import { StatePages } from '../../src/shared/outputs/state-pages.js';
import { encodeAggregate, partitionScores, type Aggregate } from '../../src/shared/report/aggregate.js';
import { Rng } from '../../src/shared/rng.js';
import type { Location } from '../../src/shared/storage/locate.js';
import { LocalStore } from '../../src/shared/storage/local-store.js';
import { compareKeys, type GetOptions, type ObjectInfo, type ObjectStore } from '../../src/shared/storage/object-store.js';

/** A store that counts what is read from it. */
class CountingStore extends LocalStore {
  bytes = 0;
  reads = 0;
  override async get(key: string, options?: GetOptions): Promise<Uint8Array> {
    const b = await super.get(key, options);
    this.bytes += b.byteLength;
    this.reads += 1;
    return b;
  }
}

/** A counting store whose reads each take `delayMs` (an object store's round trip), tracking how many overlap. */
class SlowStore extends CountingStore {
  inFlight = 0;
  maxInFlight = 0;
  constructor(root: string, private readonly delayMs: number) {
    super(root);
  }
  private async slow<T>(f: () => Promise<T>): Promise<T> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      return await f();
    } finally {
      this.inFlight -= 1;
    }
  }
  override async get(key: string, options?: GetOptions): Promise<Uint8Array> {
    return this.slow(() => super.get(key, options));
  }
  override async head(key: string): Promise<ObjectInfo | undefined> {
    return this.slow(() => super.head(key));
  }
}

const tmp = (name: string): string => mkdtempSync(path.join(tmpdir(), `ood-prefix-${name}-`));
const loc = (store: ObjectStore): Location => ({ store, prefix: '', uri: store.uri });

const rng = new Rng(3);
const cal = calibrateScore(Array.from({ length: 1000 }, () => rng.normal()), 0.95);
const scoring = (carry: string, topK = 8): PageScoring => ({ carry, calibration: { tpr: 0.95, holdoutCount: cal.n, scores: { fused: cal } }, primary: 'fused', partitionDepth: 1, topK });

/** One listed object: its key, ETag and the score it gets when scanned (null: it fails). */
interface Listed {
  readonly key: string;
  readonly etag: string;
  readonly score: number | null;
}

interface Night {
  readonly prefix: WholePrefix;
  /** Images scanned (new or changed, or all without carrying forward). */
  readonly scanned: number;
  /** Bytes read from the state folder by planning and the report. */
  readonly stateBytes: number;
  /** Wall time of the report's page builder (buildWholePrefix). */
  readonly buildMs: number;
}

/** One scan of `listing`: plans against the state, "scores" what changed, builds the whole prefix, records the state. */
async function night(state: CountingStore, listing: readonly Listed[], s: PageScoring, beforeBuild?: () => void, moved = false): Promise<Night> {
  const before = state.bytes;
  const previous = await readStateIndex(state, '');
  const incremental = previous?.format === STATE_FORMAT && previous.carry === s.carry;
  const work = loc(new LocalStore(tmp('work')));
  const pages = new StatePages(work, (id) => `state/${id}.json`, new Set(incremental ? previous.pages.map((p) => p.id) : []));
  const cursor = incremental ? new StateCursor(state, '', previous.pages) : undefined;
  const scanned: Listed[] = [];
  for (const o of [...listing].sort((a, b) => compareKeys(a.key, b.key))) {
    const same = cursor !== undefined && (await cursor.etagOf(o.key)) === o.etag;
    await pages.add({ key: o.key, size: 1, etag: o.etag }, same ? cursor.pageId : undefined);
    if (!same) scanned.push(o);
  }
  await pages.close();
  // Groups of up to 30,000 images write their scored rows (failed images have none).
  const groupRows: string[] = [];
  for (let g = 0; g * 30_000 < scanned.length; g++) {
    const rows = scanned.slice(g * 30_000, (g + 1) * 30_000).filter((o) => o.score !== null);
    const key = `groups/${g}.rows`;
    await work.store.put(key, encodeScoreRows({ table: { keys: rows.map((o) => o.key), digests: rows.map((o) => `sha-${o.key}`), scores: { fused: Float32Array.from(rows, (o) => o.score!) } } }));
    groupRows.push(key);
  }
  beforeBuild?.();
  const t0 = performance.now();
  const prefix = await buildWholePrefix({ state: { store: state, prefix: '' }, work, pages: pages.pages, plannedKey: (id) => `state/${id}.json`, groupRows, scoring: s, moved });
  const buildMs = performance.now() - t0;
  await writeScanState({ state: { store: state, prefix: '' }, previous, pages: prefix.pages, run: { runId: `r${Date.now()}`, finishedAt: new Date().toISOString(), out: '/o', flaggedFraction: 0, scored: prefix.aggregate.scored, carry: s.carry } });
  return { prefix, scanned: scanned.length, stateBytes: state.bytes - before, buildMs };
}

const flaggedOf = (a: Aggregate): number => [...a.partitions.values()].reduce((n, p) => n + p.flagged, 0);
const sortedScores = (a: Aggregate, name: string): number[] => Array.from(partitionScores(a.partitions.get(name)!)).sort((x, y) => x - y);

describe('whole prefix', () => {
  // 100,000 objects in 10 date partitions; partition d09 is shifted (half its images score +4).
  const lake: Listed[] = [];
  for (let i = 0; i < 100_000; i++) {
    const part = `d${String(Math.floor(i / 10_000)).padStart(2, '0')}`;
    lake.push({ key: `${part}/img-${String(i).padStart(6, '0')}.jpg`, etag: `e${i}`, score: rng.normal() + (part === 'd09' && i % 2 === 0 ? 4 : 0) });
  }
  const stateRoot = tmp('state');
  const state = new CountingStore(stateRoot);
  const A = scoring('aaaaaaaaaaaaaaaa');
  let first: Night;

  it('a night without new images reads one small aggregate per page and reports the same prefix', async () => {
    first = await night(state, lake, A);
    expect(first.scanned).toBe(100_000);
    expect(first.prefix.aggregate.scored).toBe(100_000);
    expect(first.prefix.rebuilt).toBe(first.prefix.pages.length);

    const second = await night(state, lake, A);
    expect(second.scanned).toBe(0);
    expect(second.prefix).toMatchObject({ carried: 100_000, kept: first.prefix.pages.length, rebuilt: 0 });
    expect(second.prefix.io.rebuilt).toBe(0);
    expect(second.prefix.pages).toEqual(first.prefix.pages);
    expect(encodeAggregate(second.prefix.aggregate)).toEqual(encodeAggregate(first.prefix.aggregate));
    // The report reads 4 bytes per image of exact scores and the galleries (no rows); the planner
    // reads the key lists (ETags) it compares the listing with.
    expect(second.prefix.io.bytes / 100_000).toBeLessThan(8);
    expect(second.prefix.io.reads).toBe(first.prefix.pages.length);
    expect(second.stateBytes / 100_000).toBeLessThan(50);
    console.log(`unchanged 100k-object night: ${first.prefix.pages.length} pages; report read ${second.prefix.io.bytes} bytes in ${second.prefix.io.reads} files, planning + report ${second.stateBytes} bytes of state`);
  }, 120_000);

  it('reads kept pages ahead: on a store with a 20 ms round trip, an unchanged night overlaps its page reads', async () => {
    const slow = new SlowStore(stateRoot, 20);
    const n = await night(slow, lake, A, () => {
      slow.maxInFlight = 0; // count the page builder's reads only (the planner's cursor reads ahead too)
    });
    expect(n.prefix).toMatchObject({ carried: 100_000, rebuilt: 0 });
    expect(encodeAggregate(n.prefix.aggregate)).toEqual(encodeAggregate(first.prefix.aggregate));
    const pages = n.prefix.pages.length;
    const sequential = pages * 2 * 20; // a HEAD and a GET of each page's aggregate, one after the other
    console.log(`unchanged night, ${pages} kept pages at 20 ms per request: page builder ${n.buildMs.toFixed(0)} ms (one request at a time: at least ${sequential} ms); at most ${slow.maxInFlight} requests at once`);
    expect(slow.maxInFlight).toBeGreaterThanOrEqual(PAGE_LOOKAHEAD / 2);
    expect(slow.maxInFlight).toBeLessThanOrEqual(PAGE_LOOKAHEAD);
    expect(n.buildMs).toBeLessThan(sequential);
  }, 120_000);

  it('a changed night rebuilds only the pages it touched, and reports what a full rescan would', async () => {
    // A new shifted partition, ten deleted objects and one changed object in d02, one image that fails.
    const changed = lake.filter((_, i) => i < 20_017 || i >= 20_027).map((o, i) => (i === 20_500 ? { ...o, etag: `${o.etag}-v2`, score: 5 } : o));
    const shifted = Array.from({ length: 1000 }, (_, i): Listed => ({ key: `d10/new-${String(i).padStart(4, '0')}.jpg`, etag: `n${i}`, score: i === 0 ? null : rng.normal() + (i % 2 === 0 ? 4 : 0) }));
    const listing = [...changed, ...shifted];
    const before = state.bytes;
    const third = await night(state, listing, A);
    expect(third.scanned).toBe(1001);
    expect(third.prefix.aggregate.scored).toBe(100_000 - 10 + 999);
    expect(third.prefix.carried).toBe(100_000 - 10 - 1);
    expect(third.prefix.rebuilt).toBeLessThanOrEqual(4);
    expect(third.prefix.aggregate.partitions.get('d10')).toBeDefined();
    expect(third.prefix.aggregate.partitions.get('d02')!.chunks.reduce((n, c) => n + c.length, 0)).toBe(9_990);
    console.log(`changed night: ${third.prefix.rebuilt} of ${third.prefix.pages.length} pages rebuilt, ${state.bytes - before} bytes of state read`);

    // The same listing scanned whole under another model binding carries nothing and agrees exactly.
    const full = await night(new CountingStore(tmp('full')), listing, A);
    expect(encodeAggregate(third.prefix.aggregate)).toEqual(encodeAggregate(full.prefix.aggregate));
    expect(flaggedOf(third.prefix.aggregate)).toBe(flaggedOf(full.prefix.aggregate));
    expect(sortedScores(third.prefix.aggregate, 'd10')).toEqual(sortedScores(full.prefix.aggregate, 'd10'));

    // The failed image is not in the state: the next night scans it again (and only it).
    const fourth = await night(state, listing, A);
    expect(fourth.scanned).toBe(1);
    expect(fourth.prefix.aggregate.scored).toBe(third.prefix.aggregate.scored);
  }, 120_000);

  it('another model carries nothing forward', async () => {
    const B = scoring('bbbbbbbbbbbbbbbb');
    const other = await night(state, lake, B);
    expect(other.scanned).toBe(100_000);
    expect(other.prefix).toMatchObject({ carried: 0, kept: 0 });
    expect(other.prefix.aggregate.scored).toBe(100_000);
  }, 120_000);

  it('other report settings rebuild the aggregates from the rows; a corrupt aggregate fails naming its file', async () => {
    const B = scoring('bbbbbbbbbbbbbbbb');
    const wider = await night(state, lake, { ...B, topK: 12 });
    expect(wider.scanned).toBe(0);
    expect(wider.prefix.io.rebuilt).toBe(wider.prefix.pages.length);
    expect(wider.prefix.aggregate.mostOod).toHaveLength(12);

    const index = (await readStateIndex(state, ''))!;
    const victim = index.pages[3]!.id;
    await state.put(STATE_KEYS.aggregate(victim), 'OODPAGG1 this is not an aggregate');
    await expect(night(state, lake, { ...B, topK: 12 })).rejects.toThrow(new RegExp(`pages/${victim}\\.agg: `));
    // The pages read ahead of the failed one are no longer in flight when the build has failed; a
    // corrupt file is not blamed on another scan, even when the state moved since planning.
    const slow = new SlowStore(stateRoot, 5);
    const corrupt = night(slow, lake, { ...B, topK: 12 }, undefined, true);
    await expect(corrupt).rejects.toThrow(new RegExp(`pages/${victim}\\.agg: `));
    await expect(corrupt).rejects.not.toThrow(/another scan/);
    expect(slow.inFlight).toBe(0);
    await state.delete(STATE_KEYS.rows(victim));
    await state.delete(STATE_KEYS.aggregate(victim));
    await expect(night(state, lake, { ...B, topK: 12 })).rejects.toThrow(new RegExp(`pages/${victim}\\.rows: missing \\(the scan state is incomplete: scan with --full to rebuild it\\)$`));
    // A missing page when another scan recorded the state since this one planned: that scan deleted it.
    await expect(night(state, lake, { ...B, topK: 12 }, undefined, true)).rejects.toThrow(new RegExp(`pages/${victim}\\.rows: missing \\(another scan of this prefix completed while this one ran: scan again\\)$`));
  }, 120_000);

  it('score rows survive their binary frame, and gather keeps only what every source has', () => {
    const t1 = { keys: ['a', 'b'], digests: ['1', '2'], scores: { fused: Float32Array.of(1, 2), mse: Float32Array.of(3, 4) }, properties: { values: new Float32Array(2 * 13).fill(0.5), formats: ['jpeg', 'png'] } };
    const back = decodeScoreRows(encodeScoreRows({ table: t1, etags: ['x', 'y'], page: 'p', binding: 'b' }), 'test');
    expect(back).toMatchObject({ etags: ['x', 'y'], page: 'p', binding: 'b' });
    expect(Array.from(back.table.scores.mse!)).toEqual([3, 4]);
    expect(back.table.properties?.formats).toEqual(['jpeg', 'png']);
    const t2 = { keys: ['c'], digests: ['3'], scores: { fused: Float32Array.of(5) } };
    const g = gatherRows([{ table: t2, row: 0 }, { table: back.table, row: 1 }]);
    expect(g.keys).toEqual(['c', 'b']);
    expect(Object.keys(g.scores)).toEqual(['fused']);
    expect(g.properties).toBeUndefined();
    expect(() => decodeScoreRows(encodeScoreRows({ table: t1 }).subarray(0, 60), 'cut.rows')).toThrow(/cut\.rows: /);
  });
});
