#!/usr/bin/env bash
# Prove `rocmflow fatbin prune` on HIP libraries with AMD's own tools.
#
#   scripts/prove-fatbin-hip.sh ROOT ARCH FILE...
#
# ROOT is a Debian sid root with ROCm (hipcc, clang-offload-bundler-21,
# libamd-comgr-dev, zstd, gcc); it is entered with bubblewrap and not
# written to. Each FILE (a host path; ROOT/usr/lib/... for the root's own
# libraries) is listed and pruned to ARCH by rocmflow on the host, then in
# ROOT, for every bundle of the pruned file:
#   - clang-offload-bundler --list lists only ARCH and the host entry;
#   - --unbundle of ARCH gives the same bytes as from the original bundle;
#   - amd_comgr_lookup_code_object (scripts/comgr-lookup.c) finds ARCH's
#     code object, at the offset and size the bundle lists, and nothing for
#     each dropped target (which it does find in the original bundle).
# Compressed bundles are given to comgr decompressed (zstd): its lookup
# refuses compressed bundles (INVALID_ARGUMENT).
# It prints one Markdown row per file with sizes (apparent, allocated =
# st_blocks*512, zstd -3 -T0 compressed) and timings, and exits non-zero on
# any failed check. Scratch files go to $PROVE_WORK (default: a new
# directory under ${TMPDIR:-/var/tmp}), removed at the end unless
# PROVE_KEEP=1.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 ROOT ARCH FILE..." >&2; exit 2; }
ROOT=$(cd "$1" && pwd)
ARCH=$2
shift 2
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${PROVE_WORK:-$(mktemp -d "${TMPDIR:-/var/tmp}/prove-fatbin.XXXXXX")}
mkdir -p "$WORK"
[ "${PROVE_KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
for t in node bwrap zstd; do command -v $t >/dev/null || { echo "prove: $t not found" >&2; exit 2; }; done

in_root() {
  bwrap --ro-bind "$ROOT" / --dev /dev --proc /proc --tmpfs /tmp --bind "$WORK" /tmp/w \
    --setenv PATH /usr/sbin:/usr/bin:/sbin:/bin "$@"
}
rocmflow() { node "$REPO/bin/rocmflow.js" "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mb() { awk -v n="$1" 'BEGIN { if (n < 1e6) printf "%.1f kB", n / 1e3; else printf "%.1f MB", n / 1e6 }'; }
allocated() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }
zsize() { zstd -3 -T0 -q -c "$1" | wc -c; }

cp "$REPO/scripts/comgr-lookup.c" "$WORK/"
in_root sh -c 'cd /tmp/w && cc -O1 -o comgr-lookup comgr-lookup.c -lamd_comgr'

echo "| file | bundles | kept | apparent | allocated before → after | zstd -3 before → after | list | prune | AMD checks |"
echo "|---|---|---|---|---|---|---|---|---|"
status=0
for FILE in "$@"; do
  name=$(basename "$FILE")
  out="$WORK/$name.pruned"
  t0=$(now); rocmflow fatbin list --json --containers "$FILE" >"$WORK/orig.json"; t1=$(now)
  rocmflow fatbin prune "$FILE" --keep "$ARCH" --out "$out" --json >"$WORK/prune.json"; t2=$(now)
  rocmflow fatbin list --json --containers "$out" >"$WORK/pruned.json"
  # one line per bundle: index kind offset origSize prunedSize keptIds droppedTargets
  node -e '
    const [o, p, arch] = [require(process.argv[1]), require(process.argv[2]), process.argv[3]];
    o.containers.forEach((c, i) => {
      const q = p.containers[i];
      if (!q || q.offset !== c.offset) throw new Error(`bundle ${i} moved`);
      const kept = q.entries.map((e) => e.id).sort().join(",");
      const dropped = c.entries.filter((e) => e.kind === "code" && !q.entries.some((k) => k.id === e.id)).map((e) => e.id.replace(/^hipv4-/, "")).join(",") || "-";
      const keptAt = q.entries.filter((e) => e.kind === "code").map((e) => `${e.offset - (c.kind === "bundle" ? c.offset : 0)}:${e.size}`).join(",") || "-";
      console.log(i, c.kind, c.offset, c.size, q.size, kept, dropped, keptAt);
    });' "$WORK/orig.json" "$WORK/pruned.json" "$ARCH" >"$WORK/bundles.txt"
  nb=$(wc -l <"$WORK/bundles.txt")
  set +e
  in_root --ro-bind "$FILE" /tmp/orig.so --ro-bind "$out" /tmp/pruned.so sh -c '
    cd /tmp/w; arch=$1; B=clang-offload-bundler-21; T=hipv4-amdgcn-amd-amdhsa--$arch
    fail=0; listed=0; same=0; found=0; none=0
    cut() { dd if="$1" of="$2" bs=1M iflag=skip_bytes,count_bytes skip="$3" count="$4" status=none; }
    plain() { # the bundle itself, or the bundle inside a compressed one
      if [ "$2" = compressed-bundle ]; then
        v=$(od -An -tu2 -j4 -N2 "$1" | tr -d " "); h=$([ "$v" = 2 ] && echo 24 || echo 32)
        tail -c +$((h + 1)) "$1" | zstd -dcq > "$1.plain"; echo "$1.plain"
      else echo "$1"; fi
    }
    while read -r i kind off osize psize kept dropped keptat; do
      cut /tmp/orig.so o.bin "$off" "$osize"; cut /tmp/pruned.so p.bin "$off" "$psize"
      want=$(echo "$kept" | tr , "\n" | sort | tr "\n" " ")
      got=$($B --list --type=o --input=p.bin | sort | tr "\n" " ")
      if [ "$got" = "$want" ]; then listed=$((listed + 1)); else echo "bundle $i: --list gives [$got], expected [$want]" >&2; fail=1; fi
      po=$(plain p.bin "$kind"); oo=$(plain o.bin "$kind")
      if echo "$kept" | grep -q "$T"; then
        $B --unbundle --type=o --targets=$T --input=o.bin --output=o.co && $B --unbundle --type=o --targets=$T --input=p.bin --output=p.co
        if cmp -s o.co p.co; then same=$((same + 1)); else echo "bundle $i: $T differs after pruning" >&2; fail=1; fi
      fi
      # one comgr call per bundle and side: the kept ISA first, then every dropped one
      isas="amdgcn-amd-amdhsa--$arch $(echo "$dropped" | tr , " " | sed "s/^-$//")"
      ./comgr-lookup "$oo" $isas > o.look && ./comgr-lookup "$po" $isas > p.look || fail=1
      if echo "$kept" | grep -q "$T"; then
        r=$(head -1 p.look | awk "{print \$2\":\"\$3}")
        if [ "$r" = "$keptat" ]; then found=$((found + 1)); else echo "bundle $i: comgr found $arch at [$r], the bundle lists $keptat" >&2; fail=1; fi
      fi
      ok=1
      if [ "$(tail -n +2 o.look | awk "\$3 == 0" | wc -l)" != 0 ]; then echo "bundle $i: comgr misses a dropped target in the original too" >&2; ok=0; fail=1; fi
      if [ "$(tail -n +2 p.look | awk "\$3 != 0" | wc -l)" != 0 ]; then echo "bundle $i: comgr still finds a dropped target: $(tail -n +2 p.look | awk "\$3 != 0")" >&2; ok=0; fail=1; fi
      [ $ok = 1 ] && none=$((none + 1))
    done < bundles.txt
    echo "--list only kept: $listed; unbundle identical: $same; comgr finds $arch: $found; comgr finds no dropped target: $none"
    exit $fail' sh "$ARCH" >"$WORK/checks.txt" 2>"$WORK/checks.err"
  rc=$?
  set -e
  t3=$(now)
  [ $rc = 0 ] || { status=1; sed "s|^|$name: |" "$WORK/checks.err" >&2; }
  kept_mb=$(node -e 'const r = require(process.argv[1]); console.log(Object.entries(r.kept).map(([a, n]) => `${a} ${n < 1e6 ? (n / 1e3).toFixed(1) + " kB" : (n / 1e6).toFixed(1) + " MB"}`).join(", ") || "none")' "$WORK/prune.json")
  echo "| $name | $nb | $kept_mb | $(mb "$(stat -c %s "$FILE")") | $(mb "$(allocated "$FILE")") → $(mb "$(allocated "$out")") | $(mb "$(zsize "$FILE")") → $(mb "$(zsize "$out")") | $(secs "$t0" "$t1") s | $(secs "$t1" "$t2") s | $([ $rc = 0 ] && echo ok || echo FAILED) of $nb bundles ($(secs "$t2" "$t3") s): $(cat "$WORK/checks.txt") |"
  rm -f "$out"
done
exit $status
