# Runs tests/test_cuda_attention.c on the emulated device for the kernel builds sm90a and generic, each twice:
# cp.async landing at once, then only at the wait that covers it (EMU_DEFERRED=1: a read before its wait shows); and
# the A/B builds wgmma_all and maps_q_shared, deferred only. The generic runs emulate a GPU of one SM (EMU_SMS=1), where every test's
# grid fills the device and the maps copy keeps each query tile's keys in one block; the others one of 132 SMs, where
# it splits them among blocks from 16 key tiles on. Exit status non-zero if anything failed.
HERE=$(cd "$(dirname "$0")" && pwd); R=${R:-$(cd "$HERE/../../.." && pwd)}
EMU=${EMU:-$R/build/emulator-attention}; cd $EMU; export LD_LIBRARY_PATH=/usr/local/cuda/lib64; rc=0
for run in sm90a:0:132 sm90a:1:132 wgmma_all:1:132 maps_q_shared:1:132 generic:0:1 generic:1:1; do
  IFS=: read arch deferred sms <<< "$run"
  printf '%-13s EMU_DEFERRED=%s EMU_SMS=%-3s test_cuda_attention ' $arch $deferred $sms
  EMU_DEFERRED=$deferred EMU_SMS=$sms ./test_cuda_attention_$arch --jobs 2 \
    > $EMU/test_cuda_attention.$arch.$deferred.log 2>&1 || rc=1
  grep -h "Synthesis" $EMU/test_cuda_attention.$arch.$deferred.log
done
exit $rc
