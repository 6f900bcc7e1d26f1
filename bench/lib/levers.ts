/**
 * Scoring-time levers for near-OOD (issue 5), computed from one fitted model: averaging DLSR scores
 * over several noise draws, larger distortion timesteps, and fusions of scores normalised on the ID
 * calibration holdout (mean of z-scores; z-scores rather than ranks, so far-OOD images beyond every
 * holdout score stay ordered instead of tying at rank 1).
 */
import { scoreFeatures, type DlsrModel } from '../../src/shared/dlsr/model.js';
import type { ScoringConfig } from '../../src/shared/dlsr/config.js';
import type { FeatureSet } from '../../src/shared/feature-set.js';
import { meanStd } from '../../src/shared/scores.js';

export type Columns = Record<string, Float32Array>;

export const DRAWS = 4;
export const LARGER_T = [10, 25] as const;

/** Fusions reported (the last one uses only the baselines, to keep the comparison honest). */
export const FUSIONS: readonly (readonly string[])[] = [
  ['mfsim', 'mahalanobis'],
  ['mse', 'mahalanobis'],
  [`mfsim x${DRAWS}`, 'mahalanobis'],
  ['mfsim', 'mse', 'mahalanobis', 'knn'],
  ['mfsim_all', 'mse', 'mahalanobis'],
  ['mfsim_all', 'mahalanobis'],
  ['mfsim_all', 'mse', 'lr'],
  ['mfsim_all', 'lr'],
  ['mahalanobis', 'knn'],
];

export const fusionName = (parts: readonly string[]): string => `z(${parts.join('+')})`;

/** Union fusions: the largest holdout z-score of the parts (flag when any part is extreme). */
export const MAX_FUSIONS: readonly (readonly string[])[] = [
  ['mfsim_all', 'mse'],
  ['mfsim_all', 'mahalanobis'],
  ['mfsim_all', 'mse', 'mahalanobis'],
];
export const maxFusionName = (parts: readonly string[]): string => `max z(${parts.join(',')})`;

/** Names of the lever columns `leverColumns` + `withFusions` add, in table order. */
export const LEVER_NAMES: readonly string[] = [
  `mfsim x${DRAWS}`,
  `mse x${DRAWS}`,
  ...LARGER_T.flatMap((t) => [`mfsim t=${t}`, `mse t=${t}`]),
  ...FUSIONS.map(fusionName),
  ...MAX_FUSIONS.map(maxFusionName),
];

function withScoring(model: DlsrModel, scoring: Partial<ScoringConfig>): DlsrModel {
  return { ...model, config: { ...model.config, scoring: { ...model.config.scoring, ...scoring } } };
}

/** Every built-in score of `set`, plus the multi-draw and larger-t DLSR variants. */
export function leverColumns(model: DlsrModel, set: FeatureSet): Columns {
  const cols: Columns = { ...scoreFeatures(model, set.features, set.keys).scores };
  const n = set.keys.length;
  const sums = { mfsim: Float64Array.from(cols['mfsim']!), mse: Float64Array.from(cols['mse']!) };
  for (let k = 1; k < DRAWS; k++) {
    const s = scoreFeatures(withScoring(model, { seed: model.config.scoring.seed + k }), set.features, set.keys, { types: ['mse', 'mfsim'] }).scores;
    for (let i = 0; i < n; i++) {
      sums.mfsim[i]! += s.mfsim[i]!;
      sums.mse[i]! += s.mse[i]!;
    }
  }
  cols[`mfsim x${DRAWS}`] = Float32Array.from(sums.mfsim, (v) => v / DRAWS);
  cols[`mse x${DRAWS}`] = Float32Array.from(sums.mse, (v) => v / DRAWS);
  for (const t of LARGER_T) {
    const s = scoreFeatures(withScoring(model, { t }), set.features, set.keys, { types: ['mse', 'mfsim'] }).scores;
    cols[`mfsim t=${t}`] = s.mfsim;
    cols[`mse t=${t}`] = s.mse;
  }
  return cols;
}

/** `column` z-scored with the mean and std of the same score on the holdout. */
export function zScore(column: Float32Array, holdoutColumn: Float32Array): Float32Array {
  const { mean, std } = meanStd(holdoutColumn);
  return Float32Array.from(column, (v) => (v - mean) / std);
}

/** Adds the fusions to `cols`: the mean (FUSIONS) or the largest (MAX_FUSIONS) holdout z-score of the parts. */
export function withFusions(cols: Columns, holdout: Columns): Columns {
  const out: Columns = { ...cols };
  const z = (p: string): Float32Array => zScore(cols[p]!, holdout[p]!);
  for (const parts of FUSIONS) {
    const zs = parts.map(z);
    out[fusionName(parts)] = Float32Array.from(zs[0]!, (_, i) => zs.reduce((sum, c) => sum + c[i]!, 0) / parts.length);
  }
  for (const parts of MAX_FUSIONS) {
    const zs = parts.map(z);
    out[maxFusionName(parts)] = Float32Array.from(zs[0]!, (_, i) => Math.max(...zs.map((c) => c[i]!)));
  }
  return out;
}
