"""NVIDIA's own Python bindings (nvidia-ml-py) load the simulator as libnvidia-ml.so.1 and read
the scenario's values; raw ctypes calls check the C ABI conventions (count queries, NULLs,
bad handles) that a real driver follows."""

import pytest

READ_ALL = """
nvmlInit()
devs = []
for i in range(nvmlDeviceGetCount()):
    h = nvmlDeviceGetHandleByIndex(i)
    m1 = nvmlDeviceGetMemoryInfo(h)
    m2 = nvmlDeviceGetMemoryInfo(h, version=nvmlMemory_v2)
    u = nvmlDeviceGetUtilizationRates(h)
    procs = [(p.pid, p.usedGpuMemory) for p in nvmlDeviceGetComputeRunningProcesses(h)]
    devs.append(dict(
        name=nvmlDeviceGetName(h), uuid=nvmlDeviceGetUUID(h), serial=nvmlDeviceGetSerial(h),
        bus_id=nvmlDeviceGetPciInfo(h).busId,
        total=m1.total, used_v1=m1.used, free=m1.free, used_v2=m2.used, reserved=m2.reserved,
        util=u.gpu, mem_util=u.memory,
        power_mw=nvmlDeviceGetPowerUsage(h), limit_mw=nvmlDeviceGetPowerManagementLimit(h),
        default_mw=nvmlDeviceGetPowerManagementDefaultLimit(h),
        constraints=list(nvmlDeviceGetPowerManagementLimitConstraints(h)),
        energy_mj=nvmlDeviceGetTotalEnergyConsumption(h),
        temp=nvmlDeviceGetTemperature(h, NVML_TEMPERATURE_GPU),
        slowdown=nvmlDeviceGetTemperatureThreshold(h, NVML_TEMPERATURE_THRESHOLD_SLOWDOWN),
        sm_clock=nvmlDeviceGetClockInfo(h, NVML_CLOCK_SM), mem_clock=nvmlDeviceGetClockInfo(h, NVML_CLOCK_MEM),
        max_sm=nvmlDeviceGetMaxClockInfo(h, NVML_CLOCK_SM),
        reasons=nvmlDeviceGetCurrentClocksEventReasons(h),
        pcie_rx=nvmlDeviceGetPcieThroughput(h, NVML_PCIE_UTIL_RX_BYTES),
        pcie_tx=nvmlDeviceGetPcieThroughput(h, NVML_PCIE_UTIL_TX_BYTES),
        gen=nvmlDeviceGetCurrPcieLinkGeneration(h), gen_max=nvmlDeviceGetMaxPcieLinkGeneration(h),
        width=nvmlDeviceGetCurrPcieLinkWidth(h), replays=nvmlDeviceGetPcieReplayCounter(h),
        ecc_unc=nvmlDeviceGetTotalEccErrors(h, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC),
        ecc_cor=nvmlDeviceGetTotalEccErrors(h, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC),
        cc=list(nvmlDeviceGetCudaComputeCapability(h)),
        procs=procs,
    ))
result = dict(driver=nvmlSystemGetDriverVersion(), cuda=nvmlSystemGetCudaDriverVersion(), devices=devs)
nvmlShutdown()
"""


def pct(x):
    return int(round(x * 100))


def test_h100_node_values_match_the_engine(nvml, expected):
    got = nvml(READ_ALL, scenario="healthy-bf16-training", time=250)
    want = expected("healthy-bf16-training", 250)
    assert got["driver"] == "550.54.15"
    assert got["cuda"] == 12040
    assert len(got["devices"]) == 8
    for d, w in zip(got["devices"], want["gpus"]):
        s = w["state"]
        assert d["name"] == "NVIDIA H100 80GB HBM3"
        assert d["uuid"] == w["uuid"]
        assert d["serial"] == w["serial"]
        assert d["bus_id"] == w["pci_bus_id"]
        assert d["total"] == s["memory_total"] == 81559 * 2**20
        assert d["used_v2"] == s["memory_used"] == 62 * 2**30
        assert d["reserved"] == s["memory_reserved"]
        assert d["used_v1"] == s["memory_used"] + s["memory_reserved"], "v1 counts the reservation as used"
        assert d["free"] == s["memory_free"]
        assert d["util"] == pct(s["util"])
        assert d["mem_util"] == pct(s["mem_util"])
        assert d["power_mw"] == round(s["power_w"] * 1000)
        assert d["limit_mw"] == d["default_mw"] == 700_000
        assert d["constraints"] == [200_000, 700_000]
        assert d["energy_mj"] == int(s["energy_j"] * 1000)
        assert d["temp"] == round(s["temp_c"])
        assert d["slowdown"] == 90
        assert d["sm_clock"] == d["max_sm"] == 1980
        assert d["mem_clock"] == 2619
        assert d["reasons"] == s["throttle"] == 0
        assert d["pcie_rx"] == round(s["pcie_rx"] / 1024)
        assert d["pcie_tx"] == round(s["pcie_tx"] / 1024)
        assert (d["gen"], d["gen_max"], d["width"]) == (5, 5, 16)
        assert d["replays"] == 0
        assert (d["ecc_unc"], d["ecc_cor"]) == (0, 0)
        assert d["cc"] == [9, 0]
        assert d["procs"] == [[41001, 62 * 2**30]]


GPM = """
nvmlInit()
out = []
for i in range(nvmlDeviceGetCount()):
    h = nvmlDeviceGetHandleByIndex(i)
    support = c_nvmlGpmSupport_t()
    support.version = NVML_GPM_SUPPORT_VERSION
    support = nvmlGpmQueryDeviceSupport(h)
    if not support.isSupportedDevice:
        try:
            s = nvmlGpmSampleAlloc()
            nvmlGpmSampleGet(h, s)
            out.append("sampled")
        except NVMLError as e:
            out.append(e.value)
        continue
    s1, s2 = nvmlGpmSampleAlloc(), nvmlGpmSampleAlloc()
    nvmlGpmSampleGet(h, s1)
    nvmlGpmSampleGet(h, s2)
    mg = c_nvmlGpmMetricsGet_t()
    mg.version = NVML_GPM_METRICS_GET_VERSION
    mg.sample1, mg.sample2 = s1, s2
    ids = [NVML_GPM_METRIC_SM_UTIL, NVML_GPM_METRIC_ANY_TENSOR_UTIL, NVML_GPM_METRIC_FP32_UTIL, NVML_GPM_METRIC_DRAM_BW_UTIL, 4]
    mg.numMetrics = len(ids)
    for j, m in enumerate(ids):
        mg.metrics[j].metricId = m
    nvmlGpmMetricsGet(mg)
    out.append([(mg.metrics[j].nvmlReturn, mg.metrics[j].value) for j in range(len(ids))])
    nvmlGpmSampleFree(s1)
    nvmlGpmSampleFree(s2)
result = out
"""


def test_gpm_on_hopper_and_not_supported_before(nvml, expected):
    got = nvml(GPM, scenario="no-tensor-cores", time=300)
    want = expected("no-tensor-cores", 300)
    for metrics, w in zip(got, want["gpus"]):
        s = w["state"]
        (r_sm, sm), (r_t, tensor), (r_fp32, fp32), (r_d, dram), (r_int, _) = metrics
        assert (r_sm, r_t, r_fp32, r_d) == (0, 0, 0, 0)
        assert sm == pytest.approx(s["sm_active"] * 100, abs=1e-9)
        assert tensor == pytest.approx(s["tensor"] * 100, abs=1e-9)
        assert fp32 == pytest.approx(s["fp32"] * 100, abs=1e-9)
        assert dram == pytest.approx(s["dram"] * 100, abs=1e-9)
        assert r_int == 3, "integer utilization is not simulated: NOT_SUPPORTED, never 0"
    for scenario in ("row-remap", "retired-pages", "healthy-inference"):
        assert set(nvml(GPM, scenario=scenario, time=10)) == {3}, f"{scenario}: NOT_SUPPORTED"


def test_t4_from_a_scenario_file(nvml, tmp_path):
    path = tmp_path / "t4.toml"
    path.write_text(
        '[[gpus]]\nmodel = "T4"\ncount = 2\n[[phases]]\nduration_s = 60\n[phases.gpu]\nutil = { value = 0.5, noise = 0 }\n'
    )
    got = nvml(
        GPM
        + """
h = nvmlDeviceGetHandleByIndex(0)
result = dict(gpm=out, name=nvmlDeviceGetName(h), util=nvmlDeviceGetUtilizationRates(h).gpu,
              cc=list(nvmlDeviceGetCudaComputeCapability(h)), limit=nvmlDeviceGetPowerManagementLimit(h))
""",
        scenario=str(path),
        time=30,
    )
    assert got == {"gpm": [3, 3], "name": "Tesla T4", "util": 50, "cc": [7, 5], "limit": 70_000}


def test_xid_event_arrives_and_the_gpu_is_lost(nvml):
    import time

    got = nvml(
        """
import time
nvmlInit()
es = nvmlEventSetCreate()
for i in range(nvmlDeviceGetCount()):
    nvmlDeviceRegisterEvents(nvmlDeviceGetHandleByIndex(i), nvmlEventTypeXidCriticalError, es)
t0 = time.time()
ev = nvmlEventSetWait_v2(es, 5000)
waited = time.time() - t0
lost = nvmlDeviceGetHandleByIndex(3)
try:
    nvmlDeviceGetPowerUsage(lost)
    lost_err = None
except NVMLError as e:
    lost_err = e.value
result = dict(xid=ev.eventData, type=ev.eventType, gpu=nvmlDeviceGetIndex(ev.device), waited=waited,
              lost_err=lost_err, other_ok=nvmlDeviceGetPowerUsage(nvmlDeviceGetHandleByIndex(2)) > 0,
              count=nvmlDeviceGetCount())
nvmlEventSetFree(es)
""",
        scenario="gpu-lost",
        start=f"{time.time() - 119.3:.6f}",
    )
    assert got["xid"] == 79
    assert got["type"] == 8
    assert got["gpu"] == 3
    assert 0.3 <= got["waited"] < 3.0
    assert got["lost_err"] == 15, "NVML_ERROR_GPU_IS_LOST"
    assert got["other_ok"]
    assert got["count"] == 8


def test_processes_and_utilization_samples(nvml, expected):
    got = nvml(
        """
nvmlInit()
h1 = nvmlDeviceGetHandleByIndex(1)
h0 = nvmlDeviceGetHandleByIndex(0)
samples = nvmlDeviceGetProcessUtilization(h1, 0)
newest = max(s.timeStamp for s in samples)
try:
    nvmlDeviceGetProcessUtilization(h1, newest)
    again = "samples"
except NVMLError as e:
    again = e.value
result = dict(
    procs=[(p.pid, p.usedGpuMemory) for p in nvmlDeviceGetComputeRunningProcesses(h1)],
    graphics=len(nvmlDeviceGetGraphicsRunningProcesses(h1)),
    samples=[(s.pid, s.smUtil, s.memUtil) for s in samples], again=again,
    name=nvmlSystemGetProcessName(62202),
    gpu0=[p.pid for p in nvmlDeviceGetComputeRunningProcesses(h0)],
)
""",
        scenario="gpu-idle-allocated",
        time=700,
    )
    assert got["procs"] == [[62202, 45 * 2**30]]
    assert got["graphics"] == 0
    assert got["samples"] == [[62202, 0, 0]], "an idle notebook uses nothing"
    assert got["again"] == 6, "nothing newer than the last seen sample: NVML_ERROR_NOT_FOUND"
    assert got["name"] == "python"
    assert got["gpu0"] == [62201]


ABI = """
import ctypes
lib = ctypes.CDLL("libnvidia-ml.so.1")
r = {}
r["before_init"] = lib.nvmlDeviceGetCount_v2(ctypes.byref(ctypes.c_uint()))
assert lib.nvmlInit_v2() == 0
n = ctypes.c_uint()
lib.nvmlDeviceGetCount_v2(ctypes.byref(n))
r["count"] = n.value
r["null_out"] = lib.nvmlDeviceGetCount_v2(None)
h = ctypes.c_void_p()
r["bad_index"] = lib.nvmlDeviceGetHandleByIndex_v2(n.value, ctypes.byref(h))
assert lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(h)) == 0
r["bad_handle"] = lib.nvmlDeviceGetPowerUsage(ctypes.c_void_p(12345), ctypes.byref(ctypes.c_uint()))
r["null_handle"] = lib.nvmlDeviceGetPowerUsage(None, ctypes.byref(ctypes.c_uint()))
buf = ctypes.create_string_buffer(4)
r["short_name_buffer"] = lib.nvmlDeviceGetName(h, buf, 4)
cnt = ctypes.c_uint(0)
r["count_query"] = lib.nvmlDeviceGetComputeRunningProcesses_v3(h, ctypes.byref(cnt), None)
r["count_value"] = cnt.value
lib.nvmlErrorString.restype = ctypes.c_char_p
r["error_string"] = lib.nvmlErrorString(15).decode()
class MemV2(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("total", ctypes.c_ulonglong), ("reserved", ctypes.c_ulonglong),
                ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
m = MemV2()
m.version = 1
r["memory_wrong_version"] = lib.nvmlDeviceGetMemoryInfo_v2(h, ctypes.byref(m))
r["bad_sensor"] = lib.nvmlDeviceGetTemperature(h, 7, ctypes.byref(ctypes.c_uint()))
r["fan"] = lib.nvmlDeviceGetFanSpeed(h, ctypes.byref(ctypes.c_uint()))
r["nvlink_out_of_range"] = lib.nvmlDeviceGetNvLinkState(h, 18, ctypes.byref(ctypes.c_uint()))
r["free_bad_set"] = lib.nvmlEventSetFree(ctypes.c_void_p(999))
assert lib.nvmlShutdown() == 0
r["after_shutdown"] = lib.nvmlDeviceGetCount_v2(ctypes.byref(n))
r["double_shutdown"] = lib.nvmlShutdown()
result = r
"""


def test_c_abi_conventions(nvml):
    r = nvml(ABI, scenario="healthy-bf16-training", time=10)
    assert r["before_init"] == 1, "UNINITIALIZED"
    assert r["count"] == 8
    assert r["null_out"] == 2, "INVALID_ARGUMENT"
    assert r["bad_index"] == 2
    assert r["bad_handle"] == 2
    assert r["null_handle"] == 2
    assert r["short_name_buffer"] == 7, "INSUFFICIENT_SIZE"
    assert (r["count_query"], r["count_value"]) == (7, 1), "NULL buffer: INSUFFICIENT_SIZE with the count"
    assert r["error_string"] == "GPU is lost"
    assert r["memory_wrong_version"] == 25, "ARGUMENT_VERSION_MISMATCH"
    assert r["bad_sensor"] == 2
    assert r["fan"] == 3, "passively cooled: NOT_SUPPORTED"
    assert r["nvlink_out_of_range"] == 2
    assert r["free_bad_set"] == 2
    assert r["after_shutdown"] == 1
    assert r["double_shutdown"] == 1


def test_missing_scenario_is_driver_not_loaded(nvml):
    r = nvml(
        """
try:
    nvmlInit()
    result = "initialised"
except NVMLError as e:
    result = e.value
"""
    )
    assert r == 9, "NVML_ERROR_DRIVER_NOT_LOADED"
