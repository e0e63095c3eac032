//! GPU inventory signals end to end: the simulated driver answers per GPU model, the real agent
//! serves the values on `/metrics` (native and dcgm-exporter names) and in `query --json`, and a
//! model that lacks a signal gets no series at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Clock, NodeSpec, engine, start};

#[test]
fn fan_speed_follows_the_board_curve_and_is_absent_on_passive_boards() {
    // Workstation cards at 70 °C and 57 °C (the scenario pins them): the fan curve's 30 % floor
    // up to 45 °C, linear to 100 % at the 95 °C slowdown: 65 % and 47 %.
    let t = 120.0;
    let want = engine("workstation-inference", t, 0);
    let pct: Vec<u64> =
        want["gpus"].as_array().unwrap().iter().map(|g| g["state"]["fan_speed_pct"].as_u64().unwrap()).collect();
    assert_eq!(pct, [65, 47]);
    let mut spec = NodeSpec::new("workstation-inference", Clock::Frozen(t));
    spec.extra_args = vec!["--compat".into(), "dcgm".into()];
    let node = start(spec);
    let m = node.metrics();
    assert_eq!(m.one("gpuscope_gpu_fan_speed_ratio", &[("gpu", "0")]), 0.65);
    assert_eq!(m.one("gpuscope_gpu_fan_speed_ratio", &[("gpu", "1")]), 0.47);
    assert_eq!(m.one("DCGM_FI_DEV_FAN_SPEED", &[("gpu", "0")]), 65.0);
    assert_eq!(m.one("DCGM_FI_DEV_FAN_SPEED", &[("gpu", "1")]), 47.0);
    assert!(m.find("gpuscope_agent_unsupported_gpus", &[("signal", "fan_speed")]).is_empty());
    let q = common::query_json(&node, "workstation-inference", t);
    let fans: Vec<f64> = q["gpus"].as_array().unwrap().iter().map(|g| g["fan_speed_ratio"].as_f64().unwrap()).collect();
    assert_eq!(fans, [0.65, 0.47]);

    // Data-center boards are cooled by the chassis: NOT_SUPPORTED, so no series, not 0.
    let mut spec = NodeSpec::new("healthy-bf16-training", Clock::Frozen(t));
    spec.extra_args = vec!["--compat".into(), "dcgm".into()];
    let node = start(spec);
    let m = node.metrics();
    assert!(m.find("gpuscope_gpu_fan_speed_ratio", &[]).is_empty());
    assert!(m.find("DCGM_FI_DEV_FAN_SPEED", &[]).is_empty());
    assert_eq!(m.one("gpuscope_agent_unsupported_gpus", &[("signal", "fan_speed")]), 8.0);
    let q = common::query_json(&node, "healthy-bf16-training", t);
    assert!(q["gpus"].as_array().unwrap().iter().all(|g| g["fan_speed_ratio"].is_null()));
}

#[test]
fn topology_numa_and_vbios_as_nvidia_smi_topo_shows_them() {
    // 8×H100 SXM on an HGX board with two sockets: GPUs 0–3 on NUMA node 0 (CPUs 0–111), 4–7 on
    // node 1 (CPUs 112–223); every pair NV18 through the NVSwitches; PCIe meets at the NUMA node
    // (NODE, 40) within a socket and across the sockets (SYS, 50) between them.
    let t = 120.0;
    let node = start(NodeSpec::new("healthy-bf16-training", Clock::Frozen(t)));
    let m = node.metrics();
    for gpu in 0..8u32 {
        let g = gpu.to_string();
        let numa = u32::from(gpu >= 4);
        assert_eq!(m.one("gpuscope_gpu_numa_node", &[("gpu", &g)]), f64::from(numa));
        let cpus = if numa == 0 { "0-111" } else { "112-223" };
        assert_eq!(
            m.labels_of(
                "gpuscope_gpu_info",
                &[("gpu", &g), ("cpu_affinity", cpus), ("vbios_version", "96.00.30.00.01")]
            )
            .len(),
            1
        );
        for peer in (0..8u32).filter(|p| *p != gpu) {
            let p = peer.to_string();
            assert_eq!(m.one("gpuscope_gpu_peer_nvlinks", &[("gpu", &g), ("peer_gpu", &p)]), 18.0);
            let level = if (peer >= 4) == (gpu >= 4) { 40.0 } else { 50.0 };
            assert_eq!(m.one("gpuscope_gpu_peer_pcie_topology_level", &[("gpu", &g), ("peer_gpu", &p)]), level);
        }
        assert!(m.find("gpuscope_gpu_peer_nvlinks", &[("gpu", &g), ("peer_gpu", &g)]).is_empty(), "no self link");
    }
    // The simulated /sys agrees with NVML: it is what the agent reads where NVML cannot tell.
    let pci = node.root.path().join("sys/bus/pci/devices");
    let read = |dev: &str, file: &str| std::fs::read_to_string(pci.join(dev).join(file)).unwrap();
    assert_eq!(
        (read("0000:18:00.0", "numa_node"), read("0000:18:00.0", "local_cpulist")),
        ("0\n".into(), "0-111\n".into())
    );
    assert_eq!(
        (read("0000:9a:00.0", "numa_node"), read("0000:9a:00.0", "local_cpulist")),
        ("1\n".into(), "112-223\n".into())
    );
    let q = common::query_json(&node, "healthy-bf16-training", t);
    let g0 = &q["gpus"][0];
    assert_eq!((g0["numa_node"].as_u64(), g0["cpu_affinity"].as_str()), (Some(0), Some("0-111")));
    let peers: Vec<(u64, u64, u64)> = g0["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["peer_gpu"].as_u64().unwrap(),
                p["nvlinks"].as_u64().unwrap(),
                p["pcie_topology_level"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(peers, [(1, 18, 40), (2, 18, 40), (3, 18, 40), (4, 18, 50), (5, 18, 50), (6, 18, 50), (7, 18, 50)]);

    // Four V100 SXM2 without NVSwitches: each GPU's six links go straight to its peers, two to
    // each (NV2).
    let node = start(NodeSpec::new("retired-pages", Clock::Frozen(t)));
    let m = node.metrics();
    for gpu in 0..4u32 {
        for peer in (0..4u32).filter(|p| *p != gpu) {
            let (g, p) = (gpu.to_string(), peer.to_string());
            assert_eq!(m.one("gpuscope_gpu_peer_nvlinks", &[("gpu", &g), ("peer_gpu", &p)]), 2.0);
        }
    }

    // Two PCIe workstation cards on one socket: no NVLink, so no NVLink series (not 0); PCIe
    // meets at the NUMA node.
    let node = start(NodeSpec::new("workstation-inference", Clock::Frozen(t)));
    let m = node.metrics();
    assert!(m.find("gpuscope_gpu_peer_nvlinks", &[]).is_empty());
    assert_eq!(m.one("gpuscope_gpu_peer_pcie_topology_level", &[("gpu", "0"), ("peer_gpu", "1")]), 40.0);
    assert_eq!(m.find("gpuscope_gpu_numa_node", &[]), [0.0, 0.0]);
    assert_eq!(
        m.labels_of("gpuscope_gpu_info", &[("cpu_affinity", "0-31"), ("vbios_version", "96.00.B1.00.01")]).len(),
        2
    );
}

#[test]
fn process_running_time_is_the_uptime_less_the_process_start() {
    // Both servers started with the scenario: at second 120 they have run 120 s (the simulated
    // host had been up for a while before; a sampler that reported the uptime itself, or the
    // start time, would be far off).
    let t = 120.0;
    let node = start(NodeSpec::new("workstation-inference", Clock::Frozen(t)));
    let m = node.metrics();
    for pid in ["9120", "9121"] {
        assert_eq!(m.one("gpuscope_process_running_seconds", &[("pid", pid)]), 120.0);
    }
    let q = common::query_json(&node, "workstation-inference", t);
    let running: Vec<f64> =
        q["processes"].as_array().unwrap().iter().map(|p| p["running_seconds"].as_f64().unwrap()).collect();
    assert_eq!(running, [120.0, 120.0]);
}
