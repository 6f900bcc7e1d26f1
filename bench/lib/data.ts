/**
 * Benchmark data: the shared tarballs unpacked once into a cache folder (never into the repo), and
 * the corrupted CIFAR-10 test sets generated from them. OOD_BENCH_DATA overrides the source folder,
 * OOD_BENCH_CACHE the cache (default /tmp/ood-audit-bench).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CORRUPTIONS, STRENGTHS, corrupt, type Corruption } from './corrupt.js';

export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const SOURCE = process.env['OOD_BENCH_DATA'] ?? path.resolve(REPO, '..', 'shared', 'datasets');
export const CACHE = process.env['OOD_BENCH_CACHE'] ?? '/tmp/ood-audit-bench';

const TARBALLS = {
  'cifar10/train': 'cifar10-train.tar.gz',
  'cifar10/test': 'cifar10-test.tar.gz',
  'fashion-mnist/test': 'fashion-mnist-test.tar.gz',
} as const;
export type BaseSet = keyof typeof TARBALLS;

/** Unpacks a dataset tarball into the cache on first use; returns its folder. */
export function datasetDir(set: BaseSet): string {
  const [name] = set.split('/') as [string];
  const dir = path.join(CACHE, 'data', set);
  if (!existsSync(path.join(dir, '.complete'))) {
    const tar = path.join(SOURCE, TARBALLS[set]);
    if (!existsSync(tar)) throw new Error(`benchmark data missing: ${tar} (set OOD_BENCH_DATA to the datasets folder)`);
    mkdirSync(path.join(CACHE, 'data', name), { recursive: true });
    execFileSync('tar', ['-xzf', tar, '-C', path.join(CACHE, 'data', name)]);
    writeFileSync(path.join(dir, '.complete'), '');
  }
  return dir;
}

/** Sorted image keys (relative paths) under a folder. */
export function listKeys(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (/\.(jpe?g|png)$/i.test(e.name)) out.push(r);
    }
  };
  walk('');
  return out.sort();
}

export const classOf = (key: string): string => key.split('/')[0]!;

/** The first `perClass` test images of every class, the images the corruptions are applied to. */
export function corruptionSource(perClass: number): string[] {
  const keys = listKeys(datasetDir('cifar10/test'));
  const seen = new Map<string, number>();
  return keys.filter((k) => {
    const c = classOf(k);
    const n = seen.get(c) ?? 0;
    seen.set(c, n + 1);
    return n < perClass;
  });
}

/** Generates (once) a corrupted copy of the corruption source set; returns its folder. */
export async function corruptedDir(kind: Corruption, strength: number, perClass: number): Promise<string> {
  const dir = path.join(CACHE, 'data', `cifar10-c-${perClass}`, `${kind}-${strength}`);
  if (existsSync(path.join(dir, '.complete'))) return dir;
  const src = datasetDir('cifar10/test');
  for (const key of corruptionSource(perClass)) {
    const out = path.join(dir, key);
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, await corrupt(readFileSync(path.join(src, key)), kind, strength, key));
  }
  writeFileSync(path.join(dir, '.complete'), '');
  return dir;
}

export const ALL_CORRUPTIONS = CORRUPTIONS.flatMap((kind) => STRENGTHS.map((s) => ({ kind, strength: s })));
