"""Real monitoring tools read the simulated node cleanly, for every GPU model preset: nvitop
(`nvitop -1` and its Device API), nvitop-exporter (a /metrics scrape), gpustat (`--json`) and
NVIDIA's own bindings (nvidia-ml-py) calling each device query. No traceback, no missing entry
point, and the values they show are the preset's (parsed from sim/src/presets.rs, the
simulator's source of truth) and the scenario's (from `gpuscope sim show --json` at the same
frozen second)."""

import ast
import json
import os
import math
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from conftest import ROOT, SIM_VARS

T = 30
GPUS = 2
MEMORY_GIB = 3


def _value(text):
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    return ast.literal_eval(text.replace("_", ""))


def presets():
    """Every preset of sim/src/presets.rs as a dict of its fields."""
    src = (ROOT / "sim" / "src" / "presets.rs").read_text()
    table = src.split("pub static PRESETS")[1].split("\n];")[0]
    out = []
    for block in table.split("GpuPreset {")[1:]:
        fields = dict(re.findall(r"^\s+(\w+): (.+),$", block, re.M))
        out.append({k: _value(v) for k, v in fields.items()})
    assert len(out) >= 6 and all("key" in p for p in out), "cannot parse sim/src/presets.rs"
    return out


PRESETS = presets()


@pytest.fixture(scope="module")
def holder():
    """A real process that the scenario names as the GPUs' user, so that the peers (which read
    the host's /proc for a PID NVML reports) find it."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc.pid
    proc.kill()
    proc.wait()


def scenario(tmp_path, p, pid):
    path = tmp_path / f"peers-{p['key']}.toml"
    path.write_text(textwrap.dedent(f"""\
        name = "peers-{p['key']}"
        [[gpus]]
        model = "{p['key']}"
        count = {GPUS}
        [[processes]]
        pid = {pid}
        name = "sleep"
        gpus = "all"
        memory_gib = {MEMORY_GIB}
        [[phases]]
        name = "load"
        duration_s = 120
        [phases.gpu]
        util = {{ value = 0.6, noise = 0 }}
        enc_util = {{ value = 0.2, noise = 0 }}
        dec_util = {{ value = 0.3, noise = 0 }}
        """))
    return str(path)


def peer_env(libdir, scen):
    env = {k: v for k, v in os.environ.items() if k not in SIM_VARS}
    env.update(LD_LIBRARY_PATH=str(libdir), GPUSCOPE_SIM_SCENARIO=scen, GPUSCOPE_SIM_TIME=str(T), COLUMNS="120")
    return env


def peer(libdir, scen, *argv, clean=True, timeout=60):
    """Runs a peer under the venv's Python against the scenario at second T; with `clean`, its
    output holds no traceback and no trace of an entry point the library lacks."""
    env = peer_env(libdir, scen)
    proc = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv}: rc {proc.returncode}\n{proc.stderr}"
    for bad in ("Traceback", "FunctionNotFound", "Function Not Found", "undefined symbol")[0 if clean else 1:]:
        assert bad not in proc.stdout + proc.stderr, f"{argv}:\n{proc.stderr}"
    return proc


def has_mig(p):
    """MIG exists on A100 and H100 class parts."""
    return p["compute_capability"] == (8, 0) or p["compute_capability"][0] >= 9


def mhz(x):
    """A clock in whole MHz as the driver reports it: rounded half up (Python's round() would
    round 2794.5 to even)."""
    return math.floor(x + 0.5)


def pct(x):
    return int(round(x * 100))


@pytest.mark.parametrize("p", PRESETS, ids=[p["key"] for p in PRESETS])
def test_gpustat_json(p, libdir, expected, holder, tmp_path):
    scen = scenario(tmp_path, p, holder)
    want = expected(scen, T)["gpus"]
    got = json.loads(peer(libdir, scen, "-m", "gpustat", "--json").stdout)
    assert got["driver_version"] == "550.54.15"
    assert len(got["gpus"]) == GPUS
    for g, w in zip(got["gpus"], want):
        s = w["state"]
        assert (g["index"], g["uuid"], g["name"]) == (w["index"], w["uuid"], p["name"])
        assert g["temperature.gpu"] == round(s["temp_c"])
        # Passively cooled boards have no fan; fan-cooled ones show the curve's duty.
        assert g["fan.speed"] == (s["fan_speed_pct"] if p["fans"] else None)
        assert g["utilization.gpu"] == pct(s["util"]) == 60
        assert g["utilization.enc"] == (pct(s["enc_util"]) if p["encoder"] else None)
        assert g["utilization.dec"] == pct(s["dec_util"])
        assert g["power.draw"] == round(s["power_w"] * 1000) // 1000
        assert g["enforced.power.limit"] == p["power_default_w"]
        # gpustat reads memory info v2, whose "used" leaves out the driver's reservation.
        assert g["memory.used"] == s["memory_used"] // 2**20 == MEMORY_GIB * 1024
        assert g["memory.total"] == p["memory_mib"]
        assert [(q["pid"], q["command"], q["gpu_memory_usage"]) for q in g["processes"]] == [
            (holder, "sleep", MEMORY_GIB * 1024)
        ]
    # gpustat logs every NVML error it met under --debug: only what the model lacks.
    debug = peer(libdir, scen, "-m", "gpustat", "--json", "--debug", clean=False).stderr
    errors = set(re.findall(r"^> An error while retrieving `(\w+)`: ([^\n]+?)(?: -> Total.*)?$", debug, re.M))
    lacking = (set() if p["fans"] else {"fan_speed"}) | (set() if p["encoder"] else {"utilization_enc"})
    assert errors == {(key, "Not Supported") for key in lacking}


@pytest.mark.parametrize("p", PRESETS, ids=[p["key"] for p in PRESETS])
def test_nvitop_once(p, libdir, expected, holder, tmp_path):
    from nvitop.api.utils import bytes2human

    scen = scenario(tmp_path, p, holder)
    want = expected(scen, T)["gpus"]
    proc = peer(libdir, scen, "-m", "nvitop", "-1")
    assert proc.stderr == ""
    out = proc.stdout
    assert "Driver Version: 550.54.15" in out and "CUDA Driver Version: 12.4" in out
    rows = re.findall(
        r"│\s+(\d+)\s+(.+?)\s+(On|Off)\s+│\s+(\S+)\s+(\S+)\s+│\s+(?:(\S+)\s+)?(\d+)\s+│[^\n]*\n"
        r"│\s+(\S+)\s+(\d+)C\s+(P\d+)\s+(\d+)W / (\d+)W\s+│\s+(\S+) / (\S+)\s+│\s+(\d+)%\s+(\S+)\s+│"
        r"[^\n]*@ (\d+)MHz",
        out,
    )
    assert len(rows) == GPUS, out
    for row, w in zip(rows, want):
        s = w["state"]
        index, name, persistence, bus_id, disp_a, mig, ecc = row[:7]
        fan, temp, perf, power, limit, used, total, util, mode, mhz = row[7:]
        # nvitop drops "NVIDIA " and elides the start of a long name with "..".
        assert int(index) == w["index"] and name.lstrip(".") in p["name"] and persistence == "On"
        assert bus_id == w["pci_bus_id"]
        assert disp_a == "Off", "display active: a real answer (Disabled), not N/A"
        assert mig == ("Disabled" if has_mig(p) else ""), "no MIG column where the model has no MIG"
        assert int(ecc) == s["ecc_uncorrected_volatile"] == 0
        assert fan == (f"{s['fan_speed_pct']}%" if p["fans"] else "N/A")
        assert int(temp) == round(s["temp_c"])
        assert perf == "P0"
        assert int(power) == round(s["power_w"]) and int(limit) == p["power_default_w"]
        assert used == bytes2human(s["memory_used"]) and total == bytes2human(s["memory_total"])
        assert int(util) == pct(s["util"]) and mode == "Default"
        assert int(mhz) == round(s["sm_clock_mhz"]) > 0, "the wide layout shows the SM clock"
    procs = re.findall(r"│\s+(\d+)\s+(\d+) C\s+\S+\s+(\S+)\s.*\s(sleep 600)\s", out)
    assert procs == [(str(i), str(holder), bytes2human(MEMORY_GIB * 2**30), "sleep 600") for i in range(GPUS)], out


NVITOP_API = """
from nvitop import Device
from nvitop.api.libnvml import NA
result = []
for d in Device.all():
    snap = d.as_snapshot()
    result.append(dict(
        clocks=list(d.clock_infos()), max_clocks=list(d.max_clock_infos()),
        display_active=d.display_active(), display_mode=d.display_mode(),
        driver_model=d.current_driver_model(), bar1=list(d.bar1_memory_info())[:3],
        temperature=d.temperature(), nvlinks=d.nvlink_link_count(),
        procs=sorted((p.pid, p.gpu_memory()) for p in d.processes().values()),
        snapshot_na=sorted(k for k, v in snap.__dict__.items() if v is NA and not k.startswith('_')),
    ))
print(json.dumps(result))
"""


@pytest.mark.parametrize("p", PRESETS, ids=[p["key"] for p in PRESETS])
def test_nvitop_device_api(p, libdir, expected, holder, tmp_path):
    scen = scenario(tmp_path, p, holder)
    want = expected(scen, T)["gpus"]
    proc = peer(libdir, scen, "-c", "import json\n" + NVITOP_API)
    assert proc.stderr == "", "nvitop logs every entry point it cannot call"
    got = json.loads(proc.stdout)
    for d, w in zip(got, want):
        s = w["state"]
        sm, mem, video = round(s["sm_clock_mhz"]), round(s["mem_clock_mhz"]), mhz(s["sm_clock_mhz"] * 0.9)
        assert d["clocks"] == [sm, sm, mem, video] and sm > 0
        assert d["max_clocks"] == [p["max_sm_clock_mhz"], p["max_sm_clock_mhz"], p["max_mem_clock_mhz"],
                                   mhz(p["max_sm_clock_mhz"] * 0.9)]
        assert (d["display_active"], d["display_mode"]) == ("Disabled", "Disabled")
        assert d["driver_model"] == "N/A", "driver models are Windows-only: NOT_SUPPORTED on Linux"
        assert d["bar1"] == [p["bar1_mib"] * 2**20, p["bar1_mib"] * 2**20 - 2**20, 2**20]
        assert d["temperature"] == round(s["temp_c"])
        assert d["nvlinks"] == p["nvlinks"]
        assert d["procs"] == [[holder, MEMORY_GIB * 2**30]]
        # N/A in nvitop's snapshot only for what the board lacks on Linux: no fan on passively
        # cooled boards, no Windows driver model, no encoder on some.
        na = {"current_driver_model"} | (set() if p["fans"] else {"fan_speed"})
        na |= set() if p["encoder"] else {"encoder_utilization"}
        na |= set() if has_mig(p) else {"mig_mode"}
        assert set(d["snapshot_na"]) == na


NVML_WALK = """
import ctypes

def q(f, *a, **k):
    try:
        v = f(*a, **k)
    except NVMLError as e:
        return ["error", e.value]
    if isinstance(v, ctypes._SimpleCData):  # some bindings hand back the ctypes out-parameter
        v = v.value
    if isinstance(v, bytes):
        v = v.decode()
    if hasattr(v, "_fields_"):
        v = {n: getattr(v, n) for n, _ in v._fields_ if not n.startswith("_") and n != "procArray"}
    return v

nvmlInit()
devs = []
for i in range(nvmlDeviceGetCount()):
    h = nvmlDeviceGetHandleByIndex(i)
    clock = {f"{t}/{c}": q(nvmlDeviceGetClock, h, t, c)
             for t in range(NVML_CLOCK_COUNT) for c in range(NVML_CLOCK_ID_COUNT)}
    links = nvmlDeviceGetFieldValues(h, [NVML_FI_DEV_NVLINK_LINK_COUNT])[0]
    n_links = links.value.uiVal if links.nvmlReturn == NVML_SUCCESS else 0
    details = nvmlDeviceGetRunningProcessDetailList(h, nvmlProcessDetailList_v1, NVML_PROCESS_MODE_COMPUTE)
    devs.append(dict(
        clock=clock,
        clock_info=[q(nvmlDeviceGetClockInfo, h, t) for t in range(NVML_CLOCK_COUNT)],
        boost=[q(nvmlDeviceGetMaxCustomerBoostClock, h, t) for t in range(NVML_CLOCK_COUNT)],
        app=[q(nvmlDeviceGetApplicationsClock, h, t) for t in range(NVML_CLOCK_COUNT)],
        app_default=[q(nvmlDeviceGetDefaultApplicationsClock, h, t) for t in range(NVML_CLOCK_COUNT)],
        bad_clock=[q(nvmlDeviceGetClock, h, NVML_CLOCK_COUNT, 0), q(nvmlDeviceGetClock, h, 0, NVML_CLOCK_ID_COUNT)],
        brand=q(nvmlDeviceGetBrand, h),
        display=[q(nvmlDeviceGetDisplayMode, h), q(nvmlDeviceGetDisplayActive, h)],
        driver_model=[q(f, h) for f in
                      (nvmlDeviceGetDriverModel, nvmlDeviceGetDriverModel_v1, nvmlDeviceGetDriverModel_v2)],
        numa=q(nvmlDeviceGetNumaNodeId, h),
        gsp_mode=q(nvmlDeviceGetGspFirmwareMode, h),
        gsp_version=q(nvmlDeviceGetGspFirmwareVersion, h),
        bar1=q(nvmlDeviceGetBAR1MemoryInfo, h),
        cc_mem=q(nvmlDeviceGetConfComputeMemSizeInfo, h),
        temp=q(nvmlDeviceGetTemperature, h, NVML_TEMPERATURE_GPU),
        temp_v=q(nvmlDeviceGetTemperatureV, h, NVML_TEMPERATURE_GPU),
        temp_v_bad_sensor=q(nvmlDeviceGetTemperatureV, h, 1),
        n_links=n_links,
        remote=[q(nvmlDeviceGetNvLinkRemoteDeviceType, h, l) for l in range(n_links)],
        remote_past_end=q(nvmlDeviceGetNvLinkRemoteDeviceType, h, max(n_links, 1) + 100),
        remote_no_link=q(nvmlDeviceGetNvLinkRemoteDeviceType, h, 0),
        details=[(d.pid, d.usedGpuMemory, d.usedGpuCcProtectedMemory) for d in details],
        graphics_details=nvmlDeviceGetRunningProcessDetailList(h, nvmlProcessDetailList_v1, NVML_PROCESS_MODE_GRAPHICS),
        procs=[(p.pid, p.usedGpuMemory) for p in nvmlDeviceGetComputeRunningProcesses(h)],
        # The rest of the device queries the bindings offer and these tools call.
        name=q(nvmlDeviceGetName, h), power_state=q(nvmlDeviceGetPerformanceState, h),
        persistence=q(nvmlDeviceGetPersistenceMode, h), compute_mode=q(nvmlDeviceGetComputeMode, h),
        mig=q(nvmlDeviceGetMigMode, h), ecc=q(nvmlDeviceGetEccMode, h), fan=q(nvmlDeviceGetFanSpeed, h),
        n_fans=q(nvmlDeviceGetNumFans, h), fans=[q(nvmlDeviceGetFanSpeed_v2, h, f) for f in range(3)],
        enc=q(nvmlDeviceGetEncoderUtilization, h), dec=q(nvmlDeviceGetDecoderUtilization, h),
        power=q(nvmlDeviceGetPowerUsage, h), limit=q(nvmlDeviceGetEnforcedPowerLimit, h),
        pcie_gen=q(nvmlDeviceGetMaxPcieLinkGeneration, h), pcie_width=q(nvmlDeviceGetMaxPcieLinkWidth, h),
        vbios=q(nvmlDeviceGetVbiosVersion, h), arch=q(nvmlDeviceGetArchitecture, h),
        graphics_v2=q(nvmlDeviceGetGraphicsRunningProcesses_v2, h),
        mps_v2=q(nvmlDeviceGetMPSComputeRunningProcesses_v2, h),
        inventory=[q(f, h) for f in (
            nvmlDeviceGetPowerState, nvmlDeviceGetPowerManagementMode, nvmlDeviceGetDefaultEccMode,
            nvmlDeviceGetMultiGpuBoard, nvmlDeviceGetBusType, nvmlDeviceGetVirtualizationMode,
            nvmlDeviceGetAccountingMode, nvmlDeviceGetAccountingBufferSize)],
        board_id=q(nvmlDeviceGetBoardId, h), bus=nvmlDeviceGetPciInfo(h).bus,
        auto_boost=q(nvmlDeviceGetAutoBoostedClocksEnabled, h),
        # Topology, as `nvidia-smi topo -m` reads it.
        topo=[q(nvmlDeviceGetTopologyCommonAncestor, h, nvmlDeviceGetHandleByIndex(j))
              for j in range(nvmlDeviceGetCount())],
        nearest=[[nvmlDeviceGetIndex(x) for x in q(nvmlDeviceGetTopologyNearestGpus, h, lvl)]
                 for lvl in (NVML_TOPOLOGY_HOSTBRIDGE, NVML_TOPOLOGY_NODE)],
        cpus=list(q(nvmlDeviceGetCpuAffinity, h, 2)),
        cpus_socket=list(q(nvmlDeviceGetCpuAffinityWithinScope, h, 2, NVML_AFFINITY_SCOPE_SOCKET)),
        mem_nodes=list(q(nvmlDeviceGetMemoryAffinity, h, 1, NVML_AFFINITY_SCOPE_NODE)),
        remote_pci=[(lambda r: r if isinstance(r, list) else r["busId"])(q(nvmlDeviceGetNvLinkRemotePciInfo, h, l))
                    for l in range(n_links)],
        # MIG off: full GPUs only.
        is_mig=q(nvmlDeviceIsMigDeviceHandle, h), max_mig=q(nvmlDeviceGetMaxMigDeviceCount, h),
        mig_handle=q(nvmlDeviceGetMigDeviceHandleByIndex, h, 0),
        gi=q(nvmlDeviceGetGpuInstanceId, h), ci=q(nvmlDeviceGetComputeInstanceId, h),
        parent=q(nvmlDeviceGetDeviceHandleFromMigDeviceHandle, h),
    ))
result = devs
nvmlShutdown()
"""

NOT_SUPPORTED = ["error", 3]
INVALID_ARGUMENT = ["error", 2]


@pytest.mark.parametrize("p", PRESETS, ids=[p["key"] for p in PRESETS])
def test_nvidia_ml_py_walk(p, nvml, expected, holder, tmp_path):
    scen = scenario(tmp_path, p, holder)
    want = expected(scen, T)["gpus"]
    got = nvml(NVML_WALK, scenario=scen, time=T)
    assert len(got) == GPUS
    max_sm, max_mem, app_sm = p["max_sm_clock_mhz"], p["max_mem_clock_mhz"], p["default_app_sm_clock_mhz"]
    gsp = tuple(p["compute_capability"]) >= (7, 5)
    for d, w in zip(got, want):
        s = w["state"]
        sm, mem = round(s["sm_clock_mhz"]), round(s["mem_clock_mhz"])
        # Current clocks by clock id are exactly nvmlDeviceGetClockInfo's.
        video = mhz(s["sm_clock_mhz"] * 0.9)
        assert [d["clock"][f"{t}/0"] for t in range(4)] == d["clock_info"] == [sm, sm, mem, video]
        assert sm > 0
        for cid in (1, 2):  # applications clock target and default
            assert [d["clock"][f"{t}/{cid}"] for t in range(4)] == [app_sm, app_sm, max_mem, NOT_SUPPORTED]
        assert [d["clock"][f"{t}/3"] for t in range(4)] == [max_sm, max_sm, NOT_SUPPORTED, NOT_SUPPORTED]
        assert d["boost"] == [max_sm, max_sm, NOT_SUPPORTED, NOT_SUPPORTED]
        assert d["app"] == d["app_default"] == [app_sm, app_sm, max_mem, NOT_SUPPORTED]
        assert d["bad_clock"] == [INVALID_ARGUMENT, INVALID_ARGUMENT]
        assert d["brand"] == p["brand"]
        assert d["display"] == [0, 0]
        assert d["driver_model"] == [NOT_SUPPORTED] * 3
        assert d["numa"] == NOT_SUPPORTED, "x86 hosts: the GPU is not a NUMA node"
        assert d["gsp_mode"] == ([1, 1] if gsp else [0, 0])
        assert d["gsp_version"] == ("550.54.15" if gsp else NOT_SUPPORTED)
        bar1 = p["bar1_mib"] * 2**20
        assert d["bar1"] == {"bar1Total": bar1, "bar1Free": bar1 - 2**20, "bar1Used": 2**20}
        if p["compute_capability"][0] >= 9:
            assert d["cc_mem"] == {"protectedMemSizeKib": 0,
                                   "unprotectedMemSizeKib": (p["memory_mib"] - p["reserved_mib"]) * 1024}
        else:
            assert d["cc_mem"] == NOT_SUPPORTED, "confidential computing is Hopper and later"
        assert d["temp"] == d["temp_v"] == round(s["temp_c"])
        assert d["temp_v_bad_sensor"] == INVALID_ARGUMENT
        assert d["n_links"] == p["nvlinks"]
        if p["nvlinks"]:
            remote = NVML_NVLINK_DEVICE_TYPE_SWITCH if p["nvswitch"] else NVML_NVLINK_DEVICE_TYPE_GPU
            assert d["remote"] == [remote] * p["nvlinks"]
            assert d["remote_past_end"] == INVALID_ARGUMENT
        else:
            assert d["remote_no_link"] == NOT_SUPPORTED, "no NVLink on this board"
        assert d["details"] == [[holder, MEMORY_GIB * 2**30, 0]]
        assert [tuple(x) for x in d["procs"]] == [(holder, MEMORY_GIB * 2**30)]
        assert d["graphics_details"] == []
        assert d["name"] == p["name"]
        assert d["power_state"] == 0 and d["persistence"] == 1 and d["compute_mode"] == 0
        if p["fans"]:
            # Every fan follows the board's curve; a fan index past the board's fans is invalid.
            assert d["n_fans"] == p["fans"]
            assert d["fan"] == s["fan_speed_pct"] > 0
            assert d["fans"] == [s["fan_speed_pct"]] * p["fans"] + [INVALID_ARGUMENT] * (3 - p["fans"])
        else:
            assert d["fan"] == d["n_fans"] == NOT_SUPPORTED
            assert d["fans"] == [NOT_SUPPORTED] * 3
        assert d["enc"] == ([pct(s["enc_util"]), 1_000_000] if p["encoder"] else NOT_SUPPORTED)
        assert d["dec"] == [pct(s["dec_util"]), 1_000_000]
        assert d["power"] == round(s["power_w"] * 1000)
        assert d["limit"] == p["power_default_w"] * 1000
        assert (d["pcie_gen"], d["pcie_width"]) == (p["pcie_gen"], p["pcie_width"])
        assert isinstance(d["vbios"], str) and isinstance(d["arch"], int)
        assert d["graphics_v2"] == d["mps_v2"] == []
        # P0, power management on, ECC on by default, single-GPU board on PCIe, bare metal,
        # accounting off with its 4000-record buffer.
        assert d["inventory"] == [0, 1, [1], 0, 2, 0, 0, 4000]  # the bindings wrap the default ECC mode in a list
        assert d["board_id"] == d["bus"] << 8
        assert d["auto_boost"] == NOT_SUPPORTED, "Pascal and later: applications clocks govern boost"
        # Two GPUs on one socket (a node with fewer than four GPUs has one NUMA node): they meet
        # at the NUMA node; the scenario's 32 CPUs (the default) are all near both; one memory node, node 0.
        i = w["index"]
        assert d["topo"] == [INVALID_ARGUMENT if j == i else NVML_TOPOLOGY_NODE for j in range(GPUS)]
        assert d["nearest"] == [[], [j for j in range(GPUS) if j != i]]
        assert d["cpus"] == d["cpus_socket"] == [2**32 - 1, 0]
        assert d["mem_nodes"] == [1]
        if p["nvswitch"]:
            # HGX: every link ends on an NVSwitch (H100: four switches taking 5, 4, 4, 5 links).
            switches = sorted(set(d["remote_pci"]))
            assert all(b.endswith(":00.0") and b not in [g["pci_bus_id"] for g in want] for b in switches)
            assert len(switches) == (4 if p["nvlinks"] == 18 else 6)
        elif p["nvlinks"]:
            # No switches: with one peer, every link goes to it.
            assert d["remote_pci"] == [want[1 - i]["pci_bus_id"]] * p["nvlinks"]
        assert d["is_mig"] == 0 and d["max_mig"] == 0
        assert d["mig_handle"] == (["error", 6] if has_mig(p) else NOT_SUPPORTED), "MIG off: no MIG device"
        assert d["gi"] == d["ci"] == NOT_SUPPORTED and d["parent"] == INVALID_ARGUMENT


NVML_NVLINK_DEVICE_TYPE_GPU = 0
NVML_NVLINK_DEVICE_TYPE_SWITCH = 2
NVML_TOPOLOGY_NODE = 40


def test_applications_clocks_follow_the_scenario(nvml, expected):
    got = nvml(
        """
nvmlInit()
h = nvmlDeviceGetHandleByIndex(0)
result = dict(
    target=nvmlDeviceGetClock(h, NVML_CLOCK_SM, NVML_CLOCK_ID_APP_CLOCK_TARGET),
    default=nvmlDeviceGetClock(h, NVML_CLOCK_SM, NVML_CLOCK_ID_APP_CLOCK_DEFAULT),
    app=nvmlDeviceGetApplicationsClock(h, NVML_CLOCK_GRAPHICS),
    current=nvmlDeviceGetClock(h, NVML_CLOCK_SM, NVML_CLOCK_ID_CURRENT),
    reasons=nvmlDeviceGetCurrentClocksEventReasons(h),
)
""",
        scenario="app-clocks-capped",
        time=100,
    )
    s = expected("app-clocks-capped", 100)["gpus"][0]["state"]
    assert s["throttle"] & 0x2, "the scenario's applications-clocks-setting clock event"
    assert got["target"] == got["app"] == got["current"] == round(s["sm_clock_mhz"]) == 1410
    assert got["default"] == 1980, "H100 SXM5 default applications clock"


ABI = """
import ctypes
lib = ctypes.CDLL("libnvidia-ml.so.1")
u = lambda v=0: ctypes.c_uint(v)
r = {}
assert lib.nvmlInit_v2() == 0
h, lost = ctypes.c_void_p(), ctypes.c_void_p()
lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(h))
lib.nvmlDeviceGetHandleByIndex_v2(3, ctypes.byref(lost))
bad = ctypes.c_void_p(12345)
r["clock_null"] = lib.nvmlDeviceGetClock(h, 0, 0, None)
r["clock_bad_handle"] = lib.nvmlDeviceGetClock(bad, 0, 0, ctypes.byref(u()))
r["brand_null"] = lib.nvmlDeviceGetBrand(h, None)
r["gsp_version_null"] = lib.nvmlDeviceGetGspFirmwareVersion(h, None)
buf = ctypes.create_string_buffer(64)
r["gsp_version"] = lib.nvmlDeviceGetGspFirmwareVersion(h, buf)
r["gsp_version_value"] = buf.value.decode()
r["remote_null"] = lib.nvmlDeviceGetNvLinkRemoteDeviceType(h, 0, None)
r["remote_past_end"] = lib.nvmlDeviceGetNvLinkRemoteDeviceType(h, 18, ctypes.byref(u()))
class TempV1(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("sensorType", ctypes.c_uint), ("temperature", ctypes.c_int)]
t = TempV1(version=1, sensorType=0)
r["temp_v_wrong_version"] = lib.nvmlDeviceGetTemperatureV(h, ctypes.byref(t))
r["temp_v_null"] = lib.nvmlDeviceGetTemperatureV(h, None)
class Detail(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong), ("gpuInstanceId", ctypes.c_uint),
                ("computeInstanceId", ctypes.c_uint), ("usedGpuCcProtectedMemory", ctypes.c_ulonglong)]
class DetailList(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("mode", ctypes.c_uint), ("numProcArrayEntries", ctypes.c_uint),
                ("procArray", ctypes.POINTER(Detail))]
dl = DetailList(version=0x1000018, mode=0, numProcArrayEntries=0)
r["details_count_query"] = lib.nvmlDeviceGetRunningProcessDetailList(h, ctypes.byref(dl))
r["details_count"] = dl.numProcArrayEntries
dl.mode = 9
r["details_bad_mode"] = lib.nvmlDeviceGetRunningProcessDetailList(h, ctypes.byref(dl))
dl.version, dl.mode = 0x1000010, 0
r["details_wrong_version"] = lib.nvmlDeviceGetRunningProcessDetailList(h, ctypes.byref(dl))
r["lost_clock"] = lib.nvmlDeviceGetClock(lost, 0, 0, ctypes.byref(u()))
r["lost_brand"] = lib.nvmlDeviceGetBrand(lost, ctypes.byref(u()))
r["lost_display"] = lib.nvmlDeviceGetDisplayActive(lost, ctypes.byref(u()))
r["lost_driver_model"] = lib.nvmlDeviceGetDriverModel_v2(lost, ctypes.byref(u()), ctypes.byref(u()))
r["lost_numa"] = lib.nvmlDeviceGetNumaNodeId(lost, ctypes.byref(u()))
assert lib.nvmlShutdown() == 0
r["after_shutdown"] = lib.nvmlDeviceGetBrand(h, ctypes.byref(u()))
result = r
"""


def test_c_abi_conventions_of_the_added_entry_points(nvml):
    r = nvml(ABI, scenario="gpu-lost", time=300)
    assert r["clock_null"] == r["clock_bad_handle"] == r["brand_null"] == r["gsp_version_null"] == 2, "INVALID_ARGUMENT"
    assert (r["gsp_version"], r["gsp_version_value"]) == (0, "550.54.15")
    assert r["remote_null"] == 2 and r["remote_past_end"] == 2, "18 links: 0..17"
    assert r["temp_v_wrong_version"] == 25, "ARGUMENT_VERSION_MISMATCH"
    assert r["temp_v_null"] == 2
    assert (r["details_count_query"], r["details_count"]) == (7, 1), "NULL array: INSUFFICIENT_SIZE with the count"
    assert r["details_bad_mode"] == 2
    assert r["details_wrong_version"] == 25
    assert {r[k] for k in r if k.startswith("lost_")} == {15}, "GPU_IS_LOST before any other answer"
    assert r["after_shutdown"] == 1, "UNINITIALIZED"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(libdir, scen):
    """Starts nvitop-exporter on the scenario, returns its first /metrics page with a complete
    collection, and everything it wrote on stderr."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nvitop_exporter", "--bind-address", "127.0.0.1", "--port", str(port)],
        env=peer_env(libdir, scen), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    body = None
    try:
        deadline = time.time() + 60
        while body is None and time.time() < deadline and proc.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
            except OSError:
                page = ""
            # The exporter fills each GPU's series and then its processes', in GPU order: the last
            # GPU's process series completes a collection.
            if re.search(r'^process_gpu_memory_MiB\{[^}]*index="%d"' % (GPUS - 1), page, re.M):
                body = page
            else:
                time.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert body is not None, f"nvitop-exporter served no GPU series:\n{err}"
    return body, err


@pytest.mark.parametrize("p", PRESETS, ids=[p["key"] for p in PRESETS])
def test_nvitop_exporter_scrape(p, libdir, expected, holder, tmp_path):
    scen = scenario(tmp_path, p, holder)
    want = expected(scen, T)["gpus"]
    body, err = scrape(libdir, scen)
    assert [line for line in err.splitlines() if line and not line.startswith("INFO: ")] == [], err
    series = {}
    for name, labels, value in re.findall(r"^(\w+)\{([^}]*)\} (\S+)$", body, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        series.setdefault((name, labels.get("index")), []).append((labels, float(value)))

    def one(name, index):
        (values,) = [[v for _, v in series[(name, str(index))]]]
        assert len(values) == 1, (name, values)
        return values[0]

    for w in want:
        s, i = w["state"], w["index"]
        sm = round(s["sm_clock_mhz"])
        assert one("gpu_clock_sm_MHz", i) == one("gpu_clock_graphics_MHz", i) == sm > 0
        assert one("gpu_clock_memory_MHz", i) == round(s["mem_clock_mhz"])
        assert one("gpu_clock_video_MHz", i) == mhz(s["sm_clock_mhz"] * 0.9)
        assert one("gpu_temperature_C", i) == round(s["temp_c"])
        assert one("gpu_power_usage_W", i) == round(s["power_w"] * 1000) / 1000
        assert one("gpu_power_limit_W", i) == p["power_default_w"]
        assert one("gpu_utilization_Percentage", i) == pct(s["util"])
        assert one("gpu_memory_total_MiB", i) == p["memory_mib"]
        assert one("gpu_memory_used_MiB", i) == MEMORY_GIB * 1024
        fan = one("gpu_fan_speed_Percentage", i)
        assert fan == s["fan_speed_pct"] if p["fans"] else math.isnan(fan), "no fan: NaN, not 0"
        enc = one("gpu_encoder_utilization_Percentage", i)
        assert enc == pct(s["enc_util"]) if p["encoder"] else math.isnan(enc)
        links = sorted(int(labels["link"]) for labels, _ in series.get(("gpu_nvlink_tx_throughput_MiBps", str(i)), []))
        assert links == list(range(p["nvlinks"]))
        procs = [(labels["pid"], v) for labels, v in series[("process_gpu_memory_MiB", str(i))]]
        assert procs == [(str(holder), MEMORY_GIB * 1024)]


def mig_scenario(tmp_path, pid):
    """GPU 0 in MIG mode split as mig-inference splits it, the holder on its 3g.40gb instance;
    GPU 1 whole."""
    path = tmp_path / "peers-mig.toml"
    path.write_text(textwrap.dedent(f"""\
        name = "peers-mig"
        [[gpus]]
        model = "H100-SXM5-80GB"
        mig = true
        mig_instances = ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]
        [[gpus]]
        model = "H100-SXM5-80GB"
        [[processes]]
        pid = {pid}
        name = "sleep"
        gpus = [0]
        mig_instance = 0
        memory_gib = {MEMORY_GIB}
        [[phases]]
        name = "load"
        duration_s = 120
        [phases.gpu]
        util = {{ value = 0.6, noise = 0 }}
        """))
    return str(path)


# (GPU instance id, profile, MiB) of the four instances, as `nvidia-smi mig -lgip` sizes them.
MIG_INSTANCES = [(2, "3g.40gb", 40448), (3, "2g.20gb", 20096), (9, "1g.10gb", 9984), (10, "1g.10gb", 9984)]

NVML_MIG = """
def q(f, *a):
    try:
        return f(*a)
    except NVMLError as e:
        return ["error", e.value]

nvmlInit()
h = nvmlDeviceGetHandleByIndex(0)
migs = []
for i in range(nvmlDeviceGetMaxMigDeviceCount(h)):
    m = q(nvmlDeviceGetMigDeviceHandleByIndex, h, i)
    if isinstance(m, list):
        migs.append(m)
        continue
    mem = nvmlDeviceGetMemoryInfo(m)
    parent = nvmlDeviceGetDeviceHandleFromMigDeviceHandle(m)
    migs.append(dict(
        is_mig=getattr(nvmlDeviceIsMigDeviceHandle(m), "value", None), gi=nvmlDeviceGetGpuInstanceId(m),
        ci=nvmlDeviceGetComputeInstanceId(m), name=nvmlDeviceGetName(m), uuid=nvmlDeviceGetUUID(m),
        total=mem.total, used=mem.used, free=mem.free, parent=nvmlDeviceGetIndex(parent),
        procs=[(p.pid, p.usedGpuMemory, p.gpuInstanceId, p.computeInstanceId)
               for p in nvmlDeviceGetComputeRunningProcesses(m)],
        util=q(nvmlDeviceGetUtilizationRates, m), temp=q(nvmlDeviceGetTemperature, m, 0),
    ))
h1 = nvmlDeviceGetHandleByIndex(1)
result = dict(
    mode=list(nvmlDeviceGetMigMode(h)), migs=migs, util=q(nvmlDeviceGetUtilizationRates, h),
    procs=[(p.pid, p.gpuInstanceId, p.computeInstanceId) for p in nvmlDeviceGetComputeRunningProcesses(h)],
    whole=dict(mode=list(nvmlDeviceGetMigMode(h1)), max=nvmlDeviceGetMaxMigDeviceCount(h1),
               mig=q(nvmlDeviceGetMigDeviceHandleByIndex, h1, 0), util=nvmlDeviceGetUtilizationRates(h1).gpu),
)
nvmlShutdown()
"""


def test_mig_devices_through_nvidia_ml_py(nvml, holder, tmp_path):
    r = nvml(NVML_MIG, scenario=mig_scenario(tmp_path, holder), time=T)
    NOT_FOUND = ["error", 6]
    assert r["mode"] == [1, 1]
    assert r["util"] == NOT_SUPPORTED, "nvml.h: no utilization rates on a MIG-enabled GPU"
    assert r["migs"][4:] == [NOT_FOUND] * 3, "seven MIG device slots, four instances"
    mib = 2**20
    for m, (gi, profile, size) in zip(r["migs"], MIG_INSTANCES):
        assert (m["is_mig"], m["gi"], m["ci"], m["parent"]) == (1, gi, 0, 0)
        assert m["name"] == f"NVIDIA H100 80GB HBM3 MIG {profile}"
        assert re.fullmatch(r"MIG-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", m["uuid"])
        used = MEMORY_GIB * 2**30 if gi == 2 else 0
        assert (m["total"], m["used"], m["free"]) == (size * mib, used, size * mib - used)
        assert m["procs"] == ([[holder, used, 2, 0]] if gi == 2 else [])
        assert m["util"] == m["temp"] == NOT_SUPPORTED
    assert len({m["uuid"] for m in r["migs"][:4]}) == 4
    assert r["procs"] == [[holder, 2, 0]], "with MIG on, the parent's processes name their instance"
    assert r["whole"] == dict(mode=[0, 0], max=0, mig=NOT_FOUND, util=60)


def test_nvitop_and_gpustat_read_mig_devices(libdir, holder, tmp_path):
    scen = mig_scenario(tmp_path, holder)
    out = peer(libdir, scen, "-m", "nvitop", "-1").stdout
    assert "Enabled" in out, out
    # One row per MIG device: "<gpu>:<mig> <profile> @ GI/CI:<gi>/<ci>", then its memory.
    rows = re.findall(r"│\s*0:(\d+)\s+(\S+) @ GI/CI:\s*(\d+)/(\d+)\s*│", out)
    assert [(int(i), p, int(gi), int(ci)) for i, p, gi, ci in rows] == [
        (i, p, gi, 0) for i, (gi, p, _) in enumerate(MIG_INSTANCES)
    ], out
    assert re.search(r"│ 0:0\s+\d+ C\s+\S+\s+3072MiB .* sleep 600", out), "the holder, on instance 0:0"
    got = json.loads(peer(libdir, scen, "-m", "gpustat", "--json").stdout)
    g0, g1 = got["gpus"]
    assert g0["utilization.gpu"] is None and g1["utilization.gpu"] == 60
    assert [q["pid"] for q in g0["processes"]] == [holder]
