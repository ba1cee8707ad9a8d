# Builds the emulated runs of tests/test_cuda_kernels.c, test_cuda_model.c and test_cuda_flash.c in $EMU (default
# build/emulator-backend) from the repository at $R (default: this checkout), plus gemm_check, the fake
# libcublas.so.13 and the CLI. The attention kernels (the backend's flash path) are rewritten by
# ../attention/transform.py and built with its emu_primitives.h on this runtime (emu_attention.h).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
R=${R:-$(cd "$HERE/../../.." && pwd)}; EMU=${EMU:-$R/build/emulator-backend}; SAN=${SAN:-}
# KFLAGS: extra flags for the kernels and the emulated cuBLAS only, e.g. KFLAGS="-mfma -ffp-contract=fast" to
# contract a*b+c into FMAs as nvcc does by default (the CPU reference keeps its own rounding).
KFLAGS=${KFLAGS:-}
mkdir -p $EMU/obj $EMU/src $EMU/lib
cd $EMU
CU=/usr/local/cuda/include
INC="-I$R/include -I$R/host -I$R/kernels -I$R/tests -I$CU"
DEFS="-DAV_SOURCE_DIR=\"$R\" -DAV_TEST_DATA_DIR=\"$R/tests/data\" -DAV_SHARED_DIR=\"$R/../shared\" -DAV_CLI_PATH=\"/bin/false\" -DAV_PYTHON=\"python3\" -DAV_BUILD_DIR=\"$EMU\" -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DAV_HAVE_CUDA=1"
CXX="g++ -std=c++20 -O2 -g -ffp-contract=off $SAN"
PKGS="libcjson openblas libpcre2-8 libutf8proc zlib"
CC="gcc -std=c11 -O2 -g -ffp-contract=off -fopenmp $(pkg-config --cflags $PKGS) $SAN"
python3 $HERE/transform.py $R $EMU/src
python3 $HERE/../attention/transform.py $R $EMU/attn
g++ -std=c++20 -O2 -g -fPIC -shared $KFLAGS -I$CU $HERE/emu_cublas.cpp -o lib/libcublas.so.13 &
$CXX -I$HERE -I$CU -c $HERE/emu_runtime.cpp -o obj/emu_runtime.o &
$CXX -I$CU -c $HERE/../fibers.cpp -o obj/fibers.o &
for f in embedding layernorm rmsnorm rope swiglu activation residual softmax convert; do
  $CXX $KFLAGS -w -include $HERE/emu_kernel.h $INC -c src/$f.cu.cpp -o obj/k_$f.o &
done
wait
for f in attention_fwd attention_probs attnviz_kernels; do
  $CXX $KFLAGS -w -D__CUDA_ARCH_FEAT_SM90_ALL -include $HERE/emu_attention.h -I$EMU/attn -I$HERE/../attention $INC \
    -c attn/$f.cu.cpp -o obj/k_$f.o & # the sm_90a kernels, as on an H100/H200
done
wait
rm -f obj/libhost.a
for f in $R/host/*.c; do
  b=$(basename $f .c); [ $b = cli ] && continue
  $CC $DEFS $INC -c $f -o obj/h_$b.o &
  [ $(jobs -r | wc -l) -ge 2 ] && wait -n
done
wait
ar rcs obj/libhost.a obj/h_*.o
$CC $DEFS $INC -c $R/tests/support.c -o obj/support.o
$CC $DEFS $INC -c $R/tests/support_model.c -o obj/support_model.o
LINK="obj/k_*.o obj/emu_runtime.o obj/fibers.o obj/support.o obj/support_model.o obj/libhost.a -lcriterion $(pkg-config --libs $PKGS) -fopenmp -lm -ldl -lpthread -rdynamic"
for t in test_cuda_kernels test_cuda_model test_cuda_flash test_cuda_reductions; do
  $CC $DEFS $INC -c $R/tests/$t.c -o obj/$t.o
  $CXX obj/$t.o $LINK -o $t
done
$CXX -I$CU $HERE/gemm_check.cpp $HERE/emu_cublas.cpp obj/emu_runtime.o obj/fibers.o -o gemm_check
echo "built in $EMU; run: LD_LIBRARY_PATH=$EMU/lib $EMU/test_cuda_kernels --jobs 1"
# The CLI too, for whole runs on the emulated device (BERT, options the GPU tests do not reach).
$CC $DEFS $INC -c $R/host/cli.c -o obj/cli.o
$CXX obj/cli.o $LINK -o attnviz
