/**
 * The files of one scan-state page (outputs/scan-state.ts) beyond its key list: the page's score rows
 * (pages/<id>.rows, outputs/score-rows.ts) and its report aggregate (pages/<id>.agg). A scan's
 * whole-prefix report is the merge of the aggregates of every page of the new state: a page the scan
 * did not touch contributes its stored aggregate (a few bytes per image), a page it rebuilt the
 * aggregate of its rows (carried forward and new).
 *
 * Both files are bound to what made them: the rows to the page id and `carry` (the model's identity
 * and the scoring settings: scores computed under another model are never carried), the aggregate to
 * the page id, `carry` and the report settings that shape it (partition depth, gallery size). An
 * aggregate made under other report settings is rebuilt from the rows; a missing rows file, or a
 * file that is not what it claims, fails the run with one line naming it. Sizes are bounded before
 * reading. The aggregates keep no summary sample (summary.json describes the scan's own rows).
 */
import { z } from 'zod';
import { decodeFrame, encodeFrame } from '../binary-frame.js';
import type { Calibration } from '../calibration.js';
import type { ScoreType } from '../dlsr/config.js';
import { OodError } from '../errors.js';
import { stableHash } from '../hash.js';
import { aggregateShard, decodeAggregate, encodeAggregate, type Aggregate, type ConditionsContext } from '../report/aggregate.js';
import type { ScoreTable } from '../score-table.js';
import { joinKey, objectUri, type ObjectStore } from '../storage/object-store.js';
import { flagTable } from './score-files.js';
import { decodeScoreRows, encodeScoreRows, type ScoreRows } from './score-rows.js';
import { STATE_KEYS, STATE_PAGE } from './scan-state.js';

/** The most rows a page holds (pages close at 4 x STATE_PAGE keys). */
const PAGE_ROWS = 4 * STATE_PAGE;
/** Largest page file read: 16,384 rows of long keys and every score type with properties fit well within. */
const PAGE_FILE_BYTES = 256 * 1024 * 1024;

const AGG_MAGIC = 'OODPAGG1';

/** A page aggregate's frame header: what it is bound to (its body is an OODAGG01 aggregate). */
const aggHeaderSchema = z.object({ page: z.string().regex(/^[0-9a-f]{16}$/), binding: z.string().regex(/^[0-9a-f]{16}$/) });

/** How a prefix's pages are scored and aggregated. */
export interface PageScoring {
  /** The model's identity and scoring settings (index.json's `carry`). */
  readonly carry: string;
  readonly calibration: Calibration;
  readonly primary: ScoreType;
  readonly partitionDepth: number;
  readonly topK: number;
  readonly conditions?: ConditionsContext;
}

/** Reads and bytes read from the state folder, for the report's log line and the scale bench. */
export interface StateReads {
  reads: number;
  bytes: number;
}

export interface StateFolder {
  readonly store: ObjectStore;
  readonly prefix: string;
}

/** What a page aggregate is bound to, besides its page. */
export function aggregateBinding(s: PageScoring): string {
  // The flags of an aggregate follow the primary score and its calibrated threshold: both bind it.
  return stableHash(s.carry, s.partitionDepth, s.topK, s.primary, s.calibration.scores[s.primary]?.threshold ?? null);
}

/** The aggregate of a page's rows: what its scored images add to the whole prefix's report. */
export function pageAggregate(table: ScoreTable, s: PageScoring): Aggregate {
  const agg = aggregateShard(table, flagTable(table, s.calibration, s.primary), s.primary, s.partitionDepth, s.topK, [], s.conditions);
  agg.sample = [];
  return agg;
}

async function read(state: StateFolder, key: string, io: StateReads): Promise<Uint8Array> {
  const bytes = await state.store.get(joinKey(state.prefix, key), { maxBytes: PAGE_FILE_BYTES, limit: 'of a scan-state page file' });
  io.reads += 1;
  io.bytes += bytes.byteLength;
  return bytes;
}

/** A state file that is not there: the state is incomplete, or a scan that recorded since this one planned deleted it. */
export class MissingStateFile extends OodError {
  constructor(readonly uri: string) {
    super('MODEL_INVALID', `${uri}: missing (the scan state is incomplete: scan with --full to rebuild it)`);
  }
}

function invalid(state: StateFolder, key: string, what: string): OodError {
  return new OodError('MODEL_INVALID', `${objectUri(state.store, joinKey(state.prefix, key))}: ${what}`);
}

/** A page's rows, checked to be that page's, under `carry`, with an ETag per key. */
export async function readPageRows(state: StateFolder, id: string, carry: string, io: StateReads): Promise<ScoreRows & { readonly etags: readonly string[] }> {
  const key = STATE_KEYS.rows(id);
  if ((await state.store.head(joinKey(state.prefix, key))) === undefined) throw new MissingStateFile(objectUri(state.store, joinKey(state.prefix, key)));
  const rows = decodeScoreRows(await read(state, key, io), objectUri(state.store, joinKey(state.prefix, key)));
  if (rows.page !== id) throw invalid(state, key, `holds the rows of page ${rows.page ?? '(none)'}, not ${id}`);
  if (rows.binding !== carry) throw invalid(state, key, `scored under ${rows.binding ?? '(nothing)'}, not ${carry} (the model or its scoring settings)`);
  if (rows.etags === undefined) throw invalid(state, key, 'has no ETags');
  if (rows.table.keys.length > PAGE_ROWS) throw invalid(state, key, `expected at most ${PAGE_ROWS} rows, got ${rows.table.keys.length}`);
  return { ...rows, etags: rows.etags };
}

/** Writes a page: its key list, its rows and its aggregate (content-addressed: a retry writes the same). */
export async function writePage(state: StateFolder, page: { readonly id: string; readonly objects: Readonly<Record<string, string>>; readonly table: ScoreTable; readonly etags: readonly string[] }, s: PageScoring): Promise<Aggregate> {
  const k = (key: string): string => joinKey(state.prefix, key);
  await state.store.put(k(STATE_KEYS.page(page.id)), JSON.stringify({ objects: page.objects }));
  await state.store.put(k(STATE_KEYS.rows(page.id)), encodeScoreRows({ table: page.table, etags: page.etags, page: page.id, binding: s.carry }));
  const agg = pageAggregate(page.table, s);
  await writeAggregate(state, page.id, agg, s);
  return agg;
}

async function writeAggregate(state: StateFolder, id: string, agg: Aggregate, s: PageScoring): Promise<void> {
  await state.store.put(joinKey(state.prefix, STATE_KEYS.aggregate(id)), encodeFrame(AGG_MAGIC, { page: id, binding: aggregateBinding(s) }, encodeAggregate(agg)));
}

/**
 * A kept page's aggregate. One made under other report settings (or none: a state written when they
 * differed) is rebuilt from the page's rows and rewritten; `rebuilt` counts those.
 */
export async function readPageAggregate(state: StateFolder, id: string, s: PageScoring, io: StateReads & { rebuilt: number }): Promise<Aggregate> {
  const key = STATE_KEYS.aggregate(id);
  const source = objectUri(state.store, joinKey(state.prefix, key));
  if ((await state.store.head(joinKey(state.prefix, key))) !== undefined) {
    const frame = decodeFrame(await read(state, key, io), AGG_MAGIC, source, 'an ood-audit page aggregate');
    const parsed = aggHeaderSchema.safeParse(frame.header);
    if (!parsed.success) throw invalid(state, key, `header ${parsed.error.issues[0]?.path.join('.') || '(root)'}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    const h = parsed.data;
    if (h.page !== id) throw invalid(state, key, `holds the aggregate of page ${h.page}, not ${id}`);
    if (h.binding === aggregateBinding(s)) {
      const agg = decodeAggregate(frame.body, source);
      if (agg.scored > PAGE_ROWS) throw invalid(state, key, `expected at most ${PAGE_ROWS} images, got ${agg.scored}`);
      // A page aggregate holds scored images only (failures are the run's, retried every scan).
      if (agg.failed !== 0 || agg.failuresByReason.size > 0 || agg.failureExamples.length > 0 || agg.sample.length > 0) throw invalid(state, key, 'a page aggregate with failures or a sample');
      if (agg.mostOod.length > s.topK || agg.mostTypical.length > s.topK) throw invalid(state, key, `expected at most ${s.topK} gallery images`);
      return agg;
    }
  }
  const rows = await readPageRows(state, id, s.carry, io);
  const agg = pageAggregate(rows.table, s);
  await writeAggregate(state, id, agg, s);
  io.rebuilt += 1;
  return agg;
}
