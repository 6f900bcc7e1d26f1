/**
 * The `ood-audit` command line. The environment is parsed once here and passed to the command.
 * Errors print one line naming the problem and exit non-zero (the code's exit status in the error
 * table: 2 for bad usage or configuration, 1 otherwise); set OOD_AUDIT_DEBUG=1 for stack traces.
 */
import { parseEnv, type EnvConfig } from '../shared/config/env.js';
import { coerceError } from '../shared/errors.js';
import { dashboardCommand, DASHBOARD_USAGE } from './commands/dashboard.js';
import { evalCommand, EVAL_USAGE } from './commands/eval.js';
import { fitCommand, FIT_USAGE } from './commands/fit.js';
import { scanCommand, SCAN_USAGE } from './commands/scan.js';
import { scheduleCommand, SCHEDULE_USAGE } from './commands/schedule.js';
import { statusCommand, STATUS_USAGE } from './commands/status.js';
import { workerCommand, WORKER_USAGE } from './commands/worker.js';

type Command = (argv: readonly string[], env: EnvConfig) => Promise<void>;

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

Run "ood-audit <command> --help" for a command's options.
`;

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
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
  try {
    const env = parseEnv(process.env);
    debug = env.debug;
    await cmd.run(rest, env);
    return 0;
  } catch (err) {
    const e = coerceError(err);
    process.stderr.write(`\nood-audit ${name}: ${e.message}\n`);
    if (debug && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    return e.exitCode;
  }
}
