/**
 * The queue contract: queue names, job payloads and results, job ids and default job options, in one
 * place for producers and workers. Payloads are re-validated when a job starts (job data from Redis
 * is untyped JSON). Payloads carry locations (URIs) and keys, never credentials or signed URLs.
 */
import { z } from 'zod';
import type { DefaultJobOptions } from 'bullmq';
import { OodError } from '../errors.js';
import { DEFAULTS } from '../config/defaults.js';
import { MAX_OBJECT_BYTES } from '../storage/object-store.js';

export const QUEUES = {
  extract: 'ood-extract',
  train: 'ood-train',
  score: 'ood-score',
  report: 'ood-report',
  schedule: 'ood-schedule',
} as const;
export type QueueKind = keyof typeof QUEUES;
export const QUEUE_KINDS = Object.keys(QUEUES) as QueueKind[];

const location = z.string().min(1).refine((s) => !/[?&](X-Amz-|Signature=|AWSAccessKeyId=)/i.test(s), 'must not be a signed URL');

/** An object key relative to a location: no leading slash, no ".." segment, no NUL. */
const relativeKey = z.string().min(1).refine((k) => !k.startsWith('/') && !k.split('/').includes('..') && !k.includes('\0'), 'must be a relative key without ".." segments');

/** Run ids are made by the planner: "scan-" or "fit-" and 16 hex digits (they name folders). */
const runId = z.string().regex(/^(scan|fit)-[0-9a-f]{16}$/, 'must be a run id (scan-/fit- and 16 hex digits)');

const encoderSpec = z.object({
  name: z.string(),
  uri: z.string().optional(),
  taps: z.array(z.string()).min(1).readonly(),
  inputSize: z.number().int().min(32).max(1024),
  preprocessing: z.object({ kind: z.enum(['symmetric', 'unit', 'imagenet', 'raw']) }),
  batchSize: z.number().int().positive().optional(),
});

export const shardSchema = z.object({
  /** Shard number within the run, 0-based. */
  index: z.number().int().min(0),
  /** Key of the shard manifest (JSON list of keys, sizes, ETags), relative to the run's work location. */
  manifestKey: z.string().regex(/^shards\/\d{5}\.manifest\.json$/, 'must be a shard manifest name'),
  /** Images in the shard. */
  count: z.number().int().min(0),
  /** Content hash of the shard (its location, keys, ETags and read limit): the feature cache key. */
  contentHash: z.string(),
});
export type Shard = z.infer<typeof shardSchema>;

const objectInfo = z.object({ key: relativeKey, size: z.number().int().min(0), etag: z.string() });

/** A shard manifest in the run's work area: the objects of one shard, in key order. */
export const shardManifest = z.object({ shard: z.number().int().min(0), objects: z.array(objectInfo) });
export type ShardManifest = z.infer<typeof shardManifest>;

export const extractPayload = z.object({
  runId,
  /** Where the images are (s3:// or a folder). */
  input: location,
  /** Where run-private files (manifests, shard outputs) live. */
  work: location,
  shard: shardSchema,
  encoder: encoderSpec,
  /** Feature cache location (features keyed by encoder fingerprint + shard content). */
  cache: location,
  /** Largest image file read, in bytes; larger ones are per-image failures. */
  maxBytes: z.number().int().min(1).max(MAX_OBJECT_BYTES).default(DEFAULTS.maxBytes),
});
export type ExtractPayload = z.infer<typeof extractPayload>;

export const extractResult = z.object({
  shard: z.number().int().min(0),
  /** Location (URI) of the store holding the features, and their key in it. */
  cache: location,
  featuresKey: z.string().regex(/^([^\0]*\/)?features\/v2\/[0-9a-f]{16}\/[0-9a-f]{16}\.oodf$/, 'must be a feature cache key'),
  cached: z.boolean(),
  images: z.number().int(),
  failed: z.number().int(),
  seconds: z.number(),
  /** Failed images by reason category (for metrics). */
  failuresByReason: z.record(z.string(), z.number()).optional(),
  /** Latency of each encoder batch, seconds (for metrics). */
  batchSeconds: z.array(z.number()).optional(),
});
export type ExtractResult = z.infer<typeof extractResult>;

export const trainPayload = z.object({
  runId,
  work: location,
  /** Model folder to write. */
  model: location,
  /** The ID images' location (recorded in the model). */
  input: location.optional(),
  /** The DLSR configuration (validated again by the core). */
  config: z.record(z.string(), z.unknown()),
  /** Number of extract shards (their feature keys come from the children's results). */
  shards: z.number().int().min(1),
});
export type TrainPayload = z.infer<typeof trainPayload>;

export const trainResult = z.object({
  model: z.string(),
  epochs: z.number().int(),
  resumedFromEpoch: z.number().int(),
  trainCount: z.number().int(),
  holdoutCount: z.number().int(),
  failed: z.number().int(),
  /** The primary score and its calibrated threshold. */
  primary: z.string(),
  threshold: z.number(),
});
export type TrainResult = z.infer<typeof trainResult>;

export const scorePayload = z.object({
  runId,
  work: location,
  model: location,
  shard: shardSchema,
});
export type ScorePayload = z.infer<typeof scorePayload>;

export const scoreResult = z.object({ shard: z.number().int().min(0), scoresKey: z.string(), images: z.number().int(), failed: z.number().int(), extractSeconds: z.number(), scoreSeconds: z.number(), cached: z.boolean() });
export type ScoreResult = z.infer<typeof scoreResult>;

export const reportPayload = z.object({
  runId,
  work: location,
  model: location,
  input: location,
  out: location,
  shards: z.number().int().min(0),
  /** Entries listed under the input (images and everything else). */
  listed: z.number().int().min(0),
  /** Listed entries not scanned, by reason (not an image, special file, link loop, unchanged, ...). */
  skippedByReason: z.record(z.string(), z.number().int().min(0)),
  startedAt: z.number(),
  /** Partitions of the report: the first N path segments below the input prefix. */
  partitionDepth: z.number().int().min(1).max(16).default(DEFAULTS.partitionDepth),
  /** Images in each of the report's most-OOD and most-typical galleries. */
  topK: z.number().int().min(0).max(500).default(DEFAULTS.topK),
  /** Incremental scan: objects unchanged since the previous scan were left out. */
  incremental: z.boolean().default(false),
  /** Largest image read (for thumbnails). */
  maxBytes: z.number().int().min(1).max(MAX_OBJECT_BYTES).default(DEFAULTS.maxBytes),
  /** Folder holding the per-prefix scan state (what the last scan saw), and the state's key name. */
  state: z.object({ uri: location, name: z.string().regex(/^[0-9a-f]{16}\.json$/, 'must be a scan state file name') }).optional(),
});
export type ReportPayload = z.infer<typeof reportPayload>;

export const reportResult = z.object({
  summaryKey: z.string(),
  scored: z.number().int(),
  failed: z.number().int(),
  flagged: z.number().int(),
  flaggedFraction: z.number(),
  expectedFraction: z.number(),
  /** The dataset verdict's level ("shifted", "possibly shifted", ...). */
  verdict: z.string(),
  missingShards: z.array(z.number().int()),
});
export type ReportResult = z.infer<typeof reportResult>;

/** A scheduled scan: fired by a BullMQ job scheduler, enqueues one (incremental) scan run. */
export const schedulePayload = z.object({
  model: location,
  input: location,
  /** Output location; {date} and {datetime} are replaced by the firing time (UTC). */
  out: location,
  cache: location.optional(),
  shardSize: z.number().int().min(1).default(DEFAULTS.shardSize),
  maxBytes: z.number().int().min(1).max(MAX_OBJECT_BYTES).default(DEFAULTS.maxBytes),
  full: z.boolean().default(false),
  partitionDepth: z.number().int().min(1).max(16).default(DEFAULTS.partitionDepth),
  topK: z.number().int().min(0).max(500).default(DEFAULTS.topK),
});
export type SchedulePayload = z.infer<typeof schedulePayload>;
export const scheduleResult = z.object({ runId: z.string(), out: z.string(), images: z.number().int(), created: z.boolean() });
export type ScheduleResult = z.infer<typeof scheduleResult>;

/** Expands {date} / {datetime} in a scheduled scan's output location. */
export function expandOut(template: string, at: Date): string {
  const iso = at.toISOString();
  return template.replaceAll('{date}', iso.slice(0, 10)).replaceAll('{datetime}', iso.slice(0, 16).replace(':', '-'));
}

/** A file the producer writes into a run's work area before the run starts (manifests, listing). */
export interface PlanFile {
  /** Location (URI) of the work area and the key of the file in it. */
  readonly work: string;
  readonly key: string;
  readonly body: string;
}

/**
 * A planned scan: its id, the files it needs, and every job's payload in dependency order (extract,
 * then score, per shard; then the report). The queue driver enqueues it as a flow; the in-process
 * driver runs the same payloads through the same job functions.
 */
export interface ScanPlan {
  readonly kind: 'scan';
  readonly runId: string;
  readonly files: readonly PlanFile[];
  readonly shards: readonly { readonly extract: ExtractPayload; readonly score: ScorePayload }[];
  readonly report: ReportPayload;
  /** Images to scan. */
  readonly images: number;
  /** Entries listed under the input, and those that will not be scanned, by reason. */
  readonly listed: number;
  readonly skippedByReason: Readonly<Record<string, number>>;
}

/** A planned fit: extract every shard, then train. */
export interface FitPlan {
  readonly kind: 'fit';
  readonly runId: string;
  readonly files: readonly PlanFile[];
  readonly extracts: readonly ExtractPayload[];
  readonly train: TrainPayload;
  readonly images: number;
  readonly listed: number;
  readonly skippedByReason: Readonly<Record<string, number>>;
}

/** "12 not an image (file extension), 3 unchanged since the previous scan" (or "nothing"). */
export function describeSkipped(byReason: Readonly<Record<string, number>>): string {
  const parts = Object.entries(byReason).map(([reason, n]) => `${n} ${reason}`);
  return parts.length > 0 ? parts.join(', ') : 'nothing';
}

export type RunPlan = ScanPlan | FitPlan;

/** The job whose completion ends a run. */
export function finalJobOf(plan: RunPlan): { readonly queue: 'report' | 'train'; readonly id: string } {
  return plan.kind === 'scan' ? { queue: 'report', id: jobId(plan.runId, 'report') } : { queue: 'train', id: jobId(plan.runId, 'train') };
}

export interface PayloadOf {
  extract: ExtractPayload;
  train: TrainPayload;
  score: ScorePayload;
  report: ReportPayload;
  schedule: SchedulePayload;
}
export interface ResultOf {
  extract: ExtractResult;
  train: TrainResult;
  score: ScoreResult;
  report: ReportResult;
  schedule: ScheduleResult;
}

const PAYLOADS = { extract: extractPayload, train: trainPayload, score: scorePayload, report: reportPayload, schedule: schedulePayload } as const;

/** Validates job data at the start of a job; a bad payload is permanent (never retried). */
export function parsePayload<K extends QueueKind>(kind: K, data: unknown): PayloadOf[K] {
  const r = PAYLOADS[kind].safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new OodError('PAYLOAD_INVALID', `invalid ${kind} job payload: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data as PayloadOf[K];
}

/**
 * Every location a job's payload names, for the worker's roots check before the job runs. A
 * schedule's output template is checked up to its first placeholder ({date}, {datetime}).
 */
export function locationsOf<K extends QueueKind>(kind: K, p: PayloadOf[K]): string[] {
  switch (kind) {
    case 'extract': {
      const e = p as ExtractPayload;
      return [e.input, e.work, e.cache];
    }
    case 'train': {
      const t = p as TrainPayload;
      return [t.work, t.model, ...(t.input !== undefined ? [t.input] : [])];
    }
    case 'score': {
      const s = p as ScorePayload;
      return [s.work, s.model];
    }
    case 'report': {
      const r = p as ReportPayload;
      return [r.work, r.model, r.input, r.out, ...(r.state !== undefined ? [r.state.uri] : [])];
    }
    default: {
      const s = p as SchedulePayload;
      return [s.model, s.input, s.out.split('{')[0]!, ...(s.cache !== undefined ? [s.cache] : [])];
    }
  }
}

/** Default options per queue: retries with exponential backoff, bounded history in Redis. */
export const JOB_OPTIONS: Record<QueueKind, DefaultJobOptions> = {
  extract: { attempts: 5, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: { age: 7 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } },
  train: { attempts: 5, backoff: { type: 'exponential', delay: 5000 }, removeOnComplete: { age: 30 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } },
  score: { attempts: 5, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: { age: 7 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } },
  report: { attempts: 5, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: { age: 30 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } },
  schedule: { attempts: 5, backoff: { type: 'exponential', delay: 10_000 }, removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } },
};

/** The reason a worker gives running jobs when it cancels them at shutdown (they go back to waiting). */
export const SHUTDOWN_REASON = 'worker shutting down';

/** Lock settings: tensor work runs in sandboxed children, so the parent renews locks on time. */
export const WORKER_LOCK = { lockDuration: 30_000, stalledInterval: 15_000, maxStalledCount: 3 } as const;

/** Job ids: deterministic, no ':' (BullMQ reserves it), never all digits. */
export function jobId(runId: string, kind: QueueKind, shard?: number): string {
  return shard === undefined ? `${runId}.${kind}` : `${runId}.${kind}.${String(shard).padStart(5, '0')}`;
}

/** A run's listing in its work area (key -> ETag of every image under the input), for the scan state. */
export const runListing = z.record(z.string(), z.string());

/** The listed entries a run does not scan, named with the reason (skipped.json in the work area). */
export const runSkipped = z.array(z.object({ key: z.string(), reason: z.string() }));

/** Keys of run-private files in the work store. */
export const workKeys = {
  manifest: (shard: number): string => `shards/${String(shard).padStart(5, '0')}.manifest.json`,
  features: (shard: number): string => `shards/${String(shard).padStart(5, '0')}.oodf`,
  scores: (shard: number): string => `shards/${String(shard).padStart(5, '0')}.scores.json`,
  /** Every image of the input at enqueue time (key -> ETag), for the scan state. */
  listing: 'listing.json',
  /** The listed entries that are not scanned, with the reason ([{ key, reason }]). */
  skipped: 'skipped.json',
} as const;

/** Key of a shard's features in the feature cache (v2: feature sets with content digests). */
export function cacheKey(fingerprintId: string, contentHash: string): string {
  return `features/v2/${fingerprintId}/${contentHash}.oodf`;
}
