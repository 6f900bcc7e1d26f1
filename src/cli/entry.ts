// Process entry of the `ood-audit` command (bin/ood-audit.js loads the compiled copy).
import { prepareProcess } from '../shared/config/env.js';
import { main } from './main.js';

prepareProcess();

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ood-audit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
