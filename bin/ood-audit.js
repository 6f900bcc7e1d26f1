#!/usr/bin/env node
// The `ood-audit` command: runs the compiled CLI (npm ci builds it with the "prepare" script).
import '../dist/cli/entry.js';
