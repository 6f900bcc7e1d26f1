/** The shared real services (support/services.ts), with worker processes on this test process's queue prefix. */
import { startWorker as startWorkerProcess, type WorkerProcess } from '../../support/services.js';
import { tmpdir } from 'node:os';
import { ROOT, TEST_QUEUE_PREFIX } from './cli.js';

export { freePort, startFaultProxy, startRedis, startS3rver, stopProcess, upload, type FaultProxy, type RedisServer, type S3Server, type WorkerProcess } from '../../support/services.js';

/** The roots test workers serve: the temporary folders, the repository (its demo sample) and the test bucket. */
export const TEST_ROOTS = [tmpdir(), ROOT, 's3://lake/'].join(',');

export function startWorker(env: Record<string, string>, args: string[] = []): WorkerProcess {
  return startWorkerProcess({ OOD_QUEUE_PREFIX: TEST_QUEUE_PREFIX, OOD_WORKER_ROOTS: TEST_ROOTS, ...env }, args);
}
