#!/usr/bin/env bash
# Decode and prefill (batch 1, prompt 128, 128 greedy tokens, small config) of Gwen (gwen bench
# --mode decode) and the PyTorch reference (bench_torch.py decode jobs), interleaved pair by
# pair so that load changes on this shared machine hit both, then a table of ratios per pair.
# Needs: apt-get install -y python3-torch libopenblas0-openmp libdnnl2
# Usage: dev/decode-vs-torch.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BENCH_DIR:-../shared/bench}
out=${OUT:-/tmp/gwen-decode-vs-torch.jsonl}
rounds=${1:-3}
go build -o /tmp/gwen-bench ./cmd/gwen
: >"$out"
for r in $(seq "$rounds"); do
  for dtype in f32 bf16; do
    tdtype=${dtype/f32/fp32}
    /usr/bin/python3 "$bench/bench_torch.py" --only "decode:small:$tdtype" | grep -v system_blas |
      sed "s/^{/{\"impl\": \"torch\", \"round\": $r, \"dtype\": \"$dtype\", /" | tee -a "$out"
    /tmp/gwen-bench bench --config small --mode decode --dtype "$dtype" --peak=false |
      sed "s/^{/{\"impl\": \"gwen\", \"round\": $r, \"dtype\": \"$dtype\", /" | tee -a "$out"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["dtype"], r["round"]), {})[r["impl"]] = r
print("\n| dtype | round | decode tok/s PyTorch | Gwen | ratio | prefill tok/s PyTorch | Gwen | ratio |")
print("|---|---|---|---|---|---|---|---|")
for (dtype, rnd), d in sorted(by.items()):
    t, g = d.get("torch"), d.get("gwen")
    if not t or not g:
        continue
    td, gd, tp, gp = t["decode_tokens_per_s"], g["decode_tokens_per_s"], t["prefill_tokens_per_s"], g["prefill_tokens_per_s"]
    print(f"| {dtype} | {rnd} | {td:.0f} | {gd:.0f} | {gd/td:.2f}× | {tp:.0f} | {gp:.0f} | {gp/tp:.2f}× |")
PY
