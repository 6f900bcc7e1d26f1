/**
 * Encoder registry: `createEncoder(spec)` returns an `Encoder` and hides the implementation.
 * Built in: `mobilenet_v2` (bundled weights, no network; on onnxruntime-node or tfjs, as the context
 * says). Any tfjs LayersModel or GraphModel plugs in as `layers` / `graph` with a model location, taps
 * and preprocessing; those stay on tfjs. Unknown names raise
 * UNKNOWN_ENCODER.
 */
import type { EncoderRuntime } from '../backend-choice.js';
import { OodError } from '../errors.js';
import type { Encoder } from './encoder.js';
import { createMobileNetV2 } from './mobilenet-v2.js';
import { ENCODERS, type EncoderSpec } from './spec.js';
import { createTfjsModelEncoder, type ModelFileReader } from './tfjs-model.js';

export interface EncoderContext {
  /** Opens the folder a `layers` / `graph` URI names; returns a reader of files relative to it. */
  readonly openModelFolder?: (uri: string) => ModelFileReader;
  /** What runs the built-in encoder (default tfjs). Plugged-in `layers` / `graph` models always run on tfjs. */
  readonly runtime?: EncoderRuntime;
}

export async function createEncoder(spec: EncoderSpec, ctx: EncoderContext = {}): Promise<Encoder> {
  switch (spec.name) {
    case 'mobilenet_v2':
      return createMobileNetV2({ taps: spec.taps, inputSize: spec.inputSize, preprocessing: spec.preprocessing, ...(spec.batchSize !== undefined ? { batchSize: spec.batchSize } : {}) }, ctx.runtime);
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
