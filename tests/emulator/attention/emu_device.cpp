#include "emu_device.h"
#include <vector>
emu_dim emu_threadIdx, emu_blockIdx, emu_gridDim, emu_blockDim;

namespace {
struct fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    bool done;
    int collective; // count of collectives passed, for the slot parity
};
std::vector<fiber> fibers;
ucontext_t scheduler;
int current;
std::vector<unsigned char> shared_mem;
// slots[parity][warp][lane][16]
uint64_t slots[2][32][32][16];
void (*body_fn)(const void *);
const void *body_params;

void fiber_main() {
    body_fn(body_params);
    fibers[current].done = true;
    swapcontext(&fibers[current].ctx, &scheduler);
}
void set_thread(int t) {
    emu_threadIdx = {(unsigned)t, 0, 0};
}
} // namespace

struct pending_copy { void *dst; const void *src; bool valid; int group; };
static std::vector<pending_copy> copies[1024];
static int open_group[1024];
static bool deferred() { static int d = getenv("EMU_DEFERRED") ? 1 : 0; return d; }
static void land(const pending_copy &c) {
    if (c.valid) memcpy(c.dst, c.src, 16);
    else memset(c.dst, 0, 16);
}
void emu_cp_async(void *dst, const void *src, bool valid) {
    pending_copy c{dst, src, valid, open_group[emu_threadIdx.x]};
    if (!deferred()) land(c);
    else copies[emu_threadIdx.x].push_back(c);
}
void emu_cp_commit() { open_group[emu_threadIdx.x]++; }
void emu_cp_wait(int pending) {
    auto &list = copies[emu_threadIdx.x];
    int newest_closed = open_group[emu_threadIdx.x] - 1;
    std::vector<pending_copy> keep;
    for (auto &c : list) {
        if (c.group <= newest_closed - pending) land(c);
        else keep.push_back(c);
    }
    list.swap(keep);
}

void emu_barrier() { swapcontext(&fibers[current].ctx, &scheduler); set_thread(current); }
unsigned char *emu_shared() { return shared_mem.data(); }
int emu_lane() { return current % 32; }
int emu_warp() { return current / 32; }
uint64_t *emu_post_slot() { return slots[fibers[current].collective & 1][emu_warp()][emu_lane()]; }
const uint64_t *emu_peer_slot(int lane) { return slots[fibers[current].collective & 1][emu_warp()][lane]; }
void emu_next_collective() { fibers[current].collective++; }

void emu_run_grid(void (*body)(const void *), const void *params, dim3 grid, dim3 block, size_t smem) {
    int n = block.x;
    emu_gridDim = {grid.x, grid.y, grid.z};
    emu_blockDim = {block.x, 1, 1};
    body_fn = body;
    body_params = params;
    fibers.resize(n);
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                emu_blockIdx = {bx, by, bz};
                shared_mem.assign(smem + 16, 0xff); // NaN in every dtype: an unwritten value that is used shows
                for (int t = 0; t < n; t++) {
                    fiber &f = fibers[t];
                    f.stack.resize(256 * 1024);
                    f.done = false;
                    f.collective = 0;
                    copies[t].clear();
                    open_group[t] = 0;
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = f.stack.data();
                    f.ctx.uc_stack.ss_size = f.stack.size();
                    f.ctx.uc_link = nullptr;
                    makecontext(&f.ctx, fiber_main, 0);
                }
                // One pass runs every fiber to its next barrier: all barriers in these kernels are block-uniform.
                for (;;) {
                    int alive = 0;
                    for (int t = 0; t < n; t++) {
                        if (fibers[t].done) continue;
                        current = t;
                        set_thread(t);
                        swapcontext(&scheduler, &fibers[t].ctx);
                        alive++;
                    }
                    if (!alive) break;
                }
            }
}
