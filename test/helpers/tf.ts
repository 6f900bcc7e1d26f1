import { beforeAll } from 'vitest';
import { initBackend } from '../../src/shared/backend.js';

/** Every unit test file that touches tensors runs on wasm, the backend users get here. */
export function useWasm(): void {
  beforeAll(async () => {
    await initBackend('wasm');
  });
}
