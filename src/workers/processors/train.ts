/**
 * Sandboxed processor of the train queue: the payload -> trainModel (it reads the extract results
 * its groups recorded), recording every epoch (loss, checkpoint) on the job's progress.
 */
import type { SandboxedJob } from 'bullmq';
import { trainModel } from '../../shared/jobs/train-model.js';
import type { TrainResult } from '../../shared/queue/contract.js';
import { payloadOf, runJob } from '../runtime.js';

export default async function train(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<TrainResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = payloadOf('train', job.data);
    const epochs = (p.config as { train?: { epochs?: number } }).train?.epochs;
    return trainModel(p, ctx, async (epoch, loss, checkpoint) => {
      await job.updateProgress({ stage: 'train', done: epoch, total: epochs, unit: 'epochs', loss, checkpoint });
    });
  });
}
