// The execution model both emulators share (backend/ and attention/): a grid runs one block at a time, the block's
// threads as ucontext fibers that switch at every barrier and warp meeting. By default every thread runs to its next
// switch in turn, so the block's warps move in lockstep; with EMU_SCHEDULE=warps each warp runs alone, its lanes in
// lockstep, from one block barrier to the next, warp after warp, so that one warp's writes to shared memory between
// two barriers come before another's reads (a race that lockstep hides shows). A warp collective posts each lane's
// value in a per-warp slot, meets the warp, and reads the peers' slots; the slots are double buffered by the
// collective's number and tagged with it, so a lane that exited or diverged (did not post for the same collective) is
// caught.
// Each block gets its dynamic shared memory (0xff bytes: NaN in every dtype, so a value used before it is written
// shows), and its cp.async copies land at once or, with EMU_DEFERRED set and not 0, only at the
// cp.async.wait_group that covers them.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

#undef threadIdx
#undef blockIdx
#undef gridDim
#undef blockDim
struct emu_dim { unsigned x, y, z; };
extern "C" emu_dim emu_threadIdx, emu_blockIdx, emu_gridDim, emu_blockDim;
#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define gridDim emu_gridDim
#define blockDim emu_blockDim

// Runs body for every thread of every block of the grid, now.
void emu_run_blocks(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body);
// The emulated device's SM count (cudaDevAttrMultiProcessorCount): EMU_SMS, default 132 (an H100/H200 SXM). The
// kernels size nothing by it; a launch heuristic reads it (the probability pass's key split).
int emu_sm_count();
[[noreturn]] void emu_die(const char *what); // message with the running block and thread, then abort

void emu_barrier();                      // __syncthreads
void emu_warp_meet();                    // __syncwarp, and the meeting point of every collective
#define __syncthreads() emu_barrier()
#define __syncwarp() emu_warp_meet()
static inline int min(int a, int b) { return a < b ? a : b; } // the device's integer min and max
static inline int max(int a, int b) { return a > b ? a : b; }
uint64_t *emu_post_slot();               // this lane's slot for its current collective (16 words; 15 is the tag)
const uint64_t *emu_peer_slot(int lane); // lane's slot for the same collective (checked: posted for it)
void emu_next_collective();
void emu_check_mask(unsigned mask);      // a shuffle mask must name every lane of the warp
unsigned char *emu_shared();             // the running block's dynamic shared memory
size_t emu_shared_bytes();
int emu_lane();
int emu_warp();

// A collective's exchange: post this lane's value, meet, read the peers' (emu_peer), then emu_next_collective().
template <typename T> void emu_post(const T &v) {
    static_assert(sizeof(T) <= 8 * 15 && std::is_trivially_copyable<T>::value, "fits a slot");
    memcpy(emu_post_slot(), &v, sizeof v);
    emu_warp_meet();
}
template <typename T> T emu_peer(int lane) {
    T r;
    memcpy(&r, emu_peer_slot(lane), sizeof r);
    return r;
}

template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    static_assert(sizeof(T) <= 8, "shuffle of a 4/8-byte value");
    emu_check_mask(mask);
    emu_post(v);
    const int lane = emu_lane();
    const T r = emu_peer<T>((lane ^ lane_mask) % width + lane / width * width);
    emu_next_collective();
    return r;
}

void emu_cp_async(void *dst, const void *src, bool valid); // 16 bytes, or (not valid) 16 zero bytes
void emu_cp_commit();
void emu_cp_wait(int pending);
