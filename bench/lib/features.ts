/**
 * Cached feature extraction for the benchmarks: a set's features are extracted once per encoder
 * configuration by `processes` child processes (one per core; wasm is single-threaded), merged in
 * key order and cached under OOD_BENCH_CACHE/features/<spec hash>/<set>.oodf.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { EncoderSpec } from '../../src/shared/encoder/registry.js';
import { makeFingerprint } from '../../src/shared/encoder/encoder.js';
import { FINETUNED_STAGES, IMAGENET_STAGES } from '../../src/shared/encoder/mobilenet-v2.js';
import { concatFeatureSets, decodeFeatureSet, encodeFeatureSet, featureSize, type FeatureSet } from '../../src/shared/feature-set.js';
import { CACHE, REPO } from './data.js';

export function specHash(spec: EncoderSpec): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 12);
}

function runChild(job: { out: string }): Promise<{ seconds: number }> {
  // The job (with its key list) goes through a file: argv is too small for 25,000 keys.
  const jobFile = `${job.out}.job.json`;
  writeFileSync(jobFile, JSON.stringify(job));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/lib/extract-child.ts'), jobFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as { seconds: number }) : reject(new Error(`extract child exited with ${code}`))));
  });
}

export interface ExtractStats {
  readonly images: number;
  readonly seconds: number;
  readonly cached: boolean;
}

/** Every MobileNetV2 stage the benchmarks use, shallow to deep: one extraction serves any subset. */
const ALL_STAGES: readonly string[] = [...IMAGENET_STAGES, ...FINETUNED_STAGES];

/** The columns of `taps` (a subset of the set's taps, in the same order), with the matching fingerprint. */
export function sliceStages(set: FeatureSet, taps: readonly string[]): FeatureSet {
  const have = set.fingerprint.taps;
  const offsets = set.stageSizes.map((_, i) => set.stageSizes.slice(0, i).reduce((a, b) => a + b, 0));
  const picked = taps.map((t) => have.indexOf(t));
  if (picked.some((i, j) => i < 0 || (j > 0 && i <= picked[j - 1]!))) throw new Error(`taps [${taps.join(',')}] are not an ordered subset of [${have.join(',')}]`);
  const d = featureSize(set);
  const sizes = picked.map((i) => set.stageSizes[i]!);
  const dOut = sizes.reduce((a, b) => a + b, 0);
  const features = new Float32Array(set.keys.length * dOut);
  for (let r = 0; r < set.keys.length; r++) {
    let o = r * dOut;
    for (const i of picked) {
      features.set(set.features.subarray(r * d + offsets[i]!, r * d + offsets[i]! + set.stageSizes[i]!), o);
      o += set.stageSizes[i]!;
    }
  }
  const { id: _id, ...fields } = set.fingerprint;
  return { ...set, fingerprint: makeFingerprint({ ...fields, taps: [...taps] }), stageSizes: sizes, features };
}

export async function featuresFor(name: string, dir: string, keys: readonly string[], spec: EncoderSpec, processes = 2, log: (m: string) => void = () => undefined): Promise<{ set: FeatureSet; stats: ExtractStats }> {
  // MobileNetV2 taps are extracted all at once (the deep stages cost little more) and sliced.
  const isSubset = spec.name === 'mobilenet_v2' && spec.taps.every((t) => ALL_STAGES.includes(t)) && spec.taps.join() !== ALL_STAGES.join();
  if (isSubset && spec.taps.every((t, j) => j === 0 || ALL_STAGES.indexOf(t) > ALL_STAGES.indexOf(spec.taps[j - 1]!))) {
    const full = await featuresFor(name, dir, keys, { ...spec, taps: ALL_STAGES }, processes, log);
    return { set: sliceStages(full.set, spec.taps), stats: full.stats };
  }
  const folder = path.join(CACHE, 'features', specHash(spec));
  const file = path.join(folder, `${name}.oodf`);
  if (existsSync(file)) {
    const set = decodeFeatureSet(readFileSync(file), file);
    if (set.keys.length + set.failures.length === keys.length) return { set, stats: { images: keys.length, seconds: 0, cached: true } };
  }
  mkdirSync(folder, { recursive: true });
  log(`extracting ${keys.length} images of ${name} with ${processes} processes...`);
  const started = performance.now();
  const parts = Array.from({ length: processes }, (_, p) => ({ dir, keys: keys.filter((_, i) => i % processes === p), spec, out: `${file}.part${p}` }));
  await Promise.all(parts.map((job) => runChild(job)));
  const seconds = (performance.now() - started) / 1000;
  const merged = concatFeatureSets(parts.map((p) => decodeFeatureSet(readFileSync(p.out), p.out)));
  // Restore the requested key order.
  const d = merged.stageSizes.reduce((a, b) => a + b, 0);
  const pos = new Map(merged.keys.map((k, i) => [k, i] as const));
  const ordered = keys.filter((k) => pos.has(k));
  const features = new Float32Array(ordered.length * d);
  ordered.forEach((k, i) => features.set(merged.features.subarray(pos.get(k)! * d, (pos.get(k)! + 1) * d), i * d));
  const set: FeatureSet = { ...merged, keys: ordered, features };
  writeFileSync(file, encodeFeatureSet(set));
  for (const p of parts) for (const f of [p.out, `${p.out}.job.json`]) rmSync(f, { force: true });
  return { set, stats: { images: keys.length, seconds, cached: false } };
}
