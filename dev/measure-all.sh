#!/usr/bin/env bash
# Every side-by-side measurement behind docs/performance.md, in one run on this machine:
# training/forward (bench-vs-torch.sh), decode, GEMM, the MoE layer, the tokenizer against HF
# tokenizers, and the Parquet reader against DuckDB. Logs go to $LOG (default /tmp/measure).
# Needs python3-torch, libopenblas0-openmp, libdnnl2, and for the last two the corpora and node
# packages that ../shared/tokenizer-cases/tools and ../shared/parquet build (TOKBENCH, PQBENCH).
set -uo pipefail
cd "$(dirname "$0")/.."
log=${LOG:-/tmp/measure}; mkdir -p "$log"
bench=${BENCH_DIR:-../shared/bench}
tok=${TOKBENCH:-/tmp/tokbench}; pq=${PQBENCH:-/tmp/pq/parquet}
uptime | tee "$log/load.txt"

OUT=$log/train.jsonl dev/bench-vs-torch.sh 2>&1 | tee "$log/train.txt"

OUT=$log/decode.jsonl dev/decode-vs-torch.sh 3 2>&1 | tee "$log/decode.txt"
/usr/bin/python3 "$bench/bench_torch.py" --only gemm_fp32,gemm_bf16 2>&1 |
  grep -v system_blas | tee "$log/torch-gemm.jsonl"
go test ./kernels/ -run '^$' -bench 'SmallDecodeStep|AdamW' -count 2 2>&1 | tee "$log/gwen-gemv-adamw.txt"
go test ./kernels/ -run '^$' -bench 'Sgemm$|GemmBF16$' -benchtime 10x 2>&1 | tee "$log/gwen-gemm.txt"
go test ./moe/ -run '^$' -bench 'MLPSparseVsDense' -benchtime 5x -count 3 2>&1 | tee "$log/moe.txt"

if [ -f "$tok/corpus.txt" ]; then
  (cd "$tok" && RAYON_NUM_THREADS=1 node bench.mjs batch 2>&1) | tee "$log/hf-tokenizer-1.txt"
  (cd "$tok" && node bench.mjs batch 2>&1) | tee "$log/hf-tokenizer.txt"
  GOMAXPROCS=1 GWEN_TOKENIZER_CORPUS=$tok/corpus.txt go test ./data/tokenizer/ -run '^$' -bench Corpus -benchtime 3x 2>&1 | tee "$log/gwen-tokenizer-1.txt"
  GWEN_TOKENIZER_CORPUS=$tok/corpus.txt go test ./data/tokenizer/ -run '^$' -bench Corpus -benchtime 3x 2>&1 | tee "$log/gwen-tokenizer.txt"
fi
if [ -f "$pq/large.parquet" ]; then
  (cd "$pq" && node bench.mjs 2>&1) | tee "$log/duckdb.txt"
  GWEN_PARQUET_LARGE=$pq/large.parquet go test ./data/ -run '^$' -bench ReadText -benchtime 5x 2>&1 | tee "$log/gwen-parquet.txt"
  go test ./data/ -run '^$' -bench PipelinePretrain -benchtime 3x 2>&1 | tee "$log/gwen-pipeline.txt"
fi
uptime | tee -a "$log/load.txt"
