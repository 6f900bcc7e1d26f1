/**
 * A fitted DLSR model and its scoring: raw pooled features in, every score type out.
 * Scoring standardises the features stage by stage, distorts them with per-image noise, reconstructs
 * them with the final LFDN (and the first-epoch LFDN for LR, with the same noise) and computes the
 * reconstruction scores, plus the Mahalanobis and kNN baselines on the same standardised features,
 * and, when the model and the rows have image properties, the conditions score (conditions.ts).
 */
import { conditionsScores, type ConditionsModel } from '../conditions.js';
import { OodError } from '../errors.js';
import type { EncoderFingerprint } from '../encoder/encoder.js';
import { standardiseStages } from '../features.js';
import { makeSchedule } from '../diffusion/schedule.js';
import { drawNoise, ddimTimesteps, reconstruct, type Denoiser } from '../diffusion/ddim.js';
import { disposeParams } from '../diffusion/lfdn.js';
import { knnScores, mahalanobisScores, type KnnModel, type MahalanobisModel } from '../baselines.js';
import { fuseScores, reconstructionScores, lrScore, type FusionStats } from '../scores.js';
import type { Calibration } from '../calibration.js';
import { applyWhitening, unapplyWhitening, type Whitening } from '../whitening.js';
import { CONDITIONS_SCORE, SCORE_TYPES, type DlsrConfig } from './config.js';
import type { ScoreColumns, ScoreSelection, ScoreTable } from '../score-table.js';
import type { FeatureRows } from '../feature-set.js';

export interface ModelInfo {
  /** Backend the model was trained on. */
  readonly backend: string;
  readonly versions: Readonly<Record<string, string>>;
  readonly trainCount: number;
  readonly holdoutCount: number;
  readonly epochs: number;
  readonly trainSeconds: number;
  /** Where the ID images came from. */
  readonly idSource?: string;
  /** What computed the ID features (the feature set's runtime labels; the fingerprint does not depend on it). */
  readonly encoderRuntime?: string;
}

export interface DlsrModel {
  readonly config: DlsrConfig;
  readonly fingerprint: EncoderFingerprint;
  readonly stageSizes: readonly number[];
  readonly final: Denoiser;
  /** The first-epoch network, for LR. */
  readonly first: Denoiser;
  /** The LFDN's input whitening (config.whiten), fitted on the ID training features. */
  readonly whitening: Whitening | undefined;
  /** Holdout statistics of the fused score's parts (absent in models made before it). */
  readonly fusion: FusionStats | undefined;
  readonly mahalanobis: MahalanobisModel;
  readonly knn: KnnModel;
  readonly calibration: Calibration | undefined;
  /** The ID set's image-property statistics (absent in models made before them: no conditions score). */
  readonly conditions?: ConditionsModel;
  readonly info: ModelInfo;
}

/** Every score type the model can compute (the fused score needs its holdout statistics, the conditions score its property statistics). */
export function scoreTypesOfModel(model: DlsrModel): ScoreSelection {
  return new Set([...SCORE_TYPES.filter((t) => t !== 'fused' || model.fusion !== undefined), ...(model.conditions !== undefined ? [CONDITIONS_SCORE] : [])]);
}

export interface ScoreOptions {
  /** Score types to compute (default: every type of the model). LR doubles the LFDN work; baselines are cheap. */
  readonly types?: ScoreSelection;
  readonly onProgress?: (done: number, total: number) => void;
}

export function disposeModel(model: DlsrModel): void {
  for (const den of [model.final, model.first]) {
    disposeParams(den.params);
    den.table.dispose();
  }
}

/** The LFDN's view of a set of rows: the standardised features, their whitened form and reconstructions. */
export interface Reconstruction {
  /** Standardised features z, row-major [n, D]. */
  readonly z: Float32Array;
  /** What the LFDN sees: z whitened (z itself without whitening). */
  readonly u: Float32Array;
  /** The final network's reconstruction of u. */
  readonly final: Float32Array;
  /** The first-epoch network's reconstruction of u with the same noise (when asked). */
  readonly first: Float32Array | undefined;
}

/**
 * Distorts and reconstructs raw pooled features, row-major [keys.length, D]. The reconstruction noise
 * of each row is drawn from the row's content digest (the sha256 of the image's bytes), so an image
 * reconstructs the same under any name, in any store, shard or batch.
 */
export function reconstructRows(model: DlsrModel, rows: Pick<FeatureRows, 'keys' | 'digests' | 'features'>, withFirst: boolean, onProgress?: (done: number, total: number) => void): Reconstruction {
  const { keys, digests, features: raw } = rows;
  const d = model.stageSizes.reduce((a, b) => a + b, 0);
  if (raw.length !== keys.length * d || digests.length !== keys.length) throw new OodError('SHAPE_MISMATCH', `scoring: expected ${keys.length}x${d} features and ${keys.length} digests, got ${raw.length} values and ${digests.length} digests`);
  const n = keys.length;
  const z = standardiseStages(raw, model.stageSizes);
  const u = applyWhitening(model.whitening, z, d);
  const final = new Float32Array(n * d);
  const first = withFirst ? new Float32Array(n * d) : undefined;
  const sc = model.config.scoring;
  const schedule = makeSchedule(model.config.schedule);
  const steps = ddimTimesteps(sc.t, sc.steps).length;
  const bs = sc.batchSize;
  for (let s = 0; s < n; s += bs) {
    const m = Math.min(bs, n - s);
    const ub = u.subarray(s * d, (s + m) * d);
    const noise = drawNoise(digests.slice(s, s + m), sc.seed, steps, d);
    final.set(reconstruct(model.final, schedule, ub, noise, m, sc), s * d);
    if (first !== undefined) first.set(reconstruct(model.first, schedule, ub, noise, m, sc), s * d);
    onProgress?.(s + m, n);
  }
  return { z, u, final, first };
}

/**
 * Scores raw (unstandardised) pooled features, row-major [keys.length, D]: every score type asked,
 * from one reconstruction (reconstructRows).
 */
export function scoreFeatures(model: DlsrModel, rows: FeatureRows, options: ScoreOptions = {}): ScoreTable {
  const { keys, digests, features: raw } = rows;
  const d = model.stageSizes.reduce((a, b) => a + b, 0);
  if (raw.length !== keys.length * d || digests.length !== keys.length) throw new OodError('SHAPE_MISMATCH', `scoring: expected ${keys.length}x${d} features and ${keys.length} digests, got ${raw.length} values and ${digests.length} digests`);
  const types = options.types ?? scoreTypesOfModel(model);
  if (types.has('fused') && model.fusion === undefined) throw new OodError('MODEL_INVALID', 'this model has no fusion statistics for the fused score (it predates it): refit it, or choose other --scores');
  // What is computed: the types asked and the fused score's parts.
  const need = new Set<string>([...types, ...(types.has('fused') ? model.fusion!.parts : [])]);
  const cols: ScoreColumns = {};
  let z: Float32Array | undefined;
  if (need.has('mse') || need.has('mfsim') || need.has('mfsim_all') || need.has('lr')) {
    const r = reconstructRows(model, rows, need.has('lr'), options.onProgress);
    z = r.z;
    const rec = reconstructionScores(r.u, r.final, model.stageSizes);
    cols.mse = rec.mse;
    if (need.has('mfsim') || need.has('mfsim_all')) {
      // MFsim's cosine in the space the model's configuration names (config.ts, cosineSpace).
      const back = model.config.scoring.cosineSpace === 'standardised' && model.whitening !== undefined ? reconstructionScores(r.z, unapplyWhitening(model.whitening, r.final, d), model.stageSizes) : rec;
      cols.mfsim = back.mfsim;
      cols.mfsim_all = back.mfsim_all;
    }
    if (r.first !== undefined) cols.lr = lrScore(reconstructionScores(r.u, r.first, model.stageSizes).mse, rec.mse, model.config.scoring.lrSign);
  }
  z ??= standardiseStages(raw, model.stageSizes);
  if (need.has('mahalanobis')) cols.mahalanobis = mahalanobisScores(model.mahalanobis, z, d);
  if (need.has('knn')) cols.knn = knnScores(model.knn, z, d);
  if (types.has('fused')) cols.fused = fuseScores(cols, model.fusion!);
  // Parts computed only for the fused score are not returned.
  for (const t of Object.keys(cols) as (keyof ScoreColumns)[]) if (!types.has(t)) delete cols[t];
  // The conditions score needs the rows' properties: rows without them (features cached before
  // properties were measured) simply have none.
  if (types.has(CONDITIONS_SCORE) && model.conditions !== undefined && rows.properties !== undefined) cols.conditions = conditionsScores(model.conditions, rows.properties).score;
  return { keys, digests, scores: cols, ...(rows.properties !== undefined ? { properties: rows.properties } : {}) };
}
