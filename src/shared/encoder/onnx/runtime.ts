/**
 * Loads onnxruntime-node on demand. It is an optional dependency (a 288 MB package with every
 * platform's binaries; the CPU one ships inside it): when it is missing or its native binding does
 * not load, `loadOrt` says why and the caller falls back to tfjs. Nothing imports it statically, so
 * processes that never encode never pay for it.
 */
import type * as Ort from 'onnxruntime-node';

export type OrtModule = typeof Ort;

export type OrtLoad = { readonly ok: true; readonly ort: OrtModule; readonly version: string } | { readonly ok: false; readonly reason: string };

let loading: Promise<OrtLoad> | undefined;

/** Imports onnxruntime-node once per process; never throws. */
export function loadOrt(): Promise<OrtLoad> {
  loading ??= (async (): Promise<OrtLoad> => {
    try {
      const mod = (await import('onnxruntime-node')) as OrtModule & { default?: OrtModule };
      // CommonJS package: the named exports are on the module or on its default.
      const ort = typeof mod.InferenceSession === 'function' ? mod : mod.default;
      if (ort === undefined || typeof ort.InferenceSession !== 'function') return { ok: false, reason: 'onnxruntime-node loaded without an InferenceSession' };
      return { ok: true, ort, version: ort.env.versions.node ?? ort.env.versions.common };
    } catch (err) {
      const msg = err instanceof Error ? err.message.split('\n')[0]! : String(err);
      return { ok: false, reason: msg };
    }
  })();
  return loading;
}
