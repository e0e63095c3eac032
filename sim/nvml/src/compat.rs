//! Entry points that monitoring tools call beyond what gpuscope's agent reads (nvitop, gpustat,
//! all-smi, NVIDIA's Python bindings): clocks by clock id, customer boost and applications clocks,
//! brand, display, driver model, NUMA node, GSP firmware, BAR1 memory, NVLink remote device type,
//! confidential-computing memory sizes, the versioned temperature query, the running-process
//! detail list and the v2 process lists, and the inventory `nvidia-smi -q` shows (power state and
//! management mode, default ECC mode, board id, multi-GPU board, bus type, virtualization and
//! accounting modes, auto boost). Values come from the GPU model preset and the scenario; what
//! the real driver answers NOT_SUPPORTED on Linux for these models is NOT_SUPPORTED here too.

use super::*;

/// `nvmlEnableState_t`.
const FEATURE_DISABLED: c_uint = 0;
const FEATURE_ENABLED: c_uint = 1;
/// `NVML_BUS_TYPE_PCIE` (SXM modules are PCIe devices to the host too).
const BUS_TYPE_PCIE: c_uint = 2;
/// `NVML_GPU_VIRTUALIZATION_MODE_NONE`: bare metal.
const VIRTUALIZATION_MODE_NONE: c_uint = 0;
/// Processes the driver keeps accounting records for (`nvidia-smi -q`: 4000).
const ACCOUNTING_BUFFER_SIZE: c_uint = 4000;
/// `nvmlClockType_t`: graphics, SM, memory, video.
const CLOCK_GRAPHICS: c_uint = 0;
const CLOCK_SM: c_uint = 1;
const CLOCK_MEM: c_uint = 2;
const CLOCK_VIDEO: c_uint = 3;
/// `nvmlClockId_t`.
const CLOCK_ID_CURRENT: c_uint = 0;
const CLOCK_ID_APP_CLOCK_TARGET: c_uint = 1;
const CLOCK_ID_APP_CLOCK_DEFAULT: c_uint = 2;
const CLOCK_ID_CUSTOMER_BOOST_MAX: c_uint = 3;
/// `nvmlClocksEventReasonApplicationsClocksSetting`.
const CLOCK_EVENT_APPLICATIONS_CLOCKS_SETTING: c_ulonglong = 0x2;
/// `nvmlIntNvLinkDeviceType_t`.
const NVLINK_DEVICE_TYPE_GPU: c_uint = 0;
const NVLINK_DEVICE_TYPE_SWITCH: c_uint = 2;
/// `NVML_GSP_FIRMWARE_VERSION_BUF_SIZE`: the caller's buffer size (the call takes no length).
const GSP_FIRMWARE_VERSION_BUF_SIZE: c_uint = 0x40;
/// BAR1 the driver maps for itself on an idle GPU (`nvidia-smi -q` shows 1 MiB used).
const BAR1_DRIVER_BYTES: c_ulonglong = 1 << 20;

/// `nvmlTemperature_v1_t`.
#[repr(C)]
pub struct Temperature {
    version: c_uint,
    sensor_type: c_uint,
    temperature: c_int,
}

/// `nvmlTemperature_v1`: the struct size with version 1 in the top byte.
const TEMPERATURE_V1: c_uint = std::mem::size_of::<Temperature>() as c_uint | (1 << 24);

/// `nvmlConfComputeMemSizeInfo_t`.
#[repr(C)]
pub struct ConfComputeMemSizeInfo {
    protected_mem_size_kib: c_ulonglong,
    unprotected_mem_size_kib: c_ulonglong,
}

/// `nvmlBAR1Memory_t`.
#[repr(C)]
pub struct Bar1Memory {
    total: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

/// `nvmlProcessDetail_v1_t`.
#[repr(C)]
pub struct ProcessDetail {
    pid: c_uint,
    used_gpu_memory: c_ulonglong,
    gpu_instance_id: c_uint,
    compute_instance_id: c_uint,
    used_gpu_cc_protected_memory: c_ulonglong,
}

/// `nvmlProcessDetailList_v1_t`.
#[repr(C)]
pub struct ProcessDetailList {
    version: c_uint,
    mode: c_uint,
    num_proc_array_entries: c_uint,
    proc_array: *mut ProcessDetail,
}

/// `nvmlProcessDetailList_v1`.
const PROCESS_DETAIL_LIST_V1: c_uint = std::mem::size_of::<ProcessDetailList>() as c_uint | (1 << 24);

/// GSP firmware runs on Turing and later GPUs (the driver's default for them); Volta has none.
fn has_gsp(g: &GpuInfo) -> bool {
    g.preset.compute_capability >= (7, 5)
}

/// The clock of `kind` for clock id `id`, as `nvmlDeviceGetClock` answers it.
fn clock(dev: *mut c_void, kind: c_uint, id: c_uint) -> Result<c_uint, Ret> {
    if kind > CLOCK_VIDEO || id > CLOCK_ID_CUSTOMER_BOOST_MAX {
        return Err(INVALID_ARGUMENT);
    }
    if id == CLOCK_ID_CURRENT {
        // The same reading as nvmlDeviceGetClockInfo (the video clock runs at 0.9 × SM).
        let (_, _, s) = state(dev)?;
        let v = match kind {
            CLOCK_GRAPHICS | CLOCK_SM => s.sm_clock_mhz,
            CLOCK_MEM => s.mem_clock_mhz,
            _ => s.sm_clock_mhz * 0.9,
        };
        return Ok(v.round() as c_uint);
    }
    let (_, g, _) = live(dev)?;
    let p = g.preset;
    match (id, kind) {
        // Applications clocks exist for graphics/SM and memory. Where the scenario says they cap
        // the clock (the applications-clocks-setting clock event), the target is that clock;
        // else it is the default.
        (CLOCK_ID_APP_CLOCK_TARGET, CLOCK_GRAPHICS | CLOCK_SM) => {
            let (_, _, s) = state(dev)?;
            Ok(if s.throttle & CLOCK_EVENT_APPLICATIONS_CLOCKS_SETTING != 0 {
                s.sm_clock_mhz.round() as c_uint
            } else {
                p.default_app_sm_clock_mhz
            })
        }
        (CLOCK_ID_APP_CLOCK_DEFAULT, CLOCK_GRAPHICS | CLOCK_SM) => Ok(p.default_app_sm_clock_mhz),
        (CLOCK_ID_APP_CLOCK_TARGET | CLOCK_ID_APP_CLOCK_DEFAULT, CLOCK_MEM) => Ok(p.max_mem_clock_mhz),
        // The customer boost limit is defined for the graphics clock domain only.
        (CLOCK_ID_CUSTOMER_BOOST_MAX, CLOCK_GRAPHICS | CLOCK_SM) => Ok(p.max_sm_clock_mhz),
        _ => Err(NOT_SUPPORTED),
    }
}

fn process_detail_list(dev: *mut c_void, list: *mut ProcessDetailList) -> Result<(), Ret> {
    live(dev)?;
    if list.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: non-null pointer to the caller's nvmlProcessDetailList_t.
    let list = unsafe { &mut *list };
    if list.version != PROCESS_DETAIL_LIST_V1 {
        return Err(ARGUMENT_VERSION_MISMATCH);
    }
    // Modes: compute, graphics, MPS, all. Scenario processes are compute processes.
    let procs = match list.mode {
        0 | 3 => gpu_processes(dev)?,
        1 | 2 => Vec::new(),
        _ => return Err(INVALID_ARGUMENT),
    };
    let cap = list.num_proc_array_entries as usize;
    list.num_proc_array_entries = procs.len() as c_uint;
    if procs.is_empty() {
        return Ok(());
    }
    if list.proc_array.is_null() || cap < procs.len() {
        return Err(INSUFFICIENT_SIZE);
    }
    for (i, p) in procs.into_iter().enumerate() {
        let d = ProcessDetail {
            pid: p.pid,
            used_gpu_memory: p.used_gpu_memory,
            gpu_instance_id: p.gpu_instance_id,
            compute_instance_id: p.compute_instance_id,
            // Confidential computing is off: no process memory is protected.
            used_gpu_cc_protected_memory: 0,
        };
        // SAFETY: the caller's array has room for `cap >= procs.len()` entries.
        unsafe { list.proc_array.add(i).write(d) };
    }
    Ok(())
}

nvml! {
    fn nvmlDeviceGetClock(dev: *mut c_void, kind: c_uint, id: c_uint, mhz: *mut c_uint) {
        if mhz.is_null() { return Err(INVALID_ARGUMENT); }
        out(mhz, clock(dev, kind, id)?)
    }
    fn nvmlDeviceGetMaxCustomerBoostClock(dev: *mut c_void, kind: c_uint, mhz: *mut c_uint) {
        if mhz.is_null() { return Err(INVALID_ARGUMENT); }
        out(mhz, clock(dev, kind, CLOCK_ID_CUSTOMER_BOOST_MAX)?)
    }
    fn nvmlDeviceGetApplicationsClock(dev: *mut c_void, kind: c_uint, mhz: *mut c_uint) {
        if mhz.is_null() { return Err(INVALID_ARGUMENT); }
        out(mhz, clock(dev, kind, CLOCK_ID_APP_CLOCK_TARGET)?)
    }
    fn nvmlDeviceGetDefaultApplicationsClock(dev: *mut c_void, kind: c_uint, mhz: *mut c_uint) {
        if mhz.is_null() { return Err(INVALID_ARGUMENT); }
        out(mhz, clock(dev, kind, CLOCK_ID_APP_CLOCK_DEFAULT)?)
    }

    fn nvmlDeviceGetBrand(dev: *mut c_void, brand: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        out(brand, g.preset.brand)
    }
    // Every preset is a headless data-center board: no display attached, display mode off.
    fn nvmlDeviceGetDisplayMode(dev: *mut c_void, mode: *mut c_uint) { live(dev)?; out(mode, FEATURE_DISABLED) }
    fn nvmlDeviceGetDisplayActive(dev: *mut c_void, active: *mut c_uint) { live(dev)?; out(active, FEATURE_DISABLED) }
    // Driver models (WDDM/TCC/MCDM) are Windows-only; the Linux driver answers NOT_SUPPORTED.
    fn nvmlDeviceGetDriverModel(dev: *mut c_void, current: *mut c_uint, pending: *mut c_uint) {
        live(dev)?;
        Err(NOT_SUPPORTED)
    }
    fn nvmlDeviceGetDriverModel_v2(dev: *mut c_void, current: *mut c_uint, pending: *mut c_uint) {
        live(dev)?;
        Err(NOT_SUPPORTED)
    }
    // Only GPUs that are NUMA nodes themselves (coherent Grace platforms) have a NUMA node id;
    // on x86 hosts (`nvidia-smi topo -m`: "GPU NUMA ID N/A") the driver answers NOT_SUPPORTED.
    fn nvmlDeviceGetNumaNodeId(dev: *mut c_void, node: *mut c_uint) { live(dev)?; Err(NOT_SUPPORTED) }

    fn nvmlDeviceGetGspFirmwareMode(dev: *mut c_void, enabled: *mut c_uint, default_mode: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        out(enabled, u32::from(has_gsp(g)))?;
        out(default_mode, u32::from(has_gsp(g)))
    }
    fn nvmlDeviceGetGspFirmwareVersion(dev: *mut c_void, version: *mut c_char) {
        let (l, g, _) = live(dev)?;
        if !has_gsp(g) { return Err(NOT_SUPPORTED); }
        // The firmware ships with the driver and carries its version.
        out_str(version, GSP_FIRMWARE_VERSION_BUF_SIZE, &l.sim.scenario().node.driver_version)
    }

    fn nvmlDeviceGetBAR1MemoryInfo(dev: *mut c_void, bar1: *mut Bar1Memory) {
        // A MIG device gets its memory slices' share of the aperture (an eighth per slice), none
        // of it mapped yet, as `nvidia-smi` lists MIG devices' BAR1.
        if let Some(m) = mig::lookup(dev)? {
            let total = (m.gpu.preset.bar1_mib << 20) / 8 * u64::from(m.instance.profile.memory_slices);
            return out(bar1, Bar1Memory { total, free: total, used: 0 });
        }
        let (_, g, _) = live(dev)?;
        let total = g.preset.bar1_mib << 20;
        out(bar1, Bar1Memory { total, free: total - BAR1_DRIVER_BYTES, used: BAR1_DRIVER_BYTES })
    }

    fn nvmlDeviceGetNvLinkRemoteDeviceType(dev: *mut c_void, link: c_uint, kind: *mut c_uint) {
        let (_, g, _) = link_state(dev, link)?;
        out(kind, if g.preset.nvswitch { NVLINK_DEVICE_TYPE_SWITCH } else { NVLINK_DEVICE_TYPE_GPU })
    }

    // Confidential computing memory sizes (Hopper and later). CC mode is off in every scenario:
    // nothing is protected, and the memory CUDA can allocate is unprotected.
    fn nvmlDeviceGetConfComputeMemSizeInfo(dev: *mut c_void, info: *mut ConfComputeMemSizeInfo) {
        let (_, g, _) = live(dev)?;
        if g.preset.compute_capability.0 < 9 { return Err(NOT_SUPPORTED); }
        let usable_kib = (g.preset.memory_mib - g.preset.reserved_mib) * 1024;
        out(info, ConfComputeMemSizeInfo { protected_mem_size_kib: 0, unprotected_mem_size_kib: usable_kib })
    }

    fn nvmlDeviceGetTemperatureV(dev: *mut c_void, temp: *mut Temperature) {
        let (_, _, s) = state(dev)?;
        if temp.is_null() { return Err(INVALID_ARGUMENT); }
        // SAFETY: non-null pointer to the caller's struct with its version and sensor set.
        let t = unsafe { &mut *temp };
        if t.version != TEMPERATURE_V1 { return Err(ARGUMENT_VERSION_MISMATCH); }
        // NVML_TEMPERATURE_GPU is the only sensor, as for nvmlDeviceGetTemperature.
        if t.sensor_type != 0 { return Err(INVALID_ARGUMENT); }
        t.temperature = s.temp_c.round().max(0.0) as c_int;
        Ok(())
    }

    fn nvmlDeviceGetRunningProcessDetailList(dev: *mut c_void, list: *mut ProcessDetailList) {
        process_detail_list(dev, list)
    }
    // The v2 process lists of older bindings: no graphics or MPS processes in a scenario.
    fn nvmlDeviceGetGraphicsRunningProcesses_v2(dev: *mut c_void, count: *mut c_uint, infos: *mut ProcessInfo) {
        live(dev)?;
        out_array::<ProcessInfo>(count, infos, Vec::new())
    }
    fn nvmlDeviceGetMPSComputeRunningProcesses_v2(dev: *mut c_void, count: *mut c_uint, infos: *mut ProcessInfo) {
        live(dev)?;
        out_array::<ProcessInfo>(count, infos, Vec::new())
    }

    // Inventory that `nvidia-smi -q` shows for these boards on a bare-metal Linux host.
    fn nvmlDeviceGetPowerState(dev: *mut c_void, pstate: *mut c_uint) { live(dev)?; out(pstate, 0) }
    fn nvmlDeviceGetPowerManagementMode(dev: *mut c_void, mode: *mut c_uint) { live(dev)?; out(mode, FEATURE_ENABLED) }
    fn nvmlDeviceGetDefaultEccMode(dev: *mut c_void, mode: *mut c_uint) { live(dev)?; out(mode, FEATURE_ENABLED) }
    fn nvmlDeviceGetMultiGpuBoard(dev: *mut c_void, multi: *mut c_uint) { live(dev)?; out(multi, 0) }
    fn nvmlDeviceGetBoardId(dev: *mut c_void, id: *mut c_uint) {
        // The board id is the PCI location: bus in bits 8..16, device in bits 3..8 (here 0).
        let (_, g, _) = live(dev)?;
        out(id, g.pci_bus << 8)
    }
    fn nvmlDeviceGetBusType(dev: *mut c_void, bus: *mut c_uint) { live(dev)?; out(bus, BUS_TYPE_PCIE) }
    fn nvmlDeviceGetVirtualizationMode(dev: *mut c_void, mode: *mut c_uint) {
        live(dev)?;
        out(mode, VIRTUALIZATION_MODE_NONE)
    }
    fn nvmlDeviceGetAccountingMode(dev: *mut c_void, mode: *mut c_uint) { live(dev)?; out(mode, FEATURE_DISABLED) }
    fn nvmlDeviceGetAccountingBufferSize(dev: *mut c_void, size: *mut c_uint) {
        live(dev)?;
        out(size, ACCOUNTING_BUFFER_SIZE)
    }
    // Since Pascal, auto boost is governed by applications clocks; the query is not supported.
    fn nvmlDeviceGetAutoBoostedClocksEnabled(dev: *mut c_void, enabled: *mut c_uint, default_enabled: *mut c_uint) {
        live(dev)?;
        Err(NOT_SUPPORTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_versions_match_nvml_h() {
        assert_eq!(TEMPERATURE_V1, 0x100_000C);
        assert_eq!(PROCESS_DETAIL_LIST_V1, 0x100_0018);
        assert_eq!(std::mem::size_of::<ProcessDetail>(), 32);
        assert_eq!(std::mem::size_of::<ConfComputeMemSizeInfo>(), 16);
        assert_eq!(std::mem::size_of::<Bar1Memory>(), 24);
    }
}
