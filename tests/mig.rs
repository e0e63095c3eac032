//! MIG end to end: the simulated driver splits GPU 0 of `mig-inference` into GPU instances
//! 2 (3g.40gb), 3 (2g.20gb), 9 and 10 (1g.10gb), the real agent serves each instance's memory and
//! graphics engine activity on `/metrics` (native names, and dcgm-exporter's with `GPU_I_ID` /
//! `GPU_I_PROFILE`) and in `query --json`, and a GPU without MIG gets no instance series at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Clock, NodeSpec, eventually, start};

const MIB: u64 = 1_048_576;
const GIB: u64 = 1 << 30;

/// (GPU instance id, profile, memory MiB as `nvidia-smi mig -lgip` lists it, GiB its processes
/// hold, graphics engine activity: the phase's 0.8 times the instance's summed `sm_share`).
const INSTANCES: [(u32, &str, u64, u64, f64); 4] = [
    (2, "3g.40gb", 40_448, 30, 0.8),
    (3, "2g.20gb", 20_096, 12, 0.4),
    (9, "1g.10gb", 9_984, 4, 0.2),
    (10, "1g.10gb", 9_984, 0, 0.0),
];

#[test]
fn mig_instances_on_metrics_native_and_dcgm_with_exact_values() {
    let t = 120.0;
    let mut spec = NodeSpec::new("mig-inference", Clock::Frozen(t));
    spec.extra_args = vec!["--compat".into(), "dcgm".into()];
    let node = start(spec);
    // GPM ratios need two samples of each instance: wait for the agent's second pass.
    let m = eventually(30, || {
        let m = node.metrics();
        (m.find("gpuscope_gpu_mig_graphics_active_ratio", &[]).len() == 4).then_some(m)
    });
    for (id, profile, mib, gib, active) in INSTANCES {
        let id_s = id.to_string();
        let labels = [("gpu", "0"), ("gpu_instance_id", id_s.as_str()), ("gpu_instance_profile", profile)];
        let (total, used) = (mib * MIB, gib * GIB);
        assert_eq!(m.one("gpuscope_gpu_mig_memory_total_bytes", &labels), total as f64);
        assert_eq!(m.one("gpuscope_gpu_mig_memory_used_bytes", &labels), used as f64);
        assert_eq!(m.one("gpuscope_gpu_mig_memory_free_bytes", &labels), (total - used) as f64);
        let got = m.one("gpuscope_gpu_mig_graphics_active_ratio", &labels);
        assert!((got - active).abs() < 1e-9, "GI {id}: {got}");

        let dcgm = [("gpu", "0"), ("GPU_I_ID", id_s.as_str()), ("GPU_I_PROFILE", profile)];
        assert_eq!(m.one("DCGM_FI_DEV_FB_USED", &dcgm), (used / MIB) as f64);
        assert_eq!(m.one("DCGM_FI_DEV_FB_FREE", &dcgm), ((total - used) / MIB) as f64);
        let got = m.one("DCGM_FI_PROF_GR_ENGINE_ACTIVE", &dcgm);
        assert!((got - active).abs() < 1e-9, "GI {id}: {got}");
        // dcgm-exporter's label order: the GPU's, then the instance's, then the host's.
        let keys: Vec<String> = m.labels_of("DCGM_FI_DEV_FB_USED", &dcgm)[0].iter().map(|(k, _)| k.clone()).collect();
        let at = |k: &str| keys.iter().position(|x| x == k).unwrap();
        assert!(at("modelName") < at("GPU_I_PROFILE") && at("GPU_I_PROFILE") < at("GPU_I_ID"), "{keys:?}");
    }
    assert_eq!(m.find("gpuscope_gpu_mig_memory_used_bytes", &[]).len(), 4, "four instances, all on GPU 0");
    // The whole GPU keeps its own series, without instance labels.
    assert_eq!(m.find("DCGM_FI_DEV_FB_USED", &[("gpu", "1")]).len(), 1);
    assert!(m.labels_of("DCGM_FI_DEV_FB_USED", &[("gpu", "1")])[0].iter().all(|(k, _)| !k.starts_with("GPU_I_")));
    assert_eq!(m.one("gpuscope_gpu_mig_enabled", &[("gpu", "0")]), 1.0);
    assert_eq!(m.one("gpuscope_gpu_mig_enabled", &[("gpu", "1")]), 0.0);
    // NVML reports no utilization for a GPU in MIG mode: absent, not 0; GPU 1 has it.
    assert!(m.find("gpuscope_gpu_utilization_ratio", &[("gpu", "0")]).is_empty());
    assert_eq!(m.find("gpuscope_gpu_utilization_ratio", &[("gpu", "1")]).len(), 1);
    assert!(m.find("gpuscope_gpu_mig_memory_used_bytes", &[("gpu", "1")]).is_empty());

    let q = common::query_json(&node, "mig-inference", t);
    let gpus = q["gpus"].as_array().unwrap();
    let inst = gpus[0]["mig_instances"].as_array().unwrap();
    assert_eq!(inst.len(), 4);
    for (j, (id, profile, mib, gib, active)) in INSTANCES.iter().enumerate() {
        assert_eq!(inst[j]["gpu_instance_id"], *id);
        assert_eq!(inst[j]["profile"], *profile);
        assert_eq!(inst[j]["memory_total_bytes"], mib * MIB);
        assert_eq!(inst[j]["memory_used_bytes"], gib * GIB);
        assert_eq!(inst[j]["memory_free_bytes"], mib * MIB - gib * GIB);
        let got = inst[j]["graphics_engine_active"].as_f64().unwrap();
        assert!((got - active).abs() < 1e-9, "GI {id}: {got}");
    }
    assert!(gpus[0]["utilization_ratio"].is_null());
    assert_eq!(gpus[1]["mig_instances"].as_array().map(Vec::len), Some(0));

    // Each instance's two GPM samples are allocated once and read into in turn: two more passes
    // (eight more instance reads) allocate nothing.
    let calls = |entry: &str| node.metrics().one("gpuscope_agent_nvml_calls_total", &[("entry_point", entry)]);
    let (allocs, reads) = (calls("nvmlGpmSampleAlloc"), calls("nvmlGpmMigSampleGet"));
    eventually(30, || (calls("nvmlGpmMigSampleGet") >= reads + 8.0).then_some(()));
    assert_eq!(calls("nvmlGpmSampleAlloc"), allocs);
}
