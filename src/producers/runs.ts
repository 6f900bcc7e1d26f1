/**
 * Producers: turn a fit or a scan into a BullMQ flow with deterministic job ids.
 *
 *   fit:   train (parent) <- extract shard 0..n-1        a failed extract fails the train job
 *   scan:  report (parent) <- score shard i <- extract shard i
 *          a failed extract fails its score job; a failed score job does NOT fail the report: the
 *          report is written without that shard and lists it under missingShards, so one bad shard
 *          (e.g. an unreadable prefix) never sinks a whole nightly scan.
 *
 * Enqueuing a run that already exists (same id: same inputs, ETags, model and settings) adds nothing
 * and returns the existing run.
 */
import { FlowProducer, Queue, type FlowJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { OodError } from '../shared/errors.js';
import type { DlsrConfig } from '../shared/dlsr/config.js';
import type { EncoderSpec } from '../shared/encoder/registry.js';
import { joinUri, type Location } from '../shared/storage/locate.js';
import {
  JOB_OPTIONS,
  QUEUES,
  jobId,
  stableHash,
  type ExtractPayload,
  type QueueKind,
  type ReportPayload,
  type ScorePayload,
  type Shard,
  type TrainPayload,
  workKeys,
} from '../shared/queue/contract.js';
import { cutShards, listInput, writeManifests } from './plan.js';
import { spreadSample } from '../shared/app/listing.js';
import { changedSince, readScanState } from '../shared/app/scan-report.js';
import { joinKey } from '../shared/storage/object-store.js';

export interface QueueTarget {
  readonly connection: Redis;
  readonly prefix: string;
}

export interface RunHandle {
  readonly runId: string;
  readonly kind: 'fit' | 'scan';
  /** The job whose completion ends the run. */
  readonly final: { readonly queue: QueueKind; readonly id: string };
  readonly shards: number;
  readonly images: number;
  readonly skippedNonImages: number;
  /** Images left out of an incremental scan because they did not change. */
  readonly skippedUnchanged?: number;
  /** Training epochs (fit runs). */
  readonly epochs?: number;
  /** False when the run was already enqueued (nothing added). */
  readonly created: boolean;
}

async function existingJobState(target: QueueTarget, kind: QueueKind, id: string): Promise<string | undefined> {
  const q = new Queue(QUEUES[kind], { connection: target.connection, prefix: target.prefix });
  try {
    const job = await q.getJob(id);
    return job === undefined ? undefined : await job.getState();
  } finally {
    await q.close();
  }
}

async function addFlow(target: QueueTarget, flow: FlowJob): Promise<void> {
  const producer = new FlowProducer({ connection: target.connection, prefix: target.prefix });
  try {
    await producer.add(flow);
  } finally {
    await producer.close();
  }
}

/** Removes a failed final job (and its children) so the run can be enqueued again. */
async function removeFailed(target: QueueTarget, kind: QueueKind, id: string): Promise<void> {
  const q = new Queue(QUEUES[kind], { connection: target.connection, prefix: target.prefix });
  try {
    const job = await q.getJob(id);
    await job?.remove({ removeChildren: true });
  } finally {
    await q.close();
  }
}

export interface ScanParams {
  readonly input: Location;
  /** Model folder URI. */
  readonly model: string;
  /** Output URI. */
  readonly out: string;
  /** Feature cache URI (default: <model>/cache). */
  readonly cache?: string;
  readonly encoder: EncoderSpec;
  /** Identity of the model (its encoder fingerprint and config hash), part of the run id. */
  readonly modelIdentity: string;
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
  /** Report options. */
  readonly partitionDepth?: number;
  readonly topK?: number;
  /** Opens a work location (same store kinds as the inputs). */
  readonly openWork: (uri: string) => Location;
}

/** Where the scan state of an input prefix lives: <model>/scans/<hash of the input URI>.json. */
export function scanStateOf(model: string, inputUri: string): { uri: string; name: string } {
  return { uri: joinUri(model, 'scans'), name: `${stableHash(inputUri)}.json` };
}

export async function enqueueScan(target: QueueTarget, p: ScanParams): Promise<RunHandle> {
  const full = await listInput(p.input, p.incremental);
  const state = scanStateOf(p.model, p.input.uri);
  const stateLoc = p.openWork(state.uri);
  const previous = p.incremental ? await readScanState(stateLoc.store, joinKey(stateLoc.prefix, state.name)) : undefined;
  const { changed, unchanged } = changedSince(p.limit === undefined ? full.images : spreadSample(full.images, p.limit), previous);
  const hash = stableHash(changed.map((o) => [o.key, o.etag]), p.limit ?? null, previous?.runId ?? null);
  const runId = `scan-${stableHash(p.modelIdentity, p.model, p.input.uri, hash, p.shardSize, p.out, p.partitionDepth ?? 1, p.topK ?? 24)}`;
  const final = { queue: 'report' as const, id: jobId(runId, 'report') };
  const shardsOf = cutShards(changed, p.shardSize);
  const base = { runId, kind: 'scan' as const, final, images: changed.length, skippedNonImages: full.skippedNonImages, skippedUnchanged: unchanged, shards: shardsOf.length };
  const existing = await existingJobState(target, 'report', final.id);
  if (existing !== undefined && existing !== 'failed') return { ...base, created: false };
  if (existing === 'failed') await removeFailed(target, 'report', final.id);
  const workUri = joinUri(p.out, '.work', runId);
  const work = p.openWork(workUri);
  const shards = await writeManifests(work, shardsOf);
  await work.store.put(joinKey(work.prefix, workKeys.listing), JSON.stringify(Object.fromEntries(full.images.map((o) => [o.key, o.etag]))));
  const cache = p.cache ?? joinUri(p.model, 'cache');
  const report: ReportPayload = {
    runId,
    work: workUri,
    model: p.model,
    input: p.input.uri,
    out: p.out,
    shards: shards.length,
    skippedNonImages: full.skippedNonImages,
    startedAt: Date.now(),
    partitionDepth: p.partitionDepth ?? 1,
    topK: p.topK ?? 24,
    incremental: previous !== undefined,
    skippedUnchanged: unchanged,
    ...(p.recordState ? { state } : {}),
  };
  const flow: FlowJob = {
    name: 'report',
    queueName: QUEUES.report,
    data: report,
    opts: { ...JOB_OPTIONS.report, jobId: final.id },
    children: shards.map((shard) => scoreNode(runId, workUri, p, shard, cache)),
  };
  await addFlow(target, flow);
  return { ...base, created: true };
}

function scoreNode(runId: string, work: string, p: ScanParams, shard: Shard, cache: string): FlowJob {
  const score: ScorePayload = { runId, work, model: p.model, shard };
  const extract: ExtractPayload = { runId, input: p.input.uri, work, shard, encoder: p.encoder, cache };
  return {
    name: 'score',
    queueName: QUEUES.score,
    data: score,
    opts: { ...JOB_OPTIONS.score, jobId: jobId(runId, 'score', shard.index), ignoreDependencyOnFailure: true },
    children: [{ name: 'extract', queueName: QUEUES.extract, data: extract, opts: { ...JOB_OPTIONS.extract, jobId: jobId(runId, 'extract', shard.index), failParentOnFailure: true } }],
  };
}

export interface FitParams {
  readonly input: Location;
  readonly model: string;
  readonly cache?: string;
  readonly config: DlsrConfig;
  readonly shardSize: number;
  readonly openWork: (uri: string) => Location;
}

export async function enqueueFit(target: QueueTarget, p: FitParams): Promise<RunHandle> {
  const listing = await listInput(p.input);
  const runId = `fit-${stableHash(p.config, p.model, p.input.uri, listing.hash, p.shardSize)}`;
  const final = { queue: 'train' as const, id: jobId(runId, 'train') };
  const shardsOf = cutShards(listing.images, p.shardSize);
  const base = { runId, kind: 'fit' as const, final, images: listing.images.length, skippedNonImages: listing.skippedNonImages, shards: shardsOf.length, epochs: p.config.train.epochs };
  const state = await existingJobState(target, 'train', final.id);
  if (state !== undefined && state !== 'failed') return { ...base, created: false };
  if (state === 'failed') await removeFailed(target, 'train', final.id);
  const workUri = joinUri(p.model, '.work', runId);
  const shards = await writeManifests(p.openWork(workUri), shardsOf);
  const cache = p.cache ?? joinUri(p.model, 'cache');
  const train: TrainPayload = { runId, work: workUri, model: p.model, input: p.input.uri, config: p.config as unknown as Record<string, unknown>, shards: shards.length };
  if (shards.length === 0) throw new OodError('NOT_FOUND', `no images under ${p.input.uri}`);
  await addFlow(target, {
    name: 'train',
    queueName: QUEUES.train,
    data: train,
    opts: { ...JOB_OPTIONS.train, jobId: final.id },
    children: shards.map((shard) => ({
      name: 'extract',
      queueName: QUEUES.extract,
      data: { runId, input: p.input.uri, work: workUri, shard, encoder: p.config.encoder, cache } satisfies ExtractPayload,
      opts: { ...JOB_OPTIONS.extract, jobId: jobId(runId, 'extract', shard.index), failParentOnFailure: true },
    })),
  });
  return { ...base, created: true };
}
