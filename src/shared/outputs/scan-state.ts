/**
 * The scan state of an input prefix: what the last completed scan of it with a model saw (every
 * image key with its ETag), where its outputs went and its flagged fraction. Incremental scans read
 * it to skip unchanged objects; the report compares with it.
 *
 * It is paged so that a nightly scan reads and writes state in proportion to what it touches, not to
 * the size of the lake: <model>/scans/<hash of the input URI>/
 *
 *   index.json        the last run, and the pages in key order: [{ id, first, last, count }]
 *   pages/<id>.json   { objects: { key: etag } } for a contiguous range of keys
 *
 * Page boundaries are content-defined (after a key whose hash is 0 modulo STATE_PAGE, or at
 * 4 x STATE_PAGE keys), so a change moves at most the boundaries around it, and a page's id is the
 * hash of its content: an unchanged range keeps its page file, and a run writes only new pages.
 * Everything read back is validated like job data.
 */
import { z } from 'zod';
import { stableHash } from '../hash.js';
import { keyHash } from '../rng.js';
import { joinUri } from '../storage/locate.js';
import { compareKeys, getValidJson, joinKey, type ObjectStore } from '../storage/object-store.js';

/** Expected keys per state page. */
export const STATE_PAGE = 4096;

const pageRef = z.object({ id: z.string().regex(/^[0-9a-f]{16}$/), first: z.string(), last: z.string(), count: z.number().int().min(0) });
export type PageRef = z.infer<typeof pageRef>;

export const stateIndexSchema = z.object({
  format: z.literal('ood-audit-scan-state@2'),
  runId: z.string(),
  finishedAt: z.string(),
  out: z.string(),
  flaggedFraction: z.number(),
  scored: z.number().int().min(0),
  pages: z.array(pageRef),
});
export type StateIndex = z.infer<typeof stateIndexSchema>;

export const statePageSchema = z.object({ objects: z.record(z.string(), z.string()) });

/**
 * Where the scan state of `inputUri` scanned with the model at `modelUri` lives (a folder). Scans
 * flagging with another score than the model's primary (`primary`) keep their own state and trend.
 */
export function scanStateLocation(modelUri: string, inputUri: string, primary?: string): string {
  return joinUri(modelUri, 'scans', primary === undefined ? stableHash(inputUri) : stableHash(inputUri, primary));
}

export const STATE_KEYS = { index: 'index.json', page: (id: string): string => `pages/${id}.json` } as const;

export async function readStateIndex(store: ObjectStore, prefix: string): Promise<StateIndex | undefined> {
  const key = joinKey(prefix, STATE_KEYS.index);
  if ((await store.head(key)) === undefined) return undefined;
  return getValidJson(store, key, stateIndexSchema);
}

export async function readStatePage(store: ObjectStore, prefix: string, id: string): Promise<Record<string, string>> {
  return (await getValidJson(store, joinKey(prefix, STATE_KEYS.page(id)), statePageSchema)).objects;
}

/** Whether a page ends after `key` (content-defined boundary). */
export function pageEndsAfter(key: string, count: number): boolean {
  return count >= 4 * STATE_PAGE || keyHash(0x5ca1e, key) % STATE_PAGE === 0;
}

export function pageId(objects: Readonly<Record<string, string>>): string {
  return stableHash(Object.entries(objects));
}

/**
 * Reads the previous state page by page while the listing goes forward in key order: `etagOf(key)`
 * answers from the one page whose range holds the key (keys must be asked in ascending order).
 */
export class StateCursor {
  private next = 0;
  private current: { ref: PageRef; objects: Record<string, string> } | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly prefix: string,
    private readonly pages: readonly PageRef[],
  ) {}

  async etagOf(key: string): Promise<string | undefined> {
    if (this.current !== undefined && compareKeys(key, this.current.ref.last) <= 0) return compareKeys(key, this.current.ref.first) >= 0 ? this.current.objects[key] : undefined;
    for (;;) {
      const ref = this.pages[this.next];
      if (ref === undefined || compareKeys(key, ref.first) < 0) return undefined;
      this.next += 1;
      // A page wholly before the key (its objects were all deleted or skipped) is never read.
      if (compareKeys(key, ref.last) > 0) continue;
      this.current = { ref, objects: await readStatePage(this.store, this.prefix, ref.id) };
      return this.current.objects[key];
    }
  }
}

/** A range of keys (inclusive) whose state is dropped: the images of shards that were not scored. */
export interface KeyRange {
  readonly first: string;
  readonly last: string;
}

export interface WriteStateParams {
  /** The state folder. */
  readonly state: { readonly store: ObjectStore; readonly prefix: string };
  /** The run's work area, holding the state pages it planned, and their keys in it. */
  readonly work: { readonly store: ObjectStore; readonly pageKey: (id: string) => string };
  /** The state as it is now (its pages are replaced). */
  readonly previous: StateIndex | undefined;
  /**
   * The run id of the state the run's planning read. When another scan of the prefix wrote the state
   * since, pages the run kept from the old state may be gone: those are dropped (their keys are
   * scanned again next time), never named while missing.
   */
  readonly base: string | null;
  /** The pages of what the run listed, in key order. */
  readonly pages: readonly PageRef[];
  /** Keys within these ranges are left out (the next incremental scan retries them). */
  readonly failedRanges: readonly KeyRange[];
  readonly run: Omit<StateIndex, 'format' | 'pages'>;
}

const inRange = (key: string, r: KeyRange): boolean => compareKeys(key, r.first) >= 0 && compareKeys(key, r.last) <= 0;
const overlaps = (p: PageRef, r: KeyRange): boolean => compareKeys(r.last, p.first) >= 0 && compareKeys(r.first, p.last) <= 0;

/**
 * Records what a completed run saw: its new pages move from the work area into the state folder
 * (pages that hold keys of unscored shards are rewritten without them), then index.json; pages of
 * the previous index that the new one no longer names are deleted. Reads and writes the pages that
 * changed, not the whole state.
 */
export async function writeScanState(p: WriteStateParams): Promise<StateIndex> {
  const pages: PageRef[] = [];
  const have = new Set(p.previous?.pages.map((r) => r.id) ?? []);
  const pageKey = (id: string): string => joinKey(p.state.prefix, STATE_KEYS.page(id));
  const planned = p.work.pageKey;
  const moved = (p.previous?.runId ?? null) !== p.base;
  for (const ref of p.pages) {
    const ranges = p.failedRanges.filter((r) => overlaps(ref, r));
    const fromWork = (await p.work.store.head(planned(ref.id))) !== undefined;
    if (!fromWork && moved && (await p.state.store.head(pageKey(ref.id))) === undefined) continue;
    if (ranges.length === 0) {
      if (fromWork && !have.has(ref.id)) await p.state.store.put(pageKey(ref.id), await p.work.store.get(planned(ref.id)));
      pages.push(ref);
      continue;
    }
    const objects = fromWork ? (await getValidJson(p.work.store, planned(ref.id), statePageSchema)).objects : await readStatePage(p.state.store, p.state.prefix, ref.id);
    const kept = Object.fromEntries(Object.entries(objects).filter(([k]) => !ranges.some((r) => inRange(k, r))));
    const id = pageId(kept);
    await p.state.store.put(pageKey(id), JSON.stringify({ objects: kept }));
    pages.push({ id, first: ref.first, last: ref.last, count: Object.keys(kept).length });
  }
  const index: StateIndex = { format: 'ood-audit-scan-state@2', ...p.run, pages };
  await p.state.store.put(joinKey(p.state.prefix, STATE_KEYS.index), JSON.stringify(index));
  const named = new Set(pages.map((r) => r.id));
  for (const id of have) if (!named.has(id)) await p.state.store.delete(pageKey(id)).catch(() => undefined);
  return index;
}
