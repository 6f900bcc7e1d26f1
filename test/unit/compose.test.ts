/**
 * docker-compose.yml as deployed: every queue is served (the schedule queue included, or scheduled
 * scans never fire), workers have roots, Redis is not published on the host, everything that uses
 * storage waits for the bucket, and the dashboard and the upload one-shot exist. Read through
 * `docker-compose config` (which resolves anchors and variables; Debian's docker-compose needs no
 * Docker engine) and its Python YAML loader; skipped where docker-compose is not installed.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { QUEUE_KINDS } from '../../src/shared/queue/contract.js';
import { ROOT } from '../helpers/cli.js';

interface Service {
  command?: string[];
  entrypoint?: string[];
  profiles?: string[];
  ports?: unknown[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
}

function composeConfig(): { services: Record<string, Service> } | undefined {
  const config = spawnSync('docker-compose', ['config'], { cwd: ROOT, encoding: 'utf8' });
  if (config.error !== undefined || config.status !== 0) return undefined;
  // docker-compose 1.x is Python: the interpreter that runs it has a YAML loader.
  const python = /^#!\s*(\S+)/.exec(spawnSync('sh', ['-c', 'head -1 "$(command -v docker-compose)"'], { encoding: 'utf8' }).stdout)?.[1] ?? 'python3';
  const json = spawnSync(python, ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: config.stdout, encoding: 'utf8' });
  return json.status === 0 ? (JSON.parse(json.stdout) as { services: Record<string, Service> }) : undefined;
}

const config = composeConfig();

describe.skipIf(config === undefined)('docker-compose.yml', () => {
  const services = config?.services ?? {};
  const workers = Object.entries(services).filter(([, s]) => s.command?.[0] === 'worker');
  const served = (s: Service): string[] => {
    const i = s.command!.indexOf('--queues');
    return i < 0 ? [...QUEUE_KINDS] : s.command![i + 1]!.split(',');
  };

  it('serves every queue with the default services, the schedule queue included', () => {
    const defaults = workers.filter(([, s]) => s.profiles === undefined);
    expect(new Set(defaults.flatMap(([, s]) => served(s)))).toEqual(new Set(QUEUE_KINDS));
    for (const [name, s] of workers) {
      expect(s.environment?.['OOD_WORKER_ROOTS'], `${name} has roots`).toMatch(/^s3:\/\//);
      expect(s.depends_on?.['minio-init']?.condition, `${name} waits for the bucket`).toBe('service_completed_successfully');
    }
    expect(workers.map(([n]) => n)).toContain('gpu-worker');
  });

  it('keeps Redis off the host, and has a dashboard, metrics and an upload one-shot', () => {
    expect(services['redis']?.ports).toBeUndefined();
    expect(services['dashboard']?.command?.[0]).toBe('dashboard');
    expect(services['dashboard']?.command).toContain('--allowed-hosts');
    expect(workers.every(([, s]) => s.command!.includes('--metrics-port'))).toBe(true);
    expect(services['mc']?.entrypoint).toEqual(['mc']);
    expect(services['mc']?.environment?.['MC_HOST_local']).toMatch(/^http:\/\/.+@minio:9000$/);
  });
});
