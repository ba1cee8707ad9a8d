// Emulated replacements of the inline-PTX primitives of attention_tiles.cuh (inside namespace avk).
inline int thread_index() { return (int)threadIdx.x; }
// st.global.cs: a plain store (the cache hint has no meaning here).
inline void __stcs(uint4 *p, uint4 v) { *p = v; }
// __byte_perm (the P writer's splice of a carried row end): byte n of the result is byte (s >> 4 n) & 7 of y:x.
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    const uint64_t bytes = (uint64_t)y << 32 | x;
    unsigned r = 0;
    for (int n = 0; n < 4; n++) r |= (unsigned)(bytes >> (8 * ((s >> (4 * n)) & 7)) & 0xff) << (8 * n);
    return r;
}
// __ffs (the in-place pooling's log2 of the pool): 1 + the index of the lowest set bit, 0 for 0.
inline int __ffs(int x) { return x == 0 ? 0 : 1 + __builtin_ctz((unsigned)x); }
// Shared-memory addresses are offsets into the block's emulated shared memory (wgmma descriptors carry them).
inline uint32_t smem_address(const void *p) {
    const ptrdiff_t at = static_cast<const unsigned char *>(p) - emu_shared();
    if (at < 0 || (size_t)at >= emu_shared_bytes()) emu_die("shared-memory address outside the block's");
    return (uint32_t)at;
}
// EMU_DEFERRED=1: copies land only at the wait that covers their group (a read before the wait sees stale
// bytes); otherwise they land at once (a write racing with other warps' reads shows).
inline void cp_async_16(void *dst, const void *src, bool valid) { ::emu_cp_async(dst, src, valid); }
inline void cp_async_commit() { ::emu_cp_commit(); }
template <int PENDING> inline void cp_async_wait() { ::emu_cp_wait(PENDING); }

// ex2.approx.ftz.f32: denormal results are flushed to zero.
inline float exp2_ftz(float x) {
    float y = exp2f(x);
    return std::fpclassify(y) == FP_SUBNORMAL ? 0.0f : y;
}

// __any_sync (the warp vote of the forward's rescale): a collective through the lanes' slots.
inline int __any_sync(unsigned mask, int predicate) {
    emu_check_mask(mask);
    emu_post(predicate != 0);
    bool any = false;
    for (int lane = 0; lane < 32; lane++) any |= emu_peer<bool>(lane);
    emu_next_collective();
    return any;
}

// __shfl_sync (the probability writer's row table): lane src's value, through the lanes' slots.
inline int __shfl_sync(unsigned mask, int v, int src) {
    emu_check_mask(mask);
    emu_post(v);
    const int r = emu_peer<int>(src % 32);
    emu_next_collective();
    return r;
}

inline uint16_t emu_bits16(const unsigned char *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
inline void emu_ldmatrix(uint32_t r[4], const void *p, bool trans) {
    emu_post(static_cast<const unsigned char *>(p));
    int t = emu_lane();
    for (int i = 0; i < 4; i++) {
        const unsigned char *row[8];
        for (int k = 0; k < 8; k++) row[k] = emu_peer<const unsigned char *>(8 * i + k);
        uint16_t lo, hi;
        if (!trans) {
            lo = emu_bits16(row[t / 4] + 2 * (2 * (t % 4)));
            hi = emu_bits16(row[t / 4] + 2 * (2 * (t % 4) + 1));
        } else {
            lo = emu_bits16(row[2 * (t % 4)] + 2 * (t / 4));
            hi = emu_bits16(row[2 * (t % 4) + 1] + 2 * (t / 4));
        }
        r[i] = lo | ((uint32_t)hi << 16);
    }
    emu_next_collective();
}
inline void ldmatrix_x4(uint32_t r[4], const void *p) { emu_ldmatrix(r, p, false); }
inline void ldmatrix_x4_trans(uint32_t r[4], const void *p) { emu_ldmatrix(r, p, true); }

inline float emu_to_float(uint16_t b, bool bf16) {
    if (bf16) {
        uint32_t u = (uint32_t)b << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    __half_raw raw;
    raw.x = b;
    return __half2float(__half(raw));
}

// Lane's four A registers of a 16 x 16 A operand (the mma.m16n8k16 layout, which wgmma's register A shares) into A.
inline void emu_unpack_a(float A[16][16], int lane, const uint32_t r[4], bool bf16) {
    const int g = lane / 4, t = lane % 4;
    for (int j = 0; j < 2; j++) {
        A[g][2 * t + j] = emu_to_float((uint16_t)(r[0] >> (16 * j)), bf16);
        A[g + 8][2 * t + j] = emu_to_float((uint16_t)(r[1] >> (16 * j)), bf16);
        A[g][2 * t + 8 + j] = emu_to_float((uint16_t)(r[2] >> (16 * j)), bf16);
        A[g + 8][2 * t + 8 + j] = emu_to_float((uint16_t)(r[3] >> (16 * j)), bf16);
    }
}

inline void emu_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1, bool bf16) {
    struct operands {
        uint32_t a[4], b0, b1;
    };
    emu_post(operands{{a[0], a[1], a[2], a[3]}, b0, b1});
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        const operands o = emu_peer<operands>(l);
        emu_unpack_a(A, l, o.a, bf16);
        const int g = l / 4, t = l % 4;
        for (int j = 0; j < 2; j++) {
            B[2 * t + j][g] = emu_to_float((uint16_t)(o.b0 >> (16 * j)), bf16);
            B[2 * t + 8 + j][g] = emu_to_float((uint16_t)(o.b1 >> (16 * j)), bf16);
        }
    }
    int g = emu_lane() / 4, t = emu_lane() % 4;
    for (int e = 0; e < 4; e++) {
        int row = g + (e / 2) * 8, col = 2 * t + e % 2;
        float acc = c[e];
        for (int k = 0; k < 16; k++) acc += A[row][k] * B[k][col];
        c[e] = acc;
    }
    emu_next_collective();
}

template <typename T> struct mma_op;
template <> struct mma_op<__half> {
    static void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) { emu_mma(c, a, b0, b1, false); }
    static uint32_t pack(float lo, float hi) {
        __half2 h = __floats2half2_rn(lo, hi);
        uint32_t u;
        memcpy(&u, &h, 4);
        return u;
    }
};
template <> struct mma_op<__nv_bfloat16> {
    static void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) { emu_mma(c, a, b0, b1, true); }
    static uint32_t pack(float lo, float hi) {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        uint32_t u;
        memcpy(&u, &h, 4);
        return u;
    }
};

// Warpgroup MMA: wgmma.m64n64k16 with A and B K-major in shared memory (S = Q K^T), no swizzle, through
// descriptors. Each thread's share is computed as the descriptors describe the tiles (core matrices of 8 rows x 16
// bytes: element (mn, k) at start + k / 8 * leading + mn / 8 * stride + mn % 8 * 16 + k % 8 * 2), and only when a
// wgmma.wait_group covers its commit group, reading shared memory then: like the hardware, which reads its operands
// and writes the accumulators asynchronously. The accumulators a wgmma was issued with must be untouched until that
// wait (the PTX ISA makes any access undefined); the emulation checks, so a kernel that reads or changes them early
// stops the run.
struct emu_wgmma_op {
    float *d; // this thread's 32 accumulators, in the mma.sync C fragment order
    uint64_t a, b;
    bool accumulate, bf16;
    float d_issued[32];
};
inline std::vector<emu_wgmma_op> emu_wgmma_open[1024];                 // issued, not yet committed, per thread
inline std::vector<std::vector<emu_wgmma_op>> emu_wgmma_groups[1024];  // committed groups, oldest first
inline int emu_thread() { return emu_warp() * 32 + emu_lane(); }

inline float emu_wgmma_element(uint64_t desc, int mn, int k, bool bf16) {
    if (desc >> 62) emu_die("wgmma descriptor with a swizzle mode (the emulation knows the interleaved layout only)");
    const size_t start = (desc & 0x3fff) << 4, leading = (desc >> 16 & 0x3fff) << 4;
    const size_t stride = (desc >> 32 & 0x3fff) << 4;
    const size_t at = start + (size_t)(k / 8) * leading + (size_t)(mn / 8) * stride + mn % 8 * 16 + k % 8 * 2;
    if (at + 2 > emu_shared_bytes()) emu_die("wgmma operand past the block's shared memory");
    return emu_to_float(emu_bits16(emu_shared() + at), bf16);
}
inline void emu_wgmma_execute(const emu_wgmma_op &op) {
    const int w = emu_warp() % 4, g = emu_lane() / 4, t = emu_lane() % 4; // warp w of the warpgroup: rows 16 w ..
    for (int nb = 0; nb < 8; nb++)
        for (int e = 0; e < 4; e++) {
            const int row = 16 * w + g + 8 * (e / 2), col = 8 * nb + 2 * t + e % 2;
            float acc = op.accumulate ? op.d[4 * nb + e] : 0.0f;
            for (int k = 0; k < 16; k++)
                acc += emu_wgmma_element(op.a, row, k, op.bf16) * emu_wgmma_element(op.b, col, k, op.bf16);
            op.d[4 * nb + e] = acc;
        }
}
inline void emu_wgmma_issue(emu_wgmma_op op) {
    memcpy(op.d_issued, op.d, sizeof op.d_issued);
    emu_wgmma_open[emu_thread()].push_back(op);
}
inline void fence_proxy_async() {}
inline void wgmma_fence() {}
inline void fence_operand(float &) {}
inline void wgmma_commit() {
    emu_wgmma_groups[emu_thread()].push_back(std::move(emu_wgmma_open[emu_thread()]));
    emu_wgmma_open[emu_thread()].clear();
}
// Completes every committed group but the newest PENDING, oldest first.
template <int PENDING> inline void wgmma_wait() {
    if (!emu_wgmma_open[emu_thread()].empty()) emu_die("wgmma.wait_group with uncommitted wgmma (not waited for)");
    auto &groups = emu_wgmma_groups[emu_thread()];
    const size_t done = groups.size() > PENDING ? groups.size() - PENDING : 0;
    std::vector<const float *> written; // accumulators an op of this wait has already advanced
    for (size_t i = 0; i < done; i++)
        for (const auto &op : groups[i]) {
            if (std::find(written.begin(), written.end(), op.d) == written.end() &&
                memcmp(op.d, op.d_issued, sizeof op.d_issued) != 0)
                emu_die("wgmma accumulators changed before the wgmma.wait_group that covers them");
            emu_wgmma_execute(op);
            written.push_back(op.d);
        }
    groups.erase(groups.begin(), groups.begin() + done);
}
template <typename T> struct wgmma_op {
    static void run(float d[32], uint64_t a, uint64_t b, int accumulate) {
        emu_wgmma_op op{};
        op.d = d, op.a = a, op.b = b, op.accumulate = accumulate != 0;
        op.bf16 = std::is_same<T, __nv_bfloat16>::value;
        emu_wgmma_issue(op);
    }
};
