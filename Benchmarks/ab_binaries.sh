#!/usr/bin/env bash
# Two lorabench binaries, one training step of the model bench each, alternating for ROUNDS rounds
# in one invocation (so the machine's drift hits both), then the medians and the per-round ratio
# B ÷ A with its interquartile range. What docs/performance.md's A/B tables come from.
#
#   Benchmarks/ab_binaries.sh A/lorabench B/lorabench [rounds=8] [variant=lora] [bench model options...]
# (for the decoder: ... 8 lora --model smollm2 --threads 1)
set -euo pipefail
if [ "$#" -lt 2 ]; then echo "usage: $0 BINARY_A BINARY_B [ROUNDS] [VARIANT] [BENCH MODEL OPTIONS...]" >&2; exit 2; fi
a="$1" b="$2" rounds="${3:-8}" variant="${4:-lora}"
shift $(( $# < 4 ? $# : 4 ))
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for round in $(seq 1 "$rounds"); do
  for side in A B; do
    binary="$a"; [ "$side" = B ] && binary="$b"
    echo "$round $side $("$binary" bench model --variant "$variant" --repeats 5 --warmup 2 "$@")" >> "$out"
  done
done
python3 - "$out" "$variant" <<'PY'
import json, statistics, sys
rounds = {}
for line in open(sys.argv[1]):
    index, side, measurement = line.split(" ", 2)
    rounds.setdefault(int(index), {})[side] = statistics.median(json.loads(measurement)["seconds"])
ratios = sorted(r["B"] / r["A"] for r in rounds.values())
quartile = lambda q: statistics.quantiles(ratios, n=4)[q] if len(ratios) > 1 else ratios[0]
print(f"{sys.argv[2]}: A {statistics.median(r['A'] for r in rounds.values()):.4f} s/step, "
      f"B {statistics.median(r['B'] for r in rounds.values()):.4f} s/step; "
      f"B/A per round median {statistics.median(ratios):.3f} (IQR {quartile(0):.3f}-{quartile(2):.3f}) over {len(ratios)} rounds")
PY
