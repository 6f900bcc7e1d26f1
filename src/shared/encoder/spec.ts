/**
 * What names an encoder configuration, without loading it (no tfjs): the spec stored in model
 * configurations and job payloads, the registry's names, the bundled MobileNetV2's stages and the
 * default. registry.ts turns a spec into a running Encoder.
 */
import { OodError } from '../errors.js';
import type { Preprocessing } from './encoder.js';

/** Stage outputs that are frozen ImageNet features, shallow to deep. */
export const IMAGENET_STAGES = ['block_2_add', 'block_5_add', 'block_9_add', 'block_10_project_BN'] as const;
/** Later stages, fine-tuned by nsfwjs. */
export const FINETUNED_STAGES = ['block_12_add', 'block_15_add', 'block_16_project_BN'] as const;

export interface EncoderSpec {
  /** `mobilenet_v2`, `layers` or `graph`. */
  readonly name: string;
  /** For `layers` / `graph`: where model.json lives (local folder or object-store URI). */
  readonly uri?: string;
  /** Layer (or node) names whose outputs are pooled, shallow to deep. */
  readonly taps: readonly string[];
  /** Square input side in pixels. */
  readonly inputSize: number;
  readonly preprocessing: Preprocessing;
  readonly batchSize?: number;
}

export const ENCODERS = ['mobilenet_v2', 'layers', 'graph'] as const;

export const DEFAULT_ENCODER: EncoderSpec = Object.freeze({
  name: 'mobilenet_v2',
  taps: [...IMAGENET_STAGES],
  inputSize: 224,
  // [0, 1] input, as nsfwjs feeds its MobileNetV2: Mahalanobis far-OOD AUROC 0.9995 vs 0.77 with [-1, 1] (README).
  preprocessing: { kind: 'unit' } as const,
});

export function parsePreprocessing(value: string): Preprocessing {
  if (value === 'symmetric' || value === 'unit' || value === 'imagenet' || value === 'raw') return { kind: value };
  throw new OodError('CONFIG_INVALID', `invalid preprocessing: expected symmetric, unit, imagenet or raw, got ${JSON.stringify(value)}`);
}
