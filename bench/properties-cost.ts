/**
 * bench:properties: what measuring image properties at decode time costs, against extraction
 * (read + decode + encode with the default encoder at its input size, 224 px).
 *   1. extraction with and without properties, alternated (A B A B ...), median of the rounds;
 *   2. the decode step alone, with and without properties, in the same process (less noisy on a
 *      shared CPU), as a fraction of one extraction's time per image.
 * The limit is 10% of extraction throughput. Options: --images N (default 512), --rounds N (3).
 * Run it under `nice`: the CPU is shared.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/shared/backend.js';
import { createEncoder } from '../src/shared/encoder/registry.js';
import { DEFAULT_ENCODER } from '../src/shared/encoder/spec.js';
import { extractFeatures } from '../src/shared/extract.js';
import { decodeImage, decodeWithProperties } from '../src/shared/image/decode.js';
import { datasetDir, listKeys } from './lib/data.js';

const { values } = parseArgs({ options: { images: { type: 'string', default: '512' }, rounds: { type: 'string', default: '3' } } });
const n = Number(values.images);
const rounds = Number(values.rounds);
const backend = await initBackend('auto');
const encoder = await createEncoder(DEFAULT_ENCODER);
const dir = datasetDir('cifar10/test');
const all = listKeys(dir);
const keys = all.filter((_, i) => i % Math.max(1, Math.floor(all.length / n)) === 0).slice(0, n);
const bytes = new Map<string, Uint8Array>();
for (const k of keys) bytes.set(k, new Uint8Array(await readFile(path.join(dir, k))));
const read = (k: string): Promise<Uint8Array> => Promise.resolve(bytes.get(k)!);
const items = keys.map((key) => ({ key }));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`properties cost: ${keys.length} CIFAR-10 test images, ${encoder.inputSize} px, backend ${backend.provider}, ${rounds} rounds`);
await extractFeatures(encoder, items.slice(0, encoder.batchSize), read, { properties: true }); // warm-up
const ext = { off: [] as number[], on: [] as number[] };
for (let r = 0; r < rounds; r++) {
  for (const mode of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
    const t = performance.now();
    await extractFeatures(encoder, items, read, { properties: mode === 'on' });
    ext[mode].push((performance.now() - t) / 1000);
  }
}
const dec = { off: [] as number[], on: [] as number[] };
const opts = { size: encoder.inputSize };
for (let r = 0; r < rounds; r++) {
  for (const mode of ['off', 'on'] as const) {
    const t = performance.now();
    for (const k of keys) await (mode === 'on' ? decodeWithProperties : decodeImage)(k, bytes.get(k)!, opts);
    dec[mode].push((performance.now() - t) / 1000);
  }
}
encoder.dispose();
const perImage = (s: number): number => (s / keys.length) * 1000;
const extOff = median(ext.off);
const extOn = median(ext.on);
const decCost = median(dec.on) - median(dec.off);
const result = {
  images: keys.length,
  inputSize: encoder.inputSize,
  extractMsPerImage: { without: perImage(extOff), with: perImage(extOn) },
  extractOverheadPct: ((extOn - extOff) / extOff) * 100,
  decodeMsPerImage: { without: perImage(median(dec.off)), with: perImage(median(dec.on)) },
  propertiesMsPerImage: perImage(decCost),
  propertiesPctOfExtraction: (decCost / extOff) * 100,
};
console.log(`extraction:  ${result.extractMsPerImage.without.toFixed(2)} ms/img without properties, ${result.extractMsPerImage.with.toFixed(2)} with: ${result.extractOverheadPct.toFixed(1)}% (median of ${rounds} alternated rounds)`);
console.log(`decode only: ${result.decodeMsPerImage.without.toFixed(3)} ms/img without, ${result.decodeMsPerImage.with.toFixed(3)} with: properties cost ${result.propertiesMsPerImage.toFixed(3)} ms/img = ${result.propertiesPctOfExtraction.toFixed(1)}% of extraction (limit 10%)`);
console.log(JSON.stringify(result));
