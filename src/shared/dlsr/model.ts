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
import { applyWhitening, type Whitening } from '../whitening.js';
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

/**
 * Scores raw (unstandardised) pooled features, row-major [keys.length, D]. The reconstruction noise
 * of each row is drawn from the row's content digest (the sha256 of the image's bytes), so an image
 * scores the same under any name, in any store, shard or batch.
 */
export function scoreFeatures(model: DlsrModel, rows: FeatureRows, options: ScoreOptions = {}): ScoreTable {
  const { keys, digests, features: raw } = rows;
  const d = model.stageSizes.reduce((a, b) => a + b, 0);
  if (raw.length !== keys.length * d || digests.length !== keys.length) throw new OodError('SHAPE_MISMATCH', `scoring: expected ${keys.length}x${d} features and ${keys.length} digests, got ${raw.length} values and ${digests.length} digests`);
  const types = options.types ?? scoreTypesOfModel(model);
  if (types.has('fused') && model.fusion === undefined) throw new OodError('MODEL_INVALID', 'this model has no fusion statistics for the fused score (it predates it): refit it, or choose other --scores');
  const n = keys.length;
  const z = standardiseStages(raw, model.stageSizes);
  const cols: ScoreColumns = {};
  const needRecon = types.has('mse') || types.has('mfsim') || types.has('mfsim_all') || types.has('lr') || types.has('fused');
  if (needRecon) {
    // Every reconstruction score comes from the same reconstruction: keep them all, return the asked.
    const rec = { mse: new Float32Array(n), mfsim: new Float32Array(n), mfsim_all: new Float32Array(n), lr: new Float32Array(types.has('lr') ? n : 0) };
    const sc = model.config.scoring;
    const schedule = makeSchedule(model.config.schedule);
    const steps = ddimTimesteps(sc.t, sc.steps).length;
    const bs = sc.batchSize;
    // The LFDN works in whitened space when the model has a whitening; the baselines below on z.
    const u = applyWhitening(model.whitening, z, d);
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      const zb = u.subarray(s * d, (s + m) * d);
      const noise = drawNoise(digests.slice(s, s + m), sc.seed, steps, d);
      const recon = reconstruct(model.final, schedule, zb, noise, m, sc);
      const r = reconstructionScores(zb, recon, model.stageSizes);
      rec.mse.set(r.mse, s);
      rec.mfsim.set(r.mfsim, s);
      rec.mfsim_all.set(r.mfsim_all, s);
      const rf = types.has('lr') ? reconstructionScores(zb, reconstruct(model.first, schedule, zb, noise, m, sc), model.stageSizes) : undefined;
      if (rf !== undefined) rec.lr.set(lrScore(rf.mse, r.mse, sc.lrSign), s);
      options.onProgress?.(s + m, n);
    }
    for (const t of ['mse', 'mfsim', 'mfsim_all', 'lr'] as const) if (types.has(t)) cols[t] = rec[t];
    if (types.has('fused')) cols.fused = fuseScores(rec, model.fusion!);
  }
  if (types.has('mahalanobis')) cols.mahalanobis = mahalanobisScores(model.mahalanobis, z, d);
  if (types.has('knn')) cols.knn = knnScores(model.knn, z, d);
  // The conditions score needs the rows' properties: rows without them (features cached before
  // properties were measured) simply have none.
  if (types.has(CONDITIONS_SCORE) && model.conditions !== undefined && rows.properties !== undefined) cols.conditions = conditionsScores(model.conditions, rows.properties).score;
  return { keys, digests, scores: cols, ...(rows.properties !== undefined ? { properties: rows.properties } : {}) };
}
