// The shared execution model of the emulators: see fibers.h.
#include "fibers.h"
#include <ucontext.h>
#include <cstdio>
#include <cstdlib>
#include <vector>

extern "C" {
emu_dim emu_threadIdx, emu_blockIdx, emu_gridDim, emu_blockDim;
}

namespace {
struct fiber {
    ucontext_t ctx;
    char *stack;
    bool done;
    bool at_barrier; // waits at a block barrier (EMU_SCHEDULE=warps)
    int collective;  // collectives passed: the slot parity and tag
};
const size_t STACK = 256 * 1024;
std::vector<fiber> fibers(1024);
ucontext_t scheduler;
int current, n_threads;
const std::function<void()> *body;
uint64_t slots[2][32][32][16]; // [parity][warp][lane]: words 0..14 the value, 15 the collective's number
std::vector<unsigned char> shared_mem;
struct pending_copy {
    void *dst;
    const void *src;
    bool valid;
    int group;
};
std::vector<pending_copy> copies[1024]; // per thread, not yet landed
int open_group[1024];                   // per thread: the cp.async group new copies join

void set_thread(int t) {
    emu_threadIdx = {(unsigned)(t % emu_blockDim.x), (unsigned)(t / emu_blockDim.x % emu_blockDim.y),
                     (unsigned)(t / (emu_blockDim.x * emu_blockDim.y))};
}
void fiber_main() {
    (*body)();
    fibers[current].done = true;
    swapcontext(&fibers[current].ctx, &scheduler);
}
void start_block(size_t smem) {
    memset(slots, 0xff, sizeof slots);
    shared_mem.assign(smem + 16, 0xff);
    for (int t = 0; t < n_threads; t++) {
        fiber &f = fibers[t];
        copies[t].clear();
        open_group[t] = 0;
        f.done = false;
        f.at_barrier = false;
        f.collective = 0;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = STACK;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, fiber_main, 0);
    }
}
// EMU_SCHEDULE: 0 lockstep (unset), 1 warps in ascending order, -1 descending.
int warp_schedule() {
    static const char *s = getenv("EMU_SCHEDULE");
    static int w = !s || !*s || !strcmp(s, "lockstep") ? 0
                   : !strcmp(s, "warps")                  ? 1
                   : !strcmp(s, "warps_reverse")          ? -1
                                                          : 2;
    if (w == 2) emu_die("EMU_SCHEDULE is lockstep, warps or warps_reverse");
    return w;
}
// Runs fiber t to its next switch; false when it is done.
bool resume(int t) {
    current = t;
    set_thread(t);
    swapcontext(&scheduler, &fibers[t].ctx);
    return !fibers[t].done;
}
// Lockstep: every live fiber runs to its next switch, pass after pass (the kernels' barriers are block-uniform).
void run_block_lockstep() {
    for (;;) {
        int alive = 0;
        for (int t = 0; t < n_threads; t++)
            if (!fibers[t].done) alive += resume(t);
        if (!alive) break;
    }
}
// Warp by warp (in ascending order, or descending for order < 0): a warp's lanes run in lockstep until each is done
// or waits at a block barrier, then the next warp's; then every warp again from there.
void run_block_by_warps(int order) {
    const int last = (n_threads - 1) / 32 * 32;
    for (bool alive = true; alive;) {
        alive = false;
        for (int i = 0; i <= last; i += 32) {
            const int w0 = order > 0 ? i : last - i;
            for (bool meeting = true; meeting;) {
                meeting = false;
                for (int t = w0; t < n_threads && t < w0 + 32; t++) {
                    if (fibers[t].done || fibers[t].at_barrier) continue;
                    if (resume(t)) alive = true, meeting |= !fibers[t].at_barrier;
                }
            }
        }
        for (int t = 0; t < n_threads; t++) fibers[t].at_barrier = false;
    }
}
void run_block() {
    if (warp_schedule()) run_block_by_warps(warp_schedule());
    else run_block_lockstep();
}
} // namespace

[[noreturn]] void emu_die(const char *what) {
    fprintf(stderr, "EMU: %s (block %u,%u,%u thread %d)\n", what, emu_blockIdx.x, emu_blockIdx.y, emu_blockIdx.z,
            current);
    abort();
}

void emu_run_blocks(dim3 grid, dim3 block, size_t smem, const std::function<void()> &fn) {
    n_threads = (int)(block.x * block.y * block.z);
    emu_gridDim = {grid.x, grid.y, grid.z};
    emu_blockDim = {block.x, block.y, block.z};
    body = &fn;
    for (int t = 0; t < n_threads; t++)
        if (!fibers[t].stack) fibers[t].stack = (char *)malloc(STACK);
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                emu_blockIdx = {bx, by, bz};
                start_block(smem);
                run_block();
            }
}

void emu_warp_meet() {
    swapcontext(&fibers[current].ctx, &scheduler);
    set_thread(current);
}
void emu_barrier() {
    fibers[current].at_barrier = true; // the warp-by-warp schedule leaves it there until every warp has come
    emu_warp_meet();
}
uint64_t *emu_post_slot() {
    uint64_t *s = slots[fibers[current].collective & 1][current / 32 % 32][current % 32];
    s[15] = (uint64_t)fibers[current].collective;
    return s;
}
const uint64_t *emu_peer_slot(int lane) {
    // A lane may have exited after posting for this collective; one that never posted leaves an older number.
    if (current / 32 * 32 + lane >= n_threads) emu_die("collective reads a lane past the block");
    const uint64_t *s = slots[fibers[current].collective & 1][current / 32 % 32][lane];
    if (s[15] != (uint64_t)fibers[current].collective)
        emu_die("collective with a lane that did not take part (exited or diverged)");
    return s;
}
void emu_next_collective() { fibers[current].collective++; }
void emu_check_mask(unsigned mask) {
    int base = current / 32 * 32;
    unsigned want = 0;
    for (int l = 0; l < 32 && base + l < n_threads; l++) want |= 1u << l;
    if ((mask & want) != want) emu_die("shuffle mask leaves out lanes of the warp");
}
unsigned char *emu_shared() { return shared_mem.data(); }
size_t emu_shared_bytes() { return shared_mem.size(); }
int emu_lane() { return current % 32; }
int emu_warp() { return current / 32; }

int emu_sm_count() {
    static int n = getenv("EMU_SMS") ? atoi(getenv("EMU_SMS")) : 132;
    return n;
}

static bool deferred_copies() {
    static int d = getenv("EMU_DEFERRED") && strcmp(getenv("EMU_DEFERRED"), "0") ? 1 : 0;
    return d;
}
static void land(const pending_copy &c) {
    if (c.valid) memcpy(c.dst, c.src, 16);
    else memset(c.dst, 0, 16); // the zero fill of cp.async with src-size 0
}
void emu_cp_async(void *dst, const void *src, bool valid) {
    pending_copy c{dst, src, valid, open_group[current]};
    if (deferred_copies()) copies[current].push_back(c);
    else land(c);
}
void emu_cp_commit() { open_group[current]++; }
void emu_cp_wait(int pending) {
    int newest_closed = open_group[current] - 1;
    std::vector<pending_copy> keep;
    for (const pending_copy &c : copies[current]) {
        if (c.group <= newest_closed - pending) land(c);
        else keep.push_back(c);
    }
    copies[current].swap(keep);
}
