"""Shared helpers: run NVIDIA's Python NVML bindings against the simulator in a child process.

The simulated library reads its scenario from the environment once, and the dynamic loader reads
LD_LIBRARY_PATH at process start, so every reading happens in a fresh interpreter."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

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
