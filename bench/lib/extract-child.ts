// One extraction process of featuresFor(): runs the product's extract job for every `parts`-th shard
// of a planned fit (its extract payloads), prints the jobs' results as one JSON line.
import { readFile } from 'node:fs/promises';
import { createEngine, engineContext } from '../../src/shared/jobs/engine.js';
import { extractShard } from '../../src/shared/jobs/extract-shard.js';
import type { JobContext } from '../../src/shared/jobs/context.js';
import type { ExtractPayload, ExtractResult } from '../../src/shared/queue/contract.js';
import { env, open } from './features.js';

const [planFile, part, parts] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];
const extracts = JSON.parse(await readFile(planFile, 'utf8')) as ExtractPayload[];
const engine = await createEngine(env.backend, open, { ortThreads: env.ortThreads });
const ctx: JobContext = engineContext(engine, open, { log: () => undefined, progress: () => ({ update: () => undefined, done: () => undefined }) });
const results: ExtractResult[] = [];
for (const p of extracts) if (p.shard.index % parts === part) results.push(await extractShard(p, ctx));
await engine.dispose();
process.stdout.write(JSON.stringify(results) + '\n');
