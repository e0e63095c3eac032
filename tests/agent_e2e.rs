//! The real `gpuscope agent` on simulated nodes: values, labels, absent signals, formats and
//! faults, scraped over HTTP like Prometheus does.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{Clock, NodeSpec, engine, eventually, start, unix_now};
use std::io::Read;
use std::process::Command;

fn pct_ratio(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[test]
fn h100_node_serves_every_signal_with_the_scenario_values() {
    let t = 250.0;
    let node = start(NodeSpec::new("healthy-bf16-training", Clock::Frozen(t)));
    // Two passes at least: GPM needs two samples.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let m = node.metrics();
    let want = engine("healthy-bf16-training", t, 0);
    assert_eq!(m.one("gpuscope_gpu_driver_up", &[]), 1.0);
    for g in want["gpus"].as_array().unwrap() {
        let s = &g["state"];
        let idx = g["index"].to_string();
        let l = [("gpu", idx.as_str()), ("uuid", g["uuid"].as_str().unwrap()), ("model", "NVIDIA H100 80GB HBM3")];
        let f = |k: &str| s[k].as_f64().unwrap();
        assert_eq!(m.one("gpuscope_gpu_up", &l), 1.0);
        assert_eq!(m.one("gpuscope_gpu_utilization_ratio", &l), pct_ratio(f("util")));
        assert_eq!(m.one("gpuscope_gpu_memory_copy_utilization_ratio", &l), pct_ratio(f("mem_util")));
        assert_eq!(m.one("gpuscope_gpu_power_watts", &l), (f("power_w") * 1000.0).round() / 1000.0);
        assert_eq!(m.one("gpuscope_gpu_energy_joules_total", &l), (f("energy_j") * 1000.0).floor() / 1000.0);
        assert_eq!(m.one("gpuscope_gpu_temperature_celsius", &l), f("temp_c").round());
        assert_eq!(m.one("gpuscope_gpu_memory_temperature_celsius", &l), f("mem_temp_c").round());
        assert_eq!(m.one("gpuscope_gpu_memory_used_bytes", &l), f("memory_used"));
        assert_eq!(m.one("gpuscope_gpu_memory_total_bytes", &l), f("memory_total"));
        assert_eq!(m.one("gpuscope_gpu_memory_reserved_bytes", &l), f("memory_reserved"));
        assert_eq!(m.one("gpuscope_gpu_sm_clock_hertz", &l), 1980e6);
        assert_eq!(m.one("gpuscope_gpu_sm_clock_max_hertz", &l), 1980e6);
        assert_eq!(m.one("gpuscope_gpu_memory_clock_hertz", &l), 2619e6);
        assert_eq!(m.one("gpuscope_gpu_power_limit_watts", &l), 700.0);
        assert_eq!(m.one("gpuscope_gpu_power_min_limit_watts", &l), 200.0);
        assert_eq!(m.one("gpuscope_gpu_slowdown_temperature_celsius", &l), 90.0);
        // nvidia-smi on an H100 SXM: GPU Max Operating Temp 87 C; ECC on, no change pending.
        assert_eq!(m.one("gpuscope_gpu_max_operating_temperature_celsius", &l), 87.0);
        assert_eq!(m.one("gpuscope_gpu_ecc_mode", &l), 1.0);
        assert_eq!(m.one("gpuscope_gpu_ecc_mode_pending", &l), 1.0);
        assert_eq!(m.one("gpuscope_gpu_compute_mode", &l), 0.0);
        // Training: P0; the video clock runs at 0.9 × the SM clock on the simulated boards.
        assert_eq!(m.one("gpuscope_gpu_performance_state", &l), 0.0);
        assert_eq!(m.one("gpuscope_gpu_video_clock_hertz", &l), 1782e6);
        // Rates between two readings of byte counters: on the frozen clock no byte moves while
        // wall time passes, a measured 0 (`query_reads_pcie_and_nvlink_…` checks real rates).
        for rate in [
            "gpuscope_gpu_pcie_rx_bytes_per_second",
            "gpuscope_gpu_pcie_tx_bytes_per_second",
            "gpuscope_gpu_nvlink_rx_bytes_per_second",
            "gpuscope_gpu_nvlink_tx_bytes_per_second",
            "gpuscope_gpu_nvlink_link_rx_bytes_per_second",
            "gpuscope_gpu_nvlink_link_tx_bytes_per_second",
        ] {
            let found = m.find(rate, &[l[0]]);
            assert!(!found.is_empty() && found.iter().all(|v| *v == 0.0), "{rate} on a frozen clock: {found:?}");
        }
        assert_eq!(m.one("gpuscope_gpu_pcie_link_generation", &l), 5.0);
        assert_eq!(m.one("gpuscope_gpu_pcie_link_width_max", &l), 16.0);
        assert_eq!(m.one("gpuscope_gpu_ecc_uncorrected_volatile_errors_total", &l), 0.0);
        assert_eq!(m.one("gpuscope_gpu_remapped_rows_uncorrectable", &l), 0.0);
        assert_eq!(m.one("gpuscope_gpu_row_remap_pending", &l), 0.0);
        for (metric, key) in [
            ("gpuscope_gpu_sm_active_ratio", "sm_active"),
            ("gpuscope_gpu_sm_occupancy_ratio", "sm_occupancy"),
            ("gpuscope_gpu_tensor_active_ratio", "tensor"),
            ("gpuscope_gpu_fp32_active_ratio", "fp32"),
            ("gpuscope_gpu_fp16_active_ratio", "fp16"),
            ("gpuscope_gpu_dram_active_ratio", "dram"),
        ] {
            assert!((m.one(metric, &l) - f(key)).abs() < 1e-9, "{metric} gpu {idx}");
        }
        assert_eq!(m.one("gpuscope_gpu_clock_event_active", &[l[0], ("reason", "sw_power_cap")]), 0.0);
        assert_eq!(m.find("gpuscope_gpu_nvlink_up", &[l[0]]).len(), 18);
        assert!(
            m.find("gpuscope_gpu_encoder_utilization_ratio", &[l[0]]).is_empty(),
            "no NVENC on H100: absent, not 0"
        );
        assert!(m.find("gpuscope_gpu_fan_speed_ratio", &[l[0]]).is_empty());
        // One training rank per GPU, attributed to its container and pod.
        let pl = [
            ("gpu", idx.as_str()),
            ("pid", "41001"),
            ("process", "python"),
            // Named from the node's passwd file (the scenario's accounts), not this machine's.
            ("user", "trainer"),
            ("container", "3f1c2a9b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a"),
            ("pod", "llama-pretrain-worker-0"),
            ("namespace", "ml-training"),
        ];
        assert_eq!(m.one("gpuscope_process_gpu_memory_bytes", &pl), (62u64 << 30) as f64);
        assert_eq!(m.one("gpuscope_process_sm_utilization_ratio", &pl), pct_ratio(f("util")));
        // Samples carry the engines' shares; the H100 has NVDEC (idle here) but no NVENC.
        assert_eq!(m.one("gpuscope_process_decoder_utilization_ratio", &pl), 0.0);
        assert!(m.find("gpuscope_process_encoder_utilization_ratio", &[l[0]]).is_empty());
        assert_eq!(m.one("gpuscope_process_cpu_seconds_total", &pl), 24.0 * t);
        assert_eq!(
            m.one(
                "gpuscope_gpu_info",
                &[l[0], ("pci_bus_id", g["pci_bus_id"].as_str().unwrap()), ("driver_version", "550.54.15")]
            ),
            1.0
        );
    }
    // Host: memory, NICs with their kinds and speeds, NVMe devices, per-core CPU.
    assert_eq!(m.one("gpuscope_host_memory_total_bytes", &[]), 2048.0 * 1024.0 * 1024.0 * 1024.0);
    // The simulated host booted an hour before scenario second 0.
    assert_eq!(m.one("gpuscope_host_uptime_seconds", &[]), gpuscope_sim::procfs::UPTIME_AT_START_S + t);
    assert_eq!(
        m.one("gpuscope_host_network_speed_bytes_per_second", &[("interface", "mlx5_3/1"), ("kind", "infiniband")]),
        50e9
    );
    assert_eq!(
        m.one("gpuscope_host_network_speed_bytes_per_second", &[("interface", "eth0"), ("kind", "ethernet")]),
        12.5e9
    );
    // The tree is frozen, so CPU fractions (differences between readings) are unknown: absent.
    assert!(m.find("gpuscope_host_cpu_core_busy_ratio", &[]).is_empty());
    assert!(m.one("gpuscope_host_disk_read_bytes_total", &[("device", "nvme1n1")]) > 0.0);
    assert_eq!(m.one("gpuscope_agent_unsupported_gpus", &[("signal", "encoder_utilization")]), 8.0);
}

#[test]
fn a100_has_no_profiling_series_and_reports_row_remapping() {
    let node = start(NodeSpec::new("row-remap", Clock::Frozen(100.0)));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let m = node.metrics();
    for name in [
        "gpuscope_gpu_sm_active_ratio",
        "gpuscope_gpu_tensor_active_ratio",
        "gpuscope_gpu_dram_active_ratio",
        "gpuscope_gpu_fp32_active_ratio",
    ] {
        assert!(m.find(name, &[]).is_empty(), "{name} must be absent on A100, not 0");
    }
    assert_eq!(m.one("gpuscope_agent_unsupported_gpus", &[("signal", "gpm_profiling")]), 4.0);
    assert_eq!(m.one("gpuscope_gpu_row_remap_pending", &[("gpu", "2")]), 1.0);
    assert_eq!(m.one("gpuscope_gpu_remapped_rows_uncorrectable", &[("gpu", "2")]), 1.0);
    assert_eq!(m.one("gpuscope_gpu_row_remap_pending", &[("gpu", "1")]), 0.0);
    assert_eq!(m.find("gpuscope_gpu_utilization_ratio", &[("model", "NVIDIA A100-SXM4-80GB")]).len(), 4);
    assert!(m.find("gpuscope_gpu_retired_pages", &[]).is_empty(), "Ampere remaps rows; page retirement is absent");
    assert_eq!(m.find("gpuscope_gpu_nvlink_up", &[("gpu", "0")]).len(), 12);
}

fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test installs the Debian prometheus package)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn promtool_finds_nothing_in_native_and_dcgm_output() {
    let mut spec = NodeSpec::new("gpu-idle-allocated", Clock::Frozen(700.0));
    spec.extra_args = vec!["--compat".into(), "dcgm".into()];
    let node = start(spec);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let m = node.metrics();
    let native: String = m.text.lines().filter(|l| !l.contains("DCGM_")).map(|l| format!("{l}\n")).collect();
    let (ok, out) = promtool(&native);
    assert!(ok && out.trim().is_empty(), "promtool on the native names: {out}");
    // dcgm-exporter's own names break two lint rules (camelCase labels such as modelName, and
    // counters without `_total`); compatibility means keeping them. Nothing else may appear.
    let (_, out) = promtool(&m.text);
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.starts_with("DCGM_FI_")
                && (line.ends_with("label names should be written in 'snake_case' not 'camelCase'")
                    || line.ends_with("counter metrics should have \"_total\" suffix")
                    || line.ends_with("metric name should not include type 'counter'")),
            "unexpected promtool finding: {line}"
        );
    }
    // dcgm-exporter names, units and labels, next to the native ones.
    let l = [("gpu", "1"), ("device", "nvidia1"), ("modelName", "NVIDIA H100 80GB HBM3"), ("Hostname", "idle-node-0")];
    assert_eq!(m.one("DCGM_FI_DEV_GPU_UTIL", &l), 0.0);
    assert_eq!(m.one("DCGM_FI_DEV_FB_USED", &l), 45.0 * 1024.0);
    assert_eq!(m.one("DCGM_FI_DEV_SM_CLOCK", &l), 345.0, "an idle H100 clocks down");
    assert_eq!(m.one("DCGM_FI_DEV_GPU_UTIL", &[("gpu", "0")]), 97.0);
    // The state fields: a GPU a process holds stays in P0 even idle; ECC and persistence on.
    assert_eq!(m.one("DCGM_FI_DEV_PSTATE", &l), 0.0);
    assert_eq!(m.one("DCGM_FI_DEV_ECC_CURRENT", &l), 1.0);
    assert_eq!(m.one("DCGM_FI_DEV_ECC_PENDING", &l), 1.0);
    assert_eq!(m.one("DCGM_FI_DEV_PERSISTENCE_MODE", &l), 1.0);
    assert_eq!(m.one("DCGM_FI_DEV_MIG_MODE", &l), 0.0);
    assert_eq!(m.one("DCGM_FI_DEV_VIDEO_CLOCK", &l) * 1e6, m.one("gpuscope_gpu_video_clock_hertz", &[("gpu", "1")]));
    assert!(m.text.contains("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter"));
    assert!(!m.find("gpuscope_gpu_power_watts", &[]).is_empty());
    // OpenMetrics on request, gzip on request.
    let (status, headers, body) =
        node.raw_metrics(&[("Accept", "application/openmetrics-text;version=1.0.0"), ("Accept-Encoding", "gzip")]);
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k == "content-encoding" && v == "gzip"));
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("application/openmetrics-text; version=1.0.0"))
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(body.as_slice()).read_to_string(&mut text).unwrap();
    assert!(text.ends_with("# EOF\n"));
    assert!(text.contains("# TYPE gpuscope_gpu_energy_joules counter"));
    assert_eq!(common::get(&node.addr, "/healthz", &[]).0, 200);
    assert_eq!(common::get(&node.addr, "/nope", &[]).0, 404);
}

/// `gpuscope query --json` on the node's simulated /proc, with one clock variable set.
fn query_json(node: &common::Node, scenario: &str, clock: (&str, String), gap_ms: u64) -> serde_json::Value {
    let out = Command::new(common::bin())
        .args(["query", "--json", "--gap-ms", &gap_ms.to_string()])
        .env("GPUSCOPE_SIM_SCENARIO", scenario)
        .env(clock.0, clock.1)
        .env("GPUSCOPE_NVML_LIB", common::nvml_lib())
        .env("GPUSCOPE_PROCFS_ROOT", node.root.path().join("proc"))
        .env("GPUSCOPE_SYSFS_ROOT", node.root.path().join("sys"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `gpuscope query` reads InfiniBand at the scenario's rate: healthy-bf16-training moves 11 GB/s
/// each way on every port, without noise. It read 13–17 GB/s when the simulator moved the
/// counters only with whole-tree rewrites (uneven steps of 100 ms and more on a busy machine)
/// and the agent timed rates from its pass's start rather than from the counters' reading. The
/// simulator's files hold the counters as of their last write (every 20 ms; the kernel's are
/// live), so a busy machine that delays the writer at one end of the gap skews the rate by the
/// delay over the gap: a 5 s gap keeps 6 % for a delay of up to 300 ms.
#[test]
fn query_reads_infiniband_at_the_scenario_rate() {
    let start_at = unix_now() - 100.0;
    let node = start(NodeSpec::new("healthy-bf16-training", Clock::Running { start: start_at }));
    let q = query_json(&node, "healthy-bf16-training", ("GPUSCOPE_SIM_START", format!("{start_at:.3}")), 5000);
    let nics = q["host"]["nics"].as_array().expect("nics");
    let ports: Vec<&serde_json::Value> =
        nics.iter().filter(|n| n["name"].as_str().is_some_and(|s| s.starts_with("mlx5_"))).collect();
    assert_eq!(ports.len(), 4, "{nics:?}");
    for p in ports {
        for key in ["rx_bytes_per_second", "tx_bytes_per_second"] {
            let v = p[key].as_f64().unwrap_or_else(|| panic!("{} {key}: {p}", p["name"]));
            assert!((v - 11e9).abs() <= 0.06 * 11e9, "{} {key} = {:.2} GB/s, the scenario says 11", p["name"], v / 1e9);
        }
    }
}

/// PCIe and NVLink rates come from the drivers' byte counters (fields 197/198 and 138/139),
/// timed from their readings: healthy-bf16-training moves 1.2 GB/s from and 0.4 GB/s to the
/// host on every GPU without noise, so the PCIe rates are the scenario's within 10 ppm (the
/// timestamps' microseconds and the simulator's floating-point clock); NVLink moves 95 ± 10 GB/s
/// each way.
#[test]
fn query_reads_pcie_and_nvlink_at_the_scenario_rate() {
    let start_at = unix_now() - 100.0;
    let node = start(NodeSpec::new("healthy-bf16-training", Clock::Running { start: start_at }));
    let q = query_json(&node, "healthy-bf16-training", ("GPUSCOPE_SIM_START", format!("{start_at:.3}")), 500);
    let gpus = q["gpus"].as_array().expect("gpus");
    assert_eq!(gpus.len(), 8);
    for g in gpus {
        let get = |k: &str| g[k].as_f64().unwrap_or_else(|| panic!("gpu {} {k}: {g}", g["index"]));
        for (key, want) in [("pcie_rx_bytes_per_second", 1.2e9), ("pcie_tx_bytes_per_second", 0.4e9)] {
            assert!((get(key) - want).abs() <= want * 1e-5, "gpu {} {key} = {}", g["index"], get(key));
        }
        for key in ["nvlink_rx_bytes_per_second", "nvlink_tx_bytes_per_second"] {
            assert!((85e9..=105e9).contains(&get(key)), "gpu {} {key} = {}", g["index"], get(key));
            // The 18 links share the traffic evenly; each is read from its own counter.
            let links = g["nvlinks"].as_array().expect("nvlinks");
            assert_eq!(links.len(), 18);
            for l in links {
                let v = l[key.trim_start_matches("nvlink_")].as_f64().unwrap_or_else(|| panic!("{key}: {l}"));
                assert!(
                    (v - get(key) / 18.0).abs() <= get(key) * 1e-6,
                    "gpu {} link {} {key} = {v}",
                    g["index"],
                    l["link"]
                );
            }
        }
    }
    // The running agent serves them per link on /metrics too.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let m = node.metrics();
    for dir in ["tx", "rx"] {
        let name = format!("gpuscope_gpu_nvlink_link_{dir}_bytes_per_second");
        assert_eq!(m.find(&name, &[("gpu", "0")]).len(), 18, "{name}");
        let v = m.one(&name, &[("gpu", "0"), ("link", "17")]);
        assert!((85e9 / 18.0..=105e9 / 18.0).contains(&v), "{name} link 17 = {v}");
    }
}

/// The real filesystems of the simulated mount table (the root and `/data`; not proc, sysfs,
/// devtmpfs, /dev/shm, cgroup2 or a container's overlay), sized as GNU df sizes the filesystem
/// holding the tree (the mount points are directories in it).
#[test]
fn query_lists_the_real_filesystems_sized_as_df_sizes_them() {
    let node = start(NodeSpec::new("healthy-bf16-training", Clock::Frozen(100.0)));
    let q = query_json(&node, "healthy-bf16-training", ("GPUSCOPE_SIM_TIME", "100".into()), 100);
    let fs = q["host"]["filesystems"].as_array().expect("filesystems");
    let points: Vec<&str> = fs.iter().filter_map(|f| f["mountpoint"].as_str()).collect();
    assert_eq!(points, ["/", "/data"], "{fs:?}");
    assert_eq!((fs[1]["device"].as_str(), fs[1]["fstype"].as_str()), (Some("/dev/nvme1n1"), Some("xfs")));
    let df = Command::new("df").args(["-B1", "--output=size"]).arg(node.root.path().join("data")).output().unwrap();
    let size: u64 = String::from_utf8_lossy(&df.stdout).lines().nth(1).unwrap().trim().parse().unwrap();
    for f in fs {
        let get = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("{k}: {f}"));
        assert_eq!(get("size_bytes"), size, "{f}");
        assert!(get("size_bytes") >= get("free_bytes") && get("free_bytes") >= get("avail_bytes"), "{f}");
    }
}

#[test]
fn a_lost_gpu_is_marked_and_the_others_keep_reporting() {
    // GPU 3 falls off the bus at scenario second 120, three seconds from now.
    let start_at = unix_now() - 117.0;
    let mut node = start(NodeSpec::new("gpu-lost", Clock::Running { start: start_at }));
    let before = node.metrics();
    assert_eq!(before.one("gpuscope_gpu_up", &[("gpu", "3")]), 1.0);
    let after = eventually(15, || {
        let m = node.metrics();
        (m.one("gpuscope_gpu_up", &[("gpu", "3")]) == 0.0
            && !m.find("gpuscope_gpu_xid_errors_total", &[("gpu", "3")]).is_empty())
        .then_some(m)
    });
    assert!(after.find("gpuscope_gpu_power_watts", &[("gpu", "3")]).is_empty(), "a lost GPU has no values");
    for m in ["gpuscope_gpu_ecc_mode", "gpuscope_gpu_compute_mode", "gpuscope_gpu_max_operating_temperature_celsius"] {
        assert!(after.find(m, &[("gpu", "3")]).is_empty(), "{m}: absent on a lost GPU");
    }
    assert_eq!(after.one("gpuscope_gpu_xid_errors_total", &[("gpu", "3"), ("xid", "79")]), 1.0);
    assert_eq!(after.one("gpuscope_gpu_xid_last", &[("gpu", "3")]), 79.0);
    let q = query_json(&node, "gpu-lost", ("GPUSCOPE_SIM_TIME", "500".into()), 100);
    assert_eq!(q["gpus"][3]["lost"], true);
    assert_eq!(q["xid_events"], serde_json::json!([]), "an XID before the agent started is not replayed");
    for g in ["0", "1", "2", "4", "5", "6", "7"] {
        assert_eq!(after.one("gpuscope_gpu_up", &[("gpu", g)]), 1.0);
        assert!(after.one("gpuscope_gpu_power_watts", &[("gpu", g)]) > 300.0);
    }
    // The UUID and model of the lost GPU stay, so dashboards can say which one it was.
    assert_eq!(
        after.labels_of("gpuscope_gpu_up", &[("gpu", "3")])[0]
            .iter()
            .find(|(k, _)| k == "model")
            .map(|(_, v)| v.as_str()),
        Some("NVIDIA H100 80GB HBM3")
    );
    let log = node.drain_log().join("\n");
    assert!(log.contains("GPU is lost"), "{log}");
}

#[test]
fn xid_events_are_counted_per_code() {
    let start_at = unix_now() - 88.0;
    let node = start(NodeSpec::new("xid-error", Clock::Running { start: start_at }));
    let m = eventually(20, || {
        let m = node.metrics();
        (m.find("gpuscope_gpu_xid_errors_total", &[("gpu", "2"), ("xid", "43")]) == vec![1.0]).then_some(m)
    });
    assert_eq!(m.one("gpuscope_gpu_xid_errors_total", &[("gpu", "2"), ("xid", "13")]), 1.0);
    assert_eq!(m.one("gpuscope_gpu_xid_last", &[("gpu", "2")]), 43.0);
    assert!(m.find("gpuscope_gpu_xid_errors_total", &[("gpu", "0")]).is_empty());
    // query --json lists the events with their times: XID 13 is due 0.5 s into a 1.5 s gap.
    let before = (unix_now() * 1000.0) as u64;
    let q = query_json(&node, "xid-error", ("GPUSCOPE_SIM_START", format!("{:.3}", unix_now() - 89.5)), 1500);
    let ev = &q["xid_events"][0];
    assert_eq!((ev["gpu"].as_u64(), ev["code"].as_u64()), (Some(2), Some(13)), "{q}");
    let at = ev["unix_ms"].as_u64().unwrap();
    assert!(at >= before + 300 && at <= before + 1500, "received {} ms after the query started", at - before);
}

#[test]
fn without_nvml_the_host_is_still_served_with_one_clear_message() {
    let mut spec = NodeSpec::new("healthy-inference", Clock::Frozen(30.0));
    spec.nvml_lib = Some("/nonexistent/libnvidia-ml.so.1".into());
    spec.slow_interval_ms = 300;
    let mut node = start(spec);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let m = node.metrics();
    assert_eq!(m.one("gpuscope_gpu_driver_up", &[]), 0.0);
    assert!(m.find("gpuscope_gpu_up", &[]).is_empty());
    assert_eq!(m.one("gpuscope_agent_sampler_up", &[("sampler", "nvml")]), 0.0);
    assert_eq!(m.one("gpuscope_agent_sampler_up", &[("sampler", "cpu")]), 1.0);
    assert_eq!(m.one("gpuscope_host_memory_total_bytes", &[]), 192.0 * 1024.0 * 1024.0 * 1024.0);
    let log = node.drain_log();
    let nvml_lines: Vec<_> = log.iter().filter(|l| l.contains("NVML")).collect();
    assert_eq!(nvml_lines.len(), 1, "one line, not one per retry: {log:?}");
    assert!(
        nvml_lines[0].contains("cannot load NVML from /nonexistent/libnvidia-ml.so.1")
            && nvml_lines[0].contains("NVIDIA driver installed")
    );
    assert!(!log.iter().any(|l| l.contains("panicked")));
}

#[test]
fn an_unreadable_proc_file_fails_only_its_sampler() {
    let node = start(NodeSpec::new("healthy-inference", Clock::Frozen(30.0)));
    std::fs::remove_file(node.root.path().join("proc/stat")).unwrap();
    std::fs::create_dir(node.root.path().join("proc/stat")).unwrap();
    let m = eventually(10, || {
        let m = node.metrics();
        (m.one("gpuscope_agent_sampler_up", &[("sampler", "cpu")]) == 0.0).then_some(m)
    });
    assert!(m.one("gpuscope_agent_sampler_errors_total", &[("sampler", "cpu")]) >= 1.0);
    for s in ["nvml", "memory", "network", "storage", "processes"] {
        assert_eq!(m.one("gpuscope_agent_sampler_up", &[("sampler", s)]), 1.0, "{s}");
    }
    assert_eq!(m.find("gpuscope_gpu_utilization_ratio", &[]).len(), 2);
    assert!(m.find("gpuscope_host_cpu_busy_ratio", &[]).is_empty());
}

fn agent_with_config(cfg: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, cfg).unwrap();
    let out = Command::new(common::bin())
        .args(["agent", "--config", path.to_str().unwrap()])
        .env_remove("GPUSCOPE_INTERVAL_MS")
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn malformed_configuration_is_a_clear_error_with_exit_code_2() {
    let (code, err) = agent_with_config("listen = \"127.0.0.1:0\"\nintervl_ms = 500\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("agent.toml") && err.contains("intervl_ms"), "{err}");
    let (code, err) = agent_with_config("interval_ms = \"fast\"\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("agent.toml") && err.contains("interval_ms"), "{err}");
    let (code, err) = agent_with_config("interval_ms = 50\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("agent.toml") && err.contains("`interval_ms`") && err.contains("at least 100"), "{err}");
    let (code, err) = agent_with_config("listen = \"everywhere\"\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("`listen`"), "{err}");
    let out = Command::new(common::bin()).args(["agent"]).env("GPUSCOPE_INTERVAL_MS", "soon").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GPUSCOPE_INTERVAL_MS"));
    let missing = Command::new(common::bin()).args(["agent", "--config", "/nonexistent.toml"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.toml"));
}

/// The simulated /proc and /sys of `scenario` at second `at`, written once.
fn sim_tree(scenario: &str, at: u32) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let st = Command::new(common::bin())
        .args(["sim", "run", "--scenario", scenario, "--root", root.path().to_str().unwrap(), "--once-at"])
        .arg(at.to_string())
        .status()
        .unwrap();
    assert!(st.success());
    root
}

/// `gpuscope query [--json]` on `root` (from `sim_tree`), NVML frozen at the same second.
fn query_frozen(root: &tempfile::TempDir, scenario: &str, at: u32, json: bool) -> std::process::Output {
    let r = root.path();
    let mut q = Command::new(common::bin());
    q.args(["query", "--gap-ms", "150", "--procfs-root"]).arg(r.join("proc")).arg("--sysfs-root").arg(r.join("sys"));
    if json {
        q.arg("--json");
    }
    q.env("GPUSCOPE_SIM_SCENARIO", scenario)
        .env("GPUSCOPE_SIM_TIME", at.to_string())
        .env("GPUSCOPE_NVML_LIB", common::nvml_lib())
        .env("GPUSCOPE_POD_LOGS_ROOT", r.join("var/log/pods"))
        .env("GPUSCOPE_PASSWD_FILE", r.join("etc/passwd"))
        .output()
        .unwrap()
}

#[test]
fn processes_name_their_parent_and_a_launcher_without_a_gpu_is_not_a_gpu_process() {
    let root = sim_tree("dataloader-stall", 40);
    let out = query_frozen(&root, "dataloader-stall", 40, true);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let q: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let procs = q["processes"].as_array().unwrap();
    let got: Vec<(u64, u64, u64, &str)> = procs
        .iter()
        .map(|p| {
            (
                p["pid"].as_u64().unwrap(),
                p["gpu_index"].as_u64().unwrap(),
                p["ppid"].as_u64().unwrap_or(0),
                p["parent_name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    // torchrun (52000) holds no GPU: NVML does not list it; its four ranks name it from /proc.
    assert_eq!(
        got,
        (0..4).map(|i| (52001 + i, i, 52000, "torchrun")).collect::<Vec<_>>(),
        "{}",
        serde_json::to_string_pretty(&q["processes"]).unwrap()
    );
}

#[test]
fn query_json_is_stable() {
    let root = sim_tree("healthy-inference", 40);
    // `gpuscope query [--json]` on the tree, NVML frozen at the same second.
    let run = |json: bool| query_frozen(&root, "healthy-inference", 40, json);
    let query = || {
        let out = run(true);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // Times of the run itself are the only things allowed to differ.
        v["timestamp_ms"] = serde_json::Value::Null;
        v["agent"]["sample_duration_seconds"] = serde_json::Value::Null;
        for s in v["agent"]["samplers"].as_object_mut().unwrap().values_mut() {
            s["last_success_ms"] = serde_json::Value::Null;
        }
        // So is the free space of the test machine's disk, which holds the simulated mounts.
        for f in v["host"]["filesystems"].as_array_mut().unwrap() {
            f["free_bytes"] = serde_json::Value::Null;
            f["avail_bytes"] = serde_json::Value::Null;
        }
        // The XID thread waits on its own clock: it may or may not have begun its first wait.
        v["agent"]["nvml_calls"]["nvmlEventSetWait_v2"] = serde_json::Value::Null;
        v
    };
    let a = query();
    assert_eq!(a, query());
    assert_eq!(a["node"]["hostname"], "l4-infer-0");
    assert_eq!(a["driver"]["driver_version"], "550.54.15");
    assert_eq!(a["gpus"][1]["model"], "NVIDIA L4");
    assert_eq!(a["gpus"][1]["memory_temperature_celsius"], serde_json::Value::Null, "absent is null, not 0");
    assert_eq!(a["gpus"][1]["ecc_mode_current"], true);
    assert_eq!(a["gpus"][1]["compute_mode"], 0);
    assert_eq!(a["gpus"][1]["max_operating_temperature_celsius"], 89.0);
    assert_eq!(a["processes"][0]["pod"], "llm-serve-7f9c8-xk2lp");
    assert_eq!(a["processes"][0]["namespace"], "inference");
    assert_eq!(a["processes"][0]["pid"], 7310);
    for key in ["node", "timestamp_ms", "driver", "gpus", "processes", "host", "agent"] {
        assert!(a.get(key).is_some(), "{key}");
    }
    // The table names the same things.
    let out = run(false);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("NVIDIA L4") && table.contains("inference/llm-serve-7f9c8-xk2lp") && table.contains("vllm"),
        "{table}"
    );
}

#[test]
fn install_stages_a_hardened_unit_and_default_config() {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(common::bin())
        .args(["install", "--prefix", root.path().to_str().unwrap(), "--no-start"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let unit = std::fs::read_to_string(root.path().join("etc/systemd/system/gpuscope.service")).unwrap();
    for d in [
        "User=gpuscope",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ExecStart=/usr/local/bin/gpuscope agent --config /etc/gpuscope/agent.toml",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.contains(d), "{d}");
    }
    assert!(root.path().join("usr/local/bin/gpuscope").is_file());
    let cfg = root.path().join("etc/gpuscope/agent.toml");
    let check = Command::new(common::bin())
        .args(["query", "--config", cfg.to_str().unwrap(), "--gap-ms", "100", "--nvml-lib", "/nonexistent"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "the installed default config is valid: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // A second install keeps an edited config.
    std::fs::write(&cfg, "interval_ms = 2000\n").unwrap();
    Command::new(common::bin())
        .args(["install", "--prefix", root.path().to_str().unwrap(), "--no-start"])
        .status()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "interval_ms = 2000\n");
}

/// Per-process encoder and decoder shares come from the process utilization samples the agent
/// already reads: two processes on an L4 split its engines 3:1 (their SM shares), a third has
/// the other L4's engines to itself (about 40 % encoder, 20 % decoder). An H100 has no encoder: the process's encoder
/// share is absent there (`h100_node_serves_every_signal_with_the_scenario_values`).
#[test]
fn processes_report_their_encoder_and_decoder_shares() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.toml");
    let proc = |pid: u32, gpu: u32, share: f64| {
        format!("[[processes]]\npid = {pid}\nname = \"ffmpeg\"\ngpus = [{gpu}]\nmemory_gib = 1\nsm_share = {share}\n\n")
    };
    let text = format!(
        "name = \"video\"\n[[gpus]]\nmodel = \"L4\"\ncount = 2\n\n{}{}{}[[phases]]\nname = \"transcode\"\nduration_s = 120\n[phases.gpu]\nutil = 0.5\nenc_util = 0.4\ndec_util = 0.2\n",
        proc(5001, 0, 3.0),
        proc(5002, 0, 1.0),
        proc(5003, 1, 1.0),
    );
    std::fs::write(&path, text).unwrap();
    let scenario = path.to_str().unwrap();
    let root = sim_tree(scenario, 30);
    let out = query_frozen(&root, scenario, 30, true);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let q: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let procs = q["processes"].as_array().expect("processes");
    let share = |pid: u64, key: &str| {
        let p = procs.iter().find(|p| p["pid"] == pid).unwrap_or_else(|| panic!("pid {pid}: {procs:?}"));
        p[key].as_f64().unwrap_or_else(|| panic!("pid {pid} {key}: {p}"))
    };
    // The engines' utilization at that second, split by SM share and rounded to a whole
    // percent as the driver's samples are.
    let state = common::engine(scenario, 30.0, 0);
    let gpu = |i: usize, k: &str| state["gpus"][i]["state"][k].as_f64().unwrap_or_else(|| panic!("{k}: {state}"));
    for (pid, i, part) in [(5001, 0, 0.75), (5002, 0, 0.25), (5003, 1, 1.0)] {
        for (key, engine) in [("encoder_utilization_ratio", "enc_util"), ("decoder_utilization_ratio", "dec_util")] {
            let want = (gpu(i, engine) * part * 100.0).round() / 100.0;
            assert_eq!(share(pid, key), want, "pid {pid} {key}");
        }
    }
    assert!(share(5001, "encoder_utilization_ratio") > share(5002, "encoder_utilization_ratio"));
    assert!(share(5002, "decoder_utilization_ratio") > 0.0);
}
