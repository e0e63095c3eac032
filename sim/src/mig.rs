//! MIG (Multi-Instance GPU) geometry: the GPU instance profiles of A100 and H100 boards and
//! where the driver places the instances a scenario creates.
//!
//! Profile names, ids, memory sizes and SM counts are those `nvidia-smi mig -lgip` lists (NVIDIA's
//! MIG user guide). Placement follows the driver's numbering: a GPU instance's id is its profile's
//! first id plus its start slice divided by its size, so `nvidia-smi mig -cgi 9,14,19` on an empty
//! GPU creates GPU instances 2 (3g, slices 4–7), 3 (2g, slices 0–1) and 9 (1g, slice 2).

/// One GPU instance profile of a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigProfile {
    /// Name without the `MIG ` prefix, e.g. `1g.10gb`.
    pub name: &'static str,
    /// Profile id as `nvidia-smi mig -lgip` lists it (the `id` of `nvmlGpuInstanceProfileInfo_t`).
    pub id: u32,
    /// NVML's `NVML_GPU_INSTANCE_PROFILE_*` constant (slice-count profile index).
    pub nvml_profile: u32,
    /// Compute slices (the `Ng` of the name).
    pub slices: u32,
    /// Memory slices the instance occupies (of 8).
    pub memory_slices: u32,
    /// Framebuffer memory, MiB.
    pub memory_mib: u64,
    /// Streaming multiprocessors.
    pub sms: u32,
    /// Start slices the driver tries, in its order of preference.
    pub starts: &'static [u32],
    /// GPU instance id of the placement at slice 0.
    pub first_id: u32,
}

/// A profile row, in the order of the struct's fields.
macro_rules! p {
    ($name:literal, $id:literal, $nvml:literal, $slices:literal, $mem_slices:literal, $mib:literal, $sms:literal, $starts:expr, $first:literal) => {
        MigProfile {
            name: $name,
            id: $id,
            nvml_profile: $nvml,
            slices: $slices,
            memory_slices: $mem_slices,
            memory_mib: $mib,
            sms: $sms,
            starts: $starts,
            first_id: $first,
        }
    };
}

const ONE: &[u32] = &[0, 1, 2, 3, 4, 5, 6];
const TWO: &[u32] = &[0, 2, 4];
const THREE: &[u32] = &[4, 0];
const FULL: &[u32] = &[0];

/// H100 80GB (SXM5 and PCIe).
const H100_80GB: &[MigProfile] = &[
    p!("1g.10gb", 19, 0, 1, 1, 9_984, 16, ONE, 7),
    p!("2g.20gb", 14, 1, 2, 2, 20_096, 32, TWO, 3),
    p!("3g.40gb", 9, 2, 3, 4, 40_448, 60, THREE, 1),
    p!("4g.40gb", 5, 3, 4, 4, 40_448, 64, FULL, 1),
    p!("7g.80gb", 0, 4, 7, 8, 81_152, 132, FULL, 0),
];

/// A100 80GB.
const A100_80GB: &[MigProfile] = &[
    p!("1g.10gb", 19, 0, 1, 1, 9_728, 14, ONE, 7),
    p!("2g.20gb", 14, 1, 2, 2, 19_968, 28, TWO, 3),
    p!("3g.40gb", 9, 2, 3, 4, 40_192, 42, THREE, 1),
    p!("4g.40gb", 5, 3, 4, 4, 40_192, 56, FULL, 1),
    p!("7g.80gb", 0, 4, 7, 8, 81_152, 98, FULL, 0),
];

/// A100 40GB.
const A100_40GB: &[MigProfile] = &[
    p!("1g.5gb", 19, 0, 1, 1, 4_864, 14, ONE, 7),
    p!("2g.10gb", 14, 1, 2, 2, 9_984, 28, TWO, 3),
    p!("3g.20gb", 9, 2, 3, 4, 20_096, 42, THREE, 1),
    p!("4g.20gb", 5, 3, 4, 4, 20_096, 56, FULL, 1),
    p!("7g.40gb", 0, 4, 7, 8, 40_320, 98, FULL, 0),
];

/// The GPU instance profiles of a preset (empty where the board has no MIG).
pub fn profiles(preset_key: &str) -> &'static [MigProfile] {
    match preset_key {
        "H100-SXM5-80GB" => H100_80GB,
        "A100-SXM4-80GB" => A100_80GB,
        "A100-PCIE-40GB" => A100_40GB,
        _ => &[],
    }
}

/// One GPU instance (with the single compute instance, id 0, that spans it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigInstance {
    /// Its profile.
    pub profile: &'static MigProfile,
    /// GPU instance id.
    pub gpu_instance_id: u32,
    /// Compute instance id inside the GPU instance.
    pub compute_instance_id: u32,
    /// First memory slice.
    pub start: u32,
}

/// Places `names` (profile names, in creation order) on an empty GPU of the preset as the driver
/// does: each takes the first free placement its profile allows.
pub fn place(preset_key: &str, names: &[String]) -> Result<Vec<MigInstance>, String> {
    let table = profiles(preset_key);
    if table.is_empty() && !names.is_empty() {
        return Err(format!("gpus.mig_instances: {preset_key} has no MIG"));
    }
    let mut used = [false; 8];
    let mut compute = 0;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let Some(profile) = table.iter().find(|p| p.name == name.as_str()) else {
            let known: Vec<&str> = table.iter().map(|p| p.name).collect();
            return Err(format!("gpus.mig_instances: {name:?} is not a {preset_key} profile ({})", known.join(", ")));
        };
        compute += profile.slices;
        let span = |s: u32| s as usize..(s + profile.memory_slices).min(8) as usize;
        let start = profile.starts.iter().copied().find(|&s| used[span(s)].iter().all(|u| !u));
        let Some(start) = start.filter(|_| compute <= 7) else {
            return Err(format!("gpus.mig_instances: no room left for {name:?} on the {preset_key}"));
        };
        used[span(start)].iter_mut().for_each(|u| *u = true);
        let gpu_instance_id = profile.first_id + start / profile.memory_slices.max(1);
        out.push(MigInstance { profile, gpu_instance_id, compute_instance_id: 0, start });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<u32> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        place("H100-SXM5-80GB", &names).unwrap().iter().map(|i| i.gpu_instance_id).collect()
    }

    #[test]
    fn instances_are_numbered_as_the_driver_numbers_them() {
        // nvidia-smi mig -cgi 9,14,19 → GPU instances 2, 3, 9 (MIG user guide).
        assert_eq!(ids(&["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]), vec![2, 3, 9, 10]);
        assert_eq!(ids(&["1g.10gb"; 7]), vec![7, 8, 9, 10, 11, 12, 13]);
        assert_eq!(ids(&["7g.80gb"]), vec![0]);
        assert_eq!(ids(&["3g.40gb", "3g.40gb"]), vec![2, 1]);
    }

    #[test]
    fn a_full_gpu_or_an_unknown_profile_is_refused_by_name() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = place("H100-SXM5-80GB", &names(&["7g.80gb", "1g.10gb"])).unwrap_err();
        assert!(e.contains("no room left for \"1g.10gb\""), "{e}");
        let e = place("H100-SXM5-80GB", &names(&["1g.5gb"])).unwrap_err();
        assert!(e.contains("not a H100-SXM5-80GB profile"), "{e}");
        let e = place("L4", &names(&["1g.5gb"])).unwrap_err();
        assert!(e.contains("L4 has no MIG"), "{e}");
    }
}
