/**
 * Sandboxed processor of the train queue: the payload and its extract children's results ->
 * trainModel, recording every epoch (loss, checkpoint) on the job's progress.
 */
import type { SandboxedJob } from 'bullmq';
import { trainModel } from '../../shared/jobs/train-model.js';
import { extractResult, type TrainResult } from '../../shared/queue/contract.js';
import { payloadOf, runJob } from '../runtime.js';

export default async function train(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<TrainResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = payloadOf('train', job.data);
    const extracted = Object.values(await job.getChildrenValues()).map((v) => extractResult.parse(v));
    const epochs = (p.config as { train?: { epochs?: number } }).train?.epochs;
    return trainModel(p, extracted, ctx, async (epoch, loss, checkpoint) => {
      await job.updateProgress({ stage: 'train', done: epoch, total: epochs, unit: 'epochs', loss, checkpoint });
    });
  });
}
