/**
 * The planner's side of the scan state (outputs/scan-state.ts): the new state's pages, cut from the
 * listing's images as they come in key order (content-defined boundaries, content-addressed ids).
 */
import type { Location } from '../storage/locate.js';
import { joinKey, type ObjectInfo } from '../storage/object-store.js';
import { pageEndsAfter, pageId, type PageRef, type PlannedPage } from './scan-state.js';

/**
 * Builds the new state pages from the listing's images; writes the pages that differ from the
 * previous state to the work area, each with its unchanged keys (whose scores the report carries
 * forward) and the previous pages that hold them.
 */
export class StatePages {
  private objects: Record<string, string> = {};
  private carried: string[] = [];
  private sources = new Set<string>();
  private first: string | undefined;
  private last = '';
  private count = 0;
  readonly pages: PageRef[] = [];
  changed = false;

  constructor(
    private readonly work: Location,
    /** Key of a planned page in the work area. */
    private readonly pageKey: (id: string) => string,
    private readonly previous: ReadonlySet<string>,
  ) {}

  /** Adds an image; `from` is the previous page it is unchanged in (undefined: new or changed). */
  async add(o: ObjectInfo, from: string | undefined): Promise<void> {
    this.first ??= o.key;
    this.last = o.key;
    this.objects[o.key] = o.etag;
    if (from !== undefined) {
      this.carried.push(o.key);
      this.sources.add(from);
    }
    this.count += 1;
    if (pageEndsAfter(o.key, this.count)) await this.close();
  }

  async close(): Promise<void> {
    if (this.first === undefined) return;
    const id = pageId(this.objects);
    this.pages.push({ id, first: this.first, last: this.last, count: this.count });
    if (!this.previous.has(id)) {
      this.changed = true;
      const page: PlannedPage = { objects: this.objects, carried: this.carried, sources: [...this.sources] };
      await this.work.store.put(joinKey(this.work.prefix, this.pageKey(id)), JSON.stringify(page));
    }
    this.objects = {};
    this.carried = [];
    this.sources = new Set();
    this.first = undefined;
    this.count = 0;
  }
}
