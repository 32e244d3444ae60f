#!/usr/bin/env bash
# Install everything spritegen needs on a fresh Debian machine, idempotently:
# system libraries (when run as root), a virtual environment in .venv, and the package.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh bench, scripts/setup.sh test,ray,bench
# No extras: the data side only (spritegen); "bench" adds the benchmark (torch, matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

# System packages: cairo headers to build pycairo, EGL/Mesa for headless 3D rendering.
packages="libcairo2-dev pkg-config gcc libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libgles2"
python3 -c 'import venv, ensurepip' 2>/dev/null || packages="$packages python3-venv python3-dev"
missing=""
for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "missing system packages:$missing (install them as root: apt-get install$missing)" >&2
    exit 1
  fi
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python >= 3.11 is needed, found $(python3 --version)" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed-${extras:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  case ",$extras," in  # the bench extra (also pulled by test) brings torch
    *,bench,* | *,test,*)
      # Pinned first: a bare "torch" would pull a multi-GB CUDA build onto CPU machines.
      .venv/bin/python -m pip install -q "torch==2.13.0" ;;
  esac
  .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
