/**
 * Candidate scores for choosing the default (bench:accuracy --suite protocols): from one fitted model,
 * every score the product offers plus the variants a default could be made of, so the choice is made
 * across protocols on the same fits:
 *
 *   mse, mfsim, mfsim_all, lr   as the product computes them (in the LFDN's, possibly whitened, space)
 *   mse_z, mfsim_z, mfsim_all_z the reconstruction mapped back to the standardised space (whitened models)
 *   fused                       the fused score of the model (the suite pins the earlier default:
 *                               mfsim_all and mse in the LFDN's space, holdout z-scored)
 *   f:<a>+<b>[+<c>]             other fusions: the mean of holdout z-scored parts
 *   mahalanobis, knn            the baselines on the same standardised features
 *
 * Holdout statistics come from the model's own calibration holdout (the same split fitDlsr makes).
 */
import { knnScores, mahalanobisScores } from '../../src/shared/baselines.js';
import { fuseScores, lrScore, reconstructionScores } from '../../src/shared/scores.js';
import { meanStd } from '../../src/shared/stats.js';
import { unapplyWhitening } from '../../src/shared/whitening.js';
import { reconstructRows, type DlsrModel } from '../../src/shared/dlsr/model.js';
import type { FeatureRows } from '../../src/shared/feature-set.js';

export type Columns = Record<string, Float32Array>;

/** The fusions tried, as lists of parts. */
export const FUSIONS: readonly (readonly string[])[] = [
  ['mse', 'mfsim_z'],
  ['mse', 'mfsim_all_z'],
  ['mse', 'lr'],
  ['mse', 'mahalanobis'],
  ['mse', 'knn'],
  ['mse', 'mfsim_z', 'mahalanobis'],
  ['mahalanobis', 'knn'],
];

export const fusionName = (parts: readonly string[]): string => `f:${parts.join('+')}`;

/** Every single-score column of `rows` under `model`. */
export function baseColumns(model: DlsrModel, rows: FeatureRows): Columns {
  const d = model.stageSizes.reduce((a, b) => a + b, 0);
  const r = reconstructRows(model, rows, true);
  const rec = reconstructionScores(r.u, r.final, model.stageSizes);
  const cols: Columns = { mse: rec.mse, mfsim: rec.mfsim, mfsim_all: rec.mfsim_all, lr: lrScore(reconstructionScores(r.u, r.first!, model.stageSizes).mse, rec.mse, model.config.scoring.lrSign) };
  if (model.whitening !== undefined) {
    const back = reconstructionScores(r.z, unapplyWhitening(model.whitening, r.final, d), model.stageSizes);
    Object.assign(cols, { mse_z: back.mse, mfsim_z: back.mfsim, mfsim_all_z: back.mfsim_all });
  }
  cols['mahalanobis'] = mahalanobisScores(model.mahalanobis, r.z, d);
  cols['knn'] = knnScores(model.knn, r.z, d);
  cols['fused'] = fuseScores({ ...cols, mfsim: rec.mfsim, mfsim_all: rec.mfsim_all }, model.fusion!);
  return cols;
}

export interface Normaliser {
  readonly stats: Readonly<Record<string, { mean: number; std: number }>>;
}

/** Holdout mean and std of every column (the fusions' normalisation). */
export function normaliserOf(holdout: Columns): Normaliser {
  return { stats: Object.fromEntries(Object.entries(holdout).map(([k, v]) => [k, meanStd(v)])) };
}

/** The columns plus every fusion whose parts are present. */
export function withFusions(cols: Columns, norm: Normaliser): Columns {
  const out: Columns = { ...cols };
  for (const parts of FUSIONS) {
    if (!parts.every((p) => cols[p] !== undefined && norm.stats[p] !== undefined)) continue;
    // The product's fusion, with the holdout statistics of these parts (a constant part gets std 1, as in fitFusion).
    out[fusionName(parts)] = fuseScores(cols, { parts, mean: parts.map((p) => norm.stats[p]!.mean), std: parts.map((p) => norm.stats[p]!.std || 1) });
  }
  return out;
}
