/** The demo sample for CLI tests: copies of its folders, and a tiny model fitted on part of its ID set. */
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { ROOT, runCli } from './cli.js';

export const DEMO = path.join(ROOT, 'examples/demo');

/** Copies `count` entries of `from` (files or folders, in name order, after `skip`) into `to`. */
export function copyEntries(from: string, to: string, count: number, skip = 0): void {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from).slice(skip, skip + count)) cpSync(path.join(from, f), path.join(to, f), { recursive: true });
}

/** `perClass` demo ID images of every class under `<work>/id`; returns that folder. */
export function demoIdSubset(work: string, perClass = 12): string {
  const id = path.join(work, 'id');
  for (const c of readdirSync(path.join(DEMO, 'id'))) copyEntries(path.join(DEMO, 'id', c), path.join(id, c), perClass);
  return id;
}

/** Fits a tiny model (2 epochs, LFDN 64 x 1) in process on `id` into `model`; `extra` adds fit options. */
export async function fitTinyModel(id: string, model: string, extra: readonly string[] = []): Promise<void> {
  const r = await runCli(['fit', '--in-process', '--id', id, '--model', model, '--epochs', '2', '--width', '64', '--depth', '1', ...extra]);
  expect(r.code, r.stderr).toBe(0);
}
