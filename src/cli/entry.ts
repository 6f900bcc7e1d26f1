// Process entry of the `ood-audit` command (bin/ood-audit.js loads the compiled copy).
import { main } from './main.js';

// The AWS SDK warns on every run under Node < 22 that future SDK releases will need Node 22; the
// pinned SDK works on Node 20, so the CLI keeps its output clean (see README, Requirements).
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ood-audit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
