/**
 * The diffusion model's configuration types and defaults (network size, training, reconstruction),
 * without tfjs: configuration is parsed and validated by code that never loads the engine.
 */

export interface LfdnConfig {
  /** Feature size D (sum of stage channels). */
  readonly featureSize: number;
  /** Hidden width W. */
  readonly width: number;
  /** Residual blocks N. */
  readonly depth: number;
  /** Number of diffusion timesteps T (for the time-embedding table). */
  readonly timesteps: number;
}

export const LFDN_PRESETS = {
  /** The CPU default, chosen by measurement (README, "Choosing the CPU preset"). */
  cpu: { width: 512, depth: 4 },
  /** The paper's network: 1440 x 16 (about 87 M parameters at D = 720). */
  paper: { width: 1440, depth: 16 },
} as const satisfies Record<string, { width: number; depth: number }>;
export type LfdnPreset = keyof typeof LFDN_PRESETS;

export interface TrainConfig {
  /** Total epochs. */
  readonly epochs: number;
  /** Minibatch size. */
  readonly batchSize: number;
  /** AdamW learning rate. */
  readonly lr: number;
  /** AdamW decoupled weight decay. */
  readonly weightDecay: number;
  /** EMA decay (with warm-up). */
  readonly emaDecay: number;
  readonly seed: number;
}

export const DEFAULT_TRAIN: TrainConfig = Object.freeze({ epochs: 30, batchSize: 256, lr: 1e-4, weightDecay: 1e-4, emaDecay: 0.999, seed: 0 });

export interface ReconstructConfig {
  /** Distortion timestep t (0-based index into the schedule). Default 3. */
  readonly t: number;
  /** Number of DDIM steps from t down to 1. Default t. */
  readonly steps: number;
  /** DDIM eta. Default 1. */
  readonly eta: number;
  /** Base seed for the per-image noise. */
  readonly seed: number;
}

export const DEFAULT_RECONSTRUCT: ReconstructConfig = Object.freeze({ t: 3, steps: 3, eta: 1, seed: 0 });

