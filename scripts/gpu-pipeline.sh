#!/usr/bin/env bash
# The whole pipeline on an NVIDIA GPU: build llama.cpp with CUDA for the
# GPU's compute capability, trace a real inference with strace, trim,
# verify on the GPU inside the trimmed root, and write the images.
#
#   scripts/gpu-pipeline.sh [OUT_DIR]
#
# ROCMFLOW_CUDA_PRUNE=1 prunes the trimmed runtime's CUDA libraries to the
# GPU's arch (targets.cuda.pruneFatBinaries: true, pruneFallback: false).
#
# Needs: Node >= 20.11, strace, bubblewrap, cmake, a C++ compiler, the CUDA
# toolkit (/usr/local/cuda or targets.cuda.cudaPath) and the NVIDIA driver.
# On a machine without network access, put these in .device/ first (they
# are used only when the tool is missing): node.xz (a Node binary, xz),
# node_modules.tar.xz (npm ci --omit=dev output), debs/*.deb (Debian's
# strace, libunwind8, bubblewrap), llama-src.tar.xz (a llama.cpp tree as
# llama.cpp/), vocab-llama-spm.gguf.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-out/gpu}
mkdir -p "$OUT_DIR"
stamp() { date +%s.%N; }
t0=$(stamp)

# carried tools unpack into directories of our own (mktemp -d: 0700, a new
# name), never a fixed /tmp path another user could have made first: what
# lands there is run as root
if ! command -v node >/dev/null && [ -f .device/node.xz ]; then
  node_dir=$(mktemp -d /tmp/rocmflow-node.XXXXXX)
  mkdir "$node_dir/bin" && xz -dc .device/node.xz > "$node_dir/bin/node" && chmod +x "$node_dir/bin/node"
  export PATH=$node_dir/bin:$PATH
fi
if [ ! -d node_modules ]; then
  if [ -f .device/node_modules.tar.xz ]; then tar -xJf .device/node_modules.tar.xz; else npm ci --omit=dev --no-audit --no-fund; fi
fi
# carried .debs go to a private prefix (unpacking them over / can break a
# merged-/usr system); only their programs and libraries are linked in
if { ! command -v strace >/dev/null || ! command -v bwrap >/dev/null || ! command -v zstd >/dev/null; } && ls .device/debs/*.deb >/dev/null 2>&1; then
  tools=/opt/rocmflow-tools
  for d in .device/debs/*.deb; do dpkg -x "$d" "$tools"; done
  for b in strace bwrap zstd; do command -v $b >/dev/null || ln -sf "$tools/usr/bin/$b" /usr/local/bin/$b; done
  mkdir -p /usr/local/lib && for l in "$tools"/usr/lib/x86_64-linux-gnu/libunwind*.so.*; do ln -sf "$l" /usr/local/lib/; done
  ldconfig
fi
if [ -z "${ROCMFLOW_LLAMA_SOURCE:-}" ] && [ -f .device/llama-src.tar.xz ]; then
  src_dir=$(mktemp -d /tmp/rocmflow-src.XXXXXX)
  tar -xJf .device/llama-src.tar.xz -C "$src_dir"
  export ROCMFLOW_LLAMA_SOURCE=$src_dir/llama.cpp
fi
if [ -z "${ROCMFLOW_VOCAB:-}" ] && [ -f .device/vocab-llama-spm.gguf ]; then export ROCMFLOW_VOCAB=$PWD/.device/vocab-llama-spm.gguf; fi

echo "gpu-pipeline: node $(node --version), $(strace -V | head -1), $(bwrap --version), $(cmake --version | head -1)"
(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi: not available") | tee "$OUT_DIR/gpu.txt"
node bin/rocmflow.js targets | tee "$OUT_DIR/targets.txt"
if [ -z "${ROCMFLOW_CUDA_CC:-}" ] && command -v nvidia-smi >/dev/null; then
  ROCMFLOW_CUDA_CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' ')
  export ROCMFLOW_CUDA_CC
fi

set +e
node bin/rocmflow.js run trim-runtime --config scripts/gpu.config.ts --target cuda --json > "$OUT_DIR/events.jsonl"
status=$?
set -e
t1=$(stamp)
grep -E '"type":"(task|summary|warning)"' "$OUT_DIR/events.jsonl" || true
state=.rocmflow/out/cuda
for f in trim-runtime/report.md trim-runtime/report.json trim-runtime/reproducibility.json strace-trace/workload.json strace-trace/access.json build-llama/build-info.json; do
  [ -f "$state/$f" ] && cp "$state/$f" "$OUT_DIR/$(echo "$f" | tr / _)"
done
# the raw trace, compressed, for the committed fixture
if [ -d "$state/strace-trace/trace" ]; then tar -C "$state/strace-trace" -cf - trace | zstd -19 -q -T0 > "$OUT_DIR/trace.tar.zst"; fi
echo "gpu-pipeline: exit $status in $(awk "BEGIN{print $t1 - $t0}") s"
exit $status
