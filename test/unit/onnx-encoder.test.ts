/**
 * The encoder on onnxruntime-node against the tfjs one: the same features (within 1e-4 on real
 * images), the same fingerprint, a model fitted on one runtime scoring the other's features, and
 * flat memory across batches. Skipped when onnxruntime-node is not installed (an optional
 * dependency); everything then runs on tfjs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Encoder } from '../../src/shared/encoder/encoder.js';
import { assertSameEncoder } from '../../src/shared/encoder/encoder.js';
import { createMobileNetV2 } from '../../src/shared/encoder/mobilenet-v2.js';
import { IMAGENET_STAGES, FINETUNED_STAGES } from '../../src/shared/encoder/spec.js';
import { createEncoder } from '../../src/shared/encoder/registry.js';
import { loadOrt } from '../../src/shared/encoder/onnx/runtime.js';
import { decodeImage } from '../../src/shared/image/decode.js';
import { defaultConfig } from '../../src/shared/dlsr/config.js';
import { fitDlsr } from '../../src/shared/dlsr/fit.js';
import { disposeModel, scoreFeatures } from '../../src/shared/dlsr/model.js';
import { sha256Hex } from '../../src/shared/hash.js';
import { parseBackendChoice, parseEnv, parseOrtThreads } from '../../src/shared/config/env.js';
import { useWasm } from '../helpers/tf.js';

useWasm();
const ort = await loadOrt();
const onnx = { kind: 'onnx', device: 'cpu', threads: 1 } as const;

/** Up to `n` demo images (CIFAR-10 ID set), decoded at `size`. */
async function demoImages(n: number, size: number): Promise<{ keys: string[]; pixels: Uint8Array[] }> {
  const root = path.join(import.meta.dirname, '../../examples/demo/id');
  const files = readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && /\.(png|jpe?g)$/i.test(d.name))
    .map((d) => path.join(d.parentPath, d.name))
    .sort()
    .filter((_, i) => i % 4 === 0) // every class
    .slice(0, n);
  const keys: string[] = [];
  const pixels: Uint8Array[] = [];
  for (const f of files) {
    const r = await decodeImage(f, readFileSync(f), { size });
    if (r.ok) {
      keys.push(path.relative(root, f));
      pixels.push(r.pixels);
    }
  }
  return { keys, pixels };
}

async function encodeAll(enc: Encoder, images: readonly Uint8Array[]): Promise<Float32Array> {
  const out = new Float32Array(images.length * enc.featureSize);
  for (let i = 0; i < images.length; i += enc.batchSize) out.set(await enc.encode(images.slice(i, i + enc.batchSize)), i * enc.featureSize);
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe.skipIf(!ort.ok)('MobileNetV2 on onnxruntime-node', () => {
  it('matches the tfjs encoder within 1e-4 on real images, with the same fingerprint', async () => {
    for (const [size, taps] of [[224, IMAGENET_STAGES], [97, [...IMAGENET_STAGES, ...FINETUNED_STAGES]]] as const) {
      const { pixels } = await demoImages(size === 224 ? 64 : 16, size);
      const a = await createMobileNetV2({ inputSize: size, taps });
      const b = await createMobileNetV2({ inputSize: size, taps }, onnx);
      expect(b.runtime).toMatch(/^onnxruntime-node \S+ cpu, 1 thread$/);
      expect(a.runtime).toBe('tfjs wasm');
      expect(b.fingerprint).toEqual(a.fingerprint);
      expect(() => assertSameEncoder(a.fingerprint, b.fingerprint, 'test')).not.toThrow();
      expect(b.stages).toEqual(a.stages);
      const diff = maxAbsDiff(await encodeAll(a, pixels), await encodeAll(b, pixels));
      expect(diff, `size ${size}`).toBeLessThan(1e-4);
      a.dispose();
      b.dispose();
    }
  });

  it('scores the features of one runtime with a model fitted on the other', async () => {
    const { keys, pixels } = await demoImages(200, 96);
    const spec = { name: 'mobilenet_v2', taps: [...IMAGENET_STAGES], inputSize: 96, preprocessing: { kind: 'unit' } as const };
    const a = await createEncoder(spec);
    const b = await createEncoder(spec, { runtime: onnx });
    const digests = keys.map((k) => sha256Hex(k));
    const fa = await encodeAll(a, pixels);
    const fb = await encodeAll(b, pixels);
    const base = defaultConfig();
    const cfg = { ...base, lfdn: { preset: 'custom' as const, width: 32, depth: 2 }, train: { ...base.train, epochs: 2, batchSize: 32 } };
    const { model } = await fitDlsr({ fingerprint: a.fingerprint, stageSizes: a.stages.map((s) => s.channels), keys, digests, features: fa, failures: [] }, cfg, { backend: 'wasm', versions: {} });
    assertSameEncoder(model.fingerprint, b.fingerprint, 'scoring');
    const sa = scoreFeatures(model, { keys, digests, features: fa });
    const sb = scoreFeatures(model, { keys, digests, features: fb });
    for (const [type, col] of Object.entries(sa.scores)) {
      const other = sb.scores[type as keyof typeof sb.scores]!;
      const spread = Math.max(...col) - Math.min(...col);
      let worst = 0;
      for (let i = 0; i < col.length; i++) worst = Math.max(worst, Math.abs(col[i]! - other[i]!));
      expect(worst / spread, type).toBeLessThan(1e-3);
    }
    disposeModel(model);
    a.dispose();
    b.dispose();
  });

  it('gives every image the same features whatever the session run size a batch is sliced into', async () => {
    const { pixels } = await demoImages(11, 96);
    const whole = await createMobileNetV2({ inputSize: 96, batchSize: 11 }, { ...onnx, runBatch: 11 });
    const sliced = await createMobileNetV2({ inputSize: 96, batchSize: 11 }, { ...onnx, runBatch: 3 });
    const single = await createMobileNetV2({ inputSize: 96, batchSize: 11 }, { ...onnx, runBatch: 1 });
    const ref = await whole.encode(pixels);
    expect(ref).toHaveLength(11 * whole.featureSize);
    expect(maxAbsDiff(await sliced.encode(pixels), ref)).toBeLessThan(1e-5);
    expect(maxAbsDiff(await single.encode(pixels), ref)).toBeLessThan(1e-5);
    // Image i's features are image i's: a batch in reverse order gives the rows in reverse order.
    const reversed = await sliced.encode([...pixels].reverse());
    const d = whole.featureSize;
    for (let i = 0; i < 11; i++) expect(maxAbsDiff(reversed.subarray((10 - i) * d, (11 - i) * d), ref.subarray(i * d, (i + 1) * d))).toBeLessThan(1e-5);
    for (const e of [whole, sliced, single]) e.dispose();
  });

  it('keeps memory flat across batches', async () => {
    const enc = await createMobileNetV2({ inputSize: 96 }, onnx);
    const batch = Array.from({ length: 16 }, (_, i) => new Uint8Array(96 * 96 * 3).fill(i * 13));
    for (let i = 0; i < 5; i++) await enc.encode(batch);
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 40; i++) await enc.encode(batch);
    expect((process.memoryUsage().rss - before) / 2 ** 20).toBeLessThan(32);
    await expect(enc.encode([new Uint8Array(10)])).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
    enc.dispose();
  });
});

describe('backend configuration', () => {
  it('parses the onnx choices and the thread count, naming bad values', () => {
    expect(parseBackendChoice('onnx')).toBe('onnx');
    expect(parseBackendChoice('onnx-cuda', 'OOD_BACKEND')).toBe('onnx-cuda');
    expect(() => parseBackendChoice('onnx-gpu')).toThrow(/invalid --backend: expected one of auto, onnx, onnx-cuda, .*got "onnx-gpu"/);
    expect(parseEnv({}).ortThreads).toBe(1);
    expect(parseEnv({ OOD_ORT_THREADS: '2' }).ortThreads).toBe(2);
    for (const bad of ['0', '1.5', 'two', '65']) expect(() => parseOrtThreads(bad)).toThrow(new RegExp(`invalid OOD_ORT_THREADS: expected an integer from 1 to 64, got "${bad.replace('.', '\\.')}"`));
  });
});
