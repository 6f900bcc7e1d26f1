import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI from source (through tsx) as a separate process, as a user would. */
/** A queue prefix of its own for every test process, so parallel test files never share jobs. */
export const TEST_QUEUE_PREFIX = `test${process.pid}${Math.random().toString(36).slice(2, 8)}`;

export function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/entry.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, OOD_QUEUE_PREFIX: TEST_QUEUE_PREFIX, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** Resolves when some output matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  readonly done: Promise<CliResult>;
}

/** Starts the CLI and returns at once: for tests that act while a run is going. */
export function startCli(args: readonly string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/entry.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, OOD_QUEUE_PREFIX: TEST_QUEUE_PREFIX, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return {
    child,
    output: () => stdout + stderr,
    done,
    waitFor: async (pattern, timeoutMs = 120_000) => {
      const end = Date.now() + timeoutMs;
      while (!pattern.test(stdout + stderr)) {
        if (child.exitCode !== null) throw new Error(`CLI exited (${child.exitCode}) before ${pattern}:\n${stdout}${stderr}`);
        if (Date.now() > end) throw new Error(`timed out waiting for ${pattern}:\n${stdout}${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
