/**
 * Log lines: one line per event, whatever the message holds (newlines are folded), as plain text
 * for people or as one JSON object per line for log shippers (`--log-format json`, OOD_LOG_FORMAT).
 *
 *   text  "<message>" (the CLI) or "<ISO time> <message>" (workers); fields are for JSON only
 *   json  {"time":"<ISO>","level":"info","pid":123,"msg":"<message>",...fields}
 *
 * Every line is written with one write call, so lines from several processes sharing a pipe never
 * mix mid-line (pipe writes up to 4 KiB are atomic; longer messages are cut to fit).
 */

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Structured fields of an event (`level` defaults to info). */
export interface LogFields {
  readonly level?: LogLevel;
  readonly [field: string]: string | number | boolean | undefined;
}

export type Log = (message: string, fields?: LogFields) => void;

export interface LogOptions {
  /** Text lines start with an ISO timestamp (JSON lines always carry one). */
  readonly time?: boolean;
  /** Fields on every JSON line (e.g. component). */
  readonly base?: LogFields;
}

/** Longest message written, in characters (a line stays well under a pipe's atomic write size). */
const MAX_LINE = 3800;

function fold(message: string): string {
  const one = message.replace(/\s*[\r\n]+\s*/g, ' | ').trimEnd();
  return one.length > MAX_LINE ? `${one.slice(0, MAX_LINE - 20)} ...(cut)` : one;
}

/** One log line, without its newline. */
export function formatLogLine(format: LogFormat, message: string, fields: LogFields = {}, opts: LogOptions = {}, now: Date = new Date()): string {
  const all: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries({ ...opts.base, ...fields })) if (v !== undefined) all[k] = v;
  const level = (all['level'] as LogLevel | undefined) ?? 'info';
  delete all['level'];
  if (format === 'json') {
    const line = JSON.stringify({ time: now.toISOString(), level, pid: process.pid, msg: fold(message), ...all });
    return line.length > MAX_LINE + 400 ? JSON.stringify({ time: now.toISOString(), level, pid: process.pid, msg: fold(message).slice(0, MAX_LINE / 2) + ' ...(cut)' }) : line;
  }
  return `${opts.time === true ? `${now.toISOString()} ` : ''}${fold(message)}`;
}

/** A logger writing whole lines through `write` (which adds nothing; the newline is included). */
export function createLog(format: LogFormat, write: (line: string) => void, opts: LogOptions = {}): Log {
  return (message, fields) => write(`${formatLogLine(format, message, fields, opts)}\n`);
}

/** Parses a JSON log line written by createLog (another process's), or undefined. */
export function parseLogLine(line: string): ({ time: string; level: LogLevel; pid: number; msg: string } & Record<string, unknown>) | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    if (typeof o['msg'] !== 'string' || typeof o['level'] !== 'string' || typeof o['time'] !== 'string') return undefined;
    return o as { time: string; level: LogLevel; pid: number; msg: string } & Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Splits a byte stream into whole lines (a chunk may end mid-line): call with each chunk, then flush. */
export function lineSplitter(onLine: (line: string) => void): { push(chunk: Buffer | string): void; flush(): void } {
  let carry = '';
  return {
    push(chunk) {
      const text = carry + chunk.toString();
      const lines = text.split('\n');
      carry = lines.pop() ?? '';
      for (const l of lines) onLine(l.replace(/\r$/, ''));
    },
    flush() {
      if (carry !== '') onLine(carry);
      carry = '';
    },
  };
}
