//! MIG entry points. Scenarios create no GPU instances (a scenario's `mig = true` is MIG mode on
//! with none created yet, as right after `nvidia-smi -mig 1`): every handle the library gives out
//! is a full GPU, never a MIG device, and no index finds a MIG device.

use super::*;

/// Most MIG devices one GPU can hold: seven 1g instances on A100 and H100.
const MAX_MIG_DEVICES: c_uint = 7;

/// MIG exists on A100 and H100 class parts only.
fn mig_capable(g: &GpuInfo) -> bool {
    g.preset.compute_capability == (8, 0) || g.preset.compute_capability.0 >= 9
}

nvml! {
    fn nvmlDeviceIsMigDeviceHandle(dev: *mut c_void, is_mig: *mut c_uint) {
        live(dev)?;
        out(is_mig, 0)
    }
    // "Returns zero if MIG is not supported or enabled" (nvml.h).
    fn nvmlDeviceGetMaxMigDeviceCount(dev: *mut c_void, count: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        out(count, if mig_capable(g) && g.mig { MAX_MIG_DEVICES } else { 0 })
    }
    fn nvmlDeviceGetMigDeviceHandleByIndex(dev: *mut c_void, index: c_uint, mig: *mut *mut c_void) {
        let (_, g, _) = live(dev)?;
        if !mig_capable(g) { return Err(NOT_SUPPORTED); }
        if mig.is_null() || index >= MAX_MIG_DEVICES { return Err(INVALID_ARGUMENT); }
        Err(NOT_FOUND)
    }
    // Only a MIG device handle has a parent.
    fn nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig: *mut c_void, dev: *mut *mut c_void) {
        live(mig)?;
        Err(INVALID_ARGUMENT)
    }
    // GPU and compute instance ids belong to MIG devices; a full GPU has none.
    fn nvmlDeviceGetGpuInstanceId(dev: *mut c_void, id: *mut c_uint) { live(dev)?; Err(NOT_SUPPORTED) }
    fn nvmlDeviceGetComputeInstanceId(dev: *mut c_void, id: *mut c_uint) { live(dev)?; Err(NOT_SUPPORTED) }
}
