/**
 * Planning a run: list the input prefix (image files only; other objects are counted), leave out
 * what an incremental scan already saw, cut deterministic shards, and describe every job. The run
 * id is a hash of what determines the result, so planning the same run twice gives the same id, the
 * same shards and the same job ids. Planning reads storage but writes nothing: writePlanFiles does,
 * once a driver has decided to run the plan. No tensor code is loaded here.
 */
import { DEFAULTS } from '../shared/config/defaults.js';
import type { DlsrConfig } from '../shared/dlsr/config.js';
import { MODEL_FILES, verifyModel, type ModelJson } from '../shared/dlsr/model-json.js';
import { OodError } from '../shared/errors.js';
import { stableHash } from '../shared/hash.js';
import { changedSince, readScanState, scanStateLocation } from '../shared/outputs/scan-state.js';
import {
  workKeys,
  type ExtractPayload,
  type FitPlan,
  type PlanFile,
  type ReportPayload,
  type ScanPlan,
  type Shard,
  type ShardManifest,
  type TrainPayload,
} from '../shared/queue/contract.js';
import { evenly } from '../shared/sample.js';
import { joinUri, type Location } from '../shared/storage/locate.js';
import { joinKey, type ObjectInfo, type SkippedEntry } from '../shared/storage/object-store.js';
import { countByReason, listImages } from './listing.js';
import { SKIP_REASONS } from '../shared/outputs/accounting.js';

export type Open = (uri: string, mustExist?: boolean) => Location;

export function cutShards(images: readonly ObjectInfo[], shardSize: number): ObjectInfo[][] {
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new OodError('CONFIG_INVALID', `invalid shard size: expected a positive integer, got ${shardSize}`);
  const shards: ObjectInfo[][] = [];
  for (let i = 0; i < images.length; i += shardSize) shards.push(images.slice(i, i + shardSize));
  return shards;
}

/**
 * The shards' descriptors and their manifest files in the work area. A shard's content hash (its
 * feature cache key) names its location, its keys and ETags, and the read limit, so two folders
 * whose files share names, sizes and times never share features.
 */
function describeShards(work: string, inputUri: string, maxBytes: number, shards: readonly ObjectInfo[][]): { shards: Shard[]; files: PlanFile[] } {
  const out: Shard[] = [];
  const files: PlanFile[] = [];
  for (const [index, objects] of shards.entries()) {
    const manifest: ShardManifest = { shard: index, objects: [...objects] };
    const key = workKeys.manifest(index);
    files.push({ work, key, body: JSON.stringify(manifest, null, 2) + '\n' });
    out.push({ index, manifestKey: key, count: objects.length, contentHash: stableHash(inputUri, maxBytes, objects.map((o) => [o.key, o.etag])) });
  }
  return { shards: out, files };
}

/** The skipped entries a run lists by name (unchanged and unsampled images are only counted). */
function skippedFile(work: string, skipped: readonly SkippedEntry[]): PlanFile {
  return { work, key: workKeys.skipped, body: JSON.stringify(skipped.map((e) => ({ key: e.key, reason: e.skipped }))) };
}

/** Writes a plan's files (idempotent: the same plan writes the same content under the same keys). */
export async function writePlanFiles(files: readonly PlanFile[], open: Open): Promise<void> {
  for (const f of files) {
    const work = open(f.work);
    await work.store.put(joinKey(work.prefix, f.key), f.body);
  }
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
  const head = await model.store.head(joinKey(model.prefix, MODEL_FILES.model));
  return { json, identity: stableHash(json.fingerprint.id, head?.etag ?? '') };
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
  /** Largest image file read (default DEFAULTS.maxBytes). */
  readonly maxBytes?: number;
  readonly open: Open;
}

export async function planScan(p: ScanParams): Promise<ScanPlan> {
  const { json, identity } = await modelIdentity(p.open(p.model, true));
  const listing = await listImages(p.input.store, p.input.prefix);
  if (listing.images.length === 0 && !p.incremental) throw new OodError('NOT_FOUND', `no images under ${p.input.uri} (${listing.skipped.length} other files)`);
  const state = scanStateLocation(p.model, p.input.uri);
  const stateLoc = p.open(state.uri);
  const previous = p.incremental ? await readScanState(stateLoc.store, joinKey(stateLoc.prefix, state.name)) : undefined;
  const sample = evenly(listing.images, p.limit);
  const { changed, unchanged } = changedSince(sample, previous);
  const partitionDepth = p.partitionDepth ?? DEFAULTS.partitionDepth;
  const topK = p.topK ?? DEFAULTS.topK;
  const maxBytes = p.maxBytes ?? DEFAULTS.maxBytes;
  const skippedByReason = countByReason(listing.skipped);
  if (unchanged > 0) skippedByReason[SKIP_REASONS.unchanged] = unchanged;
  if (sample.length < listing.images.length) skippedByReason[SKIP_REASONS.notSampled] = listing.images.length - sample.length;
  const hash = stableHash(changed.map((o) => [o.key, o.etag]), p.limit ?? null, previous?.runId ?? null);
  const runId = `scan-${stableHash(identity, p.model, p.input.uri, hash, p.shardSize, p.out, partitionDepth, topK, maxBytes)}`;
  const work = joinUri(p.out, '.work', runId);
  const cache = p.cache ?? joinUri(p.model, 'cache');
  const { shards, files } = describeShards(work, p.input.uri, maxBytes, cutShards(changed, p.shardSize));
  files.push({ work, key: workKeys.listing, body: JSON.stringify(Object.fromEntries(listing.images.map((o) => [o.key, o.etag]))) });
  files.push(skippedFile(work, listing.skipped));
  const report: ReportPayload = {
    runId,
    work,
    model: p.model,
    input: p.input.uri,
    out: p.out,
    shards: shards.length,
    listed: listing.images.length + listing.skipped.length,
    skippedByReason,
    startedAt: Date.now(),
    partitionDepth,
    topK,
    incremental: previous !== undefined,
    maxBytes,
    ...(p.recordState ? { state } : {}),
  };
  return {
    kind: 'scan',
    runId,
    files,
    shards: shards.map((shard) => ({
      extract: { runId, input: p.input.uri, work, shard, encoder: json.config.encoder, cache, maxBytes },
      score: { runId, work, model: p.model, shard },
    })),
    report,
    images: changed.length,
    listed: report.listed,
    skippedByReason,
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
}

export async function planFit(p: FitParams): Promise<FitPlan> {
  const listing = await listImages(p.input.store, p.input.prefix);
  if (listing.images.length === 0) throw new OodError('NOT_FOUND', `no images under ${p.input.uri} (${listing.skipped.length} other files)`);
  const runId = `fit-${stableHash(p.config, p.model, p.input.uri, stableHash(listing.images.map((o) => [o.key, o.etag])), p.shardSize, p.maxBytes ?? DEFAULTS.maxBytes)}`;
  const work = joinUri(p.model, '.work', runId);
  const cache = p.cache ?? joinUri(p.model, 'cache');
  const maxBytes = p.maxBytes ?? DEFAULTS.maxBytes;
  const { shards, files } = describeShards(work, p.input.uri, maxBytes, cutShards(listing.images, p.shardSize));
  const extracts: ExtractPayload[] = shards.map((shard) => ({ runId, input: p.input.uri, work, shard, encoder: p.config.encoder, cache, maxBytes }));
  const train: TrainPayload = { runId, work, model: p.model, input: p.input.uri, config: p.config as unknown as Record<string, unknown>, shards: shards.length };
  return { kind: 'fit', runId, files, extracts, train, images: listing.images.length, listed: listing.images.length + listing.skipped.length, skippedByReason: countByReason(listing.skipped) };
}
