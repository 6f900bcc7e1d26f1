import { initBackend } from '../../shared/backend.js';
import { fitModel } from '../../shared/app/operations.js';
import { parseEnv } from '../../shared/config/env.js';
import { openLocation } from '../../shared/storage/open.js';
import type { TrainResult } from '../../shared/queue/contract.js';
import { enqueueFit } from '../../producers/runs.js';
import { BACKEND_OPTION, backendChoice, int, MODEL_OPTIONS, modelConfig, parse, required, str } from '../options.js';
import { cliContext } from '../context.js';
import { followRun, openPipeline } from '../pipeline.js';
import { absolute } from './scan.js';

export const FIT_USAGE = `ood-audit fit --id <dir> --model <dir> [options]
  Extracts features of every image under --id (recursively), trains the LFDN, calibrates on a
  held-out 10% of the ID images and saves the model folder. A killed fit resumes from its last
  checkpoint when run again with the same options.
  --epochs N            training epochs (default 30)
  --preset cpu|paper    LFDN size: cpu = 512 x 4 (default), paper = 1440 x 16; or --width/--depth
  --input-size N        encoder input side (default 224)
  --taps a,b,c          encoder layers to pool (default block_2_add,block_5_add,block_9_add,block_10_project_BN)
  --preprocessing P     unit = [0, 1] (default) | symmetric = [-1, 1] | imagenet | raw
  --encoder NAME        mobilenet_v2 (default) | layers | graph, with --encoder-uri <dir of model.json>
  --seed N              training seed (default 0)
  --t N --steps N --eta X --score-seed N   scoring: distortion timestep (3), DDIM steps (3), eta (1), seed (0)
  --primary SCORE       score that decides "flagged" (default fused: MFsim and MSE, holdout z-scored)
  --whiten none|stage|global   whiten the features (Ledoit-Wolf, ZCA) before the LFDN (default stage)
  --tpr X               ID fraction kept below the threshold (default 0.95)
  --holdout X           ID fraction held out for calibration (default 0.1)
  --batch-size N --lr X --weight-decay X --ema-decay X   optimiser settings
  --backend B           auto (default) | tensorflow-gpu | tensorflow | wasm | cpu
  --shard-size N        images per extract job (default 1000); --workers N local workers if none run
  --in-process          run in this process, without Redis and workers`;

export async function fitCommand(argv: readonly string[]): Promise<void> {
  const v = parse(argv, { id: { type: 'string' }, model: { type: 'string' }, 'shard-size': { type: 'string' }, workers: { type: 'string' }, 'in-process': { type: 'boolean' }, ...MODEL_OPTIONS, ...BACKEND_OPTION });
  const config = modelConfig(v);
  const env = parseEnv(process.env);
  const idUri = absolute(required(v, 'id'));
  const modelUri = absolute(required(v, 'model'));
  const id = openLocation(idUri, env, true);
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  if (v['in-process'] === true) {
    const model = openLocation(modelUri, env);
    const backend = await initBackend(backendChoice(v));
    const ctx = cliContext(backend, env);
    ctx.log(`backend: ${backend.provider}; LFDN ${config.lfdn.width} x ${config.lfdn.depth}, ${config.train.epochs} epochs`);
    const out = await fitModel({ idStore: id.store, idPrefix: id.prefix, modelStore: model.store, modelPrefix: model.prefix, config }, ctx);
    const cal = out.model.calibration?.scores[config.scoring.primary];
    log(
      `model saved to ${modelUri}: ${out.model.info.trainCount} training images, ${out.model.info.holdoutCount} held out, ` +
        `${out.features.failures.length} failed, ${out.skipped} non-image files skipped; ` +
        `${config.scoring.primary} threshold ${cal?.threshold.toPrecision(5) ?? '?'} at ${(config.scoring.tpr * 100).toFixed(0)}% ID kept`,
    );
    return;
  }
  backendChoice(v); // validate early
  const workers = int(v, 'workers', 1, 256);
  const backend = str(v, 'backend');
  const session = await openPipeline(env, { needs: ['extract', 'train'], log, ...(workers !== undefined ? { workers } : {}), ...(backend !== undefined ? { backend } : {}) });
  try {
    const run = await enqueueFit(session, { input: id, model: modelUri, config, shardSize: int(v, 'shard-size', 1, 1_000_000) ?? 1000, openWork: (uri) => openLocation(uri, env) });
    log(`${run.created ? 'queued' : 'already queued or done:'} run ${run.runId}: ${run.images} ID images in ${run.shards} shards (${run.skippedNonImages} non-image files skipped); LFDN ${config.lfdn.width} x ${config.lfdn.depth}, ${config.train.epochs} epochs`);
    const r = (await followRun(session, run)) as TrainResult;
    log(
      `model saved to ${modelUri}: ${r.trainCount} training images, ${r.holdoutCount} held out, ${r.failed} failed, ${run.skippedNonImages} non-image files skipped` +
        `${r.resumedFromEpoch > 0 ? `; training resumed after epoch ${r.resumedFromEpoch}` : ''}`,
    );
  } finally {
    await session.close();
  }
}
