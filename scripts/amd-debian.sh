#!/usr/bin/env bash
# The AMD path on Debian's ROCm, for real: a Debian sid root (debootstrap),
# Debian's ROCm installed into it, llama.cpp built with HIP for each target
# inside it, traced, trimmed, verified and imaged, with
# examples/debian-rocm.config.ts. On a machine without the GPU (CI, a
# laptop, this project's build machine) it runs with --no-device: the
# workload runs on the CPU fallback and device-only files are kept by rule.
#
#   scripts/amd-debian.sh [OUT_DIR] [TARGETS]     (default: out/amd-debian "gfx1151 gfx1100")
#
# Needs: root, Node >= 20.11, debootstrap, bubblewrap, strace, zstd, skopeo
# and umoci (to check the images load), network access to deb.debian.org and
# the npm registry. ROCMFLOW_BASE_ROOT=DIR uses an existing root instead of
# debootstrapping one; ROCMFLOW_CCACHE_DIR shares a ccache directory.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-out/amd-debian}
TARGETS=${2:-gfx1151 gfx1100}
CONFIG=examples/debian-rocm.config.ts
mkdir -p "$OUT_DIR"
stamp() { date +%s; }
device=--no-device
[ -e /dev/kfd ] && device=

for t in $TARGETS; do
  out="$OUT_DIR/$t"
  mkdir -p "$out"
  echo "== $t: rocmflow run trim-runtime --config $CONFIG --target $t $device"
  t0=$(stamp)
  set +e
  node bin/rocmflow.js run trim-runtime --config "$CONFIG" --target "$t" $device --json > "$out/events.jsonl" 2> "$out/stderr.txt"
  status=$?
  set -e
  t1=$(stamp)
  echo "$t: exit $status in $((t1 - t0)) s" | tee "$out/status.txt"
  grep -E '"type":"(task|summary|warning)"' "$out/events.jsonl" | cut -c1-600 || true
  state=.rocmflow/out/$t
  for f in base-root/root.json fetch-rocm/fetch.json build-llama/build-info.json build-llama/build.log strace-trace/workload.json strace-trace/access.json \
           trim-runtime/report.md trim-runtime/report.json trim-runtime/reproducibility.json trim-runtime/rootfs.manifest.json; do
    [ -f "$state/$f" ] && cp "$state/$f" "$out/$(echo "$f" | tr / _)"
  done
  [ -d "$state/strace-trace/trace" ] && cp -r "$state/strace-trace/trace" "$out/trace"
  [ "$status" = 0 ] || continue

  # the images load: skopeo reads each archive; umoci unpacks the minimal one (after skopeo recompresses its zstd
  # layers as gzip: some umoci versions read no zstd, and some skopeo versions keep zstd under --dest-decompress)
  for img in minimal full base; do
    a="$state/trim-runtime/images/$img.oci.tar"; ref="oci-archive:$a"
    [ -f "$a" ] || { a="$state/trim-runtime/images/$img.oci"; ref="oci:$a"; }
    [ -e "$a" ] || continue
    skopeo inspect "$ref" > "$out/skopeo-$img.json" && echo "$t: skopeo inspect $img: ok ($(du -sh "$a" | cut -f1))"
  done
  tmp=$(mktemp -d)
  if skopeo copy -q --dest-compress --dest-compress-format gzip "oci-archive:$state/trim-runtime/images/minimal.oci.tar" "oci:$tmp/layout:minimal" && umoci unpack --image "$tmp/layout:minimal" "$tmp/bundle" >/dev/null; then
    echo "$t: umoci unpack minimal: ok, $(find "$tmp/bundle/rootfs" -type f | wc -l) files, $(du -sh "$tmp/bundle/rootfs" | cut -f1)" | tee -a "$out/status.txt"
  else
    echo "$t: umoci unpack minimal: FAILED" | tee -a "$out/status.txt"
  fi
  rm -rf "$tmp"
done
