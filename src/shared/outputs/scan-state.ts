/**
 * The scan state of an input prefix: what the last completed scan of it with a model saw (every
 * scored image key with its ETag, and the image's score row), where its outputs went and its flagged
 * fraction. Incremental scans read it to skip unchanged objects; the report carries the unchanged
 * objects' scores forward from it, so every report describes the whole prefix.
 *
 * It is paged so that a nightly scan reads and writes state in proportion to what it touches, not to
 * the size of the lake: <model>/scans/<hash of the input URI>/
 *
 *   index.json        the last run, what its scores are bound to (`carry`: the model's identity and
 *                     the scoring settings), and the pages in key order: [{ id, first, last, count }]
 *   pages/<id>.json   { objects: { key: etag } } for a contiguous range of keys (scored images only)
 *   pages/<id>.rows   the same images' score rows (outputs/score-rows.ts), bound to the page and `carry`
 *   pages/<id>.agg    the report aggregate of those rows (outputs/prefix-pages.ts)
 *
 * Page boundaries are content-defined (after a key whose hash is 0 modulo STATE_PAGE, or at
 * 4 x STATE_PAGE keys), so a change moves at most the boundaries around it, and a page's id is the
 * hash of its content: an unchanged range keeps its page files, and a run writes only new pages.
 * Pages are kept for one scan after the index stops naming them (`retired`), so a scan that planned
 * on the state before the last one still finds what it carries forward. Everything read back is
 * validated like job data.
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

/** The current format; @2 (before score rows were kept) is read, but carries nothing forward. */
export const STATE_FORMAT = 'ood-audit-scan-state@3';

const hex16 = z.string().regex(/^[0-9a-f]{16}$/);

export const stateIndexSchema = z.object({
  format: z.enum(['ood-audit-scan-state@2', STATE_FORMAT]),
  runId: z.string(),
  finishedAt: z.string(),
  out: z.string(),
  /** The whole prefix's flagged fraction and scored images (@2: the scan's own). */
  flaggedFraction: z.number(),
  scored: z.number().int().min(0),
  /** What the pages' scores are bound to: a hash of the model's identity and the scoring settings (@3). */
  carry: hex16.optional(),
  pages: z.array(pageRef),
  /** Pages the previous index named and this one does not: deleted by the next scan. */
  retired: z.array(hex16).default([]),
});
export type StateIndex = z.infer<typeof stateIndexSchema>;

export const statePageSchema = z.object({ objects: z.record(z.string(), z.string()) });

/**
 * A page as the planner writes it to the run's work area: its objects, which of them are unchanged
 * since the previous scan (their scores are carried forward), and the previous pages they are in.
 */
export const plannedPageSchema = statePageSchema.extend({ carried: z.array(z.string()).default([]), sources: z.array(hex16).default([]) });
export type PlannedPage = z.infer<typeof plannedPageSchema>;

/**
 * Where the scan state of `inputUri` scanned with the model at `modelUri` lives (a folder). Scans
 * flagging with another score than the model's primary (`primary`) keep their own state and trend.
 */
export function scanStateLocation(modelUri: string, inputUri: string, primary?: string): string {
  return joinUri(modelUri, 'scans', primary === undefined ? stableHash(inputUri) : stableHash(inputUri, primary));
}

export const STATE_KEYS = {
  index: 'index.json',
  page: (id: string): string => `pages/${id}.json`,
  rows: (id: string): string => `pages/${id}.rows`,
  aggregate: (id: string): string => `pages/${id}.agg`,
} as const;

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
 * answers from the one page whose range holds the key (keys must be asked in ascending order). The
 * page after the one in use is read ahead, so its round trip overlaps the listing's.
 */
export class StateCursor {
  private next = 0;
  private current: { ref: PageRef; objects: Record<string, string> } | undefined;
  private ahead: { index: number; objects: Promise<Record<string, string>> } | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly prefix: string,
    private readonly pages: readonly PageRef[],
  ) {}

  /** The id of the page the last answer came from. */
  get pageId(): string | undefined {
    return this.current?.ref.id;
  }

  async etagOf(key: string): Promise<string | undefined> {
    if (this.current !== undefined && compareKeys(key, this.current.ref.last) <= 0) return compareKeys(key, this.current.ref.first) >= 0 ? this.current.objects[key] : undefined;
    for (;;) {
      const ref = this.pages[this.next];
      if (ref === undefined || compareKeys(key, ref.first) < 0) return undefined;
      this.next += 1;
      // A page wholly before the key (its objects were all deleted or skipped) is skipped (read only if it was the one read ahead).
      if (compareKeys(key, ref.last) > 0) continue;
      const objects = this.ahead?.index === this.next - 1 ? this.ahead.objects : this.read(this.next - 1);
      this.ahead = this.next < this.pages.length ? { index: this.next, objects: this.read(this.next) } : undefined;
      this.current = { ref, objects: await objects };
      return this.current.objects[key];
    }
  }

  private read(index: number): Promise<Record<string, string>> {
    const p = readStatePage(this.store, this.prefix, this.pages[index]!.id);
    p.catch(() => undefined); // a page read ahead and never used must not be an unhandled rejection
    return p;
  }
}

export interface WriteStateParams {
  /** The state folder. */
  readonly state: { readonly store: ObjectStore; readonly prefix: string };
  /** The index as it is now (its pages are replaced). */
  readonly previous: StateIndex | undefined;
  /** The pages of what the run scored and carried, in key order; their files are in the state folder. */
  readonly pages: readonly PageRef[];
  readonly run: Omit<StateIndex, 'format' | 'pages' | 'retired'> & { readonly carry: string };
}

export type WriteStateResult =
  | { readonly recorded: true; readonly index: StateIndex }
  | { readonly recorded: false; readonly reason: string };

/**
 * Records what a completed run saw: index.json names its pages (written before, by the report);
 * the previous index's pages it no longer names are retired, and the pages retired by the previous
 * index (two scans ago) are deleted, with their rows and aggregates.
 *
 * Overlapping scans of one prefix: the index is read again just before it is replaced. If another
 * scan recorded its state since `previous` was read, nothing is recorded and the reason is returned:
 * that scan wrote its index first and deletes what the index before it retired afterwards, so pages
 * this run names may be gone or about to go, and no read can prove otherwise. Its state stands and
 * the next scan plans on it. The pages this run wrote stay unnamed (page ids are content hashes that
 * another scan may share, so deleting them is not safe). A scan recording in the milliseconds
 * between the read and the write is not detected.
 *
 * A retried report whose earlier attempt recorded this run's index finds it here and changes
 * nothing: rewriting it would retire nothing and delete, a scan early, what the first write retired.
 */
export async function writeScanState(p: WriteStateParams): Promise<WriteStateResult> {
  const { store, prefix } = p.state;
  const current = await readStateIndex(store, prefix);
  if (current !== undefined && current.runId === p.run.runId) return { recorded: true, index: current };
  if ((current?.runId ?? null) !== (p.previous?.runId ?? null)) {
    return { recorded: false, reason: `scan ${current?.runId ?? '(none)'} recorded the state of this prefix while this run was reporting; its state stands, and the next scan plans on it` };
  }
  const named = new Set(p.pages.map((r) => r.id));
  const retired = [...new Set(p.previous?.pages.map((r) => r.id) ?? [])].filter((id) => !named.has(id));
  const index: StateIndex = { format: STATE_FORMAT, ...p.run, pages: [...p.pages], retired };
  await store.put(joinKey(prefix, STATE_KEYS.index), JSON.stringify(index));
  const keep = new Set([...named, ...retired]);
  for (const id of p.previous?.retired ?? []) {
    if (keep.has(id)) continue;
    for (const key of [STATE_KEYS.page(id), STATE_KEYS.rows(id), STATE_KEYS.aggregate(id)]) {
      await store.delete(joinKey(prefix, key)).catch(() => undefined);
    }
  }
  return { recorded: true, index };
}
