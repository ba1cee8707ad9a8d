# Whole CLI runs on the emulated device against --device cpu, same options: GPT-2, BERT and Llama fixtures, layer/head
# subsets (captured heads out of the slot order), fp16/bf16 probability buffers, bf16 products (looser bound), and
# the flash attention path (gpt2-tiny-hs64 in bf16; meta.json must name the kernel that ran), with its reductions
# on the device; grouped-query attention on both paths (llama-tiny*, qwen2-tiny).
HERE=$(cd "$(dirname "$0")" && pwd); R=${R:-$(cd "$HERE/../../.." && pwd)}
EMU=${EMU:-$R/build/emulator-backend}; D=$R/tests/data; O=$EMU/cli; export LD_LIBRARY_PATH=$EMU/lib
rm -rf $O; mkdir -p $O; rc=0; n=0
P="Hello world, attention is all you need."
check() { # model, tol, options...
  m=$1 tol=$2; shift 2; n=$((n+1)); r=
  $EMU/attnviz run --model $D/$m --prompt "$P" --out $O/$n-cpu --device cpu --png none $(echo "$@" | sed 's/--dtype [a-z0-9]*//; s/--attn-dtype [a-z0-9]*//; s/--attention [a-z]*//') > $O/$n.log 2>&1 &&
  $EMU/attnviz run --model $D/$m --prompt "$P" --out $O/$n-cuda --device cuda --png none "$@" >> $O/$n.log 2>&1 &&
  r=$(/usr/bin/python3 $HERE/compare_runs.py $O/$n-cpu $O/$n-cuda $tol | tail -1) || { rc=1; r="FAIL $r $(tail -2 $O/$n.log)"; }
  echo "$m $*: $r"
}
kernel() { # the attention kernel the last check's CUDA run reports
  grep -q "\"attention_kernel\":[[:space:]]*\"$1\"" $O/$n-cuda/meta.json || { rc=1; echo "run $n: attention_kernel is not $1"; }
}
for m in gpt2-tiny gpt2-tiny-bf16 gpt2-tiny-sharded bert-tiny bert-tiny-legacy llama-tiny llama-tiny-llama3rope qwen2-tiny; do
  check $m 1e-5
  check $m 1e-5 --layers 1 --heads 2,0
  check $m 1e-3 --attn-dtype fp16 --heads 2
  check $m 8e-3 --attn-dtype bf16
  check $m 5e-2 --dtype bf16
done
# Flash path: bf16 operands alone (--attention plain) move P by 4.3e-2 from fp32 on this fixture, the flash kernels'
# bf16 O and P by 5.2e-2.
m=gpt2-tiny-hs64
check $m 1e-5; kernel plain
check $m 1e-1 --dtype bf16; kernel flash
check $m 1e-1 --dtype bf16 --layers 1 --heads 1; kernel flash
check $m 1e-1 --dtype bf16 --attn-dtype fp16 --heads 1,0; kernel flash
check $m 1e-1 --dtype bf16 --attn-dtype bf16 --heads 0; kernel flash
check $m 1e-1 --dtype bf16 --attention plain; kernel plain
# --progress on: each layer's line once the device has finished it (the backend's synchronize), in both runs.
check $m 1e-1 --dtype bf16 --progress on; kernel flash
[ "$(grep -c '^attnviz: layer [12]/2 done, ' $O/$n.log)" = 4 ] || { rc=1; echo "run $n: not a progress line a layer"; }
# Reductions on the device (flash path, no full P) against the CPU's host reductions of full P: meta.json must say
# which path computed them; a head mean of a head subset stays on the host. Column sums add up the errors of a
# column's rows (7.5e-2 seen).
reductions() { # the path the last check's CUDA run reports
  grep -q "\"reductions\":[[:space:]]*\"$1\"" $O/$n-cuda/meta.json || { rc=1; echo "run $n: reductions are not $1"; }
}
check $m 1e-1 --dtype bf16 --capture rows:4,pool:3,headmean; kernel flash; reductions device
check $m 1e-1 --dtype bf16 --capture pool:1 --heads 1; reductions device
check $m 1e-1 --dtype bf16 --capture pool:64,rows:100 --heads 0,1; reductions device
check $m 1.5e-1 --dtype bf16 --capture colsum; reductions device
check $m 1e-1 --dtype bf16 --capture headmean --heads 1; reductions host
check $m 1e-1 --dtype bf16 --capture full,pool:3; reductions host
# Grouped-query attention on the flash path: two query heads of 64 on one key/value head, rotary positions.
m=llama-tiny-hs64
check $m 1e-5; kernel plain
check $m 1e-1 --dtype bf16; kernel flash
check $m 1e-1 --dtype bf16 --heads 1 --attn-dtype fp16; kernel flash
check $m 1e-1 --dtype bf16 --capture rows:4,pool:3,headmean,colsum; kernel flash; reductions device
check $m 1e-1 --dtype bf16 --capture groupmean,pool:3; kernel flash; reductions device
check $m 1e-1 --dtype bf16 --capture groupmean --heads 1; kernel flash; reductions host
exit $rc
