/**
 * Planning a run while its input is listed. The listing is consumed as it comes, in key order;
 * shards are cut as keys arrive, their manifests written as soon as they are full, and every
 * GROUP_SHARDS shards a group is handed to the driver (the queue driver enqueues it; the in-process
 * driver runs it), so workers start on the first shard within seconds of the command starting and no
 * step holds the whole listing. Memory is bounded by a group, a skipped page and a state page.
 *
 * Shards are cut at content-defined boundaries (after a key whose hash is 0 modulo the shard size,
 * or at twice the shard size), so an object added or removed changes only the shard around it: the
 * feature cache, keyed by shard content, keeps every other shard of a full rescan.
 *
 * The run id is known before the listing starts: a hash of what determines the run (model, input,
 * output, settings) and of the last run that completed into the output and the last scan of the
 * input. Enqueuing the same scan again while it is queued or running adds nothing (every job id is
 * derived from the run id and the content of its shard); once it has completed, the next scan is a
 * new run. Planning writes only to the run's work area; run.json, written last, records that the
 * listing is complete.
 */
import { DEFAULTS } from '../shared/config/defaults.js';
import { CONDITIONS_SCORE, type DlsrConfig, type ScoreType } from '../shared/dlsr/config.js';
import { MODEL_FILES, readCalibration, verifyModel, type ModelJson } from '../shared/dlsr/model-json.js';
import { OodError } from '../shared/errors.js';
import { stableHash } from '../shared/hash.js';
import { SKIP_REASONS } from '../shared/outputs/accounting.js';
import { OUTPUT_FILES, reasonRow } from '../shared/outputs/score-files.js';
import { readStateIndex, scanStateLocation, STATE_FORMAT, StateCursor, type StateIndex } from '../shared/outputs/scan-state.js';
import { StatePages } from '../shared/outputs/state-pages.js';
import {
  GROUP_IMAGES,
  GROUP_SHARDS,
  shardContentHash,
  workKeys,
  type GroupPlan,
  type PlannedGroup,
  type ReportPayload,
  type RunPlan,
  type RunRecord,
  type RunSettings,
  type Shard,
  type ShardManifest,
  type TrainPayload,
} from '../shared/queue/contract.js';
import { keyHash } from '../shared/rng.js';
import { evenly } from '../shared/sample.js';
import { joinUri, type Location } from '../shared/storage/locate.js';
import { getJson, joinKey, type ObjectInfo } from '../shared/storage/object-store.js';
import { listEntries, type ListedEntry } from './listing.js';

export type Open = (uri: string, mustExist?: boolean) => Location;

/** Skipped entries per page of skipped.csv rows in the work area. */
const SKIPPED_PAGE = 10_000;

/** Whether a shard ends after `key`: content-defined, expected `size` keys, at most twice that. */
export function shardEndsAfter(key: string, count: number, size: number): boolean {
  return count >= 2 * size || (size > 1 && keyHash(0x5a4d, key) % size === 0) || size === 1;
}

/**
 * Fails at once, with the reason, when a location cannot be written (a folder under /proc, a
 * read-only mount, a bucket without write access), instead of after the run's work is done.
 */
export async function assertWritable(loc: Location): Promise<void> {
  const key = joinKey(loc.prefix, `.ood-probe-${process.pid}-${Date.now().toString(36)}`);
  await loc.store.put(key, '');
  await loc.store.delete(key);
}

/**
 * A model checked whole (model.json, calibration, every file against its recorded size and sha256:
 * a broken model fails the run before it starts, not in every shard) and what identifies its
 * results: its encoder fingerprint and the version of its model.json.
 */
export async function modelIdentity(model: Location): Promise<{ json: ModelJson; identity: string }> {
  const json = await verifyModel(model.store, model.prefix);
  // The content, not the ETag (on local storage size + mtime, which two unpacked models can share):
  // model.json records the hashes of the weights and the calibration.
  return { json, identity: stableHash(json.fingerprint.id, JSON.stringify(json)) };
}

/** Refuses a --primary the model has no calibration for, naming the scores it has. */
export async function checkPrimary(model: Location, modelUri: string, json: ModelJson, primary: ScoreType): Promise<void> {
  const calibrated = Object.keys((await readCalibration(model.store, model.prefix, json)).scores).filter((t) => t !== CONDITIONS_SCORE);
  if (!calibrated.includes(primary)) throw new OodError('CONFIG_INVALID', `--primary ${primary}: the model at ${modelUri} has no calibrated ${primary} score (it has ${calibrated.join(', ')})`);
}

/** The run id of the last run that completed into `out` (its summary.json), if any. */
async function lastRunInto(out: Location): Promise<string | null> {
  const key = joinKey(out.prefix, OUTPUT_FILES.summary);
  if ((await out.store.head(key)) === undefined) return null;
  const s = await getJson<{ run?: { id?: unknown } }>(out.store, key).catch(() => undefined);
  return typeof s?.run?.id === 'string' ? s.run.id : null;
}

/** Cuts shards from images as they arrive and hands them on in groups. */
class Cutter {
  private objects: ObjectInfo[] = [];
  private shards: { shard: Shard; objects: ObjectInfo[] }[] = [];
  private shardCount = 0;
  private groupCount = 0;
  private groupImages = 0;
  readonly groups: { index: number; id: string; shards: number; images: number }[] = [];

  constructor(
    private readonly size: number,
    private readonly contentOf: (objects: readonly ObjectInfo[]) => string,
  ) {}

  /** Adds an image; returns a full group when there is one. */
  add(o: ObjectInfo): { shard: Shard; objects: ObjectInfo[] }[] | undefined {
    this.objects.push(o);
    if (!shardEndsAfter(o.key, this.objects.length, this.size)) return undefined;
    this.closeShard();
    return this.shards.length >= GROUP_SHARDS || this.groupImages >= GROUP_IMAGES ? this.takeGroup() : undefined;
  }

  /** The last, partial shard and group. */
  finish(): { shard: Shard; objects: ObjectInfo[] }[] | undefined {
    if (this.objects.length > 0) this.closeShard();
    return this.shards.length > 0 ? this.takeGroup() : undefined;
  }

  get totalShards(): number {
    return this.shardCount;
  }

  nextGroup(): { index: number; id: string } {
    const g = this.groups[this.groups.length - 1]!;
    return { index: g.index, id: g.id };
  }

  private closeShard(): void {
    const contentHash = this.contentOf(this.objects);
    const index = this.shardCount++;
    this.shards.push({ shard: { index, id: `${String(index).padStart(5, '0')}-${contentHash.slice(0, 8)}`, count: this.objects.length, contentHash }, objects: this.objects });
    this.groupImages += this.objects.length;
    this.objects = [];
  }

  private takeGroup(): { shard: Shard; objects: ObjectInfo[] }[] {
    const taken = this.shards;
    this.shards = [];
    const index = this.groupCount++;
    this.groups.push({ index, id: `${String(index).padStart(5, '0')}-${stableHash(taken.map((s) => s.shard.contentHash)).slice(0, 8)}`, shards: taken.length, images: this.groupImages });
    this.groupImages = 0;
    return taken;
  }
}

/** Writes skipped entries as CSV pages in the work area (skipped.csv is streamed from them). */
class SkippedPages {
  private rows: string[] = [];
  pages = 0;
  readonly byReason: Record<string, number> = {};

  constructor(
    private readonly work: Location,
    private readonly inputUri: string,
  ) {}

  async add(key: string, reason: string): Promise<void> {
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
    // Entries left out of an eval's --limit sample are counted, not named.
    if (reason === SKIP_REASONS.notSampled) return;
    this.rows.push(reasonRow(key, reason, this.inputUri));
    if (this.rows.length >= SKIPPED_PAGE) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.rows.length === 0) return;
    await this.work.store.put(joinKey(this.work.prefix, workKeys.skippedPage(this.pages)), this.rows.join(''));
    this.pages += 1;
    this.rows = [];
  }
}

/**
 * Removes a work area of the same run id left by an earlier attempt (its queue jobs are gone: Redis
 * was flushed, or they expired): it must not lend its run.json or group outcomes to this one.
 */
async function clearWork(parent: Location, runId: string): Promise<void> {
  await parent.store.deletePrefix(`${joinKey(parent.prefix, '.work', runId)}/`);
}

/** Lists `input` (or, with a limit, an evenly spread sample of it) in key order. */
async function* entriesOf(input: Location, limit: number | undefined): AsyncGenerator<ListedEntry> {
  if (limit === undefined) {
    yield* listEntries(input.store, input.prefix);
    return;
  }
  // A sample needs the count first: eval's sets are small enough to hold.
  const all: ListedEntry[] = [];
  for await (const e of listEntries(input.store, input.prefix)) all.push(e);
  const images = all.filter((e): e is { image: ObjectInfo } => 'image' in e);
  const keep = new Set(evenly(images, limit).map((e) => e.image.key));
  for (const e of all) yield 'image' in e && !keep.has(e.image.key) ? { skipped: { key: e.image.key, skipped: SKIP_REASONS.notSampled } } : e;
}

/** What cutting a listing into groups produced, besides the groups. */
interface Cut {
  readonly cutter: Cutter;
  readonly skipped: SkippedPages;
  readonly listed: number;
  readonly images: number;
}

/**
 * Cuts a listing into shards and groups: skipped entries go to the skipped pages, images that
 * `keep` accepts to the shards; each full group's manifests and plan are written to the work area
 * before the group is yielded.
 */
async function* cutListing(
  entries: AsyncIterable<ListedEntry>,
  work: Location,
  inputUri: string,
  shardSize: number,
  maxBytes: number,
  keep: (o: ObjectInfo) => Promise<boolean>,
  settings: RunSettings,
): AsyncGenerator<PlannedGroup, Cut> {
  const { runId, kind } = settings;
  const workUri = work.uri;
  // What every job of the run shares, before the first job can read it.
  await work.store.put(joinKey(work.prefix, workKeys.settings), JSON.stringify(settings));
  const cutter = new Cutter(shardSize, (objects) => shardContentHash(inputUri, maxBytes, objects));
  const skipped = new SkippedPages(work, inputUri);
  let listed = 0;
  let images = 0;
  const planned = async (taken: { shard: Shard; objects: ObjectInfo[] }[]): Promise<PlannedGroup> => {
    for (const t of taken) {
      const manifest: ShardManifest = { shard: t.shard.index, objects: t.objects };
      await work.store.put(joinKey(work.prefix, workKeys.manifest(t.shard.id)), JSON.stringify(manifest));
    }
    const group = cutter.nextGroup();
    const plan: GroupPlan = { group, shards: taken.map((t) => t.shard) };
    await work.store.put(joinKey(work.prefix, workKeys.groupPlan(group.id)), JSON.stringify(plan));
    return { mode: kind, group: { runId, step: 'group', work: workUri, group }, shards: plan.shards.map((shard) => ({ runId, work: workUri, shard })) };
  };
  for await (const e of entries) {
    listed += 1;
    if ('skipped' in e) {
      await skipped.add(e.skipped.key, e.skipped.skipped);
      continue;
    }
    if (!(await keep(e.image))) continue;
    images += 1;
    const full = cutter.add(e.image);
    if (full !== undefined) yield await planned(full);
  }
  const last = cutter.finish();
  if (last !== undefined) yield await planned(last);
  await skipped.flush();
  return { cutter, skipped, listed, images };
}

/**
 * Writes run.json, the record that the listing is complete (written last: the "listed" step and the
 * final job trust it), from what the cut produced; a scan adds its skipped-unchanged count and state.
 */
async function recordListing(work: Location, runId: string, cut: Cut, scan: Partial<Pick<RunRecord, 'skippedByReason' | 'statePages' | 'stateChanged' | 'stateBase'>>): Promise<RunRecord> {
  const record: RunRecord = {
    runId,
    groups: cut.cutter.groups,
    shards: cut.cutter.totalShards,
    images: cut.images,
    listed: cut.listed,
    skippedByReason: scan.skippedByReason ?? cut.skipped.byReason,
    skippedPages: cut.skipped.pages,
    statePages: scan.statePages ?? [],
    stateChanged: scan.stateChanged ?? false,
    stateBase: scan.stateBase ?? null,
  };
  await work.store.put(joinKey(work.prefix, workKeys.run), JSON.stringify(record));
  return record;
}

export interface ScanParams {
  readonly input: Location;
  /** Model folder URI. */
  readonly model: string;
  /** Output URI. */
  readonly out: string;
  /** Feature cache URI (default: <model>/cache). */
  readonly cache?: string;
  readonly shardSize: number;
  /** Scan at most this many images: an evenly spread, deterministic subset (eval's --limit). */
  readonly limit?: number;
  /**
   * Incremental scan: only objects new or changed (by ETag) since the last completed scan of this
   * prefix with this model. Off for eval; on by default for scan (--full turns it off).
   */
  readonly incremental: boolean;
  /** Record what this scan saw as the prefix's scan state (scan: yes; eval: no). */
  readonly recordState: boolean;
  readonly partitionDepth?: number;
  readonly topK?: number;
  /** report.md's partitions: a table or a plain list (default DEFAULTS.mdStyle). */
  readonly mdStyle?: 'table' | 'list';
  /** Largest image file read (default DEFAULTS.maxBytes). */
  readonly maxBytes?: number;
  readonly singleFileMax?: number;
  /** The score that decides `flagged` (default: the model's primary); it must be calibrated in the model. */
  readonly primary?: ScoreType;
  readonly open: Open;
}

function checkShardSize(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new OodError('CONFIG_INVALID', `invalid shard size: expected a positive integer, got ${n}`);
}

/** Why a scan that records state carries nothing forward and scans every image (the report says it). */
function rescanReason(incremental: boolean, previous: StateIndex | undefined): string {
  if (previous === undefined) return 'first scan of this prefix with this model';
  if (!incremental) return `full scan (--full): every image scanned again, nothing carried forward from ${previous.runId}`;
  if (previous.format !== STATE_FORMAT) return `the scan state of ${previous.runId} was written by an older version without score rows: every image scanned again`;
  return `the model or its scoring settings (--max-bytes) changed since ${previous.runId}: every image scanned again, nothing carried forward`;
}

export async function planScan(p: ScanParams): Promise<RunPlan> {
  checkShardSize(p.shardSize);
  const { json, identity } = await modelIdentity(p.open(p.model, true));
  // Another primary flags other images: its own scan state and trend (the model's own keeps the plain one).
  const primary = p.primary !== undefined && p.primary !== json.config.scoring.primary ? p.primary : undefined;
  if (primary !== undefined) await checkPrimary(p.open(p.model, true), p.model, json, primary);
  const stateUri = scanStateLocation(p.model, p.input.uri, primary);
  const stateLoc = p.open(stateUri);
  const previous = p.incremental || p.recordState ? await readStateIndex(stateLoc.store, stateLoc.prefix) : undefined;
  const partitionDepth = p.partitionDepth ?? DEFAULTS.partitionDepth;
  const topK = p.topK ?? DEFAULTS.topK;
  const mdStyle = p.mdStyle ?? DEFAULTS.mdStyle;
  const maxBytes = p.maxBytes ?? DEFAULTS.maxBytes;
  const lastOut = await lastRunInto(p.open(p.out));
  // Scores are carried forward only from a state of the same model (its identity) and read limit.
  const carry = stableHash(identity, maxBytes);
  const incremental = p.incremental && previous?.format === STATE_FORMAT && previous.carry === carry;
  const rescan = p.recordState && !incremental ? rescanReason(p.incremental, previous) : undefined;
  const singleFileMax = p.singleFileMax ?? DEFAULTS.singleFileMax;
  const cache = p.cache ?? joinUri(p.model, 'cache');
  // Everything that changes what the run writes is in its id (a different --cache or single-file
  // limit, or a scan that records no state, is another run), and so is the state it plans on: a scan
  // run again after its state was recorded is a new run, never taken for a retry of the one recorded.
  const baseId = `scan-${stableHash(identity, p.model, p.input.uri, p.out, cache, p.shardSize, partitionDepth, topK, mdStyle, maxBytes, singleFileMax, p.limit ?? null, p.incremental, p.recordState, previous?.runId ?? null, lastOut, primary ?? null)}`;
  const workOf = (runId: string): string => joinUri(p.out, '.work', runId);
  const startedAt = Date.now();
  const reportOf = (runId: string): ReportPayload => ({
    runId,
    work: workOf(runId),
    model: p.model,
    input: p.input.uri,
    out: p.out,
    startedAt,
    partitionDepth,
    topK,
    incremental,
    maxBytes,
    singleFileMax,
    ...(p.recordState ? { state: stateUri, carry } : {}),
    ...(rescan !== undefined ? { rescan } : {}),
    mdStyle,
    ...(primary !== undefined ? { primary } : {}),
  });
  return {
    kind: 'scan',
    runId: baseId,
    out: p.out,
    workOf,
    finalOf: (runId) => ({ kind: 'scan', report: reportOf(runId) }),
    async *steps(runId) {
      await clearWork(p.open(p.out), runId);
      const work = workOf(runId);
      const workLoc = p.open(work);
      // Without carrying forward, every page is new: the report builds each from this run's rows.
      const state = p.recordState ? new StatePages(workLoc, (id) => workKeys.statePage(id), new Set(incremental ? previous.pages.map((pg) => pg.id) : [])) : undefined;
      const cursor = incremental ? new StateCursor(stateLoc.store, stateLoc.prefix, previous.pages) : undefined;
      let unchanged = 0;
      const keep = async (o: ObjectInfo): Promise<boolean> => {
        const same = cursor !== undefined && (await cursor.etagOf(o.key)) === o.etag;
        await state?.add(o, same ? cursor.pageId : undefined);
        if (same) unchanged += 1;
        return !same;
      };
      const settings: RunSettings = { runId, kind: 'scan', input: p.input.uri, cache, encoder: json.config.encoder, maxBytes, model: p.model, out: p.out, partitionDepth, topK, ...(primary !== undefined ? { primary } : {}) };
      const cut = yield* cutListing(entriesOf(p.input, p.limit), workLoc, p.input.uri, p.shardSize, maxBytes, keep, settings);
      await state?.close();
      if (cut.images === 0 && unchanged === 0 && !p.incremental) throw new OodError('NOT_FOUND', `no images under ${p.input.uri} (${cut.listed} other entries)`);
      const record = await recordListing(workLoc, runId, cut, {
        skippedByReason: { ...cut.skipped.byReason, ...(unchanged > 0 ? { [SKIP_REASONS.unchanged]: unchanged } : {}) },
        statePages: state?.pages ?? [],
        stateChanged: state !== undefined && (state.changed || state.pages.length !== (previous?.pages.length ?? -1)),
        stateBase: previous?.runId ?? null,
      });
      return { kind: 'scan', report: reportOf(runId), record };
    },
  };
}

export interface FitParams {
  readonly input: Location;
  readonly model: string;
  readonly cache?: string;
  readonly config: DlsrConfig;
  readonly shardSize: number;
  /** Largest image file read (default DEFAULTS.maxBytes). */
  readonly maxBytes?: number;
  readonly open: Open;
}

export async function planFit(p: FitParams): Promise<RunPlan> {
  checkShardSize(p.shardSize);
  const maxBytes = p.maxBytes ?? DEFAULTS.maxBytes;
  const model = p.open(p.model);
  const head = await model.store.head(joinKey(model.prefix, MODEL_FILES.model));
  // A fit is a new run once the model it writes exists (a refit resumes from its last checkpoint).
  const baseId = `fit-${stableHash(p.config, p.model, p.input.uri, p.shardSize, maxBytes, head?.etag ?? null)}`;
  const workOf = (runId: string): string => joinUri(p.model, '.work', runId);
  const cache = p.cache ?? joinUri(p.model, 'cache');
  const trainOf = (runId: string): TrainPayload => ({ runId, work: workOf(runId), model: p.model, input: p.input.uri, config: p.config as unknown as Record<string, unknown> });
  return {
    kind: 'fit',
    runId: baseId,
    out: p.model,
    workOf,
    finalOf: (runId) => ({ kind: 'fit', train: trainOf(runId) }),
    async *steps(runId) {
      await clearWork(model, runId);
      const work = workOf(runId);
      const workLoc = p.open(work);
      const settings: RunSettings = { runId, kind: 'fit', input: p.input.uri, cache, encoder: p.config.encoder, maxBytes, partitionDepth: DEFAULTS.partitionDepth, topK: 0 };
      const cut = yield* cutListing(listEntries(p.input.store, p.input.prefix), workLoc, p.input.uri, p.shardSize, maxBytes, async () => true, settings);
      if (cut.images === 0) throw new OodError('NOT_FOUND', `no images under ${p.input.uri} (${cut.listed} other entries)`);
      const record = await recordListing(workLoc, runId, cut, {});
      return { kind: 'fit', train: trainOf(runId), record };
    },
  };
}
