/**
 * The Dockerfile replay (support/replay-docker-install.ts, run by .ci/run) replays what it parses:
 * the real docker/Dockerfile must parse into the steps CI runs, and instructions the replay cannot
 * reproduce are refused with their line rather than skipped.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayPlan } from '../../support/dockerfile.js';
import { ROOT } from '../helpers/cli.js';

describe('Dockerfile replay plan', () => {
  it('reads the CPU image: its build stage, the folder it ships, its environment and command', () => {
    const plan = replayPlan(readFileSync(path.join(ROOT, 'docker/Dockerfile'), 'utf8'));
    expect(plan.stage).toBe('build');
    expect(plan.appFrom).toBe('/app');
    expect(plan.runtimeEnv['NODE_ENV']).toBe('production');
    expect(plan.entrypoint.slice(-2)).toEqual(['node', '/app/bin/ood-audit.js']);
    const runs = plan.steps.filter((s) => s.kind === 'run').map((s) => (s.kind === 'run' ? s.command : ''));
    expect(runs.join(' ')).toMatch(/npm ci/);
    // sharp's platform binary is an optional dependency: the image must keep optional packages.
    expect(runs.join(' ')).not.toMatch(/--omit=optional/);
    expect(plan.steps.some((s) => s.kind === 'copy' && s.sources.includes('package-lock.json'))).toBe(true);
  });

  it('joins continuations, reads ENV forms and refuses what it cannot replay', () => {
    const plan = replayPlan(['FROM node:20 AS b', 'WORKDIR /w', 'ENV A=1 B="two words"', 'ENV C 3', 'COPY x y ./', 'RUN echo a \\', ' && echo b', 'FROM node:20', 'RUN apt-get install -y tini', 'COPY --from=b /w /w', 'ENV Z=9', 'ENTRYPOINT ["node", "/w/main.js"]'].join('\n'));
    expect(plan.steps).toEqual([
      { kind: 'workdir', path: '/w', line: 2 },
      { kind: 'env', vars: { A: '1', B: 'two words' }, line: 3 },
      { kind: 'env', vars: { C: '3' }, line: 4 },
      { kind: 'copy', sources: ['x', 'y'], dest: './', line: 5 },
      { kind: 'run', command: 'echo a && echo b', line: 6 },
    ]);
    expect(plan.notReplayed).toEqual(['apt-get install -y tini']);
    expect(plan.runtimeEnv).toEqual({ Z: '9' });
    const base = ['FROM node:20 AS b', 'WORKDIR /w'];
    const tail = ['FROM node:20', 'COPY --from=b /w /w', 'ENTRYPOINT ["node", "/w/m.js"]'];
    expect(() => replayPlan([...base, 'RUN --mount=type=cache,target=/root/.npm npm ci', ...tail].join('\n'), 'D')).toThrow(/^D:3: RUN with flags/);
    expect(() => replayPlan([...base, 'ADD https://example.com/x.tgz .', ...tail].join('\n'), 'D')).toThrow(/^D:3: ADD of a URL/);
    expect(() => replayPlan([...base, 'FROM node:20', 'COPY --from=b /w /w', 'RUN npm ci', 'ENTRYPOINT ["node"]'].join('\n'), 'D')).toThrow(/^D:5: a final-stage RUN other than apt-get/);
    expect(() => replayPlan([...base, 'FROM node:20', 'COPY . /w', 'ENTRYPOINT ["node"]'].join('\n'), 'D')).toThrow(/exactly one COPY/);
  });
});
