/**
 * The `ood-audit` command line. The environment is parsed once here and passed to the command.
 * Errors print one line naming the problem and exit non-zero (the code's exit status in the error
 * table: 2 for bad usage or configuration, 1 otherwise; a scan's --fail-on uses 3 and 4, see
 * EXIT_CODES); set OOD_AUDIT_DEBUG=1 for stack traces. Options every command takes:
 * `--log-format text|json` (default OOD_LOG_FORMAT, else text); `--version` / `-V` alone.
 */
import { createRequire } from 'node:module';
import { parseEnv, parseLogFormat, type EnvConfig } from '../shared/config/env.js';
import { coerceError, OodError } from '../shared/errors.js';
import { formatLogLine, type LogFormat } from '../shared/log.js';
import { dashboardCommand, DASHBOARD_USAGE } from './commands/dashboard.js';
import { evalCommand, EVAL_USAGE } from './commands/eval.js';
import { fitCommand, FIT_USAGE } from './commands/fit.js';
import { scanCommand, SCAN_USAGE } from './commands/scan.js';
import { scheduleCommand, SCHEDULE_USAGE } from './commands/schedule.js';
import { statusCommand, STATUS_USAGE } from './commands/status.js';
import { workerCommand, WORKER_USAGE } from './commands/worker.js';
import { terminal } from './progress.js';

/** A command returns its exit status when it decides one (a scan's --fail-on), else 0. */
type Command = (argv: readonly string[], env: EnvConfig) => Promise<number | void>;

const COMMANDS: Record<string, { run: Command; usage: string }> = {
  fit: { run: fitCommand, usage: FIT_USAGE },
  scan: { run: scanCommand, usage: SCAN_USAGE },
  score: { run: scanCommand, usage: SCAN_USAGE.replace('ood-audit scan', 'ood-audit score') },
  schedule: { run: scheduleCommand, usage: SCHEDULE_USAGE },
  worker: { run: workerCommand, usage: WORKER_USAGE },
  status: { run: statusCommand, usage: STATUS_USAGE },
  dashboard: { run: dashboardCommand, usage: DASHBOARD_USAGE },
  eval: { run: evalCommand, usage: EVAL_USAGE },
};

const USAGE = `usage: ood-audit <command> [options]

commands:
${Object.values(COMMANDS).map((c) => '  ' + c.usage.split('\n')[0]).join('\n')}

Every command takes --log-format text|json (log lines on stderr; default OOD_LOG_FORMAT, else text).
ood-audit --version (-V) prints the version.
Run "ood-audit <command> --help" for a command's options.
`;

/** The package version (package.json sits two folders up from src/cli and from dist/cli). */
export function packageVersion(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

/** Takes --log-format out of the arguments (every command accepts it). */
function takeLogFormat(argv: readonly string[]): { rest: string[]; format?: LogFormat } {
  const rest: string[] = [];
  let format: LogFormat | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--log-format') {
      const value = argv[i + 1];
      if (value === undefined) throw new OodError('CONFIG_INVALID', "option '--log-format <value>' argument missing");
      format = parseLogFormat(value);
      i++;
    } else if (a.startsWith('--log-format=')) format = parseLogFormat(a.slice('--log-format='.length));
    else rest.push(a);
  }
  return { rest, ...(format !== undefined ? { format } : {}) };
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (cmd === undefined) {
    process.stderr.write(`ood-audit: unknown command ${JSON.stringify(name)}\n${USAGE}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.usage + '\n');
    return 0;
  }
  let debug = false;
  let format: LogFormat = 'text';
  try {
    const base = parseEnv(process.env);
    debug = base.debug;
    format = base.logFormat;
    const args = takeLogFormat(rest);
    format = args.format ?? format;
    const env: EnvConfig = Object.freeze({ ...base, logFormat: format });
    return (await cmd.run(args.rest, env)) ?? 0;
  } catch (err) {
    const e = coerceError(err);
    terminal().settle();
    if (format === 'json') process.stderr.write(`${formatLogLine('json', `ood-audit ${name}: ${e.message}`, { level: 'error', component: 'cli', code: e.code, exit: e.exitCode })}\n`);
    else process.stderr.write(`\nood-audit ${name}: ${e.message}\n`);
    if (debug && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    return e.exitCode;
  }
}
