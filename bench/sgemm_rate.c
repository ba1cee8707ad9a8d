// Measures this machine's two CPU ceilings for the benchmark floors, with the thread count the caller sets through
// OPENBLAS_NUM_THREADS: the float32 GEMM rate of OpenBLAS (the library attnviz's CPU backend uses) and the memcpy
// bandwidth (bytes read plus bytes written). Prints one JSON object.
//
// Build: cc -O2 -std=c11 bench/sgemm_rate.c $(pkg-config --cflags --libs openblas) -o sgemm_rate
// Usage: sgemm_rate [REPEATS]
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// OpenBLAS extension (cblas.h declares it in recent versions; declared here for older headers): the kernel family
// it picked for this CPU, "Prescott" when it did not recognise the CPU.
char *openblas_get_corename(void);

typedef struct gemm_shape {
    int m, n, k;
    const char *what;
} gemm_shape;

// GPT-2 small at T = 1024: the fused QKV and MLP products, and a square product for the library's best case.
static const gemm_shape SHAPES[] = {
    {1024, 2304, 768, "qkv T=1024"},
    {1024, 3072, 768, "mlp_fc T=1024"},
    {2048, 2048, 2048, "square 2048"},
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// A ceiling is what the machine can do: the fastest of the repeats, since on a shared machine the others include
// time lost to other processes.
static double fastest(const double *v, int n) {
    double best = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < best)
            best = v[i];
    return best;
}

// Uniform in [-1, 1): random operands, never zeros (zeros can run faster than real data).
static void fill_random(float *x, size_t n, uint64_t *state) {
    for (size_t i = 0; i < n; i++) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((*state >> 40) * (1.0 / (1ULL << 24))) * 2.0f - 1.0f;
    }
}

// Fastest seconds of one row-major C (m, n) = A (m, k) · B (k, n) after one warm-up call.
static double time_sgemm(const gemm_shape *s, int repeats, uint64_t *rng) {
    float *a = malloc(sizeof(float) * (size_t)s->m * (size_t)s->k);
    float *b = malloc(sizeof(float) * (size_t)s->k * (size_t)s->n);
    float *c = malloc(sizeof(float) * (size_t)s->m * (size_t)s->n);
    double *times = malloc(sizeof(double) * (size_t)repeats);
    if (!a || !b || !c || !times) {
        fprintf(stderr, "sgemm_rate: out of memory\n");
        exit(1);
    }
    fill_random(a, (size_t)s->m * (size_t)s->k, rng);
    fill_random(b, (size_t)s->k * (size_t)s->n, rng);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->m, s->n, s->k, 1.0f, a, s->k, b, s->n, 0.0f, c,
                s->n);
    for (int r = 0; r < repeats; r++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->m, s->n, s->k, 1.0f, a, s->k, b, s->n, 0.0f, c,
                    s->n);
        times[r] = now_seconds() - t0;
    }
    // A product that produced NaN or left C untouched would make the rate meaningless.
    if (!(c[0] == c[0]) || c[(size_t)s->m * (size_t)s->n - 1] == 0.0f) {
        fprintf(stderr, "sgemm_rate: suspicious result for %s\n", s->what);
        exit(1);
    }
    double t = fastest(times, repeats);
    free(a);
    free(b);
    free(c);
    free(times);
    return t;
}

// Fastest seconds of one memcpy of BYTES between two buffers far larger than the caches.
static double time_memcpy(size_t bytes, int repeats, uint64_t *rng) {
    float *src = malloc(bytes), *dst = malloc(bytes);
    double *times = malloc(sizeof(double) * (size_t)repeats);
    if (!src || !dst || !times) {
        fprintf(stderr, "sgemm_rate: out of memory\n");
        exit(1);
    }
    fill_random(src, bytes / sizeof(float), rng);
    memcpy(dst, src, bytes); // faults the destination pages in before timing
    for (int r = 0; r < repeats; r++) {
        double t0 = now_seconds();
        memcpy(dst, src, bytes);
        times[r] = now_seconds() - t0;
    }
    if (memcmp(dst, src, 4096) != 0) {
        fprintf(stderr, "sgemm_rate: memcpy check failed\n");
        exit(1);
    }
    double t = fastest(times, repeats);
    free(src);
    free(dst);
    free(times);
    return t;
}

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 10;
    if (repeats < 1) {
        fprintf(stderr, "usage: sgemm_rate [REPEATS >= 1]\n");
        return 2;
    }
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    const int n_shapes = (int)(sizeof SHAPES / sizeof SHAPES[0]);
    double best_gflops = 0.0;
    printf("{\"core\": \"%s\", \"threads\": %d, \"gemm\": [", openblas_get_corename(), openblas_get_num_threads());
    for (int i = 0; i < n_shapes; i++) {
        const gemm_shape *s = &SHAPES[i];
        double seconds = time_sgemm(s, repeats, &rng);
        double gflops = 2.0 * s->m * s->n * s->k / seconds * 1e-9;
        if (gflops > best_gflops)
            best_gflops = gflops;
        printf("%s{\"what\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"best_s\": %.6g, \"gflops\": %.2f}",
               i ? ", " : "", s->what, s->m, s->n, s->k, seconds, gflops);
    }
    const size_t copy_bytes = (size_t)256 << 20;
    double copy_seconds = time_memcpy(copy_bytes, repeats, &rng);
    // Bytes read plus bytes written, as the floors count them.
    double copy_gbs = 2.0 * (double)copy_bytes / copy_seconds * 1e-9;
    printf("], \"sgemm_gflops\": %.2f, \"memcpy_bytes\": %zu, \"memcpy_gbs\": %.2f}\n", best_gflops, copy_bytes,
           copy_gbs);
    return 0;
}
