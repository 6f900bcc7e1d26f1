/**
 * Proves the CPU image's node_modules works without building the image (no Docker engine can build
 * here): replays docker/Dockerfile's build stage (its COPY, ENV and RUN lines, parsed from the file
 * by support/dockerfile.ts) in a clean temporary folder, then, from that folder alone and with the
 * image's ENV:
 *   1. loads sharp and decodes a real image, initialises tfjs with the wasm backend, loads the
 *      encoder weights and encodes the image (on tfjs, then on onnxruntime-node: the same features
 *      within 1e-4), imports the CLI, the worker and every processor, and checks that the GPU
 *      backend was left out;
 *   2. runs the image's ENTRYPOINT command: `fit --in-process` on 40 demo images, then
 *      `scan --in-process` of 20 more, and checks the report.
 *
 *   npx tsx support/replay-docker-install.ts [--dockerfile docker/Dockerfile] [--keep]
 *
 * Exits non-zero, naming the step, if anything fails. Differences from a real build: the host's
 * Node and npm run the steps (the image has Node 20 and npm 10; the steps skip dependency scripts,
 * where npm 10 and 11 differ) and npm may use the host's package cache; final-stage apt-get lines
 * (system tools) are not replayed.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { replayPlan, type ReplayPlan } from './dockerfile.js';

const ROOT = path.resolve(import.meta.dirname, '..');

class ReplayError extends Error {}

function log(m: string): void {
  process.stderr.write(`[replay] ${m}\n`);
}

/** This process's environment without what npm, tsx or the shell running us would leak into the replay. */
function cleanEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|NODE_OPTIONS$|NODE_PATH$|NODE_ENV$|INIT_CWD$|OOD_)/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function run(what: string, cmd: string, args: readonly string[], opts: SpawnSyncOptions): { seconds: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.error !== undefined) throw new ReplayError(`${what}: ${r.error.message}`);
  if (r.status !== 0) {
    process.stderr.write(`${String(r.stdout)}${String(r.stderr)}`);
    throw new ReplayError(`${what}: exit ${r.status ?? r.signal ?? '?'}`);
  }
  return { seconds, stdout: String(r.stdout) };
}

/** .dockerignore's entries, as paths relative to the context (the simple patterns this repository uses). */
function dockerignore(): string[] {
  const f = path.join(ROOT, '.dockerignore');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').map((l) => l.trim().replace(/^\/|\/$/g, '')).filter((l) => l !== '' && !l.startsWith('#'));
}

/** COPY <sources> <dest> from the build context into the replay folder, as Docker copies them. */
function copyStep(sources: readonly string[], dest: string, workdir: string, root: string, ignored: readonly string[]): void {
  const target = path.join(root, path.posix.isAbsolute(dest) ? dest : path.posix.join(workdir, dest));
  const intoDir = dest.endsWith('/') || sources.length > 1;
  const keep = (src: string): boolean => {
    const rel = path.relative(ROOT, src).split(path.sep).join('/');
    return !ignored.some((p) => rel === p || rel.startsWith(`${p}/`) || rel.split('/').includes(p));
  };
  for (const s of sources) {
    const src = path.join(ROOT, s);
    if (!existsSync(src)) throw new ReplayError(`COPY ${s}: not in the build context`);
    if (statSync(src).isDirectory()) {
      // Docker copies a folder's contents into the destination.
      mkdirSync(target, { recursive: true });
      cpSync(src, target, { recursive: true, filter: keep });
    } else {
      const to = intoDir ? path.join(target, path.basename(s)) : target;
      mkdirSync(path.dirname(to), { recursive: true });
      cpSync(src, to);
    }
  }
}

/** Replays the build stage into <root><workdir>; returns the application folder and timings. */
function replay(plan: ReplayPlan, root: string, timings: Record<string, number>): string {
  let workdir = '/';
  const env: Record<string, string> = {};
  const ignored = dockerignore();
  for (const step of plan.steps) {
    switch (step.kind) {
      case 'workdir':
        workdir = path.posix.resolve(workdir, step.path);
        mkdirSync(path.join(root, workdir), { recursive: true });
        break;
      case 'copy':
        copyStep(step.sources, step.dest, workdir, root, ignored);
        break;
      case 'env':
        Object.assign(env, step.vars);
        break;
      case 'run': {
        log(`line ${step.line}: RUN ${step.command}`);
        // Commands run in the stage's WORKDIR; they must not name absolute container paths.
        if (workdir !== '/' && step.command.includes(workdir)) throw new ReplayError(`line ${step.line}: RUN names an absolute container path; use paths relative to WORKDIR`);
        const r = run(`line ${step.line}: RUN`, 'sh', ['-c', step.command], { cwd: path.join(root, workdir), env: cleanEnv(env) });
        timings[`RUN line ${step.line}`] = r.seconds;
        break;
      }
    }
  }
  return path.join(root, plan.appFrom);
}

/** Loaded inside the replayed folder, so every import resolves from its node_modules alone. */
const CHECK = `
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const inside = (p) => { if (!p.startsWith(here + path.sep)) throw new Error(p + ' resolved outside the replayed folder'); return p; };
let gpu = false;
try { require.resolve('@tensorflow/tfjs-node-gpu'); gpu = true; } catch {}
if (gpu) throw new Error('@tensorflow/tfjs-node-gpu is installed: the CPU image must leave it out');
inside(require.resolve('sharp'));
const sharp = (await import('sharp')).default;
const { decodeImage } = await import('./dist/shared/image/decode.js');
const { initBackend } = await import('./dist/shared/backend.js');
const { createEncoder } = await import('./dist/shared/encoder/registry.js');
const { DEFAULT_ENCODER } = await import('./dist/shared/encoder/spec.js');
const decoded = await decodeImage('sample', readFileSync(process.argv[2]), { size: DEFAULT_ENCODER.inputSize });
if (!decoded.ok) throw new Error('sharp could not decode the sample: ' + decoded.reason);
const backend = await initBackend('wasm');
inside(require.resolve('@tensorflow/tfjs-backend-wasm'));
inside(require.resolve('nsfwjs'));
const encoder = await createEncoder(DEFAULT_ENCODER);
const features = await encoder.encode([decoded.pixels]);
if (features.length !== encoder.featureSize || !features.every(Number.isFinite)) throw new Error('the encoder returned ' + features.length + ' features, expected ' + encoder.featureSize + ' finite values');
encoder.dispose();
// The image's encoder runtime: onnxruntime-node's CPU binary, kept for this platform only.
inside(require.resolve('onnxruntime-node'));
const onnx = await createEncoder(DEFAULT_ENCODER, { runtime: { kind: 'onnx', device: 'cpu', threads: 1 } });
const onnxFeatures = await onnx.encode([decoded.pixels]);
const onnxDiff = Math.max(...onnxFeatures.map((v, i) => Math.abs(v - features[i])));
if (!(onnxDiff < 1e-4)) throw new Error('onnxruntime features differ from tfjs by ' + onnxDiff + ', expected < 1e-4');
onnx.dispose();
const modules = ['dist/cli/main.js', 'dist/workers/worker.js', ...readdirSync(path.join(here, 'dist/workers/processors')).filter((f) => f.endsWith('.js')).map((f) => 'dist/workers/processors/' + f)];
for (const m of modules) await import('./' + m);
process.stdout.write(JSON.stringify({ sharp: sharp.versions.sharp, libvips: sharp.versions.vips, backend: backend.name, tfjs: backend.tfjsVersion, encoder: encoder.fingerprint.id, features: features.length, onnxRuntime: onnx.runtime, onnxMaxDiff: onnxDiff, modules: modules.length }) + '\\n');
`;

/** Every file under dir, recursively, in name order. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.isFile() ? [path.join(dir, e.name)] : []));
}

/** The first n files of each subfolder of src, into dest/<subfolder>/. */
function sample(src: string, dest: string, n: number): void {
  for (const c of readdirSync(src)) {
    for (const f of files(path.join(src, c)).slice(0, n)) {
      const to = path.join(dest, c, path.relative(path.join(src, c), f));
      mkdirSync(path.dirname(to), { recursive: true });
      cpSync(f, to);
    }
  }
}

function du(dir: string): string {
  const r = spawnSync('du', ['-sh', dir], { encoding: 'utf8' });
  return r.status === 0 ? String(r.stdout).split('\t')[0]! : '?';
}

function main(): number {
  const { values } = parseArgs({ options: { dockerfile: { type: 'string', default: 'docker/Dockerfile' }, keep: { type: 'boolean', default: false } } });
  const file = path.resolve(ROOT, values.dockerfile);
  const plan = replayPlan(readFileSync(file, 'utf8'), path.relative(ROOT, file));
  const root = mkdtempSync(path.join(tmpdir(), 'ood-docker-replay-'));
  // Node resolves packages from every ancestor's node_modules: there must be none above the folder.
  for (let d = path.dirname(root); ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'node_modules'))) throw new ReplayError(`${d}/node_modules exists: the replay would not be clean (set TMPDIR elsewhere)`);
    if (path.dirname(d) === d) break;
  }
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  try {
    log(`${path.relative(ROOT, file)}: replaying stage "${plan.stage}" in ${root} (node ${process.version}, npm ${run('npm --version', 'npm', ['--version'], { env: cleanEnv({}) }).stdout.trim()})`);
    for (const r of plan.notReplayed) log(`not replayed (system packages): RUN ${r}`);
    const app = replay(plan, root, timings);
    log(`node_modules: ${du(path.join(app, 'node_modules'))}`);

    const env = cleanEnv(plan.runtimeEnv);
    const data = path.join(root, 'data');
    sample(path.join(ROOT, 'examples/demo/id'), path.join(data, 'id'), 4);
    sample(path.join(ROOT, 'examples/demo/scan'), path.join(data, 'scan'), 10);
    const image = files(path.join(data, 'scan'))[0]!;
    writeFileSync(path.join(app, '.replay-check.mjs'), CHECK);
    const check = run('loading sharp, tfjs-wasm, the encoder and every entry module', process.execPath, [path.join(app, '.replay-check.mjs'), image], { cwd: app, env });
    timings['runtime modules'] = check.seconds;
    log(`runtime modules: ${check.stdout.trim()}`);

    // The image's command, with its folder mapped into the replay.
    const node = plan.entrypoint.indexOf('node');
    if (node < 0) throw new ReplayError(`ENTRYPOINT ${JSON.stringify(plan.entrypoint)} does not run node`);
    const [, ...entryArgs] = plan.entrypoint.slice(node).map((a) => (a.startsWith(`${plan.appTo}/`) ? path.join(app, a.slice(plan.appTo.length)) : a));
    const cli = (what: string, args: readonly string[]): void => {
      const r = run(what, process.execPath, [...entryArgs, ...args], { cwd: data, env });
      timings[what] = r.seconds;
    };
    cli('fit --in-process', ['fit', '--in-process', '--id', path.join(data, 'id'), '--model', path.join(data, 'model'), '--epochs', '1', '--width', '16', '--depth', '1']);
    cli('scan --in-process', ['scan', '--in-process', '--model', path.join(data, 'model'), '--input', path.join(data, 'scan'), '--out', path.join(data, 'out')]);
    const report = JSON.parse(readFileSync(path.join(data, 'out', 'report.json'), 'utf8')) as { input?: { scored?: number } };
    const scored = report.input?.scored;
    if (scored !== 20) throw new ReplayError(`the scan's report.json says ${String(scored)} images scored, expected 20`);
    log(`the image's command fitted a model and scanned ${scored} images`);
    const total = (performance.now() - t0) / 1000;
    log(`ok in ${total.toFixed(1)} s: ${Object.entries(timings).map(([k, s]) => `${k} ${s.toFixed(1)} s`).join(', ')}`);
    return 0;
  } finally {
    if (values.keep) log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

try {
  process.exitCode = main();
} catch (err) {
  process.stderr.write(`replay-docker-install: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
