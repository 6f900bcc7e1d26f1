/**
 * Environment configuration, parsed once per process at its entry point (CLI, worker, sandboxed
 * processor) into a frozen object that is passed down; nothing else reads process.env.
 *
 *   REDIS_URL                              redis://[user:pass@]host:port[/db] or rediss:// (TLS);
 *                                          default redis://127.0.0.1:6379
 *   OOD_QUEUE_PREFIX                       Redis key prefix of the queues (default "ood")
 *   AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL  custom S3 endpoint (path-style addressing is then used)
 *   AWS_REGION / AWS_DEFAULT_REGION        S3 region
 *   OOD_S3_FORCE_PATH_STYLE                "true" / "false" to override the path-style choice
 *   OOD_BACKEND                            backend of worker processes: auto, onnx, onnx-cuda,
 *                                          tensorflow-gpu, tensorflow, wasm, cpu (backend-choice.ts)
 *   OOD_ORT_THREADS                        intra-op threads of each process's onnxruntime session
 *                                          (integer 1-64; default 1: one worker process per core
 *                                          runs faster than fewer processes with more threads)
 *   OOD_WORKER_ROOTS                       locations a worker serves (comma-separated folders and
 *                                          s3:// prefixes); a worker refuses jobs naming others
 *   OOD_DASHBOARD_USER, OOD_DASHBOARD_PASSWORD   the dashboard's login (both, or neither)
 *   OOD_AUDIT_DEBUG                        "1": print stack traces with errors
 *   OOD_LOG_FORMAT                         log lines: text (default) or json (one object per line)
 * Credentials are left to the AWS SDK's default chain and never copied anywhere.
 */
import { OodError } from '../errors.js';
import { BACKENDS, DEFAULT_ORT_THREADS, type BackendChoice } from '../backend-choice.js';
import type { S3Settings } from '../storage/s3-store.js';
import { parseRoots } from '../storage/roots.js';
import { installRedaction } from './redact.js';
import { DEFAULTS } from './defaults.js';
import { LOG_FORMATS, type LogFormat } from '../log.js';

export interface EnvConfig {
  readonly redis: {
    /** The Redis to use: REDIS_URL, else the default. */
    readonly url: string;
    /** True when REDIS_URL was set (the CLI then never starts an embedded Redis). */
    readonly explicit: boolean;
  };
  readonly queuePrefix: string;
  readonly s3: S3Settings;
  /** Backend for worker processes (OOD_BACKEND; default auto). */
  readonly backend: BackendChoice;
  /** Intra-op threads of an onnxruntime encoder session (OOD_ORT_THREADS; default 1). */
  readonly ortThreads: number;
  /** The locations a worker serves (OOD_WORKER_ROOTS); none when unset. */
  readonly workerRoots: readonly string[];
  /** The dashboard's login, when set. */
  readonly dashboard: { readonly user: string; readonly password: string } | undefined;
  readonly debug: boolean;
  /** Log line format (OOD_LOG_FORMAT, or the CLI's --log-format; default text). */
  readonly logFormat: LogFormat;
}

export function parseLogFormat(value: string, option = '--log-format'): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new OodError('CONFIG_INVALID', `invalid ${option}: expected ${LOG_FORMATS.join(' or ')}, got ${JSON.stringify(value)}`);
}

export function parseBackendChoice(value: string, option = '--backend'): BackendChoice {
  if (value === 'auto' || (BACKENDS as readonly string[]).includes(value)) return value as BackendChoice;
  throw new OodError('CONFIG_INVALID', `invalid ${option}: expected one of auto, ${BACKENDS.join(', ')}, got ${JSON.stringify(value)}`);
}

export function parseOrtThreads(value: string | undefined, option = 'OOD_ORT_THREADS'): number {
  const v = value?.trim() ?? '';
  if (v === '') return DEFAULT_ORT_THREADS;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 64) throw new OodError('CONFIG_INVALID', `invalid ${option}: expected an integer from 1 to 64, got ${JSON.stringify(v)}`);
  return n;
}

export function parseEnv(env: NodeJS.ProcessEnv): EnvConfig {
  const redisUrl = env['REDIS_URL']?.trim() || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new OodError('CONFIG_INVALID', `invalid REDIS_URL: expected redis:// or rediss://, got ${JSON.stringify(redactUrl(redisUrl))}`);
  }
  const prefix = env['OOD_QUEUE_PREFIX']?.trim() || DEFAULTS.queuePrefix;
  if (!/^[A-Za-z0-9_.-]+$/.test(prefix)) throw new OodError('CONFIG_INVALID', `invalid OOD_QUEUE_PREFIX: expected letters, digits, _ . -, got ${JSON.stringify(prefix)}`);
  const endpoint = env['AWS_ENDPOINT_URL_S3']?.trim() || env['AWS_ENDPOINT_URL']?.trim() || undefined;
  const region = env['AWS_REGION']?.trim() || env['AWS_DEFAULT_REGION']?.trim() || undefined;
  const fps = env['OOD_S3_FORCE_PATH_STYLE']?.trim();
  if (fps !== undefined && fps !== '' && fps !== 'true' && fps !== 'false') throw new OodError('CONFIG_INVALID', `invalid OOD_S3_FORCE_PATH_STYLE: expected true or false, got ${JSON.stringify(fps)}`);
  const dashUser = env['OOD_DASHBOARD_USER'] ?? '';
  const dashPassword = env['OOD_DASHBOARD_PASSWORD'] ?? '';
  if ((dashUser === '') !== (dashPassword === '')) throw new OodError('CONFIG_INVALID', 'invalid dashboard login: set both OOD_DASHBOARD_USER and OOD_DASHBOARD_PASSWORD, or neither');
  if (dashUser.includes(':')) throw new OodError('CONFIG_INVALID', 'invalid OOD_DASHBOARD_USER: must not contain ":"');
  return Object.freeze({
    dashboard: dashUser !== '' ? Object.freeze({ user: dashUser, password: dashPassword }) : undefined,
    redis: Object.freeze({ url: redisUrl ?? DEFAULTS.redisUrl, explicit: redisUrl !== undefined }),
    queuePrefix: prefix,
    backend: parseBackendChoice(env['OOD_BACKEND']?.trim() || 'auto', 'OOD_BACKEND'),
    ortThreads: parseOrtThreads(env['OOD_ORT_THREADS']),
    debug: env['OOD_AUDIT_DEBUG'] === '1',
    logFormat: parseLogFormat(env['OOD_LOG_FORMAT']?.trim() || 'text', 'OOD_LOG_FORMAT'),
    workerRoots: Object.freeze(parseRoots(env['OOD_WORKER_ROOTS'] ?? '', 'OOD_WORKER_ROOTS')),
    s3: Object.freeze({
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(region !== undefined ? { region } : {}),
      ...(fps === 'true' || fps === 'false' ? { forcePathStyle: fps === 'true' } : {}),
    }),
  });
}

/**
 * The process-wide settings every entry point applies before anything else loads: every line the
 * process prints goes through one redaction step (redact.ts); and the pinned AWS SDK warns on every
 * run under Node < 22 that future SDK releases will need Node 22; it works on Node 20, so the
 * warning is turned off (README, Requirements).
 */
export function prepareProcess(env: NodeJS.ProcessEnv = process.env): void {
  env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  installRedaction(env);
}

/** The environment of a child ood-audit process: this one's, with the given settings replaced. */
export function childEnv(overrides: { readonly redisUrl?: string; readonly queuePrefix?: string; readonly backend?: BackendChoice; readonly workerRoots?: readonly string[]; readonly logFormat?: LogFormat }): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...(overrides.redisUrl !== undefined ? { REDIS_URL: overrides.redisUrl } : {}),
    ...(overrides.queuePrefix !== undefined ? { OOD_QUEUE_PREFIX: overrides.queuePrefix } : {}),
    ...(overrides.backend !== undefined ? { OOD_BACKEND: overrides.backend } : {}),
    ...(overrides.workerRoots !== undefined ? { OOD_WORKER_ROOTS: overrides.workerRoots.join(',') } : {}),
    ...(overrides.logFormat !== undefined ? { OOD_LOG_FORMAT: overrides.logFormat } : {}),
  };
}

/** A URL with any password (and user) replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
