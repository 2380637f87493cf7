#!/usr/bin/env bash
# The numeric check's limits, measured on a GPU machine after
# scripts/gpu-pipeline.sh: the CPU reference build's llama-perplexity saves
# the distributions of an F16 tiny model, then the target's llama-perplexity
# (the GPU build) is compared against them for the same weights (F16), the
# same weights requantised (Q8_0), and other weights (seed 2); and the CPU
# build against itself on the pipeline's Q8_0 model. One line per case.
#
#   scripts/gpu-numerics.sh [STATE_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${1:-.rocmflow/out/cuda}
OUT=${2:-out/gpu-numerics}
mkdir -p "$OUT"
CPU=$STATE/numerics-reference/reference/llama/bin/llama-perplexity
[ -x "$CPU" ] || CPU=$STATE/build-llama/llama/bin/llama-perplexity
GPU=$STATE/build-llama/llama/bin/llama-perplexity
TEXT=$STATE/numerics-reference/eval.txt
VOCAB=${ROCMFLOW_VOCAB:?set ROCMFLOW_VOCAB to a vocab-only GGUF}
ARGS=(-c 128 --chunks 6 -t 16 -b 128)
for t in F16 Q8_0; do node bin/rocmflow.js model tiny --vocab "$VOCAB" --out "$OUT/tiny-$t.gguf" --type $t >/dev/null; done
node bin/rocmflow.js model tiny --vocab "$VOCAB" --out "$OUT/tiny-seed2.gguf" --type F16 --seed 2 >/dev/null
"$CPU" -m "$OUT/tiny-F16.gguf" -f "$TEXT" "${ARGS[@]}" --kl-divergence-base "$OUT/base-f16.kld" > "$OUT/base-f16.log" 2>&1
"$CPU" -m "$OUT/tiny-Q8_0.gguf" -f "$TEXT" "${ARGS[@]}" --kl-divergence-base "$OUT/base-q8.kld" > "$OUT/base-q8.log" 2>&1
line() { # name log
  local f=$2
  printf '%s | mean KLD %s | max KLD %s | same top %s | PPL %s vs %s\n' "$1" \
    "$(grep -oE 'Mean +KLD: +[-0-9.e]+' "$f" | grep -oE '[-0-9.e]+$')" "$(grep -oE 'Maximum KLD: +[-0-9.e]+' "$f" | grep -oE '[-0-9.e]+$')" \
    "$(grep -oE 'Same top p: +[0-9.]+' "$f" | grep -oE '[0-9.]+$')%" \
    "$(grep -oE 'Mean PPL\(Q\) +: +[0-9.e]+' "$f" | grep -oE '[0-9.e]+$')" "$(grep -oE 'Mean PPL\(base\) +: +[0-9.e]+' "$f" | grep -oE '[0-9.e]+$')"
}
cmp() { # name bin model base gpu?
  "$2" -m "$3" "${ARGS[@]}" --kl-divergence-base "$4" --kl-divergence ${5:+-ngl 999} > "$OUT/$1.log" 2>&1 || { echo "$1 | failed: $(tail -1 "$OUT/$1.log")"; return; }
  line "$1" "$OUT/$1.log"
}
{
  echo "case | mean KLD | max KLD | same top token | PPL vs base"
  cmp gpu-f16-vs-cpu-f16 "$GPU" "$OUT/tiny-F16.gguf" "$OUT/base-f16.kld" 1
  cmp gpu-q8-vs-cpu-f16 "$GPU" "$OUT/tiny-Q8_0.gguf" "$OUT/base-f16.kld" 1
  cmp gpu-seed2-vs-cpu-f16 "$GPU" "$OUT/tiny-seed2.gguf" "$OUT/base-f16.kld" 1
  cmp gpu-q8-vs-cpu-q8 "$GPU" "$OUT/tiny-Q8_0.gguf" "$OUT/base-q8.kld" 1
  cmp cpu-q8-vs-cpu-f16 "$CPU" "$OUT/tiny-Q8_0.gguf" "$OUT/base-f16.kld"
} | tee "$OUT/numerics.txt"
rm -f "$OUT"/*.kld "$OUT"/*.gguf
