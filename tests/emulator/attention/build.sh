# Builds the emulated run of tests/test_cuda_attention.c against the real attention kernels in $EMU (default
# build/emulator-attention) from the repository at $R (default: this checkout).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
R=${R:-$(cd "$HERE/../../.." && pwd)}; EMU=${EMU:-$R/build/emulator-attention}
mkdir -p $EMU && cd $EMU
INC="-I$R/include -I$R/host -I$R/tests -I/usr/local/cuda/include"
python3 $HERE/transform.py $R $EMU/src
# Four builds of the kernels: as for sm_90a (H100/H200: S = Q K^T by wgmma in the pooling copy at D = 64), the same
# with one option of the A/B builds that bench/device_check.sh times each (AV_WGMMA_SCORES_ALL: S by wgmma in every
# probability kernel copy; AV_PROBS_MAPS_Q_SHARED: the maps copy with Q from shared memory), and as the
# compute_90 PTX that other GPUs compile (mma.sync throughout). ARCHS picks some (mutate.sh: one).
ARCHS=${ARCHS:-sm90a wgmma_all maps_q_shared generic}
for arch in $ARCHS; do
  mkdir -p $arch; flags=""
  [ $arch = sm90a ] && flags="-D__CUDA_ARCH_FEAT_SM90_ALL"
  [ $arch = wgmma_all ] && flags="-D__CUDA_ARCH_FEAT_SM90_ALL -DAV_WGMMA_SCORES_ALL"
  [ $arch = maps_q_shared ] && flags="-D__CUDA_ARCH_FEAT_SM90_ALL -DAV_PROBS_MAPS_Q_SHARED"
  for f in attention_fwd attention_probs attnviz_kernels; do
    g++ -std=c++20 -O2 -g -ffp-contract=off $flags -include $HERE/emu_device.h -I$EMU/src -I$HERE $INC \
      -I$R/kernels -c src/$f.cu.cpp -o $arch/$f.o &
  done
done
g++ -std=c++20 -O2 -g -c $HERE/../fibers.cpp -I/usr/local/cuda/include -o fibers.o
wait
DEFS="-DAV_SOURCE_DIR=\"$R\" -DAV_TEST_DATA_DIR=\"$R/tests/data\" -DAV_SHARED_DIR=\"$R/../shared\" -DAV_CLI_PATH=\"/bin/false\"
 -DAV_PYTHON=\"python3\" -DAV_BUILD_DIR=\"$EMU\" -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DAV_HAVE_CUDA=1"
gcc -std=c11 -O2 -g $DEFS $INC -include $HERE/emu_runtime.h -c $R/tests/test_cuda_attention.c -o test.o
for f in attention_tiled half error; do gcc -std=c11 -O2 -g $DEFS $INC -c $R/host/$f.c -o $f.o; done
gcc -std=c11 -O2 -g $DEFS $INC -c $R/tests/support.c -o support.o
gcc -c $HERE/emu_available.c -o avail.o
for arch in $ARCHS; do
  g++ test.o $arch/attention_fwd.o $arch/attention_probs.o $arch/attnviz_kernels.o fibers.o attention_tiled.o half.o \
    error.o support.o avail.o -L/usr/local/cuda/lib64 -lcudart -lcriterion -lcjson -lm -o test_cuda_attention_$arch
done
echo "built in $EMU"
