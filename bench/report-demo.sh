#!/usr/bin/env bash
# Rebuilds the README's report screenshot from the shared datasets: a model fitted on 10,000
# CIFAR-10 training images, then a scan of CIFAR-10 test images in three date folders, the last with
# 20% Fashion-MNIST. Usage: bench/report-demo.sh [workdir]   (needs Redis and Debian's chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/ood-report-demo}
DATA=${OOD_BENCH_DATA:-../shared/datasets}
mkdir -p "$W/src"
[ -d "$W/src/train" ] || tar -xzf "$DATA/cifar10-train.tar.gz" -C "$W/src"
[ -d "$W/src/test" ] || tar -xzf "$DATA/cifar10-test.tar.gz" -C "$W/src"
[ -d "$W/src/fmnist/test" ] || { mkdir -p "$W/src/fmnist"; tar -xzf "$DATA/fashion-mnist-test.tar.gz" -C "$W/src/fmnist"; }
rm -rf "$W/id" "$W/lake"
for c in $(ls "$W/src/train"); do
  mkdir -p "$W/id/$c"; ls "$W/src/train/$c" | sort | head -1000 | while read -r f; do cp "$W/src/train/$c/$f" "$W/id/$c/"; done
  for d in 2026-11-25 2026-11-26 2026-11-27; do mkdir -p "$W/lake/$d/$c"; done
  ls "$W/src/test/$c" | sort | sed -n '1,100p' | while read -r f; do cp "$W/src/test/$c/$f" "$W/lake/2026-11-25/$c/"; done
  ls "$W/src/test/$c" | sort | sed -n '101,200p' | while read -r f; do cp "$W/src/test/$c/$f" "$W/lake/2026-11-26/$c/"; done
  ls "$W/src/test/$c" | sort | sed -n '201,280p' | while read -r f; do cp "$W/src/test/$c/$f" "$W/lake/2026-11-27/$c/"; done
done
for c in $(ls "$W/src/fmnist/test"); do
  mkdir -p "$W/lake/2026-11-27/fashion-$c"; ls "$W/src/fmnist/test/$c" | sort | head -20 | while read -r f; do cp "$W/src/fmnist/test/$c/$f" "$W/lake/2026-11-27/fashion-$c/"; done
done
[ -f "$W/model/model.json" ] || node bin/ood-audit.js fit --id "$W/id" --model "$W/model"
node bin/ood-audit.js scan --full --top-k 12 --model "$W/model" --input "$W/lake" --out "$W/report"
npx tsx bench/lib/screenshot.ts "$W/report/report.html" docs/report-screenshot.png
