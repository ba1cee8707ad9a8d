# Runs tests/test_cuda_attention.c on the emulated device for the kernel builds sm90a and generic, each twice:
# cp.async landing at once, then only at the wait that covers it (EMU_DEFERRED=1: a read before its wait shows); and
# wgmma_all (the A/B build), deferred only. Exit status non-zero if anything failed.
HERE=$(cd "$(dirname "$0")" && pwd); R=${R:-$(cd "$HERE/../../.." && pwd)}
EMU=${EMU:-$R/build/emulator-attention}; cd $EMU; export LD_LIBRARY_PATH=/usr/local/cuda/lib64; rc=0
for run in sm90a:0 sm90a:1 wgmma_all:1 generic:0 generic:1; do
  arch=${run%:*} deferred=${run#*:}
  printf '%-9s EMU_DEFERRED=%s test_cuda_attention ' $arch $deferred
  EMU_DEFERRED=$deferred ./test_cuda_attention_$arch --jobs 2 > $EMU/test_cuda_attention.$arch.$deferred.log 2>&1 ||
    rc=1
  grep -h "Synthesis" $EMU/test_cuda_attention.$arch.$deferred.log
done
exit $rc
