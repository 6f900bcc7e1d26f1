/**
 * The tensor backends a process can ask for, without loading tfjs (configuration and the CLI's
 * planning code use this; backend.ts does the loading).
 */
export const BACKENDS = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type Backend = (typeof BACKENDS)[number];
export type BackendChoice = Backend | 'auto';
