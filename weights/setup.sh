#!/usr/bin/env bash
# Installs what attnviz needs on Debian 12 (apt-get) and builds it into ./build (Release).
# Used by the README's two commands (weights/demo.sh, tests/run.sh); safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(build-essential cmake pkg-config libcriterion-dev libstb-dev libcjson-dev libopenblas-dev libpcre2-dev
  libutf8proc-dev zlib1g-dev python3-numpy python3-venv python3-pip)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# nvcc, when installed (CUDA Toolkit), adds the CUDA backend; without it attnviz builds CPU-only.
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
cmake -B build -S . -DCMAKE_BUILD_TYPE=Release ${AV_CMAKE_ARGS:-}
cmake --build build -j"$(nproc)"
