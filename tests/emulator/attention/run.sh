# Runs tests/test_cuda_attention.c on the emulated device for the kernel builds sm90a, maps_q_shared (an A/B build,
# its one K buffer at D = 128) and generic, each twice: cp.async landing at once, then only at the wait that covers
# it (EMU_DEFERRED=1: a read before its wait shows); and the A/B build wgmma_all, deferred only. Some runs go warp by
# warp between block barriers, ascending or descending (EMU_SCHEDULE: a shared-memory race between warps that
# lockstep hides shows), the others in lockstep. The generic runs emulate a GPU of one SM (EMU_SMS=1), where every
# test's grid fills the device and the maps copy keeps each query tile's keys in one block; the others one of 132
# SMs, where it splits them among blocks from 16 key tiles on. Exit status non-zero if anything failed.
HERE=$(cd "$(dirname "$0")" && pwd); R=${R:-$(cd "$HERE/../../.." && pwd)}
EMU=${EMU:-$R/build/emulator-attention}; cd $EMU; export LD_LIBRARY_PATH=/usr/local/cuda/lib64; rc=0
for run in sm90a:0:132:lockstep sm90a:1:132:warps wgmma_all:1:132:lockstep maps_q_shared:0:132:warps \
    maps_q_shared:1:132:warps_reverse generic:0:1:lockstep generic:1:1:warps_reverse; do
  IFS=: read arch deferred sms schedule <<< "$run"
  printf '%-13s EMU_DEFERRED=%s EMU_SMS=%-3s EMU_SCHEDULE=%-13s test_cuda_attention ' $arch $deferred $sms $schedule
  EMU_DEFERRED=$deferred EMU_SMS=$sms EMU_SCHEDULE=$schedule ./test_cuda_attention_$arch --jobs 2 \
    > $EMU/test_cuda_attention.$arch.$deferred.log 2>&1 || rc=1
  grep -h "Synthesis" $EMU/test_cuda_attention.$arch.$deferred.log
done
exit $rc
