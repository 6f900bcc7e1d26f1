/**
 * Any tfjs LayersModel plugs in as the encoder: saved to a folder (model.json + weights), tapped by
 * layer name, run fused when the fused compiler supports its layers and as a LayersModel otherwise;
 * both give the same features as the plain model.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEncoder } from '../../src/shared/encoder/registry.js';
import { LocalStore } from '../../src/shared/storage/local-store.js';
import { MAX_JSON_BYTES, type GetOptions } from '../../src/shared/storage/object-store.js';
import { Rng } from '../../src/shared/rng.js';
import { useWasm } from '../helpers/tf.js';

useWasm();

async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      writeFileSync(path.join(dir, 'weights.bin'), new Uint8Array(a.weightData as ArrayBuffer));
      writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: a.modelTopology, format: a.format, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

const folders = { openModelFolder: (uri: string) => (rel: string, options?: GetOptions) => new LocalStore(uri).get(rel, options) };

function images(n: number, size: number): Uint8Array[] {
  const rng = new Rng(3);
  return Array.from({ length: n }, () => Uint8Array.from({ length: size * size * 3 }, () => Math.floor(rng.uniform() * 256)));
}

describe('plugged-in tfjs LayersModel encoder', () => {
  it('taps a functional model (fused) and a sequential one (LayersModel), matching the plain model', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ood-layers-'));
    const input = tf.input({ shape: [32, 32, 3] });
    const c1 = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, name: 'stage_a_conv' }).apply(input) as tf.SymbolicTensor;
    const b1 = tf.layers.batchNormalization({ name: 'stage_a' }).apply(c1) as tf.SymbolicTensor;
    const r1 = tf.layers.reLU({ maxValue: 6, name: 'stage_a_relu' }).apply(b1) as tf.SymbolicTensor;
    const c2 = tf.layers.conv2d({ filters: 12, kernelSize: 3, strides: 2, padding: 'same', name: 'stage_b' }).apply(r1) as tf.SymbolicTensor;
    const functional = tf.model({ inputs: input, outputs: c2 });
    await saveModel(functional, path.join(dir, 'functional'));
    const sequential = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 4, kernelSize: 3, activation: 'tanh', name: 'seq_a' }), tf.layers.conv2d({ filters: 6, kernelSize: 3, name: 'seq_b' })] });
    await saveModel(sequential, path.join(dir, 'sequential'));

    const imgs = images(3, 32);
    for (const [name, model, taps] of [['functional', functional, ['stage_a', 'stage_b']], ['sequential', sequential, ['seq_a', 'seq_b']]] as const) {
      const enc = await createEncoder({ name: 'layers', uri: path.join(dir, name), taps, inputSize: 32, preprocessing: { kind: 'unit' } }, folders);
      expect(enc.stages.map((s) => s.name)).toEqual(taps);
      expect(enc.fingerprint.encoder).toBe('tfjs-layers-model');
      const got = await enc.encode(imgs);
      const sub = tf.model({ inputs: model.inputs, outputs: taps.map((t) => model.getLayer(t).output as tf.SymbolicTensor) });
      const ref = tf.tidy(() => {
        const x = tf.div(tf.tensor4d(Float32Array.from(imgs.flatMap((i) => Array.from(i))), [3, 32, 32, 3]), 255);
        const ys = sub.predict(x) as tf.Tensor[];
        return tf.concat(ys.map((y) => tf.mean(y, [1, 2])), 1);
      });
      const r = ref.dataSync();
      ref.dispose();
      expect(got.length).toBe(r.length);
      for (let i = 0; i < r.length; i++) expect(got[i]).toBeCloseTo(r[i]!, 4);
      enc.dispose();
    }
    const before = JSON.parse(readFileSync(path.join(dir, 'functional', 'model.json'), 'utf8')) as object;
    expect(before).toHaveProperty('weightsManifest');
    await expect(createEncoder({ name: 'layers', uri: path.join(dir, 'functional'), taps: ['nope'], inputSize: 32, preprocessing: { kind: 'unit' } }, folders)).rejects.toThrow(/no layer named "nope"/);
  });

  it('a model.json that is not JSON, or larger than any JSON file is read, fails naming it (the large one unread)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ood-layers-bad-'));
    const spec = { name: 'layers', uri: dir, taps: ['a'], inputSize: 32, preprocessing: { kind: 'unit' } } as const;
    writeFileSync(path.join(dir, 'model.json'), '{"modelTopology": ');
    await expect(createEncoder(spec, folders)).rejects.toThrow(new RegExp(`^${path.join(dir, 'model.json')}: not valid JSON \\(`));
    // JSON of the wrong shape: one line naming the file and the field, not a TypeError from inside.
    writeFileSync(path.join(dir, 'model.json'), 'null');
    await expect(createEncoder(spec, folders)).rejects.toThrow(new RegExp(`^${path.join(dir, 'model.json')}: not a tfjs model\\.json \\(\\(root\\): `));
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: 'weights.bin', weights: [] }] }));
    await expect(createEncoder(spec, folders)).rejects.toThrow(new RegExp(`^${path.join(dir, 'model.json')}: not a tfjs model\\.json \\(weightsManifest\\.0\\.paths: `));
    truncateSync(path.join(dir, 'model.json'), MAX_JSON_BYTES + 1); // sparse: nothing is written
    await expect(createEncoder(spec, folders)).rejects.toThrow(`${path.join(dir, 'model.json')}: ${MAX_JSON_BYTES + 1} bytes, more than the ${MAX_JSON_BYTES}-byte limit of a JSON file`);
  });
});
