/**
 * Encoder registry: `createEncoder(spec)` returns an `Encoder` and hides the implementation.
 * Built in: `mobilenet_v2` (bundled weights, no network). Any tfjs LayersModel or GraphModel plugs in
 * as `layers` / `graph` with a model location, taps and preprocessing. Unknown names raise
 * UNKNOWN_ENCODER.
 */
import { OodError } from '../errors.js';
import type { Encoder, Preprocessing } from './encoder.js';
import { createMobileNetV2, IMAGENET_STAGES } from './mobilenet-v2.js';
import { createTfjsModelEncoder, type ModelFileReader } from './tfjs-model.js';

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

export interface EncoderContext {
  /** Opens the folder a `layers` / `graph` URI names; returns a reader of files relative to it. */
  readonly openModelFolder?: (uri: string) => ModelFileReader;
}

export async function createEncoder(spec: EncoderSpec, ctx: EncoderContext = {}): Promise<Encoder> {
  switch (spec.name) {
    case 'mobilenet_v2':
      return createMobileNetV2({ taps: spec.taps, inputSize: spec.inputSize, preprocessing: spec.preprocessing, ...(spec.batchSize !== undefined ? { batchSize: spec.batchSize } : {}) });
    case 'layers':
    case 'graph': {
      if (spec.uri === undefined) throw new OodError('CONFIG_INVALID', `encoder ${spec.name}: a model location (uri) is required`);
      if (ctx.openModelFolder === undefined) throw new OodError('CONFIG_INVALID', `encoder ${spec.name}: no way to read ${spec.uri}`);
      return createTfjsModelEncoder(
        { kind: spec.name, uri: spec.uri, taps: spec.taps, inputSize: spec.inputSize, preprocessing: spec.preprocessing, ...(spec.batchSize !== undefined ? { batchSize: spec.batchSize } : {}) },
        ctx.openModelFolder(spec.uri),
      );
    }
    default:
      throw new OodError('UNKNOWN_ENCODER', `unknown encoder ${JSON.stringify(spec.name)}: expected one of ${ENCODERS.join(', ')}`);
  }
}
