//! `gpuscope query`: one snapshot of this node, as a table or as JSON (like `nvidia-smi -q` /
//! `gpustat --json`, with host signals and process attribution).

use crate::config::{AgentArgs, AgentConfig};
use anyhow::Result;
use gpuscope_core::NodeSnapshot;
use std::fmt::Write as _;
use std::time::Duration;

/// Samples twice (rates and profiling ratios need two readings) and prints the second pass.
pub fn run(args: &AgentArgs, json: bool, gap_ms: u64) -> Result<()> {
    let cfg = AgentConfig::load(args)?;
    crate::logging::init(if json { "error" } else { "warn" });
    let mut snap = gpuscope_agent::sample_once(&cfg.agent_options(), Duration::from_millis(gap_ms.max(100)));
    if cfg.cupti.enabled {
        // The running agent holds the CUPTI socket and the profiles: ask it. Without an agent
        // (or behind TLS or authentication) there are none to show, which is not an error.
        match agent_profiles(&cfg) {
            Ok(profiles) => snap.kernel_profiles = profiles,
            Err(e) => tracing::warn!("no kernel profiles: {e:#}"),
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&snap)?);
    } else {
        print!("{}", table(&snap));
    }
    Ok(())
}

/// The kernel profiles of the agent listening at the configured address.
fn agent_profiles(cfg: &AgentConfig) -> Result<Vec<gpuscope_core::KernelProfile>> {
    let addr = super::profile::local_addr(cfg.listen);
    let (status, body) = super::profile::agent_request(addr, "GET", "/api/v1/profiles", None, Duration::from_secs(5))?;
    anyhow::ensure!(status == 200, "the agent at {addr} answered {status}: {}", body.trim());
    Ok(serde_json::from_str(&body)?)
}

fn opt(v: Option<f64>, scale: f64, digits: usize, unit: &str) -> String {
    v.map_or("-".into(), |x| format!("{:.*}{unit}", digits, x * scale))
}

fn gib(b: Option<u64>) -> String {
    b.map_or("-".into(), |b| format!("{:.1}", b as f64 / (1u64 << 30) as f64))
}

/// The human table.
pub fn table(s: &NodeSnapshot) -> String {
    let mut out = String::new();
    let driver = s.driver.as_ref().map_or("no NVIDIA driver".to_string(), |d| format!("driver {}", d.driver_version));
    let _ = writeln!(out, "{}  {}  {} GPU(s)", s.node.hostname, driver, s.gpus.len());
    if !s.gpus.is_empty() {
        let _ = writeln!(
            out,
            "\n{:>3}  {:<24} {:>5} {:>5} {:>6} {:>15} {:>13} {:>5} {:>9}  CLOCK EVENTS",
            "GPU", "MODEL", "UTIL", "SM", "TENSOR", "MEMORY GiB", "POWER W", "TEMP", "SM MHz",
        );
        for g in &s.gpus {
            if g.lost {
                let _ = writeln!(out, "{:>3}  {:<24} LOST (fallen off the bus)", g.index, g.model);
                continue;
            }
            let reasons: Vec<&str> = gpuscope_core::catalogue::CLOCK_EVENT_REASONS
                .iter()
                .filter(|(bit, _)| g.clock_event_reasons.is_some_and(|m| m & bit != 0))
                .map(|(_, n)| *n)
                .collect();
            let _ = writeln!(
                out,
                "{:>3}  {:<24} {:>5} {:>5} {:>6} {:>15} {:>13} {:>5} {:>9}  {}",
                g.index,
                g.model.chars().take(24).collect::<String>(),
                opt(g.utilization_ratio, 100.0, 0, "%"),
                opt(g.sm_active_ratio, 100.0, 0, "%"),
                opt(g.tensor_active_ratio, 100.0, 0, "%"),
                format!("{} / {}", gib(g.memory_used_bytes), gib(g.memory_total_bytes)),
                format!("{} / {}", opt(g.power_watts, 1.0, 0, ""), opt(g.power_limit_watts, 1.0, 0, "")),
                opt(g.temperature_celsius, 1.0, 0, "C"),
                opt(g.sm_clock_hertz, 1e-6, 0, ""),
                if reasons.is_empty() { "-".to_string() } else { reasons.join(",") }
            );
        }
    }
    if !s.agent.gpm_unavailable.is_empty() {
        let gpus: Vec<String> = s.agent.gpm_unavailable.iter().map(u32::to_string).collect();
        let _ = writeln!(
            out,
            "profiling (GPM) unavailable on GPU {}: the last GPM read failed, so SM, tensor and DRAM activity are absent; asked again every 30 s",
            gpus.join(", ")
        );
    }
    if !s.processes.is_empty() {
        let _ = writeln!(
            out,
            "\n{:>8} {:<16} {:<10} {:>3} {:>8} {:>5}  CONTAINER / POD",
            "PID", "PROCESS", "USER", "GPU", "MEM GiB", "SM"
        );
        for p in &s.processes {
            let place = match (&p.namespace, &p.pod, &p.container) {
                (Some(ns), Some(pod), _) => format!("{ns}/{pod}"),
                (_, _, Some(c)) => c.chars().take(12).collect(),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "{:>8} {:<16} {:<10} {:>3} {:>8} {:>5}  {}",
                p.pid,
                p.name,
                p.user.as_deref().unwrap_or("-"),
                p.gpu_index,
                gib(p.gpu_memory_bytes),
                opt(p.sm_utilization_ratio, 100.0, 0, "%"),
                place
            );
        }
    }
    if let Some(h) = &s.host {
        let _ = writeln!(
            out,
            "\nhost: {} CPUs  busy {}  iowait {}  load {}  memory {} / {} GiB available",
            h.cpus.len(),
            opt(h.cpu_busy_ratio, 100.0, 0, "%"),
            opt(h.cpu_iowait_ratio, 100.0, 0, "%"),
            opt(h.load1, 1.0, 2, ""),
            gib(h.memory_available_bytes),
            gib(h.memory_total_bytes)
        );
        for n in &h.nics {
            let _ = writeln!(
                out,
                "  {:<12} {:<10} {:>10} Gb/s  rx {:>8} GB/s  tx {:>8} GB/s",
                n.name,
                n.kind.as_str(),
                opt(n.speed_bytes_per_second, 8e-9, 0, ""),
                opt(n.rx_bytes_per_second, 1e-9, 2, ""),
                opt(n.tx_bytes_per_second, 1e-9, 2, "")
            );
        }
        for d in &h.disks {
            let _ = writeln!(
                out,
                "  {:<12} {:<10} read {:>8} MB/s  write {:>8} MB/s  busy {}",
                d.name,
                "nvme",
                opt(d.read_bytes_per_second, 1e-6, 0, ""),
                opt(d.write_bytes_per_second, 1e-6, 0, ""),
                opt(d.busy_ratio, 100.0, 0, "%")
            );
        }
    }
    if !s.kernel_profiles.is_empty() {
        let _ = writeln!(
            out,
            "\n{:>8} {:<16} {:>9} {:>9} {:>10} {:>10}  TOP KERNEL",
            "PID", "PROFILED", "WINDOW ms", "KERNELS", "KERNEL ms", "LAUNCH/s"
        );
        for p in &s.kernel_profiles {
            let top = p.top_kernels.first().map_or("-".to_string(), |k| k.name.chars().take(48).collect());
            let _ = writeln!(
                out,
                "{:>8} {:<16} {:>9.1} {:>9} {:>10.3} {:>10}  {}",
                p.pid,
                p.name,
                p.window_seconds * 1e3,
                p.kernel_count,
                p.kernel_seconds * 1e3,
                p.launches_per_second.map_or("-".into(), |r| format!("{r:.0}")),
                top
            );
        }
    }
    for (name, st) in &s.agent.samplers {
        if let Some(e) = &st.last_error {
            let _ = writeln!(out, "\nsampler {name} failed: {e}");
        }
    }
    out
}
