/**
 * Dependency rules of ood-audit, checked by `npm run deps` (dependency-cruiser) in CI.
 *
 * The rules describe what a module loads when it is imported: dynamic imports (`await import(...)`)
 * load on demand and are left out of the graph. The CLI's in-process mode loads the tensor engine
 * that way (src/cli/inline.ts), so the queued commands never pay for it.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make initialisation order fragile and layers meaningless.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'planning-without-engine',
      severity: 'error',
      comment:
        'Producers and the CLI (planning, enqueuing, following runs, status, schedules, the worker parent) never load tfjs, sharp or the ONNX runtime and its protobuf schema: importing tfjs alone costs about 0.9 s and 97 MB. The in-process host (src/cli/inline.ts) is loaded on demand.',
      from: { path: '^src/(producers|cli)/', pathNot: '^src/cli/inline\\.ts$' },
      to: { path: 'node_modules/(@tensorflow|sharp|onnxruntime-node|onnxruntime-common|onnx-proto|protobufjs)/', reachable: true },
    },
    {
      name: 'worker-parent-without-engine',
      severity: 'error',
      comment: 'The worker parent process renews job locks; tensor work runs in its sandboxed processors.',
      from: { path: '^src/workers/(worker|metrics)\\.ts$' },
      to: { path: 'node_modules/(@tensorflow|sharp|onnxruntime-node|onnxruntime-common|onnx-proto|protobufjs)/', reachable: true },
    },
    {
      name: 'processors-not-producers',
      severity: 'error',
      comment: 'Processors share types with producers through the queue contract (src/shared/queue/contract.ts). Only the schedule processor is a producer (it plans and enqueues scans).',
      from: { path: '^src/workers/', pathNot: '^src/workers/processors/schedule\\.ts$' },
      to: { path: '^src/producers/' },
    },
    {
      name: 'shared-below-apps',
      severity: 'error',
      comment: 'src/shared is the library the CLI, producers and workers are built on; it never imports them.',
      from: { path: '^src/shared/' },
      to: { path: '^src/(cli|producers|workers)/' },
    },
    {
      name: 'core-without-queue-or-storage-sdks',
      severity: 'error',
      comment: 'The core in src/shared talks to queues and object stores only through the adapters in src/shared/queue and src/shared/storage.',
      from: { path: '^src/shared/', pathNot: '^src/shared/(storage|queue)/' },
      to: { path: 'node_modules/(bullmq|ioredis|@aws-sdk)/' },
    },
    {
      name: 'no-test-code-in-product',
      severity: 'error',
      comment: 'Product code never imports tests, test helpers or benchmarks.',
      from: { path: '^src/' },
      to: { path: '^(test|bench|support)/' },
    },
    {
      name: 'bench-not-tests',
      severity: 'error',
      comment: 'Benchmarks use the product and the shared services in support/, not test helpers.',
      from: { path: '^bench/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { dynamic: true },
    tsPreCompilationDeps: false,
    tsConfig: { fileName: 'tsconfig.check.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
