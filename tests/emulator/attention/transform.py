import re, sys, os
repo, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)

def remove_block(src, start):
    i = src.index(start)
    line_start = src.rfind("\n", 0, i) + 1
    # one-line definition
    eol = src.index("\n", i)
    if src[line_start:eol].rstrip().endswith("}") and src[line_start:eol].count("{") == src[line_start:eol].count("}"):
        return src[:line_start] + src[eol + 1:]
    m = re.compile(r"^(\}|\};)\s*$", re.M).search(src, i)
    return src[:line_start] + src[m.end() + 1:]

t = open(f"{repo}/kernels/attention_tiles.cuh").read()
for start in ["__device__ __forceinline__ int thread_index", "__device__ __forceinline__ uint32_t smem_address",
              "__device__ __forceinline__ void cp_async_16",
              "__device__ __forceinline__ void cp_async_commit", "template <int PENDING> __device__",
              "__device__ __forceinline__ float exp2_ftz", "__device__ __forceinline__ void ldmatrix_x4(", "__device__ __forceinline__ void ldmatrix_x4_trans",
              "template <> struct mma_op<__half>", "template <> struct mma_op<__nv_bfloat16>",
              "__device__ __forceinline__ void fence_proxy_async", "__device__ __forceinline__ void wgmma_fence",
              "__device__ __forceinline__ void wgmma_commit",
              "template <int PENDING> __device__ __forceinline__ void wgmma_wait",
              "__device__ __forceinline__ void fence_operand(float",
              "template <typename T> struct wgmma_op {"]:
    t = remove_block(t, start)
t = t.replace("template <typename T> struct mma_op;\n", "")
t = t.replace("constexpr float LN2 = 0.6931471805599453f;\n",
              "constexpr float LN2 = 0.6931471805599453f;\n#include \"emu_primitives.h\"\n")
open(f"{out}/attention_tiles.cuh", "w").write(t)

launch = re.compile(r"([A-Za-z_]\w*(?:<[^<>]*>)?)<<<(.*?)>>>\((.*?)\);", re.S)
for name in ["attention_fwd.cu", "attention_probs.cu", "attnviz_kernels.cu"]:
    s = open(f"{repo}/kernels/{name}").read()
    s = s.replace("extern __shared__ __align__(16) unsigned char smem_raw[];",
                  "unsigned char *smem_raw = emu_shared();")
    s = launch.sub(lambda m: f"emu_launch({m.group(1)}, {m.group(2)}, {m.group(3)});", s)
    open(f"{out}/{name}.cpp", "w").write(s)
