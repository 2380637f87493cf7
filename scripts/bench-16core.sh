#!/usr/bin/env bash
# The snapshot benchmark (and the engine's no-op) on a many-core machine,
# with nothing but node, the production node_modules, tar and zstd:
#
#   bash scripts/bench-16core.sh RESULTS_DIR
#
# Writes RESULTS_DIR/machine.txt, snapshot-all-cores.md, snapshot-2-cores.md,
# engine.md (ENGINE=0 skips it) and, where nginx is installed, remote.md (the
# remote cache's 1 GiB push and pull beside curl; REMOTE=0 skips it). Environment: NODE (default: node on PATH),
# OTHER_CLI (another rocmflow's bin/rocmflow.js: a third snapshot row), SIZE_MB (the
# generated tree, default 3072), RUNS (default 3), WORK (scratch space,
# default the system temp dir; needs about 3 × SIZE_MB free).
set -euo pipefail
out=${1:?usage: scripts/bench-16core.sh RESULTS_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
node=${NODE:-node}
size=${SIZE_MB:-3072}
runs=${RUNS:-3}
work=${WORK:-${TMPDIR:-/tmp}}
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cores: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo || true
  echo "node: $("$node" --version)"
  zstd --version
  tar --version | head -1
  free -g | head -2
} > "$out/machine.txt"
cat "$out/machine.txt"

# one generated tree for both snapshot runs
tree=$(mktemp -d "$work/rocmflow-tree-XXXXXX")
trap 'rm -rf "$tree"' EXIT
echo "== snapshot, all cores (generating a $size MiB tree first)"
"$node" bin/run-ts.js bench/snapshot.ts --tree "$tree/t" --size-mb "$size" --runs "$runs" --work "$work" ${OTHER_CLI:+--other-cli "$OTHER_CLI"} | tee "$out/snapshot-all-cores.md"
echo "== snapshot, 2 cores"
"$node" bin/run-ts.js bench/snapshot.ts --tree "$tree/t" --runs "$runs" --cpus 2 --work "$work" ${OTHER_CLI:+--other-cli "$OTHER_CLI"} | tee "$out/snapshot-2-cores.md"
rm -rf "$tree"

if [ "${ENGINE:-1}" = 1 ]; then
  echo "== engine (no-op, hashing, restore)"
  edir=$(mktemp -d "$work/rocmflow-engine-XXXXXX")
  "$node" bin/run-ts.js bench/engine.ts --runs 5 --dir "$edir" | tee "$out/engine.md"
  rm -rf "$edir"
fi

if [ "${REMOTE:-1}" = 1 ] && command -v nginx >/dev/null; then
  echo "== remote cache (nginx on 127.0.0.1), twice"
  for i in 1 2; do "$node" bin/run-ts.js bench/remote-blob.ts | tee -a "$out/remote.md"; done
fi
