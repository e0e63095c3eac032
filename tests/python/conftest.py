"""Shared helpers: run NVIDIA's Python NVML bindings against the simulator in a child process.

The simulated library reads its scenario from the environment once, and the dynamic loader reads
LD_LIBRARY_PATH at process start, so every reading happens in a fresh interpreter."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / os.environ.get("GPUSCOPE_PROFILE", "debug")
SIM_VARS = ["GPUSCOPE_SIM_SCENARIO", "GPUSCOPE_SIM_TIME", "GPUSCOPE_SIM_START", "GPUSCOPE_SIM_SPEED", "GPUSCOPE_SIM_NODE"]


def _find(name):
    for p in (TARGET / name, TARGET / "deps" / name):
        if p.is_file():
            return p
    raise FileNotFoundError(f"{name} not built under {TARGET}: run cargo build --workspace first")


@pytest.fixture(scope="session")
def gpuscope():
    return _find("gpuscope")


@pytest.fixture(scope="session")
def libdir(tmp_path_factory):
    """A directory where libnvidia-ml.so.1 is the simulator, as `gpuscope sim env` makes."""
    d = tmp_path_factory.mktemp("nvml")
    (d / "libnvidia-ml.so.1").symlink_to(_find("libgpuscope_nvml_sim.so"))
    return d


@pytest.fixture(scope="session")
def expected(gpuscope):
    """The engine's values for (scenario, t), from `gpuscope sim show --json`."""

    def get(scenario, t, node=0):
        out = subprocess.run(
            [str(gpuscope), "sim", "show", scenario, "--at", str(t), "--node", str(node), "--json"],
            check=True, capture_output=True, text=True,
        )
        return json.loads(out.stdout)

    return get


@pytest.fixture(scope="session")
def nvml(libdir):
    """Runs `body` (Python using pynvml, which must set `result`) in a child with the simulator."""

    def run(body, timeout=30, **env):
        child_env = {k: v for k, v in os.environ.items() if k not in SIM_VARS}
        child_env["LD_LIBRARY_PATH"] = str(libdir)
        for k, v in env.items():
            child_env[f"GPUSCOPE_SIM_{k.upper()}"] = str(v)
        code = "import json, pynvml\nfrom pynvml import *\n" + textwrap.dedent(body) + "\nprint(json.dumps(result))\n"
        proc = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


def start_collector(extra=(), host=None):
    """Starts `gpuscope collector` on free loopback ports with `extra` arguments; returns the
    process and its addresses as its start-up line gives them (with `host` in place of the IP
    when given: the name a TLS certificate carries)."""
    proc = subprocess.Popen(
        [str(_find("gpuscope")), "collector", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--api", "127.0.0.1:0",
         *extra],
        stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("GPUSCOPE_COLLECTOR")},
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        line = proc.stderr.readline()
        if "OTLP gRPC on " in line:
            rest = line.split("OTLP gRPC on ")[1]
            addrs = {
                "grpc": rest.split(",")[0].strip(),
                "http": rest.split("OTLP HTTP on ")[1].split(",")[0].strip(),
                "api": rest.split("API on ")[1].split("://")[1].split("/")[0].strip(),
            }
            if host:
                addrs = {k: host + ":" + a.rsplit(":", 1)[1] for k, a in addrs.items()}
            return proc, addrs
    proc.kill()
    raise AssertionError("collector did not start")
