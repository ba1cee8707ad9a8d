# Copies the backend kernels to OUT/<name>.cu.cpp with every `kernel<<<grid, block, shared, stream>>>(args);`
# rewritten to `emu_launch(kernel, grid, block, shared, stream, args);`. Nothing else in the kernels changes.
import re, sys, os
repo, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
launch = re.compile(r"([A-Za-z_]\w*(?:<[^<>]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\);", re.S)
for name in ["embedding", "layernorm", "rmsnorm", "rope", "swiglu", "activation", "residual", "softmax", "convert"]:
    s = open(f"{repo}/kernels/{name}.cu").read()
    def sub(m):
        cfg = [c.strip() for c in m.group(2).split(",")]
        cfg += ["0", "0"][len(cfg) - 2:] if len(cfg) < 4 else []
        args = m.group(3).strip()
        return f"emu_launch({m.group(1)}, {', '.join(cfg)}{', ' + args if args else ''});"
    s, n = launch.subn(sub, s)
    assert n > 0, name
    open(f"{out}/{name}.cu.cpp", "w").write(s)
