# Mutation check of the attention kernels: each deliberate bug is applied to a copy of the repository ($M, from this
# checkout without build dirs, .git or weights), built into the emulator and run; every one must make the named
# test fail. The shared tree is untouched. About 30 minutes on two cores; not part of run.sh.
HERE=$(cd "$(dirname "$0")" && pwd); R=${R:-$(cd "$HERE/../../.." && pwd)}
M=${M:-/tmp/attnviz-attention-mutants}; EMU=${EMU:-/tmp/attnviz-attention-mutants-emu}
[ -d $M/kernels ] || { mkdir -p $M && (cd $R && tar cf - --exclude='./build*' --exclude=./.git --exclude=./weights .) | tar xf - -C $M; }
mutate() { # file, sed expression, test filter, EMU_DEFERRED, label, build (default sm90a); EMU_SCHEDULE passes through
  cp $R/$1 $M/$1; sed -i "$2" $M/$1
  if cmp -s $R/$1 $M/$1; then echo "MUTATION NOT APPLIED: $5"; return; fi
  R=$M EMU=$EMU ARCHS=${6:-sm90a} bash $HERE/build.sh > $EMU.build.log 2>&1 || { echo "build failed: $5"; cp $R/$1 $M/$1; return; }
  out=$(cd $EMU && EMU_DEFERRED=$4 LD_LIBRARY_PATH=/usr/local/cuda/lib64 ./test_cuda_attention_${6:-sm90a} --jobs 2 \
        --filter "cuda_attention/$3" 2>&1 | grep Synthesis)
  case "$out" in *"Failing: 0 "*) echo "NOT CAUGHT: $5 ($out)";; *) echo "caught: $5 [deferred $4] $out";; esac
  cp $R/$1 $M/$1
}
P=kernels/attention_probs.cu F=kernels/attention_fwd.cu A=kernels/attention_tiles.cuh
mutate $P 's/const int bits = 16 \* (shift - staged_shift<O>(shift));/const int bits = 0;/' 'full_probs*' 0 \
  "P writer: odd 2-byte shifts not funnel-shifted"
mutate $P 's/end % CHUNK != 0 \&\& !(c == 0/end % CHUNK != 0 \&\& c > 1 \&\& !(c == 0/' 'full_probs*' 0 \
  "P writer: a row's last partial chunk skipped"
mutate $P 's/const int lo = w.continued ? 0 : shift, hi/const int lo = shift, hi/' 'full_probs*' 0 \
  "P writer: the carried end of the last segment not written"
mutate $P 's/write_warp_rows(stage, carry_of(1, mb), s\[mb\],/write_warp_rows(stage, carry_of(0, mb), s[mb],/' 'full_probs*' 0 \
  "P writer: probs and rows carry row ends in one place"
mutate $P 's/return carries + (output \* RB + mb) \* WARPS \* 16;/return carries + output * RB * WARPS * 16;/' 'maps_by*' 0 \
  "two row blocks: both carry their row ends in one place"
mutate $P 's/last_tile = kt + 1 == min(kt_stop, kt_end_of(mb));/last_tile = kt + 1 == min(kt_stop, kt_end);/' 'maps_by*' 0 \
  "two row blocks: the first one's last key tile taken for the block's (its row ends left in the carries)"
mutate $P 's/load_mma_tile_async<T, D, WGMMA>(qs + mb \* TILE, q, p.q_row, r0 + mb \* TILE_M, T_len);/load_mma_tile_async<T, D, WGMMA>(qs + mb * TILE, q, p.q_row, r0, T_len);/' \
  'maps_by*' 0 "two row blocks: both load the first one's Q"
mutate $P 's/row_lse2(lse2\[mb\], lse, r0 + mb \* TILE_M,/row_lse2(lse2[mb], lse, r0,/' 'maps_by*' 0 \
  "two row blocks: both take the first one's LSE"
mutate $P 's/exact_probs(s\[mb\], p, lse2\[mb\], rb0, c0,/exact_probs(s[mb], p, lse2[mb], r0, c0,/' 'maps_by*' 0 \
  "two row blocks: the second masked by the first one's rows"
mutate $P 's/const int zeros_from = kt_end_of(mb) \* TILE_N,/const int zeros_from = kt_end * TILE_N,/' 'maps_by*' 0 \
  "two row blocks: square zeros from the block's last diagonal tile, not each row block's"
mutate $P 's|return {p.rows_begin / rows, (p.rows_end - 1) / rows - p.rows_begin / rows + 1};|return {p.rows_begin / TILE_M, (p.rows_end - 1) / rows - p.rows_begin / rows + 1};|' \
  'maps_by*' 0 "rows alone: the first launched tile counted in 64-row tiles"
mutate $A 's/mma_op<T>::run(s\[mb\]\[nb + 1\], a\[mb\], b\[2\], b\[3\]);/mma_op<T>::run(s[mb][nb + 1], a[0], b[2], b[3]);/' \
  'maps_by*' 0 "scores by mma.sync: the second row block multiplies the first one's Q (odd key blocks)"
mutate $P 's/const bool first_tile = kt == kt_first, last_tile/const bool first_tile = kt == 0, last_tile/' 'maps_by*' 0 \
  "key chunks of the maps: a chunk's first tile continues rows from a carry it never got"
mutate $P 's/last_tile = kt + 1 == min(kt_stop, kt_end_of(mb));/last_tile = kt + 1 == kt_end_of(mb);/' 'maps_by*' 0 \
  "key chunks of the maps: a chunk's last tile leaves its rows' ends in the carries"
mutate $P 's/if (w.goes_on \&\& w.n0 + r \* w.n_growth > TILE_N)/if (w.n0 + r * w.n_growth > TILE_N)/' 'full_probs*' 0 \
  "P writer: a row end carried past the caller's last key tile"
mutate $P 's/return {__shfl_sync(0xffffffffu, mine.offset, r), __shfl_sync(0xffffffffu, mine.n, r)};/return {__shfl_sync(0xffffffffu, mine.offset, r), __shfl_sync(0xffffffffu, mine.n, r % 8)};/' \
  'full_probs*' 0 "P writer: row lengths taken from the wrong lane"
mutate $P 's|for (int m = lanes / 2; m >= 1; m /= 2) sum +=|for (int m = lanes / 4; m >= 1; m /= 2) sum +=|' \
  'rows_colsums*' 0 "pooling: query-bin shuffle tree one step short"
mutate $P 's/        if (i + k < n) chain\[k\] += x/        if (k > 0 \&\& i + k < n) chain[k] += x/' 'rows_colsums*' 0 \
  "strided sums: a term of the tail dropped"
mutate $P 's/if (pooled \&\& !p.pool_partial) zero_pooled_past(/if (false) zero_pooled_past(/' 'rows_colsums*' 0 \
  "pooling in tiles: bins past the causal diagonal not zeroed"
mutate $P 's|= sum / (float)min(pool, T - I \* pool);|= sum / (float)pool;|' 'rows_colsums*' 0 \
  "pooling in tiles: a short last bin divided by the pool, not its rows"
mutate $P 's|    if (r0 + TILE_M <= T) return;|    return;|' \
  'rows_colsums*' 0 "pooling in registers: rows past the sequence summed"
mutate $P 's|for (int m = 4; m < 4 \* rows; m \*= 2)|for (int m = 4; m < 2 * rows; m *= 2)|' 'rows_colsums*' 0 \
  "pooling in tiles: a bin's rows summed one lane step short"
mutate $P 's|for (int w = lq \* warps; w < (lq + 1) \* warps; w++)|for (int w = lq * warps; w < lq * warps + 1; w++)|' \
  'rows_colsums*' 0 "pooling in tiles: a bin of 32 or 64 rows takes one warp's sum"
mutate $P '/^    run\[0\] = run\[1\] = 0.0f;$/d' \
  'rows_colsums*' 0 "pooling over key tiles: a bin's sums carried into the next bin"
mutate $P 's/if ((c0 + TILE_N) % pool != 0 \&\& !last_tile) return;/if ((c0 + TILE_N) % pool != 0) return;/' \
  'rows_colsums*' 0 "pooling over key tiles: a bin cut short by the causal diagonal never written"
mutate $A 's|constexpr int KSTEP = 2 \* CORE_STRIDE / 16;|constexpr int KSTEP = CORE_STRIDE / 16;|' 'rows_colsums*' 0 \
  "wgmma scores: a k-step advances the descriptors one core matrix, not two"
mutate $A 's|return tile_descriptor(tile, CORE_STRIDE, group_bytes<D>());|return tile_descriptor(tile, CORE_STRIDE, group_bytes<D>() / 2);|' \
  'rows_colsums*' 0 "wgmma scores: the descriptors' row-group stride half the layout's"
mutate $A 's|c \* CORE_STRIDE + r % 8 \* 16|c * 128 + r % 8 * 16|' 'rows_colsums*' 0 \
  "interleaved tile load: a row's chunks packed, where the descriptors skip 16 bytes after each"
mutate $A 's|ROWS_PER_PASS / 8 \* group_bytes<D>()|ROWS_PER_PASS / 16 * group_bytes<D>()|' 'rows_colsums*' 0 \
  "interleaved tile load: a pass's rows land half as many row groups further"
mutate $P 's|ks + (kt_first % KB) \* TILE, k, p.k_row, kt_first \* TILE_N|ks, k, p.k_row, kt_first * TILE_N|' \
  'rows_colsums*' 0 "key chunks: a chunk starting on an odd tile loads its first K into the other buffer"
mutate $P 's|const int kt_first = where.qt % split.chunks \* split.tiles,|const int kt_first = where.qt % split.chunks * split.tiles + (where.qt % split.chunks > 0),|' \
  'rows_colsums*' 0 "key chunks: every chunk but the first skips its first key tile"
mutate $P 's|    if (kt_stop < kt_end) return; // the chunk|    if (false) return; // the chunk|; s|zero_pooled_past(pooled, pool, r0, nr, kt_end \* TILE_N|zero_pooled_past(pooled, pool, r0, nr, kt_stop * TILE_N|' \
  'rows_colsums*' 0 "key chunks: every chunk zeroes the bins past its own last key tile"
mutate $A 's|(int)(rest % (unsigned)n_slots), (int)(rest / (unsigned)n_slots)}|(int)(rest % (unsigned)n_slots), (int)(rest / per_tile)}|' \
  'forward*' 0 "launch order: every block takes batch entry 0"
mutate $P 's/if (!p.col_partial \&\& !p.pooled) return probs_pass::maps;/if (!p.col_partial) return probs_pass::maps;/' \
  'rows_colsums*' 0 "probability pass: pooling alone runs the maps copy, which writes no pooled map"
mutate $P 's/if (PASS == probs_pass::maps) p.col_partial = p.pool_partial = p.pooled = nullptr;/if (PASS == probs_pass::maps) p.col_partial = p.pool_partial = p.pooled = nullptr, p.rows = nullptr;/' \
  'full_probs*' 0 "probability pass: the maps copy drops the rows output"
mutate $P 's/const bool next_k = last_head || next_h \/ group_size != kvh;/const bool next_k = last_head;/' \
  'head_mean*' 0 "head reduction: K not reloaded when the key/value head changes"
mutate $P 's/for (int h = h0; h < h0 + heads_per_group; h++, item++) {/for (int h = h0; h < h0 + heads_per_group; h++, item += 2) {/' \
  'head_mean*' 1 "head reduction: the next item's Q loads into the buffer in use"
mutate $F 's/        for (int i = 0; i < 2; i++) moved |= alpha\[mb\]\[i\] != 1.0f;/        for (int i = 0; i < 2; i++) moved |= mb == 0 \&\& alpha[mb][i] != 1.0f;/' 'forward*' 0 \
  "forward: the rescale vote ignores the second row block"
mutate $F 's|            cp_async_wait<1>(); // this thread|            cp_async_wait<2>(); // this thread|' 'forward*' 1 \
  "forward (D = 128): P V does not wait for V"
mutate $F 's|if constexpr (pipelined<D>()) load_tile_async<T, D, TILE_N>(vs + V_TILE|if constexpr (false) load_tile_async<T, D, TILE_N>(vs + V_TILE|' \
  'forward*' 0 "forward: the V buffer P V reads before the first tile not zeroed"
mutate $F 's|load_tile_async<T, D, TILE_N>(vs + (kt % 2) \* V_TILE|load_tile_async<T, D, TILE_N>(vs + ((kt + 1) % 2) * V_TILE|' \
  'forward*' 0 "forward: V of tile kt loads into the buffer P V of tile kt - 1 reads"
mutate $F 's|load_tile_async<T, D, TILE_N>(ks + ((kt + 1) % 2)|load_tile_async<T, D, TILE_N>(ks + (kt % 2)|' \
  'forward*' 0 \
  "forward: the next K tile loads into the buffer in use"
mutate $F 's/constexpr int SMEM = forward_smem_bytes<T, D, pipelined<D>() ? 2 : 1>();/constexpr int SMEM = forward_smem_bytes<T, D, 1>();/' \
  'forward*' 0 "forward launch: shared memory for one V buffer where D = 64 uses two"
mutate $A 's/load_query_kstep<T, D>(a\[mb\], q_warp + mb \* BLOCK_STRIDE, ks, lane);/load_query_kstep<T, D>(a[mb], q_warp, ks, lane);/' \
  'maps_by*' 0 "Q from shared memory (the maps_q_shared A/B build): the second row block reads the first one's Q" maps_q_shared
EMU_SCHEDULE=warps mutate $P 's|            __syncthreads(); // every warp has its S: the one K buffer is free|            // (no barrier)|' \
  'maps_by*' 0 "one K buffer (the maps_q_shared A/B build, D = 128): the next K tile loads over one a warp still reads; warp by warp" \
  maps_q_shared
