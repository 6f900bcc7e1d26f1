/**
 * The worker's sandboxed processors are child processes BullMQ forks: found and measured through
 * /proc (Linux; elsewhere there are none to see), for the forced shutdown and for the metrics.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Pids of the children of `parent` (default this process), from /proc. */
export function childPids(parent = process.pid): number[] {
  const out: number[] = [];
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')'.
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) out.push(Number(d));
      } catch {
        // The process ended meanwhile.
      }
    }
  } catch {
    // No /proc (not Linux).
  }
  return out;
}

/** Resident set size of a process in bytes (VmRSS of /proc/<pid>/status), or undefined once it is gone. */
export function residentBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}
