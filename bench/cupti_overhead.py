#!/usr/bin/env python3
"""The CUPTI injection library's cost per kernel launch, against baselines measured in the same run.

  1. The launch callback alone (cupti/inject/examples/callback_cost.rs): ns per launch (CUPTI
     calls it at the enter and exit of each launch) next to an empty callback, and the cost the
     library reports of itself in every summary.
  2. The launch path at the harness's top rate: the simulated CUDA process (gpuscope-sim-cuda)
     launching 0.5 µs kernels at 1,000,000 launches/s, its upper limit
     (bench/scenarios/cupti-launch-path.toml), without the library, with it counting only (no
     window in the run), and with windows open half the time (500 ms every 1 s, records
     written and read); the launch rate kept and the ratio to no library. A ratio below 1 means
     the launch path (simulated driver + CUPTI dispatch + the library) no longer fits in 1 µs.
  3. A decode loop paced at 20,000 launches/s (bench/scenarios/cupti-decode-20k.toml), the same
     three variants: the launch rate the process keeps, as a ratio to the rate without the
     library (1.0: the library never slowed it).
Rounds alternate the variants so they share the machine's noise; medians are reported.

Usage: python3 bench/cupti_overhead.py [--seconds 4] [--rounds 5]
Needs: cargo build --release -p gpuscope-sim-cupti -p gpuscope-cupti-inject --lib --bins --examples
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
HARNESS = TARGET / "gpuscope-sim-cuda"
LIBRARY = TARGET / "libgpuscope_cupti_inject.so"
CALLBACK_COST = TARGET / "examples" / "callback_cost"
LAUNCH_PATH = ROOT / "bench" / "scenarios" / "cupti-launch-path.toml"
DECODE = ROOT / "bench" / "scenarios" / "cupti-decode-20k.toml"

COUNTING = {"GPUSCOPE_CUPTI_PERIOD_MS": "600000"}  # first window 5 s after cuInit: after the run
WINDOWED = {"GPUSCOPE_CUPTI_WINDOW_MS": "500", "GPUSCOPE_CUPTI_PERIOD_MS": "1000", "GPUSCOPE_CUPTI_BUDGET": "1"}


def harness(scenario, seconds, library_env):
    """One run of the simulated process; its JSON report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUSCOPE_CUPTI_")}
    env.pop("CUDA_INJECTION64_PATH", None)
    with tempfile.TemporaryDirectory() as tmp:
        if library_env is not None:
            env["CUDA_INJECTION64_PATH"] = str(LIBRARY)
            env["GPUSCOPE_CUPTI_SOCKET"] = os.path.join(tmp, "absent.sock")  # no agent: summaries dropped
            env.update(library_env)
        out = subprocess.run(
            [str(HARNESS), "--scenario", str(scenario), "--seconds", str(seconds)],
            env=env, capture_output=True, text=True, check=True,
        )
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each harness run (below 5 s: no default window)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for p in (HARNESS, LIBRARY, CALLBACK_COST):
        if not p.exists():
            sys.exit(f"{p} is missing: cargo build --release -p gpuscope-sim-cupti -p gpuscope-cupti-inject --lib --bins --examples")

    print("1. launch callback (20,000,000 launches x 7 rounds, one thread)")
    cb = json.loads(subprocess.run([str(CALLBACK_COST), "20000000", "7", "1"], capture_output=True, text=True, check=True).stdout)
    print(f"   empty callback        {cb['empty_ns_per_launch']:8.2f} ns/launch")
    print(f"   gpuscope callback     {cb['library_ns_per_launch']:8.2f} ns/launch  (+{cb['added_ns_per_launch']:.2f} ns, {cb['ratio']:.2f}x)")
    print(f"   self-reported         {cb['self_reported_ns_per_launch']:8.2f} ns/launch  (what summaries carry as callback_overhead_ns)")

    variants = [("no library", None), ("counting only", COUNTING), ("windows 500 ms / 1 s", WINDOWED)]
    for title, scenario, metric in (
        ("2. launch path at 1,000,000 launches/s (cupti-launch-path)", LAUNCH_PATH, "launches_per_second"),
        ("3. decode loop paced at 20,000 launches/s (cupti-decode-20k)", DECODE, "launches_per_second"),
    ):
        runs = {name: [] for name, _ in variants}
        for _ in range(args.rounds):
            for name, env in variants:
                runs[name].append(harness(scenario, args.seconds, env)[metric])
        print(f"{title}, {args.rounds} rounds of {args.seconds} s, medians")
        base = statistics.median(runs["no library"])
        for name, values in runs.items():
            m = statistics.median(values)
            per_launch = f"{1e9 / m:8.1f} ns/launch" if scenario == LAUNCH_PATH else ""
            print(f"   {name:22s} {m:12.0f} launches/s  {per_launch}  ratio {m / base:.4f}")


if __name__ == "__main__":
    main()
