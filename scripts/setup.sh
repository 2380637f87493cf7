#!/usr/bin/env bash
# One-command set-up: the system tools rocmflow drives (Debian/Ubuntu
# packages; on other systems it prints what to install) and the npm
# dependencies. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

# podman, runc (for hosts where crun refuses hybrid cgroups), docker.io and docker-registry run and
# serve the images in the tests; chromium renders report.html
PACKAGES=(strace bubblewrap zstd xz-utils tar cmake make g++ git ccache ca-certificates skopeo umoci binutils file nginx openssl python3 perl
  podman runc docker.io docker-registry chromium fonts-dejavu-core)

if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=none; fi
  if [ "$SUDO" = none ]; then
    echo "setup: not root and no sudo: install these packages yourself: ${PACKAGES[*]}"
  else
    missing=()
    for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
      echo "setup: installing ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      $SUDO apt-get update -qq
      $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
  fi
else
  echo "setup: no apt-get here; install the equivalents of: ${PACKAGES[*]} (Fedora: dnf install strace bubblewrap zstd cmake gcc-c++ git ccache skopeo umoci podman docker-distribution chromium)"
fi

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<11)) { console.error("setup: Node >= 20.11 is required, found "+process.versions.node); process.exit(1) }'
echo "setup: npm ci"
npm ci --no-audit --no-fund
echo "setup: done. Next: npx rocmflow doctor; npx rocmflow run trim-runtime"
