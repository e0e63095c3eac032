"""Batched NVML field reads against single ones on the real driver (issue #14): the agent reads
its per-pass fields with one nvmlDeviceGetFieldValues call per GPU; this reads the same fields
once batched and once one at a time, back to back, and prints both, so a reader sees that the
batch gives what the single calls give. Counters move between the two reads: compare static
fields exactly and counters for the same order of magnitude."""

import json

import pynvml

FIELDS = {
    "ECC_CURRENT": 1,
    "ECC_PENDING": 2,
    "POWER_MIN_LIMIT": 187,
    "POWER_MAX_LIMIT": 188,
    "POWER_DEFAULT_LIMIT": 189,
    "POWER_CURRENT_LIMIT": 190,
    "MEMORY_TEMP": 82,
    "TOTAL_ENERGY_CONSUMPTION": 83,
    "POWER_AVERAGE": 185,
    "PCIE_REPLAY_COUNTER": 94,
    "PCIE_COUNT_TX_BYTES": 197,
    "PCIE_COUNT_RX_BYTES": 198,
}


def value(v):
    if v.nvmlReturn != 0:
        return f"error {v.nvmlReturn}"
    for kind, attr in ((0, "dVal"), (1, "uiVal"), (2, "ulVal"), (3, "ullVal"), (4, "sllVal"), (5, "siVal")):
        if v.valueType == kind:
            return getattr(v.value, attr)
    return None


def main():
    pynvml.nvmlInit()
    out = []
    for i in range(pynvml.nvmlDeviceGetCount()):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        batch = pynvml.nvmlDeviceGetFieldValues(h, list(FIELDS.values()))
        single = {name: value(pynvml.nvmlDeviceGetFieldValues(h, [fid])[0]) for name, fid in FIELDS.items()}
        out.append({
            "gpu": i,
            "name": pynvml.nvmlDeviceGetName(h),
            "batched": {name: value(v) for name, v in zip(FIELDS, batch)},
            "single": single,
        })
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
