# Runs gemm_check, then both GPU test files in every stream schedule. Exit status non-zero if anything failed.
HERE=$(cd "$(dirname "$0")" && pwd); R=${R:-$(cd "$HERE/../../.." && pwd)}
EMU=${EMU:-$R/build/emulator-backend}; cd $EMU; export LD_LIBRARY_PATH=$EMU/lib; rc=0
./gemm_check | tail -1 || rc=1
for m in sync lazy copy-late compute-late; do
  for t in test_cuda_kernels test_cuda_model test_cuda_flash test_cuda_reductions; do
    printf '%-13s %-18s ' $m $t
    EMU_MODE=$m ./$t --jobs 2 > $EMU/$t.$m.log 2>&1 || rc=1
    grep -h "Synthesis" $EMU/$t.$m.log
  done
done
exit $rc
