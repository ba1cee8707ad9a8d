// The CUDA runtime API that attnviz's backend and tests call, on the host, replacing libcudart at link time.
// Device memory is malloc'ed host memory (filled with 0xff bytes, a NaN pattern, when handed out). Work on a created
// stream is queued in order; EMU_MODE picks when it runs (each is a valid schedule of the stream semantics):
//   sync          every call runs its work at once;
//   lazy          (default) queued work runs only when something forces it: a synchronize, an event wait that
//                 covers it, a legacy-stream call, cudaFree, a D2H copy to pageable memory;
//   copy-late     blocking streams (the compute stream) run at once, non-blocking ones (the copy stream) lazily:
//                 a missing wait before overwriting what a copy still reads shows;
//   compute-late  the other way round: a copy that does not wait for the work producing its source shows.
// The legacy default stream (0) runs at once, after all blocking streams' queued work, as CUDA orders it.
// Kernel pointer arguments and every byte a cuBLAS product touches must lie in one live device allocation.
// Device memory is mapped PROT_NONE except while emulated device work (kernel, copy, product) runs, so host code
// that dereferences a device pointer faults as on a GPU; each allocation ends (256-byte aligned) against a guard
// page, so a kernel reading or writing past its allocation's 256-byte rounding faults too.
// Blocks run on the shared fibers of ../fibers.cpp (barriers, collectives, shared memory, cp.async); dynamic shared
// memory above 48 KiB needs the per-kernel opt-in through cudaFuncSetAttribute, as on the device.
#include "emu_kernel.h"
#include <sys/mman.h>
#include <unistd.h>
#include <deque>
#include <map>
#include <set>
#include <vector>

// Streams and events.
namespace {
struct emu_stream {
    bool blocking;
    std::deque<std::function<void()>> queue;
    long issued, done;
};
struct emu_event {
    emu_stream *stream;
    long position;
};
std::set<emu_stream *> streams;
std::set<void *> pinned;
struct allocation {
    size_t bytes;   // as asked
    char *map;      // the mapping: accessible part, then one guard page
    size_t open;    // bytes of the accessible part
};
std::map<const char *, allocation> device_allocs; // by base address
int device_open;
void set_device_access(bool on) {
    for (auto &[base, a] : device_allocs)
        if (mprotect(a.map, a.open, on ? PROT_READ | PROT_WRITE : PROT_NONE)) abort();
}
// Runs device work with device memory open (nesting: a wait inside a queued op runs another stream's work).
template <typename F> void as_device(F &&f) {
    if (!device_open++) set_device_access(true);
    f();
    if (!--device_open) set_device_access(false);
}
cudaError_t last_error = cudaSuccess;
enum { SYNC, LAZY, COPY_LATE, COMPUTE_LATE };
int mode() {
    static int m = -1;
    if (m < 0) {
        const char *e = getenv("EMU_MODE");
        m = !e || !strcmp(e, "lazy") ? LAZY : !strcmp(e, "sync") ? SYNC : !strcmp(e, "copy-late") ? COPY_LATE
            : !strcmp(e, "compute-late") ? COMPUTE_LATE : -2;
        if (m == -2) { fprintf(stderr, "EMU_MODE: sync, lazy, copy-late or compute-late\n"); abort(); }
    }
    return m;
}
bool runs_at_once(const emu_stream *s) {
    return mode() == SYNC || (mode() == COPY_LATE && s->blocking) || (mode() == COMPUTE_LATE && !s->blocking);
}
int flush_depth;

emu_stream *of(cudaStream_t s) {
    if (s == nullptr || s == cudaStreamLegacy) return nullptr;
    if (s == cudaStreamPerThread) emu_die("per-thread default stream not emulated");
    emu_stream *e = (emu_stream *)s;
    if (!streams.count(e)) emu_die("unknown or destroyed stream");
    return e;
}
void flush(emu_stream *s, long upto) {
    if (++flush_depth > 64) emu_die("circular stream dependencies");
    while (s->done < upto) {
        std::function<void()> op = std::move(s->queue.front());
        s->queue.pop_front();
        s->done++; // before running: a wait inside op may flush this stream up to here
        as_device(op);
    }
    flush_depth--;
}
void flush_all(bool blocking_only) {
    for (emu_stream *s : streams)
        if (!blocking_only || s->blocking) flush(s, s->issued);
}
// Queues OP on S, or runs it now (legacy stream: after the blocking streams' work).
void enqueue(cudaStream_t stream, std::function<void()> op) {
    emu_stream *s = of(stream);
    if (!s) {
        flush_all(true);
        as_device(op);
        return;
    }
    s->issued++;
    s->queue.push_back(std::move(op));
    if (runs_at_once(s)) flush(s, s->issued);
}
cudaError_t fail(cudaError_t e) {
    last_error = e;
    return e;
}
} // namespace

// Whether [p, p + bytes) lies in one live device allocation.
static bool in_device_memory(const void *p, size_t bytes) {
    auto it = device_allocs.upper_bound((const char *)p);
    if (it == device_allocs.begin()) return false;
    --it;
    return (const char *)p + bytes <= it->first + it->second.bytes;
}
extern "C" void emu_check_device_range(const void *p, size_t bytes, const char *what) {
    if (in_device_memory(p, bytes)) return;
    fprintf(stderr, "EMU: %s: %zu bytes at %p are not inside one device allocation\n", what, bytes, p);
    abort();
}
void emu_check_kernel_pointer(const void *p, int index) {
    if (!p || in_device_memory(p, 1)) return;
    fprintf(stderr, "EMU: kernel pointer argument %d (%p) is not device memory\n", index, p);
    abort();
}

extern "C" void emu_enqueue(cudaStream_t stream, std::function<void()> *op) { enqueue(stream, std::move(*op)); }

// Dynamic shared memory a kernel may use beyond the default 48 KiB (cudaFuncAttributeMaxDynamicSharedMemorySize),
// up to the 227 KiB of an H100/H200 block.
static std::map<const void *, int> shared_opt_in;
static const int SHARED_DEFAULT = 48 * 1024, SHARED_MAX = 227 * 1024;

void emu_launch_grid(const void *kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                     std::function<void()> fn) {
    unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (!threads || threads > 1024 || block.z > 64 || !grid.x || !grid.y || !grid.z || grid.x > 0x7fffffffu ||
        grid.y > 65535 || grid.z > 65535) {
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    auto opt_in = shared_opt_in.find(kernel);
    if (smem > (size_t)std::max(SHARED_DEFAULT, opt_in == shared_opt_in.end() ? 0 : opt_in->second)) {
        fail(cudaErrorInvalidValue);
        return;
    }
    enqueue(stream, [grid, block, smem, fn = std::move(fn)] { emu_run_blocks(grid, block, smem, fn); });
}

extern "C" {
cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) emu_die("cudaFuncSetAttribute: attribute not emulated");
    if (value < 0 || value > SHARED_MAX) return fail(cudaErrorInvalidValue);
    shared_opt_in[func] = value;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int *device) {
    *device = 0;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    if (attr != cudaDevAttrMultiProcessorCount) emu_die("cudaDeviceGetAttribute: attribute not emulated");
    if (device != 0) return fail(cudaErrorInvalidDevice);
    *value = emu_sm_count();
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return last_error; }
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    default: return "cudaErrorUnknown";
    }
}
const char *cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }

cudaError_t cudaMalloc(void **p, size_t n) {
    if (n > ((size_t)64 << 30)) {
        *p = nullptr;
        return fail(cudaErrorMemoryAllocation);
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE), used = (std::max(n, (size_t)1) + 255) / 256 * 256;
    size_t open = (used + page - 1) / page * page;
    char *map = (char *)mmap(nullptr, open + page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) {
        *p = nullptr;
        return fail(cudaErrorMemoryAllocation);
    }
    char *base = map + open - used;
    device_allocs[base] = {n, map, open};
    // Handed out as 0xff bytes (a NaN pattern), not zeros: an output never written shows.
    as_device([&] { memset(map, 0xff, open); });
    *p = base;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    flush_all(false); // cudaFree waits for the device
    auto it = device_allocs.find((const char *)p);
    if (it == device_allocs.end()) return fail(cudaErrorInvalidValue);
    munmap(it->second.map, it->second.open + (size_t)sysconf(_SC_PAGESIZE));
    device_allocs.erase(it);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    if (!*p) return fail(cudaErrorMemoryAllocation);
    memset(*p, 0xff, n);
    pinned.insert(*p);
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    if (!p) return cudaSuccess;
    flush_all(false);
    if (!pinned.erase(p)) return fail(cudaErrorInvalidValue);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    *free_bytes = (size_t)60 << 30;
    *total = (size_t)80 << 30;
    return cudaSuccess;
}
static bool is_pinned(const void *p) {
    auto it = pinned.upper_bound((void *)p);
    return it != pinned.begin() && (char *)p >= (char *)*std::prev(it); // start of a pinned block or inside one
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t stream) {
    if (!n) return cudaSuccess;
    if (kind == cudaMemcpyHostToDevice && !is_pinned(src)) {
        // Pageable source: staged at the call, the caller may reuse it on return.
        std::vector<char> staged((const char *)src, (const char *)src + n);
        enqueue(stream, [dst, staged = std::move(staged)] { memcpy(dst, staged.data(), staged.size()); });
        return cudaSuccess;
    }
    enqueue(stream, [dst, src, n] { memcpy(dst, src, n); });
    // To pageable memory the copy is synchronous for the host.
    if (kind == cudaMemcpyDeviceToHost && !is_pinned(dst)) {
        emu_stream *s = of(stream);
        if (s) flush(s, s->issued);
    }
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    flush_all(true);
    as_device([&] { memcpy(dst, src, n); });
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int v, size_t n) {
    flush_all(true);
    as_device([&] { memset(p, v, n); });
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t stream) {
    enqueue(stream, [p, v, n] { memset(p, v, n); });
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    flush_all(false);
    return cudaSuccess;
}

static cudaError_t create_stream(cudaStream_t *s, bool blocking) {
    emu_stream *e = new emu_stream{blocking, {}, 0, 0};
    streams.insert(e);
    *s = (cudaStream_t)e;
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return create_stream(s, true); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    return create_stream(s, !(flags & cudaStreamNonBlocking));
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    emu_stream *s = of(stream);
    if (s) flush(s, s->issued);
    else flush_all(true);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    emu_stream *s = of(stream);
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    flush(s, s->issued); // queued work still completes
    streams.erase(s);
    delete s;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = (cudaEvent_t) new emu_event{nullptr, 0};
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) { return cudaEventCreate(e); }
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    emu_event *e = (emu_event *)event;
    e->stream = of(stream);
    e->position = e->stream ? e->stream->issued : 0;
    return cudaSuccess;
}
static void wait_for(emu_stream *s, long position) {
    if (s && streams.count(s)) flush(s, position);
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    emu_event *e = (emu_event *)event;
    wait_for(e->stream, e->position);
    return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
    emu_event *e = (emu_event *)event;
    if (e->stream && streams.count(e->stream) && e->stream->done < e->position) return cudaErrorNotReady;
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
    delete (emu_event *)event;
    return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags) {
    emu_event *e = (emu_event *)event;
    emu_stream *s = e->stream;
    long position = e->position; // the record current at this call
    enqueue(stream, [s, position] { wait_for(s, position); });
    return cudaSuccess;
}
}
