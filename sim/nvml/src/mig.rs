//! MIG entry points. A scenario GPU with `mig = true` is in MIG mode; its `mig_instances` are the
//! GPU instances created on it, each with one compute instance spanning it, and each is a MIG
//! device with its own handle, `MIG-` UUID, name, memory and processes. Every other entry point
//! answers `NOT_SUPPORTED` for a MIG device handle (`device()` in lib.rs).

use super::*;
use gpuscope_sim::mig::MigInstance;

/// Most MIG devices one GPU can hold: seven 1g instances on A100 and H100.
const MAX_MIG_DEVICES: c_uint = 7;

/// The opaque `nvmlDevice_t` target of a MIG device: a GPU and its instance's position.
#[repr(C)]
pub(crate) struct MigDevice {
    gpu: u32,
    slot: u32,
}

/// One MIG device handle, resolved.
#[derive(Clone, Copy)]
pub(crate) struct Mig {
    pub(crate) loaded: &'static Loaded,
    pub(crate) gpu: &'static GpuInfo,
    pub(crate) instance: &'static MigInstance,
    /// Index into the GPU's `mig_instances`.
    pub(crate) slot: u32,
}

/// Every MIG device of the node, GPU by GPU.
pub(crate) fn devices(sim: &Simulation) -> Box<[MigDevice]> {
    sim.gpus()
        .iter()
        .filter(|g| g.mig)
        .flat_map(|g| (0..g.mig_instances.len() as u32).map(move |slot| MigDevice { gpu: g.index, slot }))
        .collect()
}

fn position(l: &Loaded, dev: *mut c_void) -> Option<usize> {
    let size = std::mem::size_of::<MigDevice>();
    let base = l.migs.as_ptr() as usize;
    let p = dev as usize;
    (!dev.is_null() && p >= base && p < base + l.migs.len() * size && (p - base).is_multiple_of(size))
        .then(|| (p - base) / size)
}

/// Whether `dev` is one of the MIG device handles.
pub(crate) fn is_mig(l: &Loaded, dev: *mut c_void) -> bool {
    position(l, dev).is_some()
}

/// The MIG device behind `dev`, `None` for any other handle; `GPU_IS_LOST` once its GPU is.
pub(crate) fn lookup(dev: *mut c_void) -> Result<Option<Mig>, Ret> {
    let l = loaded()?;
    let Some(i) = position(l, dev) else { return Ok(None) };
    let m = &l.migs[i];
    if l.sim.gpu_lost(m.gpu, l.clock.now()) {
        return Err(GPU_IS_LOST);
    }
    let gpu = &l.sim.gpus()[m.gpu as usize];
    let instance = gpu.mig_instances.get(m.slot as usize).ok_or(UNKNOWN)?;
    Ok(Some(Mig { loaded: l, gpu, instance, slot: m.slot }))
}

fn mig_handle(l: &'static Loaded, gpu: u32, slot: u32) -> Option<*mut c_void> {
    let i = l.migs.iter().position(|m| m.gpu == gpu && m.slot == slot)?;
    Some((&l.migs[i] as *const MigDevice).cast_mut().cast())
}

/// The name a MIG device reports: the board's, then `MIG` and the profile.
pub(crate) fn name(m: Mig) -> String {
    format!("{} MIG {}", m.gpu.preset.name, m.instance.profile.name)
}

/// `MIG-` and a UUID derived from the parent's and the GPU instance id (stable per scenario).
pub(crate) fn uuid(m: Mig) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in m.gpu.uuid.bytes().chain(m.instance.gpu_instance_id.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let h2 = h.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!(
        "MIG-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xffff,
        h2 >> 48,
        h2 & 0xffff_ffff_ffff
    )
}

/// (total, used) bytes of the instance: its profile's memory and its processes' allocations.
pub(crate) fn memory(m: Mig) -> (u64, u64) {
    let total = m.instance.profile.memory_mib * 1_048_576;
    let t = m.loaded.clock.now();
    let used: u64 = m
        .loaded
        .sim
        .gpu_processes(m.gpu.index, t)
        .iter()
        .filter(|p| p.mig_instance == Some(m.slot))
        .map(|p| p.memory_bytes)
        .sum();
    (total, used.min(total))
}

/// How busy GPU instance `gpu_instance_id` keeps its engines relative to the GPU's activity: its
/// processes' summed `sm_share`, at most 1.
pub(crate) fn activity_share(l: &Loaded, gpu: u32, gpu_instance_id: u32, t: f64) -> f64 {
    let Some(g) = l.sim.gpus().get(gpu as usize) else { return 0.0 };
    let Some(slot) = g.mig_instances.iter().position(|i| i.gpu_instance_id == gpu_instance_id) else { return 0.0 };
    let share: f64 =
        l.sim.gpu_processes(gpu, t).iter().filter(|p| p.mig_instance == Some(slot as u32)).map(|p| p.sm_share).sum();
    // An empty sum is -0.0: an idle instance reads plain 0.
    if share > 0.0 { share.min(1.0) } else { 0.0 }
}

/// MIG exists on A100 and H100 class parts only.
fn mig_capable(g: &GpuInfo) -> bool {
    g.preset.compute_capability == (8, 0) || g.preset.compute_capability.0 >= 9
}

nvml! {
    fn nvmlDeviceIsMigDeviceHandle(dev: *mut c_void, is_mig: *mut c_uint) {
        if lookup(dev)?.is_some() { return out(is_mig, 1); }
        live(dev)?;
        out(is_mig, 0)
    }
    // "Returns zero if MIG is not supported or enabled" (nvml.h).
    fn nvmlDeviceGetMaxMigDeviceCount(dev: *mut c_void, count: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        out(count, if mig_capable(g) && g.mig { MAX_MIG_DEVICES } else { 0 })
    }
    fn nvmlDeviceGetMigDeviceHandleByIndex(dev: *mut c_void, index: c_uint, mig: *mut *mut c_void) {
        let (l, g, _) = live(dev)?;
        if !mig_capable(g) { return Err(NOT_SUPPORTED); }
        if mig.is_null() || index >= MAX_MIG_DEVICES { return Err(INVALID_ARGUMENT); }
        if !g.mig { return Err(NOT_FOUND); }
        out(mig, mig_handle(l, g.index, index).ok_or(NOT_FOUND)?)
    }
    // Only a MIG device handle has a parent.
    fn nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig: *mut c_void, dev: *mut *mut c_void) {
        if let Some(m) = lookup(mig)? { return out(dev, handle(m.loaded, m.gpu.index)); }
        live(mig)?;
        Err(INVALID_ARGUMENT)
    }
    // GPU and compute instance ids belong to MIG devices; a full GPU has none.
    fn nvmlDeviceGetGpuInstanceId(dev: *mut c_void, id: *mut c_uint) {
        if let Some(m) = lookup(dev)? { return out(id, m.instance.gpu_instance_id); }
        live(dev)?;
        Err(NOT_SUPPORTED)
    }
    fn nvmlDeviceGetComputeInstanceId(dev: *mut c_void, id: *mut c_uint) {
        if let Some(m) = lookup(dev)? { return out(id, m.instance.compute_instance_id); }
        live(dev)?;
        Err(NOT_SUPPORTED)
    }
}
