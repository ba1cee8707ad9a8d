# Runs tests/test_cuda_attention.c on the emulated device for both kernel builds (sm90a, generic), each twice:
# cp.async landing at once, then only at the wait that covers it (EMU_DEFERRED=1: a read before its wait shows).
# Exit status non-zero if anything failed.
HERE=$(cd "$(dirname "$0")" && pwd); R=${R:-$(cd "$HERE/../../.." && pwd)}
EMU=${EMU:-$R/build/emulator-attention}; cd $EMU; export LD_LIBRARY_PATH=/usr/local/cuda/lib64; rc=0
for arch in sm90a generic; do
  for deferred in 0 1; do
    printf '%-5s EMU_DEFERRED=%s test_cuda_attention ' $arch $deferred
    EMU_DEFERRED=$deferred ./test_cuda_attention_$arch --jobs 2 > $EMU/test_cuda_attention.$arch.$deferred.log 2>&1 ||
      rc=1
    grep -h "Synthesis" $EMU/test_cuda_attention.$arch.$deferred.log
  done
done
exit $rc
