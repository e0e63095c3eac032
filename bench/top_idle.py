#!/usr/bin/env python3
"""CPU of `gpuscope top` idling at a 1 s refresh, next to nvitop's in the same run.

Both watch the same simulated node (bench/scenarios/bench-8gpu-64proc.toml: 8 H100s, 64 GPU
processes) through the simulated NVML library, in a 200x50 tmux pane, untouched for the
measured window. `top` samples in-process (its CPU includes the agent's sampling engine, the
rules and the drawing); nvitop runs with `--interval 1`. CPU = utime + stime of the process
from /proc/<pid>/stat over the window, after a warm-up.

    cargo build --release --workspace
    python3 bench/top_idle.py            # --seconds 60 by default; installs nvitop into bench/.venv-nvitop
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
SCENARIO = ROOT / "bench" / "scenarios" / "bench-8gpu-64proc.toml"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sim_env(gpuscope, root):
    """The environment `gpuscope sim env` sets up, as a shell would evaluate it."""
    script = f'eval "$(\'{gpuscope}\' sim env \'{SCENARIO}\' --root \'{root}\')" && env -0'
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True).stdout
    return dict(kv.split("=", 1) for kv in out.decode().split("\0") if "=" in kv)


def measure(name, argv, env, seconds, warmup):
    sock = f"gpuscope-bench-{os.getpid()}-{name}"
    # stderr away from the pane, which is measured: only the UI draws there.
    cmd = " ".join(["exec"] + [f"'{a}'" for a in argv]) + " 2>/dev/null"
    subprocess.run(["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d", "-s", "b", "-x", "200", "-y", "50", cmd], check=True, env=env)
    try:
        pid = int(subprocess.run(["tmux", "-L", sock, "list-panes", "-t", "b", "-F", "#{pane_pid}"], check=True, capture_output=True, text=True).stdout.split()[0])
        time.sleep(warmup)
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(pid), time.monotonic()
        screen = subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", "b"], capture_output=True, text=True).stdout
        return 100.0 * (c1 - c0) / (t1 - t0), rss_mb(pid), screen
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


def nvitop_bin():
    venv = ROOT / "bench" / ".venv-nvitop"
    if not (venv / "bin" / "nvitop").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "nvitop==1.7.2"], check=True)
    return str(venv / "bin" / "nvitop")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=5)
    a = ap.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("top_idle.py needs tmux (apt-get install tmux)")
    gpuscope = str(TARGET / "gpuscope")
    nvitop = nvitop_bin()
    with tempfile.TemporaryDirectory() as root:
        writer = subprocess.Popen([gpuscope, "sim", "run", "--scenario", str(SCENARIO), "--root", root, "--interval-ms", "25"], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(os.path.join(root, "proc", "stat")) and time.monotonic() < deadline:
                time.sleep(0.05)
            env = sim_env(gpuscope, root)
            top = measure("top", [gpuscope, "top", "--interval-ms", "1000", "--readonly"], env, a.seconds, a.warmup)
            nvt = measure("nvitop", [nvitop, "--monitor", "full", "--interval", "1", "--readonly"], env, a.seconds, a.warmup)
        finally:
            writer.kill()
    for name, (cpu, rss, screen) in (("gpuscope top", top), ("nvitop", nvt)):
        lines = [l for l in screen.splitlines() if l.strip()]
        print(f"--- {name}: first lines of its screen")
        print("\n".join(l[:120] for l in lines[:4]))
    print()
    print(f"{'':<24} {'CPU % of a core':>16} {'RSS MB':>8}")
    print(f"{'gpuscope top':<24} {top[0]:>16.2f} {top[1]:>8.1f}")
    print(f"{'nvitop --interval 1':<24} {nvt[0]:>16.2f} {nvt[1]:>8.1f}")
    print(f"ratio top / nvitop: {top[0] / nvt[0]:.2f}x CPU   (target: top <= 1 % and below nvitop)")


if __name__ == "__main__":
    main()
