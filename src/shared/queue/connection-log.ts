/**
 * Redis connection state for people: one line when the connection drops (with the reason) and one
 * when it is back, however many connections, retries and BullMQ objects report the same outage.
 * Without it a few seconds of outage print dozens of errors (every retry of every connection).
 */
import type { Redis } from 'ioredis';
import type { Log } from '../log.js';

export interface ConnectionLog {
  /** Watches an ioredis connection (its errors and its recoveries). */
  watchConnection(conn: Redis): void;
  /** Watches a BullMQ Queue, Worker or FlowProducer (their 'error' events). */
  watch(emitter: { on(event: 'error', fn: (err: Error) => void): unknown }): void;
}

export function connectionLog(log: Log, what = 'Redis'): ConnectionLog {
  let down = false;
  const error = (err: Error): void => {
    if (down) return;
    down = true;
    log(`${what}: connection lost (${err.message.split('\n')[0]}); retrying`, { level: 'warn', event: 'redis_down' });
  };
  const ready = (): void => {
    if (!down) return;
    down = false;
    log(`${what}: connection back`, { event: 'redis_up' });
  };
  return {
    watchConnection(conn) {
      conn.on('error', error);
      conn.on('ready', ready);
    },
    watch(emitter) {
      emitter.on('error', error);
    },
  };
}
