#!/usr/bin/env bash
# Installs the build into a scratch prefix and builds a program against it three ways: find_package with the shared
# and the static library, and pkg-config. Each one runs a checkpoint. Usage: install_check.sh BUILD_DIR MODEL_DIR
set -euo pipefail
build=$1
model=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "$build/install-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
for f in bin/attnviz include/attnviz.h lib/libattnviz.so lib/libattnviz.a lib/pkgconfig/attnviz.pc \
  lib/cmake/attnviz/attnvizConfig.cmake; do
  [ -e "$work/prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
"$work/prefix/bin/attnviz" --version

cmake -S "$here/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer/consumer_shared" "$model" "$work/out-shared"
"$work/consumer/consumer_static" "$model" "$work/out-static"

export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
cc -std=c11 $(pkg-config --cflags attnviz) "$here/consumer/main.c" -o "$work/consumer-pc" $(pkg-config --libs attnviz)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer-pc" "$model" "$work/out-pc"
for out in out-shared out-static out-pc; do
  [ -f "$work/$out/meta.json" ] && [ -f "$work/$out/attention/layer_00.npy" ] || { echo "$out incomplete"; exit 1; }
done
# With the CUDA backend, the kernel-API example builds against the same install (it needs a GPU to run).
if grep -q -- -lcudart "$work/prefix/lib/pkgconfig/attnviz.pc"; then
  cmake -S "$here/../examples/kernel_api" -B "$work/kernel-example" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
  cmake --build "$work/kernel-example" >/dev/null
  [ -x "$work/kernel-example/attention_example" ] || { echo "kernel example did not build"; exit 1; }
  echo "kernel API example built"
fi
echo "install check passed"
