#!/usr/bin/env bash
# Measures Gwen (gwen bench) and the PyTorch reference (../shared/bench/bench_torch.py) side by
# side on this machine, interleaved job by job so that load changes hit both, and prints one
# JSON line per measurement followed by a table of ratios. Needs:
#   apt-get install -y python3-torch libopenblas0-openmp libdnnl2
# Usage: dev/bench-vs-torch.sh [JOB...]   where JOB is mode:model:dtype, e.g. train:small:bf16
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BENCH_DIR:-../shared/bench}
out=${OUT:-/tmp/gwen-vs-torch.jsonl}
jobs=("$@")
if [ ${#jobs[@]} -eq 0 ]; then
  jobs=(train:small:f32 train:small:bf16 forward:small:f32 forward:small:bf16
        train:small-moe:f32 train:small-moe:bf16)
fi
go build -o /tmp/gwen-bench ./cmd/gwen
: >"$out"
for job in "${jobs[@]}"; do
  IFS=: read -r mode model dtype <<<"$job"
  tdtype=${dtype/f32/fp32}
  /usr/bin/python3 "$bench/bench_torch.py" --only "$mode:$model:$tdtype" | grep -v system_blas |
    sed 's/^{/{"impl": "torch", /' | tee -a "$out"
  /tmp/gwen-bench bench --config "$model" --mode "$mode" --dtype "$dtype" |
    sed "s/^{/{\"impl\": \"gwen\", /" | tee -a "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def key(r):
    n = r["name"].replace("_autocast", "").replace("fp32", "f32")
    return (r.get("model"), n)
by = {}
for r in rows:
    by.setdefault(key(r), {})[r["impl"]] = r
print("\n| model | measurement | PyTorch tok/s (best) | Gwen tok/s (best) | ratio | Gwen MFU | Gwen / PyTorch peak RSS MB |")
print("|---|---|---|---|---|---|---|")
for (model, name), d in by.items():
    t, g = d.get("torch"), d.get("gwen")
    if not t or not g:
        continue
    tt, gt = t["tokens_per_s"], g["tokens_per_s"]
    print(f"| {model} | {name} | {tt:.0f} ({t['tokens_per_s_best']:.0f}) | {gt:.0f} ({g['tokens_per_s_best']:.0f}) | "
          f"{gt/tt:.2f}× | {g.get('mfu', float('nan')):.0%} | {g['peak_rss_mb']:.0f} / {t['peak_rss_mb']:.0f} |")
PY
