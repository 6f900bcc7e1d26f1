#!/usr/bin/env node
// Entry point of the `ood-audit` command: runs the compiled CLI (npm ci builds it via "prepare").
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`ood-audit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
