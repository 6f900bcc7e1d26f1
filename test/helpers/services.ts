/** The shared real services (support/services.ts), with worker processes on this test process's queue prefix. */
import { startWorker as startWorkerProcess, type WorkerProcess } from '../../support/services.js';
import { TEST_QUEUE_PREFIX } from './cli.js';

export { freePort, startFaultProxy, startRedis, startS3rver, stopProcess, upload, type FaultProxy, type RedisServer, type S3Server, type WorkerProcess } from '../../support/services.js';

export function startWorker(env: Record<string, string>, args: string[] = []): WorkerProcess {
  return startWorkerProcess({ OOD_QUEUE_PREFIX: TEST_QUEUE_PREFIX, ...env }, args);
}
