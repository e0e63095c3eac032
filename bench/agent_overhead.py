#!/usr/bin/env python3
"""Agent overhead and scrape cost, next to prometheus-node-exporter on the same /proc.

Measures, on the simulated 8×H100 node with 64 GPU processes (bench/scenarios/):
  1. CPU time and peak RSS of `gpuscope agent` sampling at 1 Hz and at 10 Hz (no scrapes),
  2. scrape latency (sequential) and throughput (4 concurrent clients) of its /metrics,
  3. the same scrape measurements for node_exporter reading the same simulated /proc and /sys,
     and the CPU each process spends per scrape.
Figures are printed as a table and as ratios against node_exporter measured in the same run.

Usage: python3 bench/agent_overhead.py [--seconds 60] [--scrapes 300] [--target DIR]
Needs: cargo build --release --workspace; prometheus-node-exporter (Debian). `--target` names
another build's release folder (e.g. a checkout of an earlier commit) to compare two builds.
"""

import argparse
import http.client
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = ROOT / "target" / "release"
SCENARIO = ROOT / "bench" / "scenarios" / "bench-8gpu-64proc.toml"
TICKS = os.sysconf("SC_CLK_TCK")


def set_target(path):
    global TARGET
    TARGET = path.resolve()


def find_lib():
    for p in (TARGET / "libgpuscope_nvml_sim.so", TARGET / "deps" / "libgpuscope_nvml_sim.so"):
        if p.is_file():
            return p
    sys.exit("build first: cargo build --release --workspace")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(port, path, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"nothing answered on :{port}{path}")


def scrape(port, path="/metrics"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t = time.perf_counter()
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return time.perf_counter() - t, len(body), body


def scrape_series(port, n, pid):
    """n sequential scrapes: latency percentiles and CPU per scrape of the serving process."""
    scrape(port)  # warm
    cpu0 = cpu_seconds(pid)
    lat = [scrape(port)[0] for _ in range(n)]
    cpu = cpu_seconds(pid) - cpu0
    lat.sort()
    return {
        "p50_ms": lat[len(lat) // 2] * 1e3,
        "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3,
        "cpu_ms_per_scrape": cpu / n * 1e3,
    }


def throughput(port, seconds=5, clients=4):
    done = [0] * clients
    stop = time.time() + seconds

    def worker(i):
        while time.time() < stop:
            scrape(port)
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def count_series(body):
    return sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60, help="idle window per sampling rate")
    ap.add_argument("--scrapes", type=int, default=300, help="sequential scrapes per exporter")
    ap.add_argument("--target", type=pathlib.Path, default=TARGET, help="release build folder holding gpuscope")
    args = ap.parse_args()
    set_target(args.target)
    lib = find_lib()
    node_exporter = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if not node_exporter:
        sys.exit("install prometheus-node-exporter (Debian) first")
    gpuscope = TARGET / "gpuscope"
    tmp = tempfile.mkdtemp(prefix="gpuscope-bench-")
    root = pathlib.Path(tmp)
    start = time.time() - 60
    procs = []
    try:
        writer = subprocess.Popen([gpuscope, "sim", "run", "--scenario", SCENARIO, "--root", root, "--start", f"{start:.3f}", "--interval-ms", "25"])
        procs.append(writer)
        while not (root / "proc" / "stat").exists():
            time.sleep(0.05)
        env = dict(os.environ, GPUSCOPE_SIM_SCENARIO=str(SCENARIO), GPUSCOPE_SIM_START=f"{start:.3f}", GPUSCOPE_NVML_LIB=str(lib),
                   GPUSCOPE_PROCFS_ROOT=str(root / "proc"), GPUSCOPE_SYSFS_ROOT=str(root / "sys"),
                   GPUSCOPE_POD_LOGS_ROOT=str(root / "var/log/pods"), GPUSCOPE_LOG="warn")
        results = {}
        for hz, interval in (("1 Hz", 1000), ("10 Hz", 100)):
            port = free_port()
            agent = subprocess.Popen([gpuscope, "agent", "--listen", f"127.0.0.1:{port}", "--interval-ms", str(interval)], env=env)
            procs.append(agent)
            wait_http(port, "/readyz")
            time.sleep(2)  # first passes: NVML init, static info, the XID thread
            cpu0, t0 = cpu_seconds(agent.pid), time.time()
            time.sleep(args.seconds)
            cpu = cpu_seconds(agent.pid) - cpu0
            wall = time.time() - t0
            _, size, body = scrape(port)
            results[hz] = {"core_percent": cpu / wall * 100, "peak_rss_mb": peak_rss_mb(agent.pid), "metrics_bytes": size,
                           "series": count_series(body)}
            if hz == "1 Hz":
                results["gpuscope scrape"] = scrape_series(port, args.scrapes, agent.pid)
                results["gpuscope scrape"]["scrapes_per_s"] = throughput(port)
                results["gpuscope scrape"]["peak_rss_mb"] = peak_rss_mb(agent.pid)
            agent.terminate()
            agent.wait()
        port = free_port()
        ne = subprocess.Popen([node_exporter, f"--web.listen-address=127.0.0.1:{port}", f"--path.procfs={root / 'proc'}",
                               f"--path.sysfs={root / 'sys'}", "--log.level=error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ne)
        wait_http(port, "/metrics")
        _, size, body = scrape(port)
        results["node_exporter scrape"] = scrape_series(port, args.scrapes, ne.pid)
        results["node_exporter scrape"]["scrapes_per_s"] = throughput(port)
        results["node_exporter scrape"]["peak_rss_mb"] = peak_rss_mb(ne.pid)
        results["node_exporter scrape"]["series"] = count_series(body)
        results["node_exporter scrape"]["metrics_bytes"] = size
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    g, n = results["gpuscope scrape"], results["node_exporter scrape"]
    print(f"\nSimulated node: 8 GPUs, 64 GPU processes, 128 CPUs, 9 NICs, 4 NVMe ({args.seconds:.0f} s per rate, {args.scrapes} scrapes)")
    for hz in ("1 Hz", "10 Hz"):
        r = results[hz]
        print(f"  agent sampling at {hz:>5}: {r['core_percent']:.3f} % of one core, peak RSS {r['peak_rss_mb']:.1f} MB, "
              f"/metrics {r['series']} series, {r['metrics_bytes'] / 1024:.0f} KiB")
    print(f"  {'':24} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/scrape':>14} {'scrapes/s':>10} {'series':>7} {'RSS MB':>7}")
    for name, r in (("gpuscope /metrics", g), ("node_exporter /metrics", n)):
        series = results["1 Hz"]["series"] if name.startswith("gpuscope") else r["series"]
        print(f"  {name:24} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['cpu_ms_per_scrape']:14.3f} {r['scrapes_per_s']:10.0f} {series:7d} {r['peak_rss_mb']:7.1f}")
    print("  ratios, gpuscope / node_exporter (same run, same /proc):")
    print(f"    scrape latency p50 {g['p50_ms'] / n['p50_ms']:.2f}x, CPU per scrape {g['cpu_ms_per_scrape'] / n['cpu_ms_per_scrape']:.2f}x, "
          f"throughput {g['scrapes_per_s'] / n['scrapes_per_s']:.2f}x")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
