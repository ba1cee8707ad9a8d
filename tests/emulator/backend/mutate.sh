# Mutation check: each mutation (fourteen on the plain path and the kernels, four on the flash path, two on its device
# reductions) is applied to a copy of the repository ($M, from this checkout without build dirs or .git), built and
# run in the emulator; every mutation must make the named test fail. The shared tree is untouched.
HERE=$(cd "$(dirname "$0")" && pwd); R=${R:-$(cd "$HERE/../../.." && pwd)}
M=${M:-/tmp/attnviz-mutants}; EMU=${EMU:-/tmp/attnviz-mutants-emu}
[ -d $M/host ] || { mkdir -p $M && (cd $R && tar cf - --exclude='./build*' --exclude=./.git --exclude=./weights .) | tar xf - -C $M; }
mutate() { # file, sed expression, test, filter, mode, label
  cp $R/$1 $M/$1; sed -i "$2" $M/$1
  if cmp -s $R/$1 $M/$1; then echo "MUTATION NOT APPLIED: $6"; return; fi
  R=$M EMU=$EMU bash $HERE/build.sh > $EMU.build.log 2>&1 || { echo "build failed: $6"; return; }
  out=$(cd $EMU && EMU_MODE=$5 LD_LIBRARY_PATH=$EMU/lib ./$3 --jobs 2 --filter "$4" 2>&1 | grep Synthesis)
  case "$out" in *"Failing: 0 "*) echo "NOT CAUGHT: $6 ($out)";; *) echo "caught: $6 [$5] $out";; esac
  cp $R/$1 $M/$1
}
mutate host/backend_cuda.c 's/int ld_w = transposed ? C : OC;/int ld_w = transposed ? OC : C;/' test_cuda_kernels 'cuda_backend/matmul_fp32*' lazy "matmul: weight ld swapped"
mutate host/backend_cuda.c 's/op_w, CUBLAS_OP_N, OC, T, C, &one, weight, CUDA_R_32F,/op_w, CUBLAS_OP_N, T, OC, C, \&one, weight, CUDA_R_32F,/' test_cuda_kernels 'cuda_backend/matmul_fp32*' lazy "matmul fp32: m and n swapped"
mutate host/backend_cuda.c 's/CUBLAS_OP_T, CUBLAS_OP_N, T, T, HS, &one, qkv + C,/CUBLAS_OP_N, CUBLAS_OP_T, T, T, HS, \&one, qkv + C,/' test_cuda_kernels 'cuda_backend/attention_fp32*' lazy "attention: Q.K^T ops swapped"
mutate host/backend_cuda.c 's/impl->scores + r \* TT, CUDA_R_32F, T, G \* TT,/impl->scores + r * TT, CUDA_R_32F, HS, G * TT,/' test_cuda_kernels 'cuda_backend/attention_fp32*' lazy "attention: P.V ldb T -> HS"
mutate host/backend_cuda.c '/AV_CUDA_CHECK(cudaStreamWaitEvent(impl->compute, impl->probs.copied/d; /if (capture && impl->probs.copy_issued)$/d' test_cuda_kernels 'cuda_backend/probs_stream*' copy-late "attention does not wait for the previous P copy"
mutate host/backend_cuda.c '/AV_CUDA_CHECK(cudaStreamWaitEvent(impl->copy, ps->computed, 0));/d' test_cuda_kernels 'cuda_backend/attention_fp32*' compute-late "P copy does not wait for the compute stream"
mutate host/backend_cuda.c '/AV_CUDA_CHECK(cudaStreamWaitEvent(impl->compute, impl->probs.copied/d; /if (capture \&\& impl->probs.copy_issued)$/d' test_cuda_kernels 'cuda_backend/probs_stream*' sync "(same, sync mode: expected NOT caught)"
mutate kernels/softmax.cu 's/float row_sum = av_warp_sum(sum \* expf(max - row_max));/float row_sum = av_warp_sum(sum);/' test_cuda_kernels 'cuda_kernels/attention_softmax*' lazy "softmax: lane sums not rescaled"
mutate kernels/warp.cuh 's/offset > 0; offset \/= 2) x += __shfl_xor_sync/offset > 1; offset \/= 2) x += __shfl_xor_sync/' test_cuda_kernels 'cuda_kernels/layernorm*' lazy "layernorm: one shuffle step short"
mutate kernels/layernorm.cu 's/    if (row >= T) return;/    if (row >= T || lane == 31) return;/' test_cuda_kernels 'cuda_kernels/layernorm*' lazy "layernorm: a lane exits before the shuffles (divergence)"
mutate kernels/rope.cu 's/x\[i\] = x1 \* c - x2 \* s;/x[i] = x1 * c + x2 * s;/' test_cuda_kernels 'cuda_kernels/rope*' lazy "rope: rotation sign"
mutate host/backend_cuda.c 's/CUDA_R_32F, ld_qkv, HS, qkv + (size_t)r \* HS, CUDA_R_32F,/CUDA_R_32F, ld_qkv, 0, qkv + (size_t)r * HS, CUDA_R_32F,/' test_cuda_kernels 'cuda_backend/attention_grouped*' lazy "attention: every query head reads key/value head 0"
mutate kernels/embedding.cu 's/wpe\[t \* C + c\]/wpe[t * C + c + C]/' test_cuda_kernels 'cuda_kernels/embedding*' lazy "embedding: reads one row past wpe"
mutate host/backend_cuda.c 's/    AV_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, impl->compute));/    AV_CUDA_CHECK(cudaStreamSynchronize(impl->compute));\n    memcpy(dst, src, bytes);/' test_cuda_kernels 'cuda_backend/upload_tensor*' lazy "download: host memcpy from device memory"
mutate host/backend_cuda.c 's/size_t offset = part == 0 ? 0 : part == 1 ? (size_t)C :/size_t offset = part == 1 ? 0 : part == 0 ? (size_t)C :/' test_cuda_flash 'cuda_flash/matches_reference_on_fixture_prompts' lazy "flash: q and k views swapped"
mutate host/backend_cuda.c 's/.probs = (char \*)probs + head_slot\[h\] \* slot_bytes/.probs = (char *)probs + h * slot_bytes/' test_cuda_flash 'cuda_flash/captured_subsets*' lazy "flash: P of a run written at its head, not its slot"
mutate host/backend_cuda.c 's/while (end < shape->n_heads \&\& head_slot\[end\] == head_slot\[end - 1\] + 1) end++;/while (end < shape->n_heads \&\& head_slot[end] >= 0) end++;/' test_cuda_flash 'cuda_flash/captured_subsets*' lazy "flash: a run of heads ignores the slot order"
mutate host/backend_cuda.c '/if (impl->probs.copy_issued)$/,+1d' test_cuda_flash 'cuda_flash/attention_op*' copy-late "flash: attention does not wait for the previous P copy"
mutate host/backend_cuda.c 's/size_t slot = (size_t)head_slot\[h\], T/size_t slot = (size_t)h, T/' test_cuda_reductions 'cuda_reductions/device_reductions*' lazy "device reductions of a run written at its head, not its slot"
mutate host/run.c 's/model_forward_bytes(c, T, device_reductions ? 0 : plan->n_slots, logits_rows)/model_forward_bytes(c, T, plan->n_slots, logits_rows)/' test_cuda_reductions 'cuda_reductions/memory*' lazy "device reductions: the memory check still counts full P"
