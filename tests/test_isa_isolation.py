"""One build for any x86-64: no instruction beyond a CPU's ISA runs on it.

Two checks. Statically, every function in the compiled module that uses AVX registers or
instructions must belong to the namespace of an AVX ISA (fastrnn::avx2, avx512, amx), whose
code runs only after the CPU check picks it (the build also checks the ISA objects themselves:
cmake/check_isa_objects.cmake). Dynamically, the whole stack (import, backends(), forward,
backward and a streaming step of every cell) runs under an emulated CPU without AVX (Nehalem:
the scalar path) and without AVX-512 (Haswell: AVX2), and gives bitwise the results of the same path run natively.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn import _C

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "isa_probe.py")

# mangled names in namespace fastrnn::avx2 / avx512 / amx, with guard/TLS/local-entity prefixes
# (a lambda inside a lambda is _ZZZN...)
AVX_NAMESPACE = re.compile(r"^_Z(GV|TH|TW)?Z*N[rVK]*[RO]?7fastrnn(4avx2|6avx512|3amx)")
# an AVX instruction: VEX/EVEX-only mnemonics (v...), mask-register ops (k...), or ymm/zmm/k regs
AVX_INSN = re.compile(r"^\s*[0-9a-f]+:\s+(v|k)[a-z0-9]+\b|%[yz]mm\d|%k[0-7]\b")


def test_no_avx_code_outside_the_avx_namespaces():
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) is not installed")
    text = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", _C.__file__],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    functions = re.split(r"\n(?=[0-9a-f]+ <)", text)
    names = []
    offenders = []
    for body in functions:
        m = re.match(r"[0-9a-f]+ <([^>]+)>:", body)
        if not m:
            continue
        name = m.group(1).split("@")[0]
        names.append(name)
        if AVX_NAMESPACE.match(name):
            continue
        if any(AVX_INSN.search(line) for line in body.splitlines()[1:]):
            offenders.append(name)
    # the module must carry its symbol table, or this check would prove nothing
    assert sum(bool(AVX_NAMESPACE.match(n)) for n in names) > 50, "no symbols: module stripped?"
    assert not offenders, f"AVX code outside fastrnn::avx2/avx512/amx: {offenders[:10]}"


def _run_probe(out: str, env_extra: dict[str, str], qemu_cpu: str | None) -> dict:
    env = dict(os.environ, **env_extra)
    # the package as this process imports it, whichever way it was installed
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastrnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent, env.get("PYTHONPATH", "")])
    cmd = [sys.executable, PROBE, out]
    if qemu_cpu:
        cmd = [shutil.which("qemu-x86_64") or "qemu-x86_64", "-cpu", qemu_cpu, *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, f"{' '.join(cmd[:3])}: exit {r.returncode}\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "cpu,isa", [("Nehalem", "scalar"), ("Haswell", "avx2")], ids=["nehalem", "haswell"]
)
def test_emulated_cpu_runs_and_matches_native(tmp_path, cpu, isa):
    if shutil.which("qemu-x86_64") is None:
        pytest.skip("qemu-x86_64 is not installed (Debian: apt-get install qemu-user)")
    if isa not in _C.backends()["supported"]:
        pytest.skip(f"this CPU cannot run the {isa} path natively for the comparison")
    threads = {"OMP_NUM_THREADS": "2", "FASTRNN_ISA": ""}
    emulated = _run_probe(str(tmp_path / "emulated.npz"), threads, cpu)
    assert emulated["active"] == isa
    assert emulated["supported"] == ["scalar", "avx2"][: 1 + (isa == "avx2")]
    native = _run_probe(str(tmp_path / "native.npz"), dict(threads, FASTRNN_ISA=isa), None)
    assert native["active"] == isa
    got, want = np.load(tmp_path / "emulated.npz"), np.load(tmp_path / "native.npz")
    assert sorted(got.files) == sorted(want.files) and len(got.files) > 100
    for key in want.files:  # the same code on the same inputs: bitwise the same results
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
