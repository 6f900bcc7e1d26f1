/**
 * Per-stage reconstruction scores for the fusion frontier (bench/frontier.ts): for every stage k,
 * minus the cosine between the whitened features and their reconstruction, the squared error, and the
 * LR difference (first-epoch error minus final error), with the same noise as the built-in scores.
 */
import type { DlsrModel } from '../../src/shared/dlsr/model.js';
import { stageBounds, standardiseStages } from '../../src/shared/features.js';
import { applyWhitening } from '../../src/shared/whitening.js';
import { makeSchedule } from '../../src/shared/diffusion/schedule.js';
import { drawNoise, ddimTimesteps, reconstruct } from '../../src/shared/diffusion/ddim.js';
import type { FeatureSet } from '../../src/shared/feature-set.js';

export interface StageColumns {
  /** [stage][image] minus cosine similarity (higher = worse reconstruction). */
  readonly cos: Float32Array[];
  /** [stage][image] squared error of the final network. */
  readonly err: Float32Array[];
  /** [stage][image] LR: lrSign x (first-epoch error - final error), as the built-in lr. */
  readonly lr: Float32Array[];
}

export function stageColumns(model: DlsrModel, set: FeatureSet, batch = 512): StageColumns {
  const sizes = model.stageSizes;
  const bounds = stageBounds(sizes);
  const d = bounds[bounds.length - 1]!;
  const n = set.keys.length;
  const u = applyWhitening(model.whitening, standardiseStages(set.features, sizes), d);
  const sc = model.config.scoring;
  const steps = ddimTimesteps(sc.t, sc.steps).length;
  const schedule = makeSchedule(model.config.schedule);
  const out: StageColumns = { cos: sizes.map(() => new Float32Array(n)), err: sizes.map(() => new Float32Array(n)), lr: sizes.map(() => new Float32Array(n)) };
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const x = u.subarray(s * d, (s + m) * d);
    const noise = drawNoise(set.keys.slice(s, s + m), sc.seed, steps, d);
    const fin = reconstruct(model.final, schedule, x, noise, m, sc);
    const first = reconstruct(model.first, schedule, x, noise, m, sc);
    for (let i = 0; i < m; i++) {
      for (let k = 0; k < sizes.length; k++) {
        let dot = 0;
        let na = 0;
        let nb = 0;
        let e = 0;
        let eFirst = 0;
        for (let j = i * d + bounds[k]!; j < i * d + bounds[k + 1]!; j++) {
          const a = x[j]!;
          const b = fin[j]!;
          dot += a * b;
          na += a * a;
          nb += b * b;
          e += (a - b) ** 2;
          eFirst += (a - first[j]!) ** 2;
        }
        out.cos[k]![s + i] = -dot / Math.max(Math.sqrt(na * nb), 1e-12);
        out.err[k]![s + i] = e;
        out.lr[k]![s + i] = sc.lrSign * (eFirst - e);
      }
    }
  }
  return out;
}
