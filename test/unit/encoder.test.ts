import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { bundledTopology, createMobileNetV2, loadBundledMobileNetV2 } from '../../src/shared/encoder/mobilenet-v2.js';
import { DEFAULT_ENCODER, FINETUNED_STAGES, IMAGENET_STAGES } from '../../src/shared/encoder/spec.js';
import { toEncoderInput } from '../../src/shared/encoder/preprocess.js';
import { assertSameEncoder, encodeInSlices } from '../../src/shared/encoder/encoder.js';
import { createEncoder } from '../../src/shared/encoder/registry.js';
import { Rng } from '../../src/shared/rng.js';
import { useWasm } from '../helpers/tf.js';

useWasm();

function randomImages(n: number, size: number, seed: number): Uint8Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const img = new Uint8Array(size * size * 3);
    // Smooth-ish content: a gradient plus noise, so deep layers see structure.
    for (let i = 0; i < img.length; i++) img[i] = Math.max(0, Math.min(255, ((i / 3) % size) * 4 + 40 * rng.normal() + 60));
    return img;
  });
}

async function referenceFeatures(images: Uint8Array[], size: number, taps: readonly string[]): Promise<Float32Array> {
  const m = loadBundledMobileNetV2();
  const specs = m.modelJson.weightsManifest.flatMap((g) => g.weights);
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: bundledTopology(m, size) as tf.io.ModelJSON['modelTopology'], weightSpecs: specs, weightData: m.weightData.slice().buffer }),
    { strict: false }, // the head's weights have no layer in the trunk-only topology
  );
  const sub = tf.model({ inputs: model.inputs, outputs: taps.map((n) => model.getLayer(n).output as tf.SymbolicTensor) });
  const out = tf.tidy(() => {
    const ys = sub.predict(toEncoderInput(images, size, { kind: 'unit' })) as tf.Tensor[];
    return tf.concat(ys.map((y) => tf.mean(y, [1, 2])), 1);
  });
  const v = out.dataSync() as Float32Array;
  out.dispose();
  model.dispose();
  return v;
}

describe('MobileNetV2 encoder', () => {
  it('fused inference matches the plain LayersModel within 1e-4 at 224 and 96', async () => {
    const taps = [...IMAGENET_STAGES, ...FINETUNED_STAGES];
    for (const size of [224, 96]) {
      const images = randomImages(3, size, size);
      const enc = await createMobileNetV2({ taps, inputSize: size });
      const got = await enc.encode(images);
      const ref = await referenceFeatures(images, size, taps);
      expect(got.length).toBe(ref.length);
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref[i]!));
      expect(maxDiff, `size ${size}`).toBeLessThan(1e-4);
      enc.dispose();
    }
  });

  it('reports stage sizes, a stable fingerprint, and does not leak tensors', async () => {
    const enc = await createEncoder(DEFAULT_ENCODER);
    expect(enc.stages.map((s) => s.channels)).toEqual([24, 32, 64, 96]);
    expect(enc.featureSize).toBe(216);
    const again = await createEncoder(DEFAULT_ENCODER);
    expect(again.fingerprint).toEqual(enc.fingerprint);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await enc.encode(randomImages(2, 224, i));
    expect(tf.memory().numTensors).toBe(before);
    const other = await createMobileNetV2({ inputSize: 96 });
    expect(() => assertSameEncoder(enc.fingerprint, other.fingerprint, 'test')).toThrow(/input size 224 vs 96/);
    for (const e of [enc, again, other]) e.dispose();
  });

  it('refuses unknown taps and encoders with named errors', async () => {
    await expect(createMobileNetV2({ taps: ['no_such_layer'] })).rejects.toThrow(/no layer named "no_such_layer"/);
    await expect(createEncoder({ ...DEFAULT_ENCODER, name: 'resnet9000' })).rejects.toMatchObject({ code: 'UNKNOWN_ENCODER' });
  });
});

describe('encodeInSlices', () => {
  it('runs the images in slices of the run size and places each slice at its rows', async () => {
    const runs: [number, number][] = [];
    const out = await encodeInSlices(7, 3, 2, (from, to, write) => {
      runs.push([from, to]);
      write(Float32Array.from({ length: (to - from) * 2 }, (_, i) => from * 2 + i));
    });
    expect(runs).toEqual([[0, 3], [3, 6], [6, 7]]);
    expect([...out]).toEqual(Array.from({ length: 14 }, (_, i) => i));
  });

  it('refuses a slice whose rows do not match its images, naming them', async () => {
    await expect(encodeInSlices(5, 4, 3, (_from, _to, write) => write(new Float32Array(3)))).rejects.toThrow(/images 0-3: expected 12 values, got 3/);
  });
});
