#!/usr/bin/env bash
# Sweep throughput on this machine: Benchmarks/sst2-throughput.yaml run one at a time on
# blas_threads 2 (--jobs 1) and two at a time on blas_threads 1 (--jobs 2), alternating for
# ROUNDS rounds (default 1), each into a fresh folder; prints each sweep's wall time and runs
# per hour. Needs a release build (swift build -c release) and the model (lorabench fetch-model minilm).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-1}"
lorabench=.build/release/lorabench
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sed 's/blas_threads: 2/blas_threads: 1/' Benchmarks/sst2-throughput.yaml > "$work/sst2-throughput-1thread.yaml"
runs=$("$lorabench" run Benchmarks/sst2-throughput.yaml --dry-run --out "$work/plan" | head -1 | sed 's/.*: \([0-9]*\) runs.*/\1/')
for round in $(seq 1 "$rounds"); do
  for way in "jobs1-threads2" "jobs2-threads1"; do
    if [ "$way" = "jobs1-threads2" ]; then manifest=Benchmarks/sst2-throughput.yaml; jobs=1; else manifest="$work/sst2-throughput-1thread.yaml"; jobs=2; fi
    start=$(date +%s.%N)
    "$lorabench" run "$manifest" --jobs "$jobs" --out "$work/$way-$round" > /dev/null 2>&1
    awk -v way="$way" -v round="$round" -v runs="$runs" -v start="$start" -v end="$(date +%s.%N)" \
      'BEGIN { s = end - start; printf "%s round %d: %d runs in %.1f s, %.1f runs/hour\n", way, round, runs, s, runs * 3600 / s }'
  done
done
