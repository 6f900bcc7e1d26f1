/**
 * The backends a process can ask for, without loading tfjs or onnxruntime (configuration and the
 * CLI's planning code use this; backend.ts does the loading). A process has two engines: the tfjs
 * tensor backend (the LFDN, scores; also the encoder when no ONNX runtime is used) and the encoder
 * runtime (the bundled MobileNetV2 on onnxruntime-node when it loads, else on tfjs).
 *
 *   auto            encoder on onnxruntime-node (CPU) if it loads, else tfjs; best tfjs backend
 *   onnx            encoder on onnxruntime-node CPU (required); best tfjs backend
 *   onnx-cuda       encoder on onnxruntime-node with the CUDA 12 provider (required); best tfjs backend
 *   tensorflow-gpu, tensorflow, wasm, cpu
 *                   that tfjs backend (required) for everything, the encoder included
 */
export const TENSOR_BACKENDS = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type Backend = (typeof TENSOR_BACKENDS)[number];
export const ENCODER_CHOICES = ['onnx', 'onnx-cuda'] as const;
export type EncoderChoice = (typeof ENCODER_CHOICES)[number];
export const BACKENDS = [...ENCODER_CHOICES, ...TENSOR_BACKENDS] as const;
export type BackendChoice = Backend | EncoderChoice | 'auto';

/** What runs the built-in encoder in a process. */
export type EncoderRuntime =
  | { readonly kind: 'tfjs' }
  /** runBatch: images per session run (default: onnx/encoder.ts CPU_RUN_BATCH on the CPU, the whole batch on CUDA). */
  | { readonly kind: 'onnx'; readonly device: 'cpu' | 'cuda'; readonly threads: number; readonly runBatch?: number };

/** Intra-op threads of an onnxruntime session when OOD_ORT_THREADS is unset (docs/benchmarks.md). */
export const DEFAULT_ORT_THREADS = 1;
