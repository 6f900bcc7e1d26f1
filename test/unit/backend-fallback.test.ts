/**
 * Without onnxruntime-node (simulated: its loader reports a failure), `auto` runs the encoder on tfjs
 * as before, and `onnx` fails with a named error that says why.
 */
import { describe, expect, it, vi } from 'vitest';

vi.mock('../../src/shared/encoder/onnx/runtime.js', () => ({ loadOrt: () => Promise.resolve({ ok: false, reason: 'Cannot find module onnxruntime-node' }) }));

describe('backend selection without onnxruntime-node', () => {
  it('auto falls back to the tfjs encoder; onnx is refused with the reason', async () => {
    const { initBackend } = await import('../../src/shared/backend.js');
    await expect(initBackend('onnx')).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE', message: expect.stringMatching(/onnxruntime-node could not be loaded \(Cannot find module onnxruntime-node\)/) });
    const info = await initBackend('auto');
    expect(info.encoder).toEqual({ kind: 'tfjs' });
    expect(info.label).toBe(`encoder tfjs ${info.provider}, tensors ${info.provider}`);
    const { createEncoder } = await import('../../src/shared/encoder/registry.js');
    const { DEFAULT_ENCODER } = await import('../../src/shared/encoder/spec.js');
    const enc = await createEncoder({ ...DEFAULT_ENCODER, inputSize: 64 }, { runtime: info.encoder });
    expect(enc.runtime).toBe(`tfjs ${info.name}`);
    expect(await enc.encode([new Uint8Array(64 * 64 * 3)])).toHaveLength(enc.featureSize);
    enc.dispose();
  });
});
