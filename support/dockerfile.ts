/**
 * Reads a Dockerfile into the steps that make an image's application folder, so CI can replay them
 * outside Docker (support/replay-docker-install.ts): no Docker engine can build images on these
 * machines, and a replay that parses the file cannot drift from it.
 *
 * The supported shape is a multi-stage build whose final stage copies one folder from an earlier
 * stage (`COPY --from=build /app /app`). The replay runs that stage's WORKDIR, COPY (from the build
 * context), ENV, ARG and RUN lines in order; of the final stage it keeps ENV and ENTRYPOINT (the
 * runtime environment and command) and lists system-package RUN lines (apt-get) as not replayed.
 * Anything else that could change the folder is refused with the line that has it, rather than
 * replayed approximately.
 */

export interface Instruction {
  /** Upper-case keyword: RUN, COPY, ENV, ... */
  readonly op: string;
  /** The rest of the line (continuations joined with a space). */
  readonly args: string;
  /** 1-based line number where the instruction starts. */
  readonly line: number;
}

export interface Stage {
  readonly from: string;
  readonly name?: string;
  readonly instructions: readonly Instruction[];
}

export type ReplayStep =
  | { readonly kind: 'workdir'; readonly path: string; readonly line: number }
  | { readonly kind: 'copy'; readonly sources: readonly string[]; readonly dest: string; readonly line: number }
  | { readonly kind: 'env'; readonly vars: Readonly<Record<string, string>>; readonly line: number }
  | { readonly kind: 'run'; readonly command: string; readonly line: number };

export interface ReplayPlan {
  /** The stage whose steps make the folder. */
  readonly stage: string;
  readonly steps: readonly ReplayStep[];
  /** The folder the final image copies from that stage, and where it puts it. */
  readonly appFrom: string;
  readonly appTo: string;
  /** The final image's environment (its ENV lines) and command (ENTRYPOINT, exec form). */
  readonly runtimeEnv: Readonly<Record<string, string>>;
  readonly entrypoint: readonly string[];
  /** Final-stage RUN lines that install system packages: not replayable, listed for the log. */
  readonly notReplayed: readonly string[];
}

export class DockerfileError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'DockerfileError';
  }
}

/** Splits a Dockerfile into stages of instructions (comments dropped, `\` continuations joined). */
export function parseDockerfile(text: string, file = 'Dockerfile'): Stage[] {
  const stages: { from: string; name?: string; instructions: Instruction[] }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let current = lines[i]!.trim();
    if (current === '' || current.startsWith('#')) continue;
    while (current.endsWith('\\')) {
      current = current.slice(0, -1).trimEnd();
      i++;
      if (i >= lines.length) throw new DockerfileError(file, start, 'line continuation at the end of the file');
      const next = lines[i]!.trim();
      if (next.startsWith('#')) continue;
      current = `${current} ${next}`;
    }
    const m = /^(\w+)\s*(.*)$/.exec(current);
    if (m === null) throw new DockerfileError(file, start, `cannot read ${JSON.stringify(current)}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (f === null) throw new DockerfileError(file, start, `cannot read FROM ${JSON.stringify(args)}`);
      stages.push({ from: f[1]!, ...(f[2] !== undefined ? { name: f[2] } : {}), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) throw new DockerfileError(file, start, `${op} before the first FROM`);
    stage.instructions.push({ op, args, line: start });
  }
  if (stages.length === 0) throw new DockerfileError(file, 1, 'no FROM line');
  return stages;
}

/** `KEY=value KEY2="v 2"` or the legacy `KEY value`. */
function parseEnv(args: string, file: string, line: number): Record<string, string> {
  if (!args.includes('=')) {
    const m = /^(\S+)\s+(.*)$/.exec(args);
    if (m === null) throw new DockerfileError(file, line, `cannot read ENV ${JSON.stringify(args)}`);
    return { [m[1]!]: m[2]! };
  }
  const vars: Record<string, string> = {};
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)\s*/y;
  let at = 0;
  while (at < args.length) {
    re.lastIndex = at;
    const m = re.exec(args);
    if (m === null) throw new DockerfileError(file, line, `cannot read ENV ${JSON.stringify(args)}`);
    const raw = m[2]!;
    vars[m[1]!] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw.startsWith("'") ? raw.slice(1, -1) : raw;
    at = re.lastIndex;
  }
  return vars;
}

/** `COPY [--flag=...] src... dest` or the JSON form; `--from` is returned separately. */
function parseCopy(args: string, file: string, line: number): { from?: string; sources: string[]; dest: string } {
  let rest = args;
  let from: string | undefined;
  for (;;) {
    const f = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest);
    if (f === null) break;
    if (f[1] === 'from') from = f[2];
    else if (f[1] !== 'chown' && f[1] !== 'chmod' && f[1] !== 'link') throw new DockerfileError(file, line, `COPY --${f[1]} is not replayable`);
    rest = rest.slice(f[0].length);
  }
  const parts = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
  if (parts.length < 2) throw new DockerfileError(file, line, `COPY needs a source and a destination, got ${JSON.stringify(args)}`);
  return { ...(from !== undefined ? { from } : {}), sources: parts.slice(0, -1), dest: parts.at(-1)! };
}

/** Instructions that never change the application folder. */
const INERT = new Set(['LABEL', 'EXPOSE', 'USER', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'VOLUME', 'CMD', 'ONBUILD', 'MAINTAINER']);

/** The replay plan of a Dockerfile of the supported shape (see the module header). */
export function replayPlan(text: string, file = 'Dockerfile'): ReplayPlan {
  const stages = parseDockerfile(text, file);
  const final = stages.at(-1)!;
  const copies = final.instructions.filter((i) => i.op === 'COPY').map((i) => ({ i, c: parseCopy(i.args, file, i.line) }));
  const fromStage = copies.filter((x) => x.c.from !== undefined);
  if (fromStage.length !== 1 || copies.length !== 1) throw new DockerfileError(file, final.instructions[0]?.line ?? 1, 'the final stage must have exactly one COPY, and it must copy the application folder from a build stage (COPY --from=<stage> <dir> <dir>)');
  const appCopy = fromStage[0]!;
  const build = stages.find((s) => s.name === appCopy.c.from);
  if (build === undefined) throw new DockerfileError(file, appCopy.i.line, `COPY --from=${appCopy.c.from ?? ''}: no stage of that name`);
  if (appCopy.c.sources.length !== 1) throw new DockerfileError(file, appCopy.i.line, 'COPY --from must copy one folder');

  const steps: ReplayStep[] = [];
  for (const i of build.instructions) {
    switch (i.op) {
      case 'WORKDIR':
        steps.push({ kind: 'workdir', path: i.args, line: i.line });
        break;
      case 'COPY':
      case 'ADD': {
        const c = parseCopy(i.args, file, i.line);
        if (c.from !== undefined) throw new DockerfileError(file, i.line, 'COPY --from inside the replayed stage is not replayable');
        if (i.op === 'ADD' && c.sources.some((s) => /^[a-z]+:\/\//i.test(s) || /\.(tar|tgz|gz|xz|bz2)$/.test(s))) throw new DockerfileError(file, i.line, 'ADD of a URL or an archive is not replayable');
        steps.push({ kind: 'copy', sources: c.sources, dest: c.dest, line: i.line });
        break;
      }
      case 'ENV':
        steps.push({ kind: 'env', vars: parseEnv(i.args, file, i.line), line: i.line });
        break;
      case 'ARG': {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(i.args);
        if (m === null) throw new DockerfileError(file, i.line, `cannot read ARG ${JSON.stringify(i.args)}`);
        if (m[2] !== undefined) steps.push({ kind: 'env', vars: { [m[1]!]: m[2].replace(/^"(.*)"$/, '$1') }, line: i.line });
        break;
      }
      case 'RUN': {
        if (i.args.startsWith('--')) throw new DockerfileError(file, i.line, 'RUN with flags (--mount, --network) is not replayable');
        const command = i.args.startsWith('[') ? (JSON.parse(i.args) as string[]).map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ') : i.args;
        steps.push({ kind: 'run', command, line: i.line });
        break;
      }
      default:
        if (!INERT.has(i.op)) throw new DockerfileError(file, i.line, `${i.op} in the build stage is not replayable`);
    }
  }

  const runtimeEnv: Record<string, string> = {};
  const notReplayed: string[] = [];
  let entrypoint: string[] | undefined;
  for (const i of final.instructions) {
    if (i.op === 'ENV') Object.assign(runtimeEnv, parseEnv(i.args, file, i.line));
    else if (i.op === 'RUN') {
      // Only system packages may be installed in the final stage: the application folder is the build stage's.
      if (!/^apt-get\s/.test(i.args)) throw new DockerfileError(file, i.line, 'a final-stage RUN other than apt-get is not replayable (install in the build stage)');
      notReplayed.push(i.args);
    } else if (i.op === 'ENTRYPOINT') {
      if (!i.args.startsWith('[')) throw new DockerfileError(file, i.line, 'ENTRYPOINT must use the exec form (["node", ...])');
      entrypoint = JSON.parse(i.args) as string[];
    } else if (!INERT.has(i.op) && i.op !== 'COPY' && i.op !== 'WORKDIR') throw new DockerfileError(file, i.line, `${i.op} in the final stage is not replayable`);
  }
  if (entrypoint === undefined) throw new DockerfileError(file, 1, 'the final stage has no ENTRYPOINT');
  return { stage: build.name ?? 'build', steps, appFrom: appCopy.c.sources[0]!, appTo: appCopy.c.dest, runtimeEnv, entrypoint, notReplayed };
}
