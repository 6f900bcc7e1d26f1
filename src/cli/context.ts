import type { BackendInfo } from '../shared/backend.js';
import type { RunContext } from '../shared/app/context.js';
import { progress } from './progress.js';

/** The CLI's run context: log lines and progress on stderr, results on stdout. */
export function cliContext(backend: BackendInfo, signal?: AbortSignal): RunContext {
  return {
    backend,
    log: (message) => process.stderr.write(`${message}\n`),
    progress: (label, total, unit) => progress(label, total, unit),
    ...(signal !== undefined ? { signal } : {}),
  };
}
