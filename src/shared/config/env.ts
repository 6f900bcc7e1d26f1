/**
 * Environment configuration, parsed once per process at its entry point (CLI, worker, sandboxed
 * processor) into a frozen object; nothing else reads process.env.
 *
 *   REDIS_URL                              redis://[user:pass@]host:port[/db] or rediss:// (TLS)
 *   OOD_QUEUE_PREFIX                       Redis key prefix of the queues (default "ood")
 *   AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL  custom S3 endpoint (path-style addressing is then used)
 *   AWS_REGION / AWS_DEFAULT_REGION        S3 region
 *   OOD_S3_FORCE_PATH_STYLE                "true" / "false" to override the path-style choice
 *   OOD_BACKEND                            tensor backend of worker processes (auto, wasm, ...)
 * Credentials are left to the AWS SDK's default chain and never copied anywhere.
 */
import { OodError } from '../errors.js';
import { parseBackendChoice, type BackendChoice } from '../backend.js';
import { DEFAULT_QUEUE_PREFIX } from '../queue/contract.js';
import type { S3Settings } from '../storage/s3-store.js';

export interface EnvConfig {
  /** Explicit Redis URL, if set. */
  readonly redisUrl: string | undefined;
  readonly queuePrefix: string;
  readonly s3: S3Settings;
  /** Tensor backend for worker processes (OOD_BACKEND; default auto). */
  readonly backend: BackendChoice;
}

export function parseEnv(env: NodeJS.ProcessEnv): EnvConfig {
  const redisUrl = env['REDIS_URL']?.trim() || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new OodError('CONFIG_INVALID', `invalid REDIS_URL: expected redis:// or rediss://, got ${JSON.stringify(redactUrl(redisUrl))}`);
  }
  const prefix = env['OOD_QUEUE_PREFIX']?.trim() || DEFAULT_QUEUE_PREFIX;
  if (!/^[A-Za-z0-9_.-]+$/.test(prefix)) throw new OodError('CONFIG_INVALID', `invalid OOD_QUEUE_PREFIX: expected letters, digits, _ . -, got ${JSON.stringify(prefix)}`);
  const endpoint = env['AWS_ENDPOINT_URL_S3']?.trim() || env['AWS_ENDPOINT_URL']?.trim() || undefined;
  const region = env['AWS_REGION']?.trim() || env['AWS_DEFAULT_REGION']?.trim() || undefined;
  const fps = env['OOD_S3_FORCE_PATH_STYLE']?.trim();
  if (fps !== undefined && fps !== '' && fps !== 'true' && fps !== 'false') throw new OodError('CONFIG_INVALID', `invalid OOD_S3_FORCE_PATH_STYLE: expected true or false, got ${JSON.stringify(fps)}`);
  return Object.freeze({
    redisUrl,
    queuePrefix: prefix,
    backend: parseBackendChoice(env['OOD_BACKEND']?.trim() || 'auto'),
    s3: Object.freeze({
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(region !== undefined ? { region } : {}),
      ...(fps === 'true' || fps === 'false' ? { forcePathStyle: fps === 'true' } : {}),
    }),
  });
}

/** A URL with any password (and user) replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
