# Compares the attention .npy files of two attnviz output directories: max |dP| per layer and overall.
import sys, glob, os, numpy as np
a, b, tol = sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
worst = 0.0
files = sorted(glob.glob(f"{a}/attention/*.npy"))
assert files, f"no .npy in {a}"
for f in files:
    x, y = np.load(f), np.load(f"{b}/attention/{os.path.basename(f)}")
    assert x.shape == y.shape, (f, x.shape, y.shape)
    d = float(np.max(np.abs(x - y))) if x.size else 0.0
    worst = max(worst, d)
    print(f"{os.path.basename(f)} {x.shape} max|dP| {d:.3g}")
print("OK" if worst <= tol else "MISMATCH", worst)
sys.exit(worst > tol)
