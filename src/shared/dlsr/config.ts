/**
 * The versioned model configuration, stored in model.json. Everything that changes what a model
 * computes lives here; defaults are the measured choices documented in the README.
 */
import { z } from 'zod';
import { OodError } from '../errors.js';
import { DEFAULT_ENCODER, type EncoderSpec } from '../encoder/spec.js';
import { DEFAULT_SCHEDULE, type ScheduleConfig } from '../diffusion/schedule.js';
import { DEFAULT_RECONSTRUCT, DEFAULT_TRAIN, LFDN_PRESETS, type LfdnPreset, type TrainConfig } from '../diffusion/config.js';
import { FUSABLE_SCORES, type FusedPart } from '../scores.js';

/** How the standardised features are whitened before the LFDN (see whitening.ts). */
export const WHITEN_MODES = ['none', 'stage', 'global'] as const;
export type WhitenMode = (typeof WHITEN_MODES)[number];

export const SCORE_TYPES = ['fused', 'mfsim', 'mfsim_all', 'mse', 'lr', 'mahalanobis', 'knn'] as const;
export type ScoreType = (typeof SCORE_TYPES)[number];

/**
 * The conditions score (conditions.ts): a distance of the image's own properties from the ID set's,
 * computed whenever the model and the rows have properties. It is a column of the score tables and
 * calibrated like the rest, but never the primary score (it is not a semantic score: reports state
 * it separately).
 */
export const CONDITIONS_SCORE = 'conditions' as const;
/** Every column a score table can have: the semantic score types, then the conditions score. */
export const ALL_SCORE_TYPES = [...SCORE_TYPES, CONDITIONS_SCORE] as const;
export type AnyScoreType = (typeof ALL_SCORE_TYPES)[number];

export interface ScoringConfig {
  /** Distortion timestep (0-based schedule index). */
  readonly t: number;
  /** DDIM steps from t down to 1. */
  readonly steps: number;
  readonly eta: number;
  /** Seed of the per-image scoring noise. */
  readonly seed: number;
  /** LR = lrSign * (error of first-epoch net - error of final net). Measured: see README. */
  readonly lrSign: 1 | -1;
  /** The score that decides `flagged`. */
  readonly primary: ScoreType;
  /** Fraction of ID holdout kept below the threshold. */
  readonly tpr: number;
  /** Rows per scoring batch. */
  readonly batchSize: number;
  /** The scores the fused score averages, holdout z-scored (absent in models made before it: mfsim_all and mse). */
  readonly fusedParts?: readonly FusedPart[];
  /**
   * Where MFsim's per-stage cosine is taken (absent: 'lfdn'): in the LFDN's space (whitened features
   * when the model whitens) or back in the standardised stage features ('standardised': the
   * reconstruction mapped through the inverse whitening). Without whitening the two are the same.
   */
  readonly cosineSpace?: CosineSpace;
}

export const COSINE_SPACES = ['lfdn', 'standardised'] as const;
export type CosineSpace = (typeof COSINE_SPACES)[number];

export interface DlsrConfig {
  readonly version: 1;
  readonly encoder: EncoderSpec;
  readonly lfdn: { readonly preset: LfdnPreset | 'custom'; readonly width: number; readonly depth: number };
  readonly schedule: ScheduleConfig;
  readonly train: TrainConfig;
  readonly scoring: ScoringConfig;
  /** Fraction of ID images held out for calibration (never trained on). */
  readonly holdoutFraction: number;
  /** k of the kNN baseline and the most ID features kept in its bank. */
  readonly knn: { readonly k: number; readonly bankMax: number };
  /** Whitening of the standardised features before the LFDN (absent in models made before it: none). */
  readonly whiten?: WhitenMode;
  /** Partial whitening in [0, 1] (absent: 1, full); see fitWhitening. */
  readonly whitenStrength?: number;
}

export const DEFAULT_SCORING: ScoringConfig = Object.freeze({
  t: DEFAULT_RECONSTRUCT.t,
  steps: DEFAULT_RECONSTRUCT.steps,
  eta: DEFAULT_RECONSTRUCT.eta,
  seed: 0,
  lrSign: 1,
  // Chosen across protocols by the rule of bench/lib/selection.ts (docs/benchmarks.md, "Choosing the
  // default across protocols"): no DLSR score or fusion met it; Mahalanobis has the best worst case.
  primary: 'mahalanobis',
  tpr: 0.95,
  batchSize: 512,
  // The same rule over the fusions with a DLSR part.
  fusedParts: ['mse', 'knn'] as const,
  // MFsim's cosine on the standardised features: 99.9 far-OOD, where the whitened space's is 86-92.
  cosineSpace: 'standardised',
});

/** The whitening a model uses: models made before whitening have no `whiten` and use none. */
export function whitenModeOf(cfg: Pick<DlsrConfig, 'whiten'>): WhitenMode {
  return cfg.whiten ?? 'none';
}

export function defaultConfig(): DlsrConfig {
  return {
    version: 1,
    encoder: DEFAULT_ENCODER,
    lfdn: { preset: 'cpu', ...LFDN_PRESETS.cpu },
    schedule: DEFAULT_SCHEDULE,
    train: DEFAULT_TRAIN,
    scoring: DEFAULT_SCORING,
    holdoutFraction: 0.1,
    knn: { k: 10, bankMax: 50_000 },
    whiten: 'stage',
  };
}

export function validateDlsrConfig(cfg: DlsrConfig): DlsrConfig {
  const check = (ok: boolean, option: string, value: unknown, expected: string): void => {
    if (!ok) throw new OodError('CONFIG_INVALID', `invalid ${option}: expected ${expected}, got ${JSON.stringify(value)}`);
  };
  const int = (v: number): boolean => Number.isInteger(v);
  check(int(cfg.train.epochs) && cfg.train.epochs >= 1, 'epochs', cfg.train.epochs, 'an integer >= 1');
  check(int(cfg.train.batchSize) && cfg.train.batchSize >= 2, 'batch size', cfg.train.batchSize, 'an integer >= 2');
  check(cfg.train.lr > 0, 'learning rate', cfg.train.lr, 'a positive number');
  check(cfg.train.emaDecay >= 0 && cfg.train.emaDecay < 1, 'EMA decay', cfg.train.emaDecay, 'a number in [0, 1)');
  check(int(cfg.train.seed), 'seed', cfg.train.seed, 'an integer');
  check(int(cfg.lfdn.width) && cfg.lfdn.width >= 2 && cfg.lfdn.width % 2 === 0, 'LFDN width', cfg.lfdn.width, 'an even integer >= 2');
  check(int(cfg.lfdn.depth) && cfg.lfdn.depth >= 1, 'LFDN depth', cfg.lfdn.depth, 'an integer >= 1');
  check(int(cfg.scoring.t) && cfg.scoring.t >= 1 && cfg.scoring.t < cfg.schedule.steps, 'distortion timestep', cfg.scoring.t, `an integer in [1, ${cfg.schedule.steps - 1}]`);
  check(int(cfg.scoring.steps) && cfg.scoring.steps >= 1 && cfg.scoring.steps <= cfg.scoring.t, 'DDIM steps', cfg.scoring.steps, `an integer in [1, ${cfg.scoring.t}]`);
  check(cfg.scoring.eta >= 0 && cfg.scoring.eta <= 1, 'eta', cfg.scoring.eta, 'a number in [0, 1]');
  check(int(cfg.scoring.seed), 'scoring seed', cfg.scoring.seed, 'an integer');
  check(cfg.scoring.tpr > 0 && cfg.scoring.tpr < 1, 'calibration TPR', cfg.scoring.tpr, 'a fraction in (0, 1)');
  check((SCORE_TYPES as readonly string[]).includes(cfg.scoring.primary), 'primary score', cfg.scoring.primary, SCORE_TYPES.join(' | '));
  const parts = cfg.scoring.fusedParts;
  check(parts === undefined || (parts.length >= 1 && new Set(parts).size === parts.length && parts.every((p) => (FUSABLE_SCORES as readonly string[]).includes(p))), 'fused parts', parts, `distinct scores of ${FUSABLE_SCORES.join(', ')}`);
  check(cfg.scoring.cosineSpace === undefined || (COSINE_SPACES as readonly string[]).includes(cfg.scoring.cosineSpace), 'cosine space', cfg.scoring.cosineSpace, COSINE_SPACES.join(' | '));
  check(cfg.holdoutFraction > 0 && cfg.holdoutFraction < 0.9, 'holdout fraction', cfg.holdoutFraction, 'a fraction in (0, 0.9)');
  check(int(cfg.encoder.inputSize) && cfg.encoder.inputSize >= 32 && cfg.encoder.inputSize <= 1024, 'input size', cfg.encoder.inputSize, 'an integer in [32, 1024]');
  check(int(cfg.knn.k) && cfg.knn.k >= 1, 'kNN k', cfg.knn.k, 'an integer >= 1');
  check(cfg.whitenStrength === undefined || (cfg.whitenStrength >= 0 && cfg.whitenStrength <= 1), 'whitening strength', cfg.whitenStrength, 'a number in [0, 1]');
  check(cfg.whiten === undefined || (WHITEN_MODES as readonly string[]).includes(cfg.whiten), 'whitening', cfg.whiten, WHITEN_MODES.join(' | '));
  return cfg;
}

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

/**
 * The configuration's shape, for configurations that come from outside (a train job's payload, a
 * model.json): parsed with this schema, then checked by validateDlsrConfig.
 */
export const dlsrConfigSchema = z.object({
  version: z.literal(1),
  encoder: z.object({
    name: z.string(),
    uri: z.string().optional(),
    taps: z.array(z.string()).min(1),
    inputSize: z.number().int(),
    preprocessing: z.object({ kind: z.enum(['symmetric', 'unit', 'imagenet', 'raw']) }),
    batchSize: z.number().int().positive().optional(),
  }),
  lfdn: z.object({ preset: z.enum(['cpu', 'paper', 'custom']), width: z.number().int(), depth: z.number().int() }),
  schedule: z.object({ steps: z.number().int().min(2).max(10_000), betaStart: finite, betaEnd: finite }),
  train: z.object({ epochs: z.number().int(), batchSize: z.number().int(), lr: finite, weightDecay: finite, emaDecay: finite, seed: z.number().int() }),
  scoring: z.object({
    t: z.number().int(),
    steps: z.number().int(),
    eta: finite,
    seed: z.number().int(),
    lrSign: z.union([z.literal(1), z.literal(-1)]),
    primary: z.enum(SCORE_TYPES),
    tpr: finite,
    batchSize: z.number().int().min(1).max(65_536),
    fusedParts: z.array(z.enum(FUSABLE_SCORES)).min(1).max(FUSABLE_SCORES.length).optional(),
    cosineSpace: z.enum(COSINE_SPACES).optional(),
  }),
  holdoutFraction: finite,
  knn: z.object({ k: z.number().int(), bankMax: z.number().int().min(1) }),
  whiten: z.enum(WHITEN_MODES).optional(),
  whitenStrength: finite.optional(),
});

/** Parses and validates a configuration from outside; errors name `source` and the field. */
export function parseDlsrConfig(value: unknown, source: string): DlsrConfig {
  const r = dlsrConfigSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new OodError('MODEL_INVALID', `${source}: config.${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  try {
    return validateDlsrConfig(r.data as DlsrConfig);
  } catch (err) {
    throw new OodError('MODEL_INVALID', `${source}: ${(err as Error).message}`, { cause: err });
  }
}
