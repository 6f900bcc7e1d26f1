/**
 * What the CLI prints: log lines and progress on stderr (text or JSON lines, `--log-format`), and
 * on stdout either its human result lines or, with `--json`, exactly one JSON document.
 */
import type { EnvConfig } from '../shared/config/env.js';
import { formatLogLine, type Log } from '../shared/log.js';
import { terminal } from './progress.js';

/** The CLI's logger: one line per event on stderr, above any running progress stages. */
export function cliLog(env: Pick<EnvConfig, 'logFormat'>, component = 'cli'): Log {
  return (message, fields) => terminal().log(formatLogLine(env.logFormat, message, fields, { base: { component } }));
}

/** Prints a command's result: one JSON document (`--json`) or the human lines. */
export function printResult(json: boolean, doc: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(doc, null, 2)}\n` : text());
}
