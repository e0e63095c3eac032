//! The simulated NVML library read through nvml-wrapper (the agent's binding), in a separate
//! process per case because the library picks its scenario from the environment once.
//! Expected values come from the same engine at the same frozen scenario time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use gpuscope_sim::clock::unix_now;
use gpuscope_sim::{Scenario, Simulation};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn lib() -> PathBuf {
    let probe = PathBuf::from(env!("CARGO_BIN_EXE_gpuscope-nvml-probe"));
    let dir = probe.parent().expect("target dir").to_path_buf();
    [dir.join("libgpuscope_nvml_sim.so"), dir.join("deps/libgpuscope_nvml_sim.so")]
        .into_iter()
        .find(|p| p.is_file())
        .expect("libgpuscope_nvml_sim.so is built next to the probe")
}

fn probe(env: &[(&str, String)], extra: &[&str]) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gpuscope-nvml-probe"));
    cmd.arg(lib()).args(extra);
    for k in
        ["GPUSCOPE_SIM_SCENARIO", "GPUSCOPE_SIM_TIME", "GPUSCOPE_SIM_START", "GPUSCOPE_SIM_SPEED", "GPUSCOPE_SIM_NODE"]
    {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the probe");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "probe output is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn frozen(scenario: &str, t: f64) -> Value {
    probe(&[("GPUSCOPE_SIM_SCENARIO", scenario.into()), ("GPUSCOPE_SIM_TIME", t.to_string())], &[])
}

fn engine(scenario: &str) -> Simulation {
    Simulation::new(Scenario::load(scenario).expect("scenario"), 0).expect("sim")
}

fn pct(x: f64) -> u64 {
    (x * 100.0).round() as u64
}

fn err(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("<no error>")
}

#[test]
fn h100_node_reports_the_scenario_values() {
    let t = 100.0;
    let out = frozen("healthy-bf16-training", t);
    let sim = engine("healthy-bf16-training");
    assert_eq!(out["driver_version"], "550.54.15");
    assert_eq!(out["cuda_driver_version"], 12040);
    assert_eq!(out["device_count"], 8);
    for (i, d) in out["devices"].as_array().expect("devices").iter().enumerate() {
        let info = &sim.gpus()[i];
        let s = sim.gpu(i as u32, t).expect("state");
        assert_eq!(d["name"], "NVIDIA H100 80GB HBM3");
        assert_eq!(d["uuid"], info.uuid.as_str());
        assert_eq!(d["serial"], info.serial.as_str());
        assert_eq!(d["pci_bus_id"], info.pci_bus_id.as_str());
        assert_eq!(d["compute_capability"], "9.0");
        assert_eq!(d["memory"]["total"], s.memory_total);
        assert_eq!(d["memory"]["used"], s.memory_used);
        assert_eq!(d["memory"]["free"], s.memory_free);
        assert_eq!(d["memory"]["reserved"], s.memory_reserved);
        assert_eq!(d["memory"]["used"], 62u64 << 30);
        assert_eq!(d["utilization"]["gpu"], pct(s.util));
        assert_eq!(d["utilization"]["memory"], pct(s.mem_util));
        assert_eq!(d["power_mw"], (s.power_w * 1000.0).round() as u64);
        assert_eq!(d["power_limit_mw"], 700_000);
        assert_eq!(d["energy_mj"], (s.energy_j * 1000.0).floor() as u64);
        assert_eq!(d["temperature_c"], s.temp_c.round() as u64);
        assert_eq!(d["slowdown_c"], 90);
        assert_eq!(d["shutdown_c"], 92);
        assert_eq!(d["sm_clock_mhz"], 1980);
        assert_eq!(d["max_sm_clock_mhz"], 1980);
        assert_eq!(d["mem_clock_mhz"], 2619);
        assert_eq!(d["throttle"], 0);
        assert_eq!(d["pcie_rx_kbs"], (s.pcie_rx / 1024.0).round() as u64);
        assert_eq!(d["pcie_gen"], 5);
        assert_eq!(d["pcie_width"], 16);
        assert_eq!(d["ecc_uncorrected_volatile"], 0);
        assert_eq!(err(&d["encoder"]), "NotSupported", "H100 has no NVENC");
        assert_eq!(d["nvlink_active"], 18);
        assert_eq!(d["processes"][0]["pid"], 41001);
        assert_eq!(d["processes"][0]["memory"], 62u64 << 30);
        assert_eq!(d["process_utilization"][0]["pid"], 41001);
        assert_eq!(d["process_utilization"][0]["sm"], pct(s.util), "the only process gets all of the GPU");
        // GPM: two samples at one frozen instant give the instantaneous ratios, in percent.
        let gpm = &d["gpm"];
        for (key, want) in [
            ("sm_util", s.sm_active),
            ("tensor", s.tensor),
            ("dram", s.dram),
            ("fp32", s.fp32),
            ("fp16", s.fp16),
            ("sm_occupancy", s.sm_occupancy),
        ] {
            let got = gpm[key].as_f64().unwrap_or(f64::NAN);
            assert!((got - want * 100.0).abs() < 1e-9, "gpu {i} {key}: {got} vs {}", want * 100.0);
        }
        // Row remapping fields (142–145), HBM temperature (82), NVLink CRC total (45).
        let f = d["fields"].as_array().expect("fields");
        assert_eq!(f[0], 0);
        assert_eq!(f[2], 0);
        assert_eq!(f[4], s.mem_temp_c.round() as u64);
        assert_eq!(f[5], 0);
    }
}

#[test]
fn gpm_averages_between_two_samples_on_a_running_clock() {
    // A running clock: GPM reports the mean over the 100 ms between its samples.
    let start = unix_now() - 50.0;
    let out =
        probe(&[("GPUSCOPE_SIM_SCENARIO", "no-tensor-cores".into()), ("GPUSCOPE_SIM_START", start.to_string())], &[]);
    let d = &out["devices"][0];
    let fp32 = d["gpm"]["fp32"].as_f64().expect("fp32");
    let tensor = d["gpm"]["tensor"].as_f64().expect("tensor");
    assert!((fp32 - 62.0).abs() <= 3.0 + 1e-9, "fp32 {fp32}");
    assert!((tensor - 1.0).abs() <= 1.0 + 1e-9, "tensor {tensor}");
}

#[test]
fn ampere_has_row_remapping_and_no_gpm() {
    let out = frozen("row-remap", 100.0);
    assert_eq!(out["device_count"], 4);
    let d = &out["devices"][2];
    assert_eq!(d["name"], "NVIDIA A100-SXM4-80GB");
    assert_eq!(d["compute_capability"], "8.0");
    assert_eq!(d["gpm"]["supported"], false, "GPM is absent before Hopper, not zero");
    assert_eq!(err(&d["gpm"]["sample"]), "NotSupported");
    let f = d["fields"].as_array().expect("fields");
    assert_eq!(
        (f[1].clone(), f[2].clone(), f[3].clone()),
        (Value::from(1), Value::from(1), Value::from(0)),
        "one uncorrectable remap pending"
    );
    assert_eq!(err(&d["retired_pending"]), "NotSupported", "Ampere remaps rows instead of retiring pages");
    assert_eq!(d["nvlink_active"], 12);
    assert_eq!(out["devices"][0]["fields"][2], 0, "the other GPUs have nothing pending");
    let before = frozen("row-remap", 59.0);
    assert_eq!(before["devices"][2]["fields"][2], 0);
}

#[test]
fn volta_retires_pages_and_l4_lacks_hbm_and_nvlink() {
    let v100 = frozen("retired-pages", 100.0);
    let d = &v100["devices"][0];
    assert_eq!(d["name"], "Tesla V100-SXM2-32GB");
    assert_eq!(d["retired_pending"], true);
    assert_eq!(err(&d["fields"][0]), "NotSupported");
    assert_eq!(d["gpm"]["supported"], false);
    assert_eq!(d["encoder"], 0);
    let l4 = frozen("healthy-inference", 100.0);
    let d = &l4["devices"][1];
    assert_eq!(d["name"], "NVIDIA L4");
    assert_eq!(d["power_limit_mw"], 72_000);
    assert_eq!(err(&d["fields"][4]), "NotSupported", "GDDR6 has no memory temperature sensor");
    assert_eq!(d["nvlink_active"], 0);
    assert_eq!(d["processes"][0]["pid"], 7311);
}

#[test]
fn events_ecc_and_clock_reasons_appear_at_their_times() {
    let before = frozen("ecc-uncorrectable", 80.0);
    let after = frozen("ecc-uncorrectable", 100.0);
    assert_eq!(before["devices"][1]["ecc_uncorrected_volatile"], 0);
    assert_eq!(after["devices"][1]["ecc_uncorrected_volatile"], 1);
    assert_eq!(after["devices"][1]["ecc_corrected_volatile"], 3);
    assert_eq!(after["devices"][0]["ecc_uncorrected_volatile"], 0);

    let sim = engine("power-capped");
    // Find one second with the cap active and one without (duty 0.8).
    let on = (0..100)
        .map(f64::from)
        .find(|t| sim.gpu(0, *t).is_some_and(|g| g.throttle & 0x4 != 0))
        .expect("an active second");
    let off = (0..100)
        .map(f64::from)
        .find(|t| sim.gpu(0, *t).is_some_and(|g| g.throttle & 0x4 == 0))
        .expect("an idle second");
    assert_eq!(frozen("power-capped", on)["devices"][0]["throttle"], 0x4);
    assert_eq!(frozen("power-capped", off)["devices"][0]["throttle"], 0);
    assert_eq!(frozen("power-capped", on)["devices"][0]["power_limit_mw"], 450_000);
    let idle = frozen("gpu-idle-allocated", 600.0);
    assert_eq!(idle["devices"][1]["throttle"], 0x1, "GPU idle");
    assert_eq!(idle["devices"][1]["utilization"]["gpu"], 0);
    assert_eq!(idle["devices"][1]["processes"][0]["memory"], 45u64 << 30);
}

#[test]
fn a_lost_gpu_answers_gpu_is_lost_and_the_others_keep_going() {
    let out = frozen("gpu-lost", 130.0);
    assert_eq!(out["device_count"], 8);
    let lost = &out["devices"][3];
    for key in ["name", "uuid", "memory", "utilization", "power_mw", "temperature_c", "processes"] {
        assert_eq!(err(&lost[key]), "GpuLost", "{key}");
    }
    for i in [0, 2, 4, 7] {
        assert_eq!(out["devices"][i]["name"], "NVIDIA H100 80GB HBM3");
        assert!(out["devices"][i]["power_mw"].as_u64().is_some_and(|p| p > 100_000));
    }
    assert_eq!(frozen("gpu-lost", 119.0)["devices"][3]["name"], "NVIDIA H100 80GB HBM3");
}

#[test]
fn an_xid_event_is_delivered_at_its_time() {
    // Scenario time 119.4 s now: XID 79 on GPU 3 is due in 0.6 s.
    let start = unix_now() - 119.4;
    let env = [("GPUSCOPE_SIM_SCENARIO", "gpu-lost".to_string()), ("GPUSCOPE_SIM_START", format!("{start:.6}"))];
    let ev = probe(&env, &["--wait-xid", "5000"]);
    assert_eq!(ev["xid"], 79, "{ev}");
    assert_eq!(ev["gpu"], 3);
    let waited = ev["waited_ms"].as_u64().expect("waited");
    assert!((300..3000).contains(&waited), "delivered after {waited} ms, due after ~600 ms");
    // An event set created after the event never sees it: it times out.
    let late = probe(
        &[("GPUSCOPE_SIM_SCENARIO", "gpu-lost".into()), ("GPUSCOPE_SIM_TIME", "300".into())],
        &["--wait-xid", "200"],
    );
    assert_eq!(late["error"], "Timeout");
}

#[test]
fn missing_or_bad_environment_is_driver_not_loaded() {
    let none = probe(&[], &[]);
    assert_eq!(none["init_error"], "DriverNotLoaded");
    let bad = probe(&[("GPUSCOPE_SIM_SCENARIO", "no-such-scenario".into())], &[]);
    assert_eq!(bad["init_error"], "DriverNotLoaded");
}

#[test]
fn the_same_frozen_time_gives_identical_readings() {
    let strip = |mut v: Value| {
        for d in v["devices"].as_array_mut().expect("devices") {
            d["process_utilization"] = Value::Null;
        }
        v
    };
    assert_eq!(strip(frozen("comm-bound", 321.5)), strip(frozen("comm-bound", 321.5)));
}

/// Every field the agent reads in one nvmlDeviceGetFieldValues call answers exactly what the
/// single entry point for the same value answers (or the same error), on every GPU model preset
/// and in the scenarios where the error counters move.
#[test]
fn batched_field_reads_equal_the_single_calls_on_every_preset() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, f64)> = Vec::new();
    for p in gpuscope_sim::presets::PRESETS {
        let path = dir.path().join(format!("fields-{}.toml", p.key));
        let text = format!(
            "name = \"fields-{key}\"\n[[gpus]]\nmodel = \"{key}\"\ncount = 2\n\n[[processes]]\npid = 4242\nname = \"python\"\ngpus = \"all\"\nmemory_gib = 1\n\n[[phases]]\nname = \"load\"\nduration_s = 120\n[phases.gpu]\nutil = 0.6\npcie_rx_gb_s = 3\n",
            key = p.key
        );
        std::fs::write(&path, text).unwrap();
        cases.push((path.display().to_string(), 30.0));
    }
    for s in ["nvlink-errors", "pcie-replay", "retired-pages", "row-remap", "ecc-uncorrectable"] {
        cases.push((s.to_string(), 500.0));
    }
    let (mut compared, mut nonzero_counters, mut unsupported) = (0, 0, 0);
    for (scenario, t) in &cases {
        let out =
            probe(&[("GPUSCOPE_SIM_SCENARIO", scenario.clone()), ("GPUSCOPE_SIM_TIME", t.to_string())], &["--fields"]);
        let devices = out["devices"].as_array().unwrap_or_else(|| panic!("{scenario}: {out}"));
        assert!(!devices.is_empty(), "{scenario}: no devices");
        for d in devices {
            let fields = d["fields"].as_array().unwrap_or_else(|| panic!("{scenario}: {d}"));
            assert!(fields.len() >= 18, "{scenario}: {d}");
            for f in fields {
                assert_eq!(f["batched"], f["single"], "{scenario} at {t} s, GPU {}: {f}", d["index"]);
                compared += 1;
                let id = f["field"].as_u64().unwrap();
                let counter = matches!(id, 3..=6 | 29 | 30 | 94 | 142 | 143 | 161..=163);
                if counter && f["batched"].as_u64().is_some_and(|v| v > 0) {
                    nonzero_counters += 1;
                }
                if f["batched"]["error"] == "NotSupported" {
                    unsupported += 1;
                }
            }
        }
    }
    // The comparison covered moving error counters and unsupported fields, not only zeros.
    assert!(compared > 500, "{compared}");
    assert!(nonzero_counters >= 5, "{nonzero_counters}");
    assert!(unsupported > 0);
}
