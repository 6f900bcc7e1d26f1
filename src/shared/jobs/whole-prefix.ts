/**
 * The whole prefix as of a scan: its scan-state pages rebuilt where the scan changed them, and the
 * merge of every page's aggregate, for the report job.
 *
 * The planner wrote, for each page of the new state that differs from the previous state, its objects,
 * which of them are unchanged (carried) and the previous pages holding those; pages equal to a
 * previous one were not written (kept). In key order, one page at a time:
 *
 *   kept page      its stored aggregate (rebuilt from its rows if made under other report settings)
 *   changed page   its carried rows (from the previous pages' rows, checked against the ETags) and
 *                  the rows this scan scored (from the groups' rows files, in key order), merged;
 *                  failed images are left out (so the next scan retries them); its key list, rows
 *                  and aggregate are written to the state folder under the id of what it holds
 *
 * Memory: the prefix's aggregate (4 bytes per scored image and the galleries), one page (and the
 * aggregates of up to PAGE_LOOKAHEAD kept pages read ahead; when the report settings changed, each of
 * those is rebuilt from its page's rows file), one group's rows and the few previous
 * pages a changed page draws on. Reads: one aggregate per kept page, plus
 * rows in proportion to what changed.
 */
import { OodError } from '../errors.js';
import { emptyAggregate, mergeAggregates, type Aggregate } from '../report/aggregate.js';
import { pageId, plannedPageSchema, type PageRef } from '../outputs/scan-state.js';
import { MissingStateFile, readPageAggregate, readPageRows, writePage, type PageScoring, type StateFolder, type StateReads } from '../outputs/prefix-pages.js';
import { decodeScoreRows, gatherRows, type RowRef, type ScoreRows } from '../outputs/score-rows.js';
import type { ScoreTable } from '../score-table.js';
import { compareKeys, getValidJson, joinKey, objectUri } from '../storage/object-store.js';
import type { Location } from '../storage/locate.js';

/** Pages whose first reads are in flight at once (the one being merged and those after it). */
export const PAGE_LOOKAHEAD = 8;

type PageProbe = { readonly planned: true } | { readonly planned: false; readonly agg: Aggregate };

/** Largest group rows file read (a group holds a few tens of thousands of rows, about 200 bytes each). */
const GROUP_ROWS_BYTES = 1024 * 1024 * 1024;

export interface WholePrefixParams {
  readonly state: StateFolder;
  readonly work: Location;
  /** The pages of the new state as planned, in key order. */
  readonly pages: readonly PageRef[];
  /** Key (in the work store) of a page the planner wrote. */
  readonly plannedKey: (id: string) => string;
  /** Keys (in the work store) of the rows files of the scan's completed groups, in key order. */
  readonly groupRows: readonly string[];
  readonly scoring: PageScoring;
  /** Whether another scan of the prefix completed since this one planned (for messages). */
  readonly moved: boolean;
}

export interface WholePrefix {
  /** The merged aggregate of every scored image of the prefix (no failures: they are the scan's). */
  readonly aggregate: Aggregate;
  /** The pages of the new state (what its index names). */
  readonly pages: PageRef[];
  /** Images whose scores were carried forward from the previous scan. */
  readonly carried: number;
  readonly kept: number;
  readonly rebuilt: number;
  readonly io: StateReads & { rebuilt: number };
}

/** The scan's own scored rows, in key order, group after group. */
class NewRows {
  private group = 0;
  private table: ScoreTable | undefined;
  private row = 0;

  constructor(private readonly work: Location, private readonly keys: readonly string[]) {}

  /** The rows with keys up to `last` (inclusive). */
  async through(last: string): Promise<RowRef[]> {
    const out: RowRef[] = [];
    for (;;) {
      const t = await this.current();
      if (t === undefined || compareKeys(t.keys[this.row]!, last) > 0) return out;
      out.push({ table: t, row: this.row });
      this.row += 1;
    }
  }

  /** Rows no page took (none, unless the pages and the groups disagree). */
  async left(): Promise<string | undefined> {
    const t = await this.current();
    return t?.keys[this.row];
  }

  private async current(): Promise<ScoreTable | undefined> {
    while (this.table === undefined || this.row >= this.table.keys.length) {
      const key = this.keys[this.group];
      if (key === undefined) return undefined;
      this.group += 1;
      const full = joinKey(this.work.prefix, key);
      this.table = decodeScoreRows(await this.work.store.get(full, { maxBytes: GROUP_ROWS_BYTES, limit: 'of a group rows file' }), objectUri(this.work.store, full)).table;
      this.row = 0;
    }
    return this.table;
  }
}

const OVERTAKEN = ' (another scan of this prefix completed while this one ran: scan again)';

/** A missing state file, when another scan recorded the state after this one planned: that scan deleted it. */
function overtaken(p: WholePrefixParams, err: unknown): unknown {
  return p.moved && err instanceof MissingStateFile ? new OodError(err.code, `${err.uri}: missing${OVERTAKEN}`, { cause: err }) : err;
}

/** Previous pages' rows, a few at a time (consecutive changed pages share their neighbours). */
class PreviousRows {
  private readonly cache = new Map<string, { rows: ScoreRows & { etags: readonly string[] }; at: Map<string, number> }>();

  constructor(private readonly p: WholePrefixParams, private readonly io: StateReads) {}

  async of(id: string): Promise<{ rows: ScoreRows & { etags: readonly string[] }; at: Map<string, number> }> {
    let hit = this.cache.get(id);
    if (hit === undefined) {
      const rows = await readPageRows(this.p.state, id, this.p.scoring.carry, this.io).catch((err: unknown) => {
        throw overtaken(this.p, err);
      });
      hit = { rows, at: new Map(rows.table.keys.map((k, i) => [k, i])) };
      if (this.cache.size >= 4) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(id, hit);
    }
    return hit;
  }
}

export async function buildWholePrefix(p: WholePrefixParams): Promise<WholePrefix> {
  const io = { reads: 0, bytes: 0, rebuilt: 0 };
  const aggregate = emptyAggregate();
  const pages: PageRef[] = [];
  const fresh = new NewRows(p.work, p.groupRows);
  const previous = new PreviousRows(p, io);
  const workKey = (id: string): string => joinKey(p.work.prefix, p.plannedKey(id));
  let carried = 0;
  let kept = 0;
  let rebuilt = 0;
  // What each page needs first (is it planned? a kept page's aggregate) is read PAGE_LOOKAHEAD pages
  // ahead: on an object store every read is a round trip, and a nightly scan mostly reads kept pages.
  const probes: Promise<PageProbe>[] = [];
  const probe = (i: number): Promise<PageProbe> => {
    const ref = p.pages[i]!;
    const pr = (async (): Promise<PageProbe> => ((await p.work.store.head(workKey(ref.id))) !== undefined ? { planned: true } : { planned: false, agg: await readPageAggregate(p.state, ref.id, p.scoring, io) }))();
    pr.catch(() => undefined); // awaited in order below; a failure surfaces there
    return pr;
  };
  try {
    for (const [i, ref] of p.pages.entries()) {
      for (let j = probes.length; j < Math.min(p.pages.length, i + PAGE_LOOKAHEAD); j++) probes.push(probe(j));
      const first = await probes[i]!.catch((err: unknown) => {
        throw overtaken(p, err);
      });
      delete probes[i];
      if (!first.planned) {
        // Unchanged since the previous scan: its stored aggregate.
        const agg = first.agg;
        if (agg.scored !== ref.count) throw new OodError('MODEL_INVALID', `${objectUri(p.state.store, joinKey(p.state.prefix, `pages/${ref.id}.agg`))}: holds ${agg.scored} images, the index says ${ref.count}`);
        mergeAggregates(aggregate, agg, p.scoring.topK);
        pages.push(ref);
        carried += ref.count;
        kept += 1;
        continue;
      }
      const planned = await getValidJson(p.work.store, workKey(ref.id), plannedPageSchema);
      const picks = await fresh.through(ref.last);
      for (const r of picks) {
        const key = r.table.keys[r.row]!;
        if (planned.objects[key] === undefined) throw new OodError('INTERNAL', `whole prefix: scored ${key} is not in state page ${ref.id}`);
      }
      for (const key of planned.carried) {
        let found: RowRef | undefined;
        for (const src of planned.sources) {
          const s = await previous.of(src);
          const i = s.at.get(key);
          if (i === undefined) continue;
          if (s.rows.etags[i] !== planned.objects[key]) throw new OodError('MODEL_INVALID', `${objectUri(p.state.store, joinKey(p.state.prefix, `pages/${src}.rows`))}: ${key} has ETag ${s.rows.etags[i]}, its page says ${planned.objects[key]}`);
          found = { table: s.rows.table, row: i };
          break;
        }
        if (found === undefined) throw new OodError('MODEL_INVALID', `${objectUri(p.state.store, joinKey(p.state.prefix, `pages/${planned.sources[0] ?? ref.id}.rows`))}: no score row for ${key}, unchanged since the previous scan${p.moved ? OVERTAKEN : ''}`);
        picks.push(found);
      }
      carried += planned.carried.length;
      if (picks.length === 0) continue; // every image of the page failed: retried by the next scan
      picks.sort((a, b) => compareKeys(a.table.keys[a.row]!, b.table.keys[b.row]!));
      const table = gatherRows(picks);
      const etags = table.keys.map((k) => planned.objects[k]!);
      const objects = Object.fromEntries(table.keys.map((k, i) => [k, etags[i]!]));
      const id = pageId(objects);
      mergeAggregates(aggregate, await writePage(p.state, { id, objects, table, etags }, p.scoring), p.scoring.topK);
      pages.push({ id, first: ref.first, last: ref.last, count: table.keys.length });
      rebuilt += 1;
    }
  } finally {
    // A failed page leaves reads ahead in flight: they end before the job does (and its retry starts).
    await Promise.allSettled(probes.filter((x) => x !== undefined));
  }
  const left = await fresh.left();
  if (left !== undefined) throw new OodError('INTERNAL', `whole prefix: scored ${left} is in no state page`);
  return { aggregate, pages, carried, kept, rebuilt, io };
}
