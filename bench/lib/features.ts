/**
 * Features of a benchmark image folder, through the product: the folder is planned as a fit (the
 * product's listing and shards), every shard is extracted by the product's extract job function into
 * the product's feature cache (keyed by encoder fingerprint and shard content), `processes` child
 * processes at a time (wasm is single-threaded: one per core), and the cached shards are read back
 * in key order. A second call finds every shard in the cache and encodes nothing.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from '../../src/shared/config/env.js';
import { defaultConfig } from '../../src/shared/dlsr/config.js';
import type { EncoderSpec } from '../../src/shared/encoder/spec.js';
import { concatFeatureSets, decodeFeatureSet, type FeatureSet } from '../../src/shared/feature-set.js';
import { stableHash } from '../../src/shared/hash.js';
import { extractResult, type ExtractPayload, type ExtractResult } from '../../src/shared/queue/contract.js';
import { openLocation } from '../../src/shared/storage/open.js';
import { planFit } from '../../src/producers/plan.js';
import { CACHE, REPO } from './data.js';

export const env = parseEnv(process.env);
export const open = (uri: string, mustExist = false): ReturnType<typeof openLocation> => openLocation(uri, env, mustExist);

export interface ExtractStats {
  readonly images: number;
  /** Wall time of the extraction (0 when every shard came from the cache). */
  readonly seconds: number;
  readonly cached: boolean;
}

function runChild(planFile: string, part: number, parts: number): Promise<ExtractResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/lib/extract-child.ts'), planFile, String(part), String(parts)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`extract child exited with ${code}`));
      resolve((JSON.parse(out.trim().split('\n').pop() ?? '[]') as unknown[]).map((r) => extractResult.parse(r)));
    });
  });
}

/** The features of every image under `dir` (in key order) with the encoder `spec`. */
export async function featuresFor(dir: string, spec: EncoderSpec, processes = 2, log: (m: string) => void = () => undefined): Promise<{ set: FeatureSet; stats: ExtractStats }> {
  const config = { ...defaultConfig(), encoder: spec };
  const plan = await planFit({ input: open(dir, true), model: path.join(CACHE, 'runs', stableHash(dir, spec)), cache: path.join(CACHE, 'feature-cache'), config, shardSize: 1000, open });
  // The product's planning (listing, shards, manifests); the extract jobs run in child processes.
  const extracts: ExtractPayload[] = [];
  const steps = plan.steps(plan.runId);
  for (let next = await steps.next(); next.done !== true; next = await steps.next()) extracts.push(...next.value.shards);
  const images = extracts.reduce((n, e) => n + e.shard.count, 0);
  const planFile = path.join(CACHE, 'runs', `${plan.runId}.extracts.json`);
  mkdirSync(path.dirname(planFile), { recursive: true });
  writeFileSync(planFile, JSON.stringify(extracts));
  const started = performance.now();
  const parts = Math.max(1, Math.min(processes, extracts.length));
  const results = (await Promise.all(Array.from({ length: parts }, (_, p) => runChild(planFile, p, parts)))).flat();
  const cached = results.every((r) => r.cached);
  if (!cached) log(`extracted ${images} images of ${dir} with ${parts} processes in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  const sets: FeatureSet[] = [];
  for (const r of [...results].sort((a, b) => a.shard - b.shard)) sets.push(decodeFeatureSet(await open(r.cache).store.get(r.featuresKey), r.featuresKey));
  return { set: concatFeatureSets(sets), stats: { images, seconds: cached ? 0 : (performance.now() - started) / 1000, cached } };
}
