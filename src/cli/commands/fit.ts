import type { EnvConfig } from '../../shared/config/env.js';
import { openLocation } from '../../shared/storage/open.js';
import { assertWritable, planFit } from '../../producers/plan.js';
import { describeSkipped } from '../../shared/queue/contract.js';
import { absolute, backendChoice, BACKEND_OPTION, int, maxBytes, MODEL_OPTIONS, modelConfig, parse, required, shardSize } from '../options.js';
import { cliLog } from '../output.js';
import { openRunner } from '../run.js';

export const FIT_USAGE = `ood-audit fit --id <loc> --model <loc> [options]
  Extracts features of every image under --id (recursively; a folder or an s3:// URI), trains the
  LFDN, calibrates on a held-out 10% of the ID images and saves the model folder. A killed fit
  resumes from its last checkpoint when run again with the same options and images.
  --epochs N            training epochs (default 30)
  --preset cpu|paper    LFDN size: cpu = 512 x 4 (default), paper = 1440 x 16; or --width/--depth
  --input-size N        encoder input side (default 224)
  --taps a,b,c          encoder layers to pool (default block_2_add,block_5_add,block_9_add,block_10_project_BN)
  --preprocessing P     unit = [0, 1] (default) | symmetric = [-1, 1] | imagenet | raw
  --encoder NAME        mobilenet_v2 (default) | layers | graph, with --encoder-uri <loc> (the folder of its model.json)
  --seed N              training seed (default 0)
  --t N --steps N --eta X --score-seed N   scoring: distortion timestep (3), DDIM steps (3), eta (1), seed (0)
  --primary SCORE       score that decides "flagged" (default mahalanobis: chosen across protocols, docs/benchmarks.md)
  --whiten none|stage|global   whiten the features (Ledoit-Wolf, ZCA) before the LFDN (default stage)
  --tpr X               ID fraction kept below the threshold (default 0.95)
  --holdout X           ID fraction held out for calibration (default 0.1)
  --batch-size N --lr X --weight-decay X --ema-decay X   optimiser settings
  --backend B           auto (default) | onnx | onnx-cuda | tensorflow-gpu | tensorflow | wasm | cpu
                        (auto: the encoder on onnxruntime-node when it loads, else tfjs; OOD_ORT_THREADS
                        sets its threads)
  --shard-size N        images per extract job (default 1000); --workers N local workers if none run
  --max-bytes N         largest image file read (default 256 MiB); larger files are failures
  --in-process          run every job in this process, without Redis and workers
  --log-format F        log lines on stderr: text (default) | json
  A location <loc> is a folder (plain path or file://) or s3://bucket/prefix/.`;

/** Every option `fit` accepts (its --help lists each one; a unit test holds it to that). */
export const FIT_FLAGS = { id: { type: 'string' }, model: { type: 'string' }, 'shard-size': { type: 'string' }, 'max-bytes': { type: 'string' }, workers: { type: 'string' }, 'in-process': { type: 'boolean' }, ...MODEL_OPTIONS, ...BACKEND_OPTION } as const;

export async function fitCommand(argv: readonly string[], env: EnvConfig): Promise<void> {
  const v = parse(argv, FIT_FLAGS);
  const config = modelConfig(v);
  const idUri = absolute(required(v, 'id'));
  const modelUri = absolute(required(v, 'model'));
  const backend = backendChoice(v);
  const workers = int(v, 'workers', 1, 256);
  const size = shardSize(v);
  const log = cliLog(env);
  const plan = await planFit({ input: openLocation(idUri, env, true), model: modelUri, config, shardSize: size, maxBytes: maxBytes(v), open: (uri, mustExist = false) => openLocation(uri, env, mustExist) });
  await assertWritable(openLocation(modelUri, env));
  const runner = await openRunner(env, { inProcess: v['in-process'] === true, needs: ['extract', 'group', 'train'], roots: [idUri, modelUri], log, ...(workers !== undefined ? { workers } : {}), ...(backend !== undefined ? { backend } : {}) });
  try {
    const r = await runner.fit(plan, {
      what: `${idUri} -> ${modelUri}: LFDN ${config.lfdn.width} x ${config.lfdn.depth}, ${config.train.epochs} epochs`,
      listed: (rec) => `${rec.listed} entries: ${rec.images} ID images in ${rec.shards} shards (skipped: ${describeSkipped(rec.skippedByReason)})`,
    });
    log(
      `model saved to ${modelUri}: ${r.trainCount} training images, ${r.holdoutCount} held out, ${r.failed} failed; ` +
        `${r.primary} threshold ${r.threshold.toPrecision(5)} at ${(config.scoring.tpr * 100).toFixed(0)}% ID kept` +
        `${r.resumedFromEpoch > 0 ? `; training resumed after epoch ${r.resumedFromEpoch}` : ''}`,
    );
  } finally {
    await runner.close();
  }
}
