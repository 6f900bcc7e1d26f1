/**
 * Report aggregates: what a shard contributes to its run's report, in a form that merges
 * associatively (a shard, a group of shards, a whole run), so the report is built from a run of any
 * size with memory bounded by the report's own sizes plus 4 bytes per scored image:
 *
 *   counts          scored, failed
 *   partitions      per partition: the primary scores (float32, exact: the verdict's Mann-Whitney and
 *                   Kolmogorov-Smirnov tests and the histogram need the distribution) and the
 *                   flagged count
 *   galleries       the top-K most OOD and most typical images (score, then key, so ties resolve the
 *                   same whatever the sharding)
 *   failures        counts by reason category and the first examples, in key order
 *   conditions      per partition, when the model and the rows have image properties: the
 *                   conditions-flagged count and fixed-bin histograms (the model's bins) of every
 *                   property with per-bin sums, and format counts (report/drift.ts): a few KB
 *                   per partition whatever its size
 *   score summary   per score type: the exact sum, and a sample of at most SAMPLE images chosen by
 *                   a hash of their key (the SAMPLE smallest hashes: uniform, deterministic and
 *                   mergeable), for the medians and 95th percentiles of summary.json (exact up to
 *                   SAMPLE images; above, a rank error of about 1/sqrt(SAMPLE) = 2%)
 *
 * Serialised as one binary frame (magic "OODAGG01"): header JSON, then the float32 scores.
 */
import { z } from 'zod';
import { decodeFrame, encodeFrame } from '../binary-frame.js';
import type { Flags } from '../calibration.js';
import type { ScoreType } from '../dlsr/config.js';
import { OodError } from '../errors.js';
import type { Failure } from '../feature-set.js';
import { scoreTypesOf, type ScoreTable } from '../score-table.js';
import { keyHash } from '../rng.js';
import { partitionOf } from './verdict.js';
import type { ConditionsModel } from '../conditions.js';
import { PROPERTY_BINS } from '../conditions.js';
import { PROPERTY_COUNT } from '../image/properties.js';
import { addConditionsRows, clonePartitionConditions, emptyPartitionConditions, mergePartitionConditions, type PartitionConditions } from './drift.js';
import { concatFloat32 } from '../typed-arrays.js';

/** Failed images named in a report (the rest are counted by reason). */
export const FAILURE_EXAMPLES = 200;

/** Images in the score summary's sample. */
export const SAMPLE = 2048;

/** One image of the score summary's sample. */
export interface SampleEntry {
  /** Hash of the key (the sample keeps the smallest). */
  readonly h: number;
  readonly key: string;
  /** Every computed score. */
  readonly scores: Readonly<Record<string, number>>;
}

export interface ImageEntry {
  readonly key: string;
  readonly score: number;
  /** Position among the ID holdout scores, 0..1. */
  readonly rank: number;
  readonly flagged: boolean;
  readonly partition: string;
  /** Every computed score. */
  readonly scores: Readonly<Record<string, number>>;
}

export interface PartitionScores {
  /** Primary scores of the partition's scored images, in chunks (concatenated on use). */
  readonly chunks: Float32Array[];
  flagged: number;
  /** The partition's image-property histograms and conditions flags (absent without properties). */
  conditions?: PartitionConditions;
}

/** What a shard needs to aggregate conditions: the model's property statistics and the conditions threshold. */
export interface ConditionsContext {
  readonly model: ConditionsModel;
  readonly threshold: number;
}

export interface Aggregate {
  scored: number;
  failed: number;
  readonly partitions: Map<string, PartitionScores>;
  /** Highest primary score first (ties: key ascending); at most topK. */
  mostOod: ImageEntry[];
  /** Lowest primary score first (ties: key descending); at most topK. */
  mostTypical: ImageEntry[];
  readonly failuresByReason: Map<string, number>;
  /** The first failures in key order (at most FAILURE_EXAMPLES). */
  readonly failureExamples: Failure[];
  /** Per score type, the sum over the scored images (float64). */
  readonly sums: Map<string, number>;
  /** At most SAMPLE images with the smallest key hashes (ascending). */
  sample: SampleEntry[];
}

export function emptyAggregate(): Aggregate {
  return { scored: 0, failed: 0, partitions: new Map(), mostOod: [], mostTypical: [], failuresByReason: new Map(), failureExamples: [], sums: new Map(), sample: [] };
}

const bySample = (a: Pick<SampleEntry, 'h' | 'key'>, b: Pick<SampleEntry, 'h' | 'key'>): number => a.h - b.h || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** Failure reasons grouped into readable categories (decoder messages vary in details). */
export function reasonCategory(reason: string): string {
  const r = reason.toLowerCase();
  if (r.includes('empty file')) return 'empty file';
  if (r.includes('pixel limit')) return 'image too large (pixel limit)';
  if (r.includes('unsupported image format')) return 'not an image / unsupported format';
  if (r.includes('premature end') || r.includes('truncated') || r.includes('corrupt')) return 'truncated or corrupt image';
  if (r.startsWith('shard ')) return 'shard failed';
  return reason.length > 80 ? `${reason.slice(0, 77)}...` : reason;
}

const byOod = (a: ImageEntry, b: ImageEntry): number => b.score - a.score || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const byTypical = (a: ImageEntry, b: ImageEntry): number => a.score - b.score || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0);

function keepTop(entries: ImageEntry[], cmp: (a: ImageEntry, b: ImageEntry) => number, k: number): ImageEntry[] {
  return entries.sort(cmp).slice(0, k);
}

/** Adds failures (in key order) to an aggregate. */
export function addFailures(agg: Aggregate, failures: readonly Failure[]): void {
  agg.failed += failures.length;
  for (const f of failures) {
    const c = reasonCategory(f.reason);
    agg.failuresByReason.set(c, (agg.failuresByReason.get(c) ?? 0) + 1);
    if (agg.failureExamples.length < FAILURE_EXAMPLES) agg.failureExamples.push(f);
  }
}

/** A shard's aggregate: its scored rows (key order), their flags, and its failures. */
export function aggregateShard(table: ScoreTable, flags: Flags, primary: ScoreType, partitionDepth: number, topK: number, failures: readonly Failure[], conditions?: ConditionsContext): Aggregate {
  const col = table.scores[primary];
  if (col === undefined) throw new OodError('INTERNAL', `aggregate: primary score ${primary} missing`);
  const agg = emptyAggregate();
  agg.scored = table.keys.length;
  const types = scoreTypesOf(table.scores);
  const rows = new Map<string, number[]>();
  table.keys.forEach((key, i) => {
    const p = partitionOf(key, '', partitionDepth);
    const r = rows.get(p);
    if (r === undefined) rows.set(p, [i]);
    else r.push(i);
  });
  const condCol = table.scores.conditions;
  const props = table.properties;
  for (const [name, idx] of rows) {
    const part: PartitionScores = { chunks: [Float32Array.from(idx, (i) => col[i]!)], flagged: idx.reduce((s, i) => s + flags.flagged[i]!, 0) };
    if (conditions !== undefined && condCol !== undefined && props !== undefined) {
      part.conditions = emptyPartitionConditions();
      addConditionsRows(part.conditions, conditions.model, props, condCol, conditions.threshold, idx);
    }
    agg.partitions.set(name, part);
  }
  const entry = (i: number): ImageEntry => ({
    key: table.keys[i]!,
    score: col[i]!,
    rank: flags.rank[i]!,
    flagged: flags.flagged[i]! > 0,
    partition: partitionOf(table.keys[i]!, '', partitionDepth),
    scores: Object.fromEntries(types.map((t) => [t, table.scores[t]![i]!])),
  });
  const all = table.keys.map((_, i) => i);
  const order = (cmp: (a: ImageEntry, b: ImageEntry) => number): ImageEntry[] => {
    // Select by the score first (cheap), then build entries only for the candidates.
    const sorted = [...all].sort((a, b) => cmp({ key: table.keys[a]!, score: col[a]! } as ImageEntry, { key: table.keys[b]!, score: col[b]! } as ImageEntry));
    return sorted.slice(0, topK).map(entry);
  };
  agg.mostOod = order(byOod);
  agg.mostTypical = order(byTypical);
  for (const t of types) {
    const c = table.scores[t]!;
    let sum = 0;
    for (let i = 0; i < c.length; i++) sum += c[i]!;
    agg.sums.set(t, sum);
  }
  agg.sample = table.keys
    .map((key, i) => ({ h: keyHash(0x5a3b1e, key), key, i }))
    .sort(bySample)
    .slice(0, SAMPLE)
    .map(({ h, key, i }) => ({ h, key, scores: Object.fromEntries(types.map((t) => [t, table.scores[t]![i]!])) }));
  addFailures(agg, failures);
  return agg;
}

/**
 * Merges `b` into `a` (a's shards come first in key order: partitions and failure examples keep
 * their first-seen order).
 */
export function mergeAggregates(a: Aggregate, b: Aggregate, topK: number): Aggregate {
  a.scored += b.scored;
  a.failed += b.failed;
  for (const [name, p] of b.partitions) {
    const q = a.partitions.get(name);
    if (q === undefined) a.partitions.set(name, { chunks: [...p.chunks], flagged: p.flagged, ...(p.conditions !== undefined ? { conditions: clonePartitionConditions(p.conditions) } : {}) });
    else {
      q.chunks.push(...p.chunks);
      q.flagged += p.flagged;
      // Shards without properties (features cached before them) contribute no conditions.
      if (p.conditions !== undefined) q.conditions = q.conditions === undefined ? clonePartitionConditions(p.conditions) : mergePartitionConditions(q.conditions, p.conditions);
    }
  }
  a.mostOod = keepTop([...a.mostOod, ...b.mostOod], byOod, topK);
  a.mostTypical = keepTop([...a.mostTypical, ...b.mostTypical], byTypical, topK);
  for (const [r, n] of b.failuresByReason) a.failuresByReason.set(r, (a.failuresByReason.get(r) ?? 0) + n);
  for (const f of b.failureExamples) if (a.failureExamples.length < FAILURE_EXAMPLES) a.failureExamples.push(f);
  for (const [t, v] of b.sums) a.sums.set(t, (a.sums.get(t) ?? 0) + v);
  if (b.sample.length > 0) a.sample = [...a.sample, ...b.sample].sort(bySample).slice(0, SAMPLE);
  return a;
}

/** A partition's scores as one array. */
export function partitionScores(p: PartitionScores): Float32Array {
  return p.chunks.length === 1 ? p.chunks[0]! : concatFloat32(p.chunks);
}

const MAGIC = 'OODAGG01';

const slots = z.array(z.number().min(0)).length(PROPERTY_BINS + 3);
const conditionsSchema = z.object({
  n: z.number().int().min(0),
  flagged: z.number().int().min(0),
  counts: z.array(slots).length(PROPERTY_COUNT),
  sums: z.array(z.array(z.number()).length(PROPERTY_BINS + 3)).length(PROPERTY_COUNT),
  formats: z.record(z.string(), z.number().int().min(0)),
});
const entrySchema = z.object({ key: z.string(), score: z.number(), rank: z.number(), flagged: z.boolean(), partition: z.string(), scores: z.record(z.string(), z.number()) });
const headerSchema = z.object({
  scored: z.number().int().min(0),
  failed: z.number().int().min(0),
  partitions: z.array(z.object({ name: z.string(), count: z.number().int().min(0), flagged: z.number().int().min(0), conditions: conditionsSchema.optional() }).refine((p) => p.conditions === undefined || (p.conditions.n <= p.count && p.conditions.flagged <= p.conditions.n), 'conditions must count at most the partition\'s images')),
  mostOod: z.array(entrySchema),
  mostTypical: z.array(entrySchema),
  failuresByReason: z.array(z.tuple([z.string(), z.number().int().min(0)])),
  failureExamples: z.array(z.object({ key: z.string(), reason: z.string() })),
  sums: z.array(z.tuple([z.string(), z.number()])),
  sample: z.array(z.object({ h: z.number().int().min(0), key: z.string(), scores: z.record(z.string(), z.number()) })).max(SAMPLE),
});

export function encodeAggregate(agg: Aggregate): Uint8Array {
  const parts = [...agg.partitions].map(([name, p]) => ({ name, scores: partitionScores(p), flagged: p.flagged, conditions: p.conditions }));
  const body = concatFloat32(parts.map((p) => p.scores));
  const header = {
    scored: agg.scored,
    failed: agg.failed,
    partitions: parts.map((p) => ({ name: p.name, count: p.scores.length, flagged: p.flagged, ...(p.conditions !== undefined ? { conditions: p.conditions } : {}) })),
    mostOod: agg.mostOod,
    mostTypical: agg.mostTypical,
    failuresByReason: [...agg.failuresByReason],
    failureExamples: agg.failureExamples,
    sums: [...agg.sums],
    sample: agg.sample,
  };
  return encodeFrame(MAGIC, header, new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
}

export function decodeAggregate(bytes: Uint8Array, source: string): Aggregate {
  const frame = decodeFrame(bytes, MAGIC, source, 'an ood-audit report aggregate');
  const parsed = headerSchema.safeParse(frame.header);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new OodError('MODEL_INVALID', `${source}: header ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const h = parsed.data;
  const total = h.partitions.reduce((s, p) => s + p.count, 0);
  if (frame.body.length !== total * 4) throw new OodError('MODEL_INVALID', `${source}: expected ${total * 4} bytes of scores, got ${frame.body.length}`);
  // Every scored image is in exactly one partition: a header that says otherwise would skew the verdict.
  if (total !== h.scored) throw new OodError('MODEL_INVALID', `${source}: partitions hold ${total} scores, the header says ${h.scored} scored`);
  const scores = new Float32Array(total);
  new Uint8Array(scores.buffer).set(frame.body);
  const partitions = new Map<string, PartitionScores>();
  if (h.failureExamples.length > FAILURE_EXAMPLES) throw new OodError('MODEL_INVALID', `${source}: ${h.failureExamples.length} failure examples, at most ${FAILURE_EXAMPLES}`);
  let off = 0;
  for (const p of h.partitions) {
    // A partition named twice would drop the first's scores from the verdict; more flagged than scored skews it.
    if (partitions.has(p.name)) throw new OodError('MODEL_INVALID', `${source}: partition ${JSON.stringify(p.name)} appears twice`);
    if (p.flagged > p.count) throw new OodError('MODEL_INVALID', `${source}: partition ${JSON.stringify(p.name)} has ${p.flagged} flagged of ${p.count} images`);
    partitions.set(p.name, { chunks: [scores.subarray(off, off + p.count)], flagged: p.flagged, ...(p.conditions !== undefined ? { conditions: p.conditions } : {}) });
    off += p.count;
  }
  return {
    scored: h.scored,
    failed: h.failed,
    partitions,
    mostOod: h.mostOod,
    mostTypical: h.mostTypical,
    failuresByReason: new Map(h.failuresByReason),
    failureExamples: h.failureExamples,
    sums: new Map(h.sums),
    sample: h.sample,
  };
}
