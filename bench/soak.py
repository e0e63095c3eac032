#!/usr/bin/env python3
"""Soak: agent + collector for hours of scenario time at accelerated speed, with a memory and
file-descriptor budget.

Runs the simulated 8×H100 node (bench/scenarios/bench-8gpu-64proc.toml) at --speed (scenario
seconds per wall second), --nodes real agents (distinct host names) each sampling at 200 ms and
pushing OTLP every 200 ms to the real collector, which keeps its findings history in SQLite, for
--minutes of wall time, while a client reads the collector's API once a second. Every 5 s it
records the resident memory (VmRSS) and open files (/proc/PID/fd) of the first agent and of the
collector, and the size of the collector's store.

The claim is "flat after warm-up": the figures at the end are compared with those at the end of
the warm-up (the first --warmup fraction of the run), in the same run. The script exits non-zero
when the end exceeds the warm-up by more than --rss-growth (fraction) plus 2 MB, or by more than
--fd-growth descriptors.

Usage: python3 bench/soak.py [--minutes 10] [--speed 60] [--nodes 4] [--target target/release]
"""

import argparse
import http.client
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "bench" / "scenarios" / "bench-8gpu-64proc.toml"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def wait(port, path, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if get(port, path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"nothing answered on :{port}{path}")


def find(target, name):
    for p in (target / name, target / "deps" / name):
        if p.is_file():
            return p
    sys.exit(f"{name} not found under {target}: cargo build --release --workspace first")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--speed", type=float, default=60, help="scenario seconds per wall second")
    ap.add_argument("--nodes", type=int, default=4, help="agents pushing to the collector")
    ap.add_argument("--warmup", type=float, default=0.2, help="fraction of the run counted as warm-up")
    ap.add_argument("--rss-growth", type=float, default=0.10)
    ap.add_argument("--fd-growth", type=int, default=2)
    ap.add_argument("--target", type=pathlib.Path, default=ROOT / "target" / "release")
    args = ap.parse_args()
    target = args.target.resolve()
    gpuscope, lib = find(target, "gpuscope"), find(target, "libgpuscope_nvml_sim.so")
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        start = time.time()
        procs = []
        try:
            procs.append(subprocess.Popen([gpuscope, "sim", "run", "--scenario", SCENARIO, "--root", root,
                                           "--start", f"{start:.3f}", "--speed", str(args.speed), "--interval-ms", "50"],
                                          stdout=subprocess.DEVNULL))
            grpc, http_port, api = free_port(), free_port(), free_port()
            collector = subprocess.Popen([gpuscope, "collector", "--grpc", f"127.0.0.1:{grpc}", "--http", f"127.0.0.1:{http_port}",
                                          "--api", f"127.0.0.1:{api}", "--time-scale", str(1 / args.speed),
                                          "--store", root / "history.db"],
                                         stderr=subprocess.DEVNULL, env=dict(os.environ, GPUSCOPE_LOG="warn"))
            procs.append(collector)
            wait(api, "/healthz")
            agents = []
            for n in range(args.nodes):
                metrics = free_port()
                env = dict(os.environ, GPUSCOPE_SIM_SCENARIO=str(SCENARIO), GPUSCOPE_SIM_START=f"{start:.3f}",
                           GPUSCOPE_SIM_SPEED=str(args.speed), GPUSCOPE_NVML_LIB=str(lib),
                           GPUSCOPE_PROCFS_ROOT=str(root / "proc"), GPUSCOPE_SYSFS_ROOT=str(root / "sys"),
                           GPUSCOPE_POD_LOGS_ROOT=str(root / "var/log/pods"), GPUSCOPE_LOG="warn",
                           GPUSCOPE_HOSTNAME=f"soak-{n}")
                agent = subprocess.Popen([gpuscope, "agent", "--listen", f"127.0.0.1:{metrics}", "--interval-ms", "200",
                                          "--otlp-endpoint", f"http://127.0.0.1:{http_port}",
                                          "--otlp-interval-ms", "200"], env=env, stderr=subprocess.DEVNULL)
                procs.append(agent)
                agents.append(agent)
                wait(metrics, "/readyz")
            agent = agents[0]
            samples = []
            end = time.time() + args.minutes * 60
            next_sample = time.time()
            while time.time() < end:
                for path in ("/api/v1/nodes", "/api/v1/findings"):
                    get(api, path)
                if time.time() >= next_sample:
                    for p in procs:
                        if p.poll() is not None:
                            sys.exit(f"{p.args[1]} exited with {p.returncode} during the soak")
                    samples.append((time.time() - start, rss_mb(agent.pid), fds(agent.pid),
                                    rss_mb(collector.pid), fds(collector.pid),
                                    sum(f.stat().st_size for f in root.glob("history.db*")) / 1e6))
                    next_sample += 5
                time.sleep(1)
            status, body = get(api, "/metrics")
            snapshots = [l for l in body.decode().splitlines() if l.startswith("gpuscope_collector_snapshots_total")]
            refused = [l for l in body.decode().splitlines()
                       if l.startswith("gpuscope_collector_") and ("refused" in l or "rejected" in l) and not l.endswith(" 0")]
            status, body = get(api, "/api/v1/nodes")
            listed = json.loads(body)
            nodes_seen = len(listed["nodes"] if isinstance(listed, dict) else listed)
        finally:
            for p in reversed(procs):
                p.terminate()
                p.wait(10)
    warm = samples[max(0, int(len(samples) * args.warmup) - 1)]
    last = samples[-1]
    print(f"{args.minutes:g} min wall at {args.speed:g}x = {args.minutes * args.speed / 60:.1f} h of scenario time; "
          f"{args.nodes} nodes ({nodes_seen} listed by the collector); {len(samples)} samples; "
          f"{snapshots[0] if snapshots else ''}")
    print(f"{'':10} {'agent RSS MB':>13} {'agent fds':>10} {'collector RSS MB':>17} {'collector fds':>14} {'store MB':>9}")
    for name, s in (("warm-up", warm), ("end", last)):
        print(f"{name:10} {s[1]:13.1f} {s[2]:10d} {s[3]:17.1f} {s[4]:14d} {s[5]:9.2f}")
    print(f"{'max':10} {max(s[1] for s in samples):13.1f} {max(s[2] for s in samples):10d} "
          f"{max(s[3] for s in samples):17.1f} {max(s[4] for s in samples):14d} {max(s[5] for s in samples):9.2f}")
    for line in refused:
        print("refused:", line)
    if nodes_seen != args.nodes:
        sys.exit(f"the collector lists {nodes_seen} nodes, not {args.nodes}")
    failed = []
    for what, i in (("agent", 1), ("collector", 3)):
        if last[i] > warm[i] * (1 + args.rss_growth) + 2:
            failed.append(f"{what} RSS grew from {warm[i]:.1f} to {last[i]:.1f} MB")
        if last[i + 1] > warm[i + 1] + args.fd_growth:
            failed.append(f"{what} open files grew from {warm[i + 1]} to {last[i + 1]}")
    if failed:
        sys.exit("over budget: " + "; ".join(failed))
    print("flat after warm-up: within budget")


if __name__ == "__main__":
    main()
