import type { BackendInfo } from '../shared/backend.js';
import type { RunContext } from '../shared/app/context.js';
import { progress } from './progress.js';
import type { EnvConfig } from '../shared/config/env.js';
import { encoderFolders } from '../shared/storage/open.js';

/** The CLI's run context: log lines and progress on stderr, results on stdout. */
export function cliContext(backend: BackendInfo, env: EnvConfig, signal?: AbortSignal): RunContext {
  return {
    backend,
    encoders: encoderFolders(env),
    log: (message) => process.stderr.write(`${message}\n`),
    progress: (label, total, unit) => progress(label, total, unit),
    ...(signal !== undefined ? { signal } : {}),
  };
}
