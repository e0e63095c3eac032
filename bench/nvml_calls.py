#!/usr/bin/env python3
"""NVML calls per second: the agent next to nvitop-exporter and all-smi on the same node.

On a real driver most NVML calls are an ioctl into the kernel module, so the number of calls per
second sets a monitoring tool's cost there (the simulator answers in nanoseconds, which is why
CPU benchmarks cannot show it). The simulated library counts every entry point it answers
(`GPUSCOPE_SIM_NVML_CALLS`, sim/README.md); this script runs each tool alone against the
simulated 8×H100 node with 64 GPU processes (bench/scenarios/bench-8gpu-64proc.toml) at a 1 s
interval, reads the counts after a warm-up and again after `--seconds`, and prints calls per
second, the per-entry-point breakdown and the ratio of each gpuscope build to each peer.

Usage: python3 bench/nvml_calls.py [--seconds 30] [--warmup 5] [--target DIR]
                                   [--before GPUSCOPE_BINARY] [--all-smi BINARY]
Needs: a build (`cargo build --release --workspace`; `--target` names another build folder).
Peers: nvitop-exporter 1.7.2 from PyPI (installed into bench/.venv-nvitop-exporter); all-smi
0.22.0 from crates.io (`cargo install --locked all-smi@0.22.0 --root bench/.all-smi`, the newest
release this toolchain builds) unless `--all-smi` names a binary. A peer that cannot be installed
is reported as SKIPPED with the reason, never left out silently.
"""

import argparse
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "bench" / "scenarios" / "bench-8gpu-64proc.toml"
GPUS = 8
NVITOP_EXPORTER = "nvitop-exporter==1.7.2"
ALL_SMI = "0.22.0"


def find(target, name):
    for p in (target / name, target / "deps" / name):
        if p.is_file():
            return p
    sys.exit(f"{name} not found in {target}: build first (cargo build --release --workspace)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_counts(path):
    """(unix time, {entry point: calls}) from the simulator's counter file."""
    when, counts = None, {}
    for line in path.read_text().splitlines():
        if line.startswith("# unix_time "):
            when = float(line.split()[2])
        elif line and not line.startswith("#"):
            name, n = line.rsplit(" ", 1)
            counts[name] = int(n)
    return when, counts


def wait_for_update(path, after, timeout=10.0):
    """The counter file's contents once it has been rewritten after `after` (unix time)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            when, counts = read_counts(path)
            if when is not None and when > after:
                return when, counts
        time.sleep(0.05)
    sys.exit(f"the simulator did not rewrite {path} within {timeout} s")


def nvitop_exporter():
    venv = ROOT / "bench" / ".venv-nvitop-exporter"
    exe = venv / "bin" / "nvitop-exporter"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", NVITOP_EXPORTER],
                       check=True)
    return str(exe)


def all_smi(given):
    """The all-smi binary, or (None, why not)."""
    if given:
        return (given, None) if pathlib.Path(given).is_file() else (None, f"{given} does not exist")
    root = ROOT / "bench" / ".all-smi"
    exe = root / "bin" / "all-smi"
    if exe.exists():
        return str(exe), None
    if not shutil.which("cargo"):
        return None, "cargo is not installed"
    proc = subprocess.run(["cargo", "install", "--locked", f"all-smi@{ALL_SMI}", "--root", str(root)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return None, "cargo install all-smi failed: " + proc.stderr.strip().splitlines()[-1]
    return str(exe), None


SMI_L = """#!{python}
# `nvidia-smi -L` answered from the simulated NVML (nvidia-ml-py): all-smi looks for NVIDIA GPUs
# with lspci or `nvidia-smi -L` before it loads NVML. Its own calls are not counted.
import os, sys
os.environ.pop("GPUSCOPE_SIM_NVML_CALLS", None)
import pynvml
if sys.argv[1:] != ["-L"]:
    sys.exit("only -L is answered here")
pynvml.nvmlInit()
for i in range(pynvml.nvmlDeviceGetCount()):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    print(f"GPU {{i}}: {{pynvml.nvmlDeviceGetName(h)}} (UUID: {{pynvml.nvmlDeviceGetUUID(h)}})")
"""


def smi_shim(work, python):
    """A directory with an `nvidia-smi` that answers -L from the simulator."""
    d = work / "smi"
    d.mkdir(exist_ok=True)
    exe = d / "nvidia-smi"
    exe.write_text(SMI_L.format(python=python))
    exe.chmod(0o755)
    return d


def measure(name, argv, env, seconds, warmup, work):
    """Calls per second of one tool (a dict of the window's per-entry-point counts too)."""
    counter = work / f"calls-{name}.txt"
    env = dict(env, GPUSCOPE_SIM_NVML_CALLS=str(counter), GPUSCOPE_SIM_NVML_CALLS_EVERY_MS="250")
    log = open(work / f"{name}.log", "w")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(warmup)
        if proc.poll() is not None:
            sys.exit(f"{name} exited early ({proc.returncode}); see {work / (name + '.log')}:\n"
                     + (work / f"{name}.log").read_text()[-2000:])
        t0, c0 = wait_for_update(counter, time.time())
        time.sleep(seconds)
        t1, c1 = wait_for_update(counter, time.time())
        if proc.poll() is not None:
            sys.exit(f"{name} exited during the window ({proc.returncode})")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    dt = t1 - t0
    per = {k: (c1.get(k, 0) - c0.get(k, 0)) / dt for k in set(c0) | set(c1)}
    per = {k: v for k, v in per.items() if v > 0}
    return sum(per.values()), per


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--target", type=pathlib.Path, default=ROOT / "target" / "release")
    ap.add_argument("--before", help="another build's gpuscope binary, measured in the same run")
    ap.add_argument("--all-smi", dest="all_smi", help="an all-smi binary (default: install it)")
    a = ap.parse_args()

    gpuscope = str(find(a.target, "gpuscope"))
    lib = find(a.target, "libgpuscope_nvml_sim.so")
    results, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="gpuscope-nvml-calls-") as tmp:
        work = pathlib.Path(tmp)
        libdir = work / "lib"
        libdir.mkdir()
        (libdir / "libnvidia-ml.so.1").symlink_to(lib)
        root = work / "node"
        start = time.time()
        writer = subprocess.Popen([gpuscope, "sim", "run", "--scenario", SCENARIO, "--root", root,
                                   "--start", f"{start:.3f}", "--interval-ms", "25"])
        try:
            time.sleep(1.0)
            env = dict(os.environ, GPUSCOPE_SIM_SCENARIO=str(SCENARIO), GPUSCOPE_SIM_START=f"{start:.3f}",
                       LD_LIBRARY_PATH=str(libdir), GPUSCOPE_NVML_LIB=str(lib),
                       GPUSCOPE_PROCFS_ROOT=str(root / "proc"), GPUSCOPE_SYSFS_ROOT=str(root / "sys"),
                       GPUSCOPE_POD_LOGS_ROOT=str(root / "var/log/pods"), GPUSCOPE_LOG="warn")
            agents = [("gpuscope", gpuscope)]
            if a.before:
                agents.insert(0, ("gpuscope (before)", a.before))
            for name, exe in agents:
                argv = [exe, "agent", "--listen", f"127.0.0.1:{free_port()}", "--interval-ms", "1000"]
                results.append((name, *measure(name.replace(" ", "-").strip("()"), argv, env, a.seconds, a.warmup,
                                               work)))
            ne = nvitop_exporter()
            argv = [ne, "--bind-address", "127.0.0.1", "--port", str(free_port()), "--interval", "1.0"]
            results.append(("nvitop-exporter", *measure("nvitop-exporter", argv, env, a.seconds, a.warmup, work)))
            smi, why = all_smi(a.all_smi)
            if smi:
                argv = [smi, "api", "--port", str(free_port()), "--interval", "1", "--processes"]
                python = str(pathlib.Path(ne).parent / "python")
                smi_env = dict(env, PATH=f"{smi_shim(work, python)}:{env.get('PATH', '')}")
                results.append(("all-smi", *measure("all-smi", argv, smi_env, a.seconds, a.warmup, work)))
            else:
                skipped.append(("all-smi", why))
        finally:
            writer.terminate()
            writer.wait()

    print(f"\nNVML calls per second, {GPUS} simulated H100s, 64 GPU processes, 1 s interval, "
          f"{a.seconds:.0f} s window after {a.warmup:.0f} s warm-up\n")
    print(f"{'tool':<20} {'calls/s':>9} {'per GPU':>8}")
    for name, total, _ in results:
        print(f"{name:<20} {total:>9.1f} {total / GPUS:>8.2f}")
    for name, why in skipped:
        print(f"{name:<20} SKIPPED: {why}")
    peers = [(n, t) for n, t, _ in results if not n.startswith("gpuscope")]
    for name, total, _ in results:
        if name.startswith("gpuscope"):
            for peer, pt in peers:
                print(f"ratio {name} / {peer}: {total / pt:.2f}×")
    if peers:
        lean = min(peers, key=lambda p: p[1])
        ours = next(t for n, t, _ in results if n == "gpuscope")
        print(f"gpuscope / leanest peer ({lean[0]}): {ours / lean[1]:.2f}× (target ≤ 0.5×)")
    for name, total, per in results:
        print(f"\n{name}: calls/s by entry point")
        for k, v in sorted(per.items(), key=lambda kv: -kv[1]):
            print(f"  {k:<48} {v:>8.2f}")


if __name__ == "__main__":
    main()
