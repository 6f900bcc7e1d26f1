/**
 * The `ood-audit` command line. Errors print one line naming the problem and exit non-zero
 * (2 for bad usage or configuration, 1 otherwise); set OOD_AUDIT_DEBUG=1 for stack traces.
 */
import { coerceError } from '../shared/errors.js';
import { dashboardCommand, DASHBOARD_USAGE } from './commands/dashboard.js';
import { evalCommand, EVAL_USAGE } from './commands/eval.js';
import { fitCommand, FIT_USAGE } from './commands/fit.js';
import { scanCommand, SCAN_USAGE } from './commands/scan.js';
import { scheduleCommand, SCHEDULE_USAGE } from './commands/schedule.js';
import { statusCommand, STATUS_USAGE } from './commands/status.js';
import { workerCommand, WORKER_USAGE } from './commands/worker.js';

const COMMANDS: Record<string, { run: (argv: readonly string[]) => Promise<void>; usage: string }> = {
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
  try {
    await cmd.run(rest);
    return 0;
  } catch (err) {
    const e = coerceError(err);
    process.stderr.write(`\nood-audit ${name}: ${e.message}\n`);
    if (process.env['OOD_AUDIT_DEBUG'] === '1' && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    return e.code === 'CONFIG_INVALID' || e.code === 'UNKNOWN_ENCODER' ? 2 : 1;
  }
}
