/**
 * The queue contract: queue names, job payloads and results, job ids, the keys of a run's work files
 * and default job options, in one place for producers and workers. Payloads are re-validated when a
 * job starts (job data from Redis is untyped JSON) and carry locations (URIs) and keys, never
 * credentials or signed URLs.
 *
 * The job graph of a run is built in bounded pieces while the input is listed:
 *
 *   scan:  per group of up to GROUP_SHARDS shards, one flow:
 *            group <- score shard i        (score: extract, from the cache when it can, then score;
 *                                           group: merge the shards' outputs)
 *          under the report job, which runs once the listing is complete and every group is done.
 *   fit:   per group, one flow: group <- extract shard i; under the train job.
 *
 * No Redis call and no flow grows with the number of shards beyond one group. Shard and group jobs
 * carry only the run, its work area and their shard or group: what is the same for every job of a
 * run (locations, encoder, read limit, report settings) is in the run's settings.json, written by
 * the planner before the first job, so a pending shard costs Redis about 1.5 KB.
 */
import { z } from 'zod';
import type { DefaultJobOptions } from 'bullmq';
import { OodError } from '../errors.js';
import { stableHash } from '../hash.js';
import { DEFAULTS } from '../config/defaults.js';
import { MAX_OBJECT_BYTES } from '../storage/object-store.js';
import { SCORE_TYPES } from '../dlsr/config.js';

export const QUEUES = {
  extract: 'ood-extract',
  train: 'ood-train',
  score: 'ood-score',
  group: 'ood-group',
  report: 'ood-report',
  schedule: 'ood-schedule',
} as const;
export type QueueKind = keyof typeof QUEUES;
export const QUEUE_KINDS = Object.keys(QUEUES) as QueueKind[];

/**
 * A group closes at GROUP_SHARDS shards or GROUP_IMAGES images, whichever comes first (a group of
 * one shard may hold up to twice the shard size): one flow, one part file of scores and failures.
 */
export const GROUP_SHARDS = 64;
export const GROUP_IMAGES = 32_768;

const location = z.string().min(1).refine((s) => !/[?&](X-Amz-|Signature=|AWSAccessKeyId=)/i.test(s), 'must not be a signed URL');

/** An object key relative to a location: no leading slash, no ".." segment, no NUL. */
const relativeKey = z.string().min(1).refine((k) => !k.startsWith('/') && !k.split('/').includes('..') && !k.includes('\0'), 'must be a relative key without ".." segments');

/** Run ids are made by the planner: "scan-" or "fit-" and 16 hex digits (they name folders). */
const runId = z.string().regex(/^(scan|fit)-[0-9a-f]{16}$/, 'must be a run id (scan-/fit- and 16 hex digits)');

/** A shard's or group's id within its run: its number and a hash of its content ("00012-3fa9c2d1"). */
const partId = z.string().regex(/^\d{5,}-[0-9a-f]{8}$/, 'must be a shard or group id');

const encoderSpec = z.object({
  name: z.string(),
  uri: z.string().optional(),
  taps: z.array(z.string()).min(1).readonly(),
  inputSize: z.number().int().min(32).max(1024),
  preprocessing: z.object({ kind: z.enum(['symmetric', 'unit', 'imagenet', 'raw']) }),
  batchSize: z.number().int().positive().optional(),
});

const maxBytes = z.number().int().min(1).max(MAX_OBJECT_BYTES).default(DEFAULTS.maxBytes);
const partitionDepth = z.number().int().min(1).max(16).default(DEFAULTS.partitionDepth);
const topK = z.number().int().min(0).max(500).default(DEFAULTS.topK);
/** report.md's partitions: a table, or a plain list for chat tools that do not render tables. */
const mdStyle = z.enum(['table', 'list']).default(DEFAULTS.mdStyle);
/** The score that decides `flagged` in a scan, when not the model's own primary (scan --primary). */
const primary = z.enum(SCORE_TYPES).optional();

export const shardSchema = z.object({
  /** Shard number within the run, 0-based, in key order. */
  index: z.number().int().min(0),
  /** The shard's id: its number and the start of its content hash. */
  id: partId,
  /** Images in the shard. */
  count: z.number().int().min(0),
  /** Content hash of the shard (its location, keys, ETags and read limit): the feature cache key. */
  contentHash: z.string().regex(/^[0-9a-f]{16}$/),
});
export type Shard = z.infer<typeof shardSchema>;

const objectInfo = z.object({ key: relativeKey, size: z.number().int().min(0), etag: z.string() });

/** A shard manifest in the run's work area: the objects of one shard, in key order. */
export const shardManifest = z.object({ shard: z.number().int().min(0), objects: z.array(objectInfo) });
export type ShardManifest = z.infer<typeof shardManifest>;

/**
 * What every job of a run shares (<work>/settings.json): written by the planner before the first job
 * is enqueued, read back and validated by each job like job data (its locations, opened through the
 * worker's roots check).
 */
export const runSettings = z.object({
  runId,
  kind: z.enum(['scan', 'fit']),
  /** Where the images are (s3:// or a folder). */
  input: location,
  /** Feature cache location (features keyed by encoder fingerprint + shard content). */
  cache: location,
  encoder: encoderSpec,
  /** Largest image file read, in bytes; larger ones are per-image failures. */
  maxBytes,
  /** Scans: the model scoring them, where the outputs go, and the report's settings. */
  model: location.optional(),
  out: location.optional(),
  partitionDepth,
  topK,
  primary,
});
export type RunSettings = z.infer<typeof runSettings>;

/** A shard job (extract in a fit, score in a scan): the run, its work area, the shard. */
const shardPayload = z.object({
  runId,
  /** Where run-private files (settings, manifests, shard outputs) live. */
  work: location,
  shard: shardSchema,
});

export const extractPayload = shardPayload;
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
  /** What computed the features (the encoder's runtime label; for cached features, the one that cached them). */
  encoderRuntime: z.string().optional(),
});
export type ExtractResult = z.infer<typeof extractResult>;

/** A scan's shard: extracted (or read from the feature cache), then scored. */
export const scorePayload = shardPayload;
export type ScorePayload = z.infer<typeof scorePayload>;

export const scoreResult = z.object({
  shard: z.number().int().min(0),
  images: z.number().int(),
  failed: z.number().int(),
  extractSeconds: z.number(),
  scoreSeconds: z.number(),
  /** Whether the features came from the cache. */
  cached: z.boolean(),
  /** Failed images by reason category, and each encoder batch's latency (for metrics). */
  failuresByReason: z.record(z.string(), z.number()).optional(),
  batchSeconds: z.array(z.number()).optional(),
  encoderRuntime: z.string().optional(),
});
export type ScoreResult = z.infer<typeof scoreResult>;

/** A group of shards: merges its shards' outputs (scan) or collects their extract results (fit). */
/** A group of shards: merges its shards' outputs (scan) or collects their extract results (fit). */
export const groupPayload = z.object({
  runId,
  step: z.literal('group'),
  work: location,
  group: z.object({ index: z.number().int().min(0), id: partId }),
});
export type GroupPayload = z.infer<typeof groupPayload>;

/** A group's shards (groups/<id>.plan.json), written by the planner before the group is enqueued. */
export const groupPlan = z.object({ group: z.object({ index: z.number().int().min(0), id: partId }), shards: z.array(shardSchema).min(1).max(GROUP_SHARDS) });
export type GroupPlan = z.infer<typeof groupPlan>;

/**
 * The "listing complete" step of a run: a child of the run's final job, added delayed when the run
 * starts and kept delayed by the planner while it lists. The planner promotes it once run.json is
 * written; if the planner dies, it fires when the delay runs out, finds no run.json and fails the run
 * (the final job fails with it), so a run whose listing never completed can never report.
 */
export const listedPayload = z.object({ runId, step: z.literal('listed'), work: location });
export type ListedPayload = z.infer<typeof listedPayload>;

/** Jobs of the group queue. */
export const groupQueuePayload = z.discriminatedUnion('step', [groupPayload, listedPayload]);
export type GroupQueuePayload = z.infer<typeof groupQueuePayload>;

export const groupResult = z.object({
  group: z.number().int().min(-1),
  scored: z.number().int(),
  failed: z.number().int(),
  /** Shards of the group whose score job failed, with the reason. */
  missingShards: z.array(z.object({ shard: z.number().int().min(0), reason: z.string() })),
  extractSeconds: z.number(),
  scoreSeconds: z.number(),
  /** The distinct encoder runtimes that computed the group's features. */
  encoderRuntimes: z.array(z.string()).optional(),
});
export type GroupResult = z.infer<typeof groupResult>;

export const trainPayload = z.object({
  runId,
  work: location,
  /** Model folder to write. */
  model: location,
  /** The ID images' location (recorded in the model). */
  input: location.optional(),
  /** The DLSR configuration (validated again by the core). */
  config: z.record(z.string(), z.unknown()),
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

export const reportPayload = z.object({
  runId,
  work: location,
  model: location,
  input: location,
  out: location,
  startedAt: z.number(),
  /** Partitions of the report: the first N path segments below the input prefix. */
  partitionDepth,
  /** Images in each of the report's most-OOD and most-typical galleries. */
  topK,
  /** Incremental scan: objects unchanged since the previous scan were left out. */
  incremental: z.boolean().default(false),
  /** Largest image read (for thumbnails). */
  maxBytes,
  /** Write the single-file scores.parquet / scores.csv when the run scores at most this many images. */
  singleFileMax: z.number().int().min(0).default(DEFAULTS.singleFileMax),
  /** Folder of the input's scan state (what the last scan saw) and trend, when the run records them. */
  state: location.optional(),
  /**
   * What the run's scores are bound to (a hash of the model's identity and the scoring settings):
   * recorded with the state; scores are carried forward only between scans of the same binding.
   * A run that records state without it fails (report-run.ts).
   */
  carry: z.string().regex(/^[0-9a-f]{16}$/).optional(),
  /** Why every image was scanned, when the run records state and carries nothing forward ("first scan of this prefix", ...). */
  rescan: z.string().max(500).optional(),
  mdStyle,
  primary,
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
  /**
   * The headline's level: the worst of the dataset verdict and its partitions' (a small shifted
   * partition makes it "shifted" under a milder dataset verdict); what `scan --fail-on` acts on.
   */
  headline: z.string().optional(),
  /** The first shards that could not be scored (summary.json lists them all), and how many. */
  missingShards: z.array(z.number().int()),
  missingShardCount: z.number().int().min(0),
  /**
   * The counts above, the verdict and the headline describe the whole prefix as of the scan (unchanged
   * images' scores carried forward); this describes the images new or changed since the previous scan,
   * when scores were carried forward (absent: everything was scanned).
   */
  newOrChanged: z.object({ scored: z.number().int(), failed: z.number().int(), flagged: z.number().int(), flaggedFraction: z.number(), verdict: z.string(), headline: z.string() }).optional(),
  /** Why the run's scan state was not recorded (another scan of the prefix recorded its own meanwhile); absent when it was, or when the run keeps none. */
  stateNotRecorded: z.string().max(2000).optional(),
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
  maxBytes,
  full: z.boolean().default(false),
  partitionDepth,
  topK,
  mdStyle,
  primary,
});
export type SchedulePayload = z.infer<typeof schedulePayload>;
export const scheduleResult = z.object({ runId: z.string(), out: z.string(), created: z.boolean() });
export type ScheduleResult = z.infer<typeof scheduleResult>;

/** Expands {date} / {datetime} in a scheduled scan's output location. */
export function expandOut(template: string, at: Date): string {
  const iso = at.toISOString();
  return template.replaceAll('{date}', iso.slice(0, 10)).replaceAll('{datetime}', iso.slice(0, 16).replace(':', '-'));
}

/**
 * What a run's listing found, written to its work area once the listing is complete (run.json): the
 * final job reads it, and its presence is the "listing complete" fact of the run.
 */
export const runRecord = z.object({
  runId,
  /** The groups of shards, in key order. */
  groups: z.array(z.object({ index: z.number().int().min(0), id: partId, shards: z.number().int().min(1), images: z.number().int().min(1) })),
  shards: z.number().int().min(0),
  /** Images to scan (or to fit on). */
  images: z.number().int().min(0),
  /** Every entry listed under the input, and those not scanned, by reason. */
  listed: z.number().int().min(0),
  skippedByReason: z.record(z.string(), z.number().int().min(0)),
  /** Pages of skipped.csv rows in the work area. */
  skippedPages: z.number().int().min(0),
  /** Scan state pages this run writes when it completes (the rest stay as they are). */
  statePages: z.array(z.object({ id: z.string().regex(/^[0-9a-f]{16}$/), first: z.string(), last: z.string(), count: z.number().int().min(0) })).default([]),
  /** Whether the state changed at all (new, changed or deleted objects). */
  stateChanged: z.boolean().default(false),
  /** The run id of the scan state the planning read (null: none); the report checks it is still there. */
  stateBase: z.string().nullable().default(null),
});
export type RunRecord = z.infer<typeof runRecord>;

/** "12 not an image (file extension), 3 unchanged since the previous scan" (or "nothing"). */
export function describeSkipped(byReason: Readonly<Record<string, number>>): string {
  const parts = Object.entries(byReason).map(([reason, n]) => `${n} ${reason}`);
  return parts.length > 0 ? parts.join(', ') : 'nothing';
}

export interface PayloadOf {
  extract: ExtractPayload;
  train: TrainPayload;
  score: ScorePayload;
  group: GroupQueuePayload;
  report: ReportPayload;
  schedule: SchedulePayload;
}
export interface ResultOf {
  extract: ExtractResult;
  train: TrainResult;
  score: ScoreResult;
  group: GroupResult;
  report: ReportResult;
  schedule: ScheduleResult;
}

const PAYLOADS = { extract: extractPayload, train: trainPayload, score: scorePayload, group: groupQueuePayload, report: reportPayload, schedule: schedulePayload } as const;

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
    case 'extract':
    case 'score': {
      // The run's other locations come from its settings.json, opened through the same check.
      return [(p as ExtractPayload).work];
    }
    case 'train': {
      const t = p as TrainPayload;
      return [t.work, t.model, ...(t.input !== undefined ? [t.input] : [])];
    }
    case 'group': {
      const g = p as GroupQueuePayload;
      return [g.work];
    }
    case 'report': {
      const r = p as ReportPayload;
      return [r.work, r.model, r.input, r.out, ...(r.state !== undefined ? [r.state] : [])];
    }
    default: {
      const s = p as SchedulePayload;
      return [s.model, s.input, s.out.split('{')[0]!, ...(s.cache !== undefined ? [s.cache] : [])];
    }
  }
}

/** Retries per queue, with exponential backoff (stored with each job). */
export const JOB_OPTIONS: Record<QueueKind, DefaultJobOptions> = {
  extract: { attempts: 5, backoff: { type: 'exponential', delay: 2000 } },
  score: { attempts: 5, backoff: { type: 'exponential', delay: 2000 } },
  group: { attempts: 5, backoff: { type: 'exponential', delay: 2000 } },
  train: { attempts: 5, backoff: { type: 'exponential', delay: 5000 } },
  report: { attempts: 5, backoff: { type: 'exponential', delay: 2000 } },
  schedule: { attempts: 5, backoff: { type: 'exponential', delay: 10_000 }, removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } },
};

/**
 * How long finished jobs stay in Redis, per queue: set on the workers (not stored with every job).
 * Shard jobs an hour after they complete (their results live in the work area and their group's
 * outcome), groups a week, the runs' final jobs a month; failures longer, for inspection.
 */
export const KEEP_JOBS: Record<QueueKind, { readonly removeOnComplete: { age: number } | { count: number }; readonly removeOnFail: { age: number } | { count: number } }> = {
  extract: { removeOnComplete: { age: 3600 }, removeOnFail: { age: 7 * 24 * 3600 } },
  score: { removeOnComplete: { age: 3600 }, removeOnFail: { age: 7 * 24 * 3600 } },
  group: { removeOnComplete: { age: 7 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } },
  train: { removeOnComplete: { age: 30 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } },
  report: { removeOnComplete: { age: 30 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } },
  schedule: { removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } },
};

/** The reason a worker gives running jobs when it cancels them at shutdown (they go back to waiting). */
export const SHUTDOWN_REASON = 'worker shutting down';

/** Lock settings: tensor work runs in sandboxed children, so the parent renews locks on time. */
export const WORKER_LOCK = { lockDuration: 30_000, stalledInterval: 15_000, maxStalledCount: 3 } as const;

/** Job ids: deterministic, no ':' (BullMQ reserves it), never all digits. */
export function jobId(runId: string, kind: QueueKind, part?: string): string {
  return part === undefined ? `${runId}.${kind}` : `${runId}.${kind}.${part}`;
}

/**
 * The index of a shard or group from the key of its job (`<prefix>:<queue>:<run>.<kind>.<index>-<hash>`),
 * e.g. a failed child's key as BullMQ reports it; undefined for another kind or shape (a run's "listed" step).
 */
export function partIndexOf(jobKey: string, kind: 'score' | 'group'): number | undefined {
  const m = new RegExp(`\\.${kind}\\.(\\d+)-[0-9a-f]{8}$`).exec(jobKey);
  return m === null ? undefined : Number(m[1]);
}

/** The final job of a run. */
export function finalJobOf(kind: 'scan' | 'fit', runId: string): { readonly queue: 'report' | 'train'; readonly id: string } {
  return kind === 'scan' ? { queue: 'report', id: jobId(runId, 'report') } : { queue: 'train', id: jobId(runId, 'train') };
}

/** A group of shards, ready to enqueue or run: its plan and its shards' manifests are written. */
export interface PlannedGroup {
  readonly mode: 'scan' | 'fit';
  readonly group: GroupPayload;
  /** The shards' jobs: score jobs in a scan, extract jobs in a fit (the same payload). */
  readonly shards: readonly ScorePayload[];
}

/** The payload of a run's final job: known before the listing starts (it reads run.json for the rest). */
export type FinalJob = { readonly kind: 'scan'; readonly report: ReportPayload } | { readonly kind: 'fit'; readonly train: TrainPayload };

/** The run's final job, once the listing is complete (run.json is written). */
export type PlannedEnd = FinalJob & { readonly record: RunRecord };

export interface RunPlan {
  readonly kind: 'scan' | 'fit';
  /**
   * The run's id, from what determines it. The queue driver runs it under another id derived from
   * this one when a run of this id failed before (a failed run's jobs are left for inspection).
   */
  readonly runId: string;
  /** The output location a scan writes (for the claim on it), or the model a fit writes. */
  readonly out: string;
  /** The work area of the run with id `runId` (URI). */
  workOf(runId: string): string;
  /** The final job of the run with id `runId` (enqueued before the listing starts). */
  finalOf(runId: string): FinalJob;
  /**
   * Lists the input, writes the work files and yields each group as soon as it is full, then the
   * final job, for the run with id `runId`. Runs once.
   */
  steps(runId: string): AsyncGenerator<PlannedGroup, PlannedEnd>;
}

/** Keys of run-private files in the work store. */
export const workKeys = {
  run: 'run.json',
  manifest: (shard: string): string => `shards/${shard}.manifest.json`,
  /** A shard's score rows and flags (JSON), and its report aggregate. */
  shardScores: (shard: string): string => `shards/${shard}.scores.json`,
  shardAggregate: (shard: string): string => `shards/${shard}.agg`,
  /** What every job of the run shares (see runSettings), written before the first job. */
  settings: 'settings.json',
  /** A group's shards, written when it is planned. */
  groupPlan: (group: string): string => `groups/${group}.plan.json`,
  /** A scan group's outcome (groups/<id>.json) and merged aggregate, written when it completes. */
  groupOutcome: (group: string): string => `groups/${group}.json`,
  groupAggregate: (group: string): string => `groups/${group}.agg`,
  /** A scan group's scored rows (outputs/score-rows.ts): the report cuts them into state pages. */
  groupRows: (group: string): string => `groups/${group}.rows`,
  /** A fit group's extract results (the train job reads the features they name). */
  groupExtracts: (group: string): string => `groups/${group}.extracts.json`,
  /** A scan group's part files, moved under --out by the report (partKeys) once the run is complete. */
  part: (key: string): string => `parts/${key}`,
  skippedPage: (page: number): string => `skipped/${String(page).padStart(5, '0')}.csv`,
  statePage: (page: string): string => `state/${page}.json`,
  /** Whether the report recorded the scan state (stateOutcome), written once it has tried: a retry does not build again. */
  stateOutcome: 'state-outcome.json',
  /** The state a report planned to record on (stateIntent), written before it writes the index: a retry that finds the state moved elsewhere records nothing. */
  stateIntent: 'state-intent.json',
} as const;

/** The report's attempt to record the scan state: recorded, or why not. */
export const stateOutcome = z.discriminatedUnion('recorded', [z.object({ recorded: z.literal(true) }).strict(), z.object({ recorded: z.literal(false), reason: z.string().min(1).max(2000) }).strict()]);
/** The run id of the state index a report's first attempt found before recording (null: none). */
export const stateIntent = z.object({ base: z.string().max(200).nullable() }).strict();

/** Keys of a scan's part files under its output location (one per group; a dataset by glob). */
export const partKeys = {
  scores: (group: string): string => `scores/part-${group}.parquet`,
  failures: (group: string): string => `failures/part-${group}.csv`,
  skipped: (page: number): string => `skipped/part-${String(page).padStart(5, '0')}.csv`,
} as const;

/** What a scan group's merge found (groups/<id>.json). */
export const groupOutcome = z.object({
  group: z.number().int().min(0),
  scored: z.number().int().min(0),
  failed: z.number().int().min(0),
  /** Shards of the group that could not be scored, with the reason. */
  missingShards: z.array(z.object({ shard: z.number().int().min(0), reason: z.string() })),
  extractSeconds: z.number().min(0),
  scoreSeconds: z.number().min(0),
  encoderRuntimes: z.array(z.string()).optional(),
});
export type GroupOutcome = z.infer<typeof groupOutcome>;

/** A fit group's extract results (groups/<id>.extracts.json). */
export const groupExtracts = z.array(extractResult);

/** A shard's content hash: its input location, read limit, and the keys and ETags of its images. */
export function shardContentHash(inputUri: string, maxBytes: number, objects: readonly { readonly key: string; readonly etag: string }[]): string {
  return stableHash(inputUri, maxBytes, objects.map((o) => [o.key, o.etag]));
}

/** Key of a shard's features in the feature cache (v2: feature sets with content digests). */
export function cacheKey(fingerprintId: string, contentHash: string): string {
  return `features/v2/${fingerprintId}/${contentHash}.oodf`;
}
