// One extraction process of featuresFor(): reads its job from argv, writes a feature set.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../../src/shared/backend.js';
import { createEncoder, type EncoderSpec } from '../../src/shared/encoder/registry.js';
import { extractFeatures } from '../../src/shared/extract.js';
import { encodeFeatureSet } from '../../src/shared/feature-set.js';

const job = JSON.parse(await readFile(process.argv[2]!, 'utf8')) as { dir: string; keys: string[]; spec: EncoderSpec; out: string };
const backend = await initBackend('auto');
const encoder = await createEncoder(job.spec);
const started = performance.now();
const set = await extractFeatures(encoder, job.keys, (k) => readFile(path.join(job.dir, k)), { backend: backend.provider });
await writeFile(job.out, encodeFeatureSet(set));
process.stdout.write(JSON.stringify({ seconds: (performance.now() - started) / 1000 }) + '\n');
