//! MIG instances of a GPU in MIG mode: each MIG device's GPU instance id and profile, its memory,
//! and (with GPM) how busy its graphics engine is, the per-instance series dcgm-exporter labels
//! `GPU_I_ID` / `GPU_I_PROFILE`. The instances are found again on every slow pass, as an operator
//! can create or destroy them while the agent runs.

use super::nvml::call;
use gpuscope_core::{GpuSample, MigSample};
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::{NvmlError, nvml_try};
use nvml_wrapper::gpm::GpmSample;
use nvml_wrapper::{Device, Nvml};
use std::time::{Duration, Instant};

/// GPM needs samples at least this far apart for a meaningful ratio (as for whole GPUs).
const GPM_MIN_GAP: Duration = Duration::from_millis(100);

/// One MIG device as found.
struct Instance {
    device: Device<'static>,
    gpu_instance_id: u32,
    profile: String,
    gpm_prev: Option<(MigGpmSample, Instant)>,
    /// The sample before `gpm_prev`, read into again next time: no allocation per pass.
    gpm_spare: Option<MigGpmSample>,
    graphics_active: Option<f64>,
}

/// The MIG instances of one GPU.
#[derive(Default)]
pub(super) struct Instances {
    found: Vec<Instance>,
}

impl Instances {
    /// Reads every instance into `g.mig_instances` when `g.mig_enabled` (the GPU's current MIG
    /// mode) is true; `rescan` finds the instances again; `gpm` says whether the GPU has GPM.
    pub(super) fn sample(
        &mut self,
        nvml: &'static Nvml,
        parent: &Device<'static>,
        rescan: bool,
        gpm: bool,
        now: Instant,
        g: &mut GpuSample,
    ) {
        if g.mig_enabled != Some(true) {
            self.found.clear();
            return;
        }
        if rescan || self.found.is_empty() {
            self.rescan(nvml, parent);
        }
        for i in &mut self.found {
            let mut m =
                MigSample { gpu_instance_id: i.gpu_instance_id, profile: i.profile.clone(), ..MigSample::default() };
            if let Ok(mem) = call("nvmlDeviceGetMemoryInfo_v2", i.device.memory_info()) {
                m.memory_total_bytes = Some(mem.total);
                m.memory_used_bytes = Some(mem.used);
                m.memory_free_bytes = Some(mem.free);
            }
            if gpm {
                i.sample_gpm(nvml, parent, now);
                m.graphics_engine_active = i.graphics_active;
            }
            g.mig_instances.push(m);
        }
    }

    fn rescan(&mut self, nvml: &'static Nvml, parent: &Device<'static>) {
        let max = call("nvmlDeviceGetMaxMigDeviceCount", parent.mig_device_count()).unwrap_or(0);
        let mut found = Vec::new();
        for index in 0..max {
            // NOT_FOUND: no MIG device at this index (instances need not be contiguous).
            let Ok(device) = call("nvmlDeviceGetMigDeviceHandleByIndex", parent.mig_device_by_index(index)) else {
                continue;
            };
            let Ok(gpu_instance_id) = gpu_instance_id(nvml, &device) else { continue };
            let Some(profile) = call("nvmlDeviceGetName", device.name()).ok().as_deref().and_then(profile_of) else {
                continue;
            };
            // Keep the GPM baseline of an instance that is still there.
            let kept = self.found.iter_mut().find(|i| i.gpu_instance_id == gpu_instance_id && i.profile == profile);
            let (gpm_prev, gpm_spare, graphics_active) =
                kept.map_or((None, None, None), |i| (i.gpm_prev.take(), i.gpm_spare.take(), i.graphics_active));
            found.push(Instance { device, gpu_instance_id, profile, gpm_prev, gpm_spare, graphics_active });
        }
        found.sort_by_key(|i| i.gpu_instance_id);
        self.found = found;
    }
}

impl Instance {
    /// Graphics engine activity between the previous GPM sample of this instance and now.
    fn sample_gpm(&mut self, nvml: &'static Nvml, parent: &Device<'static>, now: Instant) {
        if let Some((_, then)) = &self.gpm_prev
            && now.duration_since(*then) < GPM_MIN_GAP
        {
            return;
        }
        let Ok(sample) = MigGpmSample::get(nvml, parent, self.gpu_instance_id, self.gpm_spare.take()) else {
            self.graphics_active = None;
            return;
        };
        if let Some((prev, _)) = &self.gpm_prev {
            self.graphics_active = call(
                "nvmlGpmMetricsGet",
                nvml_wrapper::gpm::gpm_metrics_get(nvml, &prev.0, &sample.0, &[GpmMetricId::GraphicsUtil]),
            )
            .ok()
            .and_then(|r| r.into_iter().next())
            .and_then(|r| r.ok())
            .map(|m| (m.value / 100.0).clamp(0.0, 1.0));
        }
        if let Some((old, _)) = self.gpm_prev.replace((sample, now)) {
            self.gpm_spare = Some(old);
        }
    }
}

/// The profile of a MIG device from its name: NVML names one `<board> MIG <profile>`
/// (`NVIDIA H100 80GB HBM3 MIG 1g.10gb`), as `nvidia-smi -L` shows it.
fn profile_of(name: &str) -> Option<String> {
    let (_, profile) = name.rsplit_once(" MIG ")?;
    let profile = profile.trim();
    (!profile.is_empty()).then(|| profile.to_string())
}

/// `nvmlDeviceGetGpuInstanceId` (nvml-wrapper does not wrap it).
fn gpu_instance_id(nvml: &Nvml, d: &Device<'_>) -> Result<u32, NvmlError> {
    let f = nvml.lib().nvmlDeviceGetGpuInstanceId.as_ref().map_err(|_| NvmlError::NotSupported)?;
    let mut id = 0;
    // SAFETY: a live device handle and a pointer to a local the call writes.
    call("nvmlDeviceGetGpuInstanceId", nvml_try(unsafe { f(d.handle(), &mut id) }))?;
    Ok(id)
}

/// A GPM sample of one MIG instance whose allocation, read and release are counted as the NVML
/// calls they are (nvml-wrapper makes them out of sight).
struct MigGpmSample(GpmSample<'static>);

impl MigGpmSample {
    /// Reads the instance's counters into `spare` (allocating a sample only when there is none);
    /// a failed read frees the sample.
    fn get(
        nvml: &'static Nvml,
        parent: &Device<'static>,
        gpu_instance_id: u32,
        spare: Option<MigGpmSample>,
    ) -> Result<MigGpmSample, NvmlError> {
        let lib = nvml.lib();
        let get = lib.nvmlGpmMigSampleGet.as_ref().map_err(|_| NvmlError::NotSupported)?;
        let sample = match spare {
            Some(s) => s,
            None => {
                let alloc = lib.nvmlGpmSampleAlloc.as_ref().map_err(|_| NvmlError::NotSupported)?;
                let mut handle = std::ptr::null_mut();
                // SAFETY: alloc writes a new sample handle through the pointer.
                nvml_try(call("nvmlGpmSampleAlloc", unsafe { alloc(&mut handle) }))?;
                // SAFETY: allocated just now by this library; the GpmSample owns and frees it.
                MigGpmSample(unsafe { GpmSample::from_handle(nvml, handle) })
            }
        };
        // SAFETY: a live sample of this library and a live device handle.
        nvml_try(call("nvmlGpmMigSampleGet", unsafe { get(parent.handle(), gpu_instance_id, sample.0.handle()) }))?;
        Ok(sample)
    }
}

impl Drop for MigGpmSample {
    fn drop(&mut self) {
        call("nvmlGpmSampleFree", ());
    }
}

#[cfg(test)]
mod tests {
    use super::profile_of;

    #[test]
    fn the_profile_is_the_name_after_mig() {
        assert_eq!(profile_of("NVIDIA H100 80GB HBM3 MIG 1g.10gb").as_deref(), Some("1g.10gb"));
        assert_eq!(profile_of("NVIDIA A100-SXM4-40GB MIG 3g.20gb").as_deref(), Some("3g.20gb"));
        assert_eq!(profile_of("NVIDIA H100 80GB HBM3"), None);
        assert_eq!(profile_of("NVIDIA H100 MIG "), None);
    }
}
