/**
 * Sandboxed processor of the train queue: the ID features of every extract shard -> LFDN training
 * with a checkpoint in the model folder after every epoch (recorded on the job's progress) ->
 * calibration -> the model artifact. A retried or re-delivered job (say its worker was killed)
 * resumes from the last checkpoint instead of starting over.
 */
import type { SandboxedJob } from 'bullmq';
import { concatFeatureSets, decodeFeatureSet } from '../../shared/feature-set.js';
import { trainAndSave } from '../../shared/app/operations.js';
import { validateDlsrConfig, type DlsrConfig } from '../../shared/dlsr/config.js';
import { disposeModel } from '../../shared/dlsr/model.js';
import { OodError } from '../../shared/errors.js';
import { extractResult, parsePayload, type TrainResult } from '../../shared/queue/contract.js';
import { open, runJob } from '../runtime.js';

export default async function train(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<TrainResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = parsePayload('train', job.data);
    const config = validateDlsrConfig(p.config as unknown as DlsrConfig);
    const results = Object.values(await job.getChildrenValues()).map((v) => extractResult.parse(v)).sort((a, b) => a.shard - b.shard);
    if (results.length !== p.shards) throw new OodError('INTERNAL', `train: expected ${p.shards} extract results, got ${results.length}`);
    const sets = [];
    for (const r of results) sets.push(decodeFeatureSet(await open(r.cache).store.get(r.featuresKey), r.featuresKey));
    const features = concatFeatureSets(sets);
    const model = open(p.model);
    const out = await trainAndSave(features, model.store, model.prefix, config, ctx, async (epoch, loss, checkpointKey) => {
      await job.updateProgress({ stage: 'train', done: epoch, total: config.train.epochs, unit: 'epochs', loss, checkpoint: checkpointKey });
    }, p.input);
    const result: TrainResult = {
      model: p.model,
      epochs: out.model.info.epochs,
      resumedFromEpoch: out.resumedFromEpoch,
      trainCount: out.model.info.trainCount,
      holdoutCount: out.model.info.holdoutCount,
      failed: features.failures.length,
    };
    disposeModel(out.model);
    return result;
  });
}
