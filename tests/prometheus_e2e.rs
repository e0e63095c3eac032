//! A real Prometheus server (Debian's package) scrapes the real agent on a simulated 8×H100
//! node; PromQL through its HTTP API returns the scenario's values, and `rate()` of the
//! counters matches the gauges and the scenario's rates.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{Clock, NodeSpec, Prometheus, eventually, start, unix_now};

fn one(prom: &Prometheus, q: &str) -> f64 {
    let r = prom.query(q);
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    r[0].1
}

#[test]
fn prometheus_scrapes_the_agent_and_promql_sees_the_scenario() {
    // Scenario second 100 now: inside the steady "train" phase for the whole test.
    let mut spec = NodeSpec::new("healthy-bf16-training", Clock::Running { start: unix_now() - 100.0 });
    spec.interval_ms = 500;
    let node = start(spec);

    let prom = Prometheus::start(
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: gpuscope\n    static_configs:\n      - targets: ['{}']\n",
            node.addr
        ),
        &[],
    );
    eventually(30, || (prom.query("up{job=\"gpuscope\"} == 1").len() == 1).then_some(()));
    eventually(40, || (one(&prom, "count_over_time(gpuscope_gpu_power_watts{gpu=\"0\"}[15s])") >= 12.0).then_some(()));

    // Per-GPU values.
    let mem = prom.query("gpuscope_gpu_memory_used_bytes");
    assert_eq!(mem.len(), 8);
    assert!(mem.iter().all(|(_, v)| *v == (62u64 << 30) as f64));
    for (labels, sm) in prom.query("gpuscope_gpu_sm_active_ratio") {
        assert!((sm - 0.88).abs() <= 0.0201, "{labels}: sm_active {sm}");
    }
    for (labels, u) in prom.query("gpuscope_gpu_utilization_ratio") {
        assert!((0.96..=1.0).contains(&u), "{labels}: util {u}");
    }
    let pods = prom.query("sum by (namespace, pod) (gpuscope_process_gpu_memory_bytes)");
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].0["pod"], "llama-pretrain-worker-0");
    assert_eq!(pods[0].1, 8.0 * (62u64 << 30) as f64);

    // Counters: their rate is the mean power, and the scenario's byte and CPU rates.
    // NVML answers at the moment it is called, so energy is compared over the agent's sample
    // timestamps (scraped with it). A scrape serves the latest snapshot, up to one sampling
    // interval (500 ms) old, and on a busy machine that age jitters from scrape to scrape: over
    // Prometheus's scrape times a 10 s rate is off by up to ±5 %.
    let over_samples = |counter: &str| {
        one(
            &prom,
            &format!(
                "({counter} - {counter} offset 10s) / scalar(gpuscope_agent_last_sample_timestamp_seconds - gpuscope_agent_last_sample_timestamp_seconds offset 10s)"
            ),
        )
    };
    // The host's counters come from the simulated /proc and /sys, which a writer refreshes every
    // 50 ms (later when the machine is busy): they are compared over the host's own clock,
    // /proc/uptime, written in the same passes — the time the values describe.
    let over_uptime = |counter: &str| {
        one(
            &prom,
            &format!(
                "({counter} - {counter} offset 10s) / scalar(gpuscope_host_uptime_seconds - gpuscope_host_uptime_seconds offset 10s)"
            ),
        )
    };
    let energy = over_samples("gpuscope_gpu_energy_joules_total{gpu=\"0\"}");
    let mean_power = one(&prom, "avg_over_time(gpuscope_gpu_power_watts{gpu=\"0\"}[10s])");
    assert!((energy / mean_power - 1.0).abs() < 0.03, "energy rate {energy} W vs mean power {mean_power} W");
    // The network counters have a writer of their own (every 20 ms, not with /proc/uptime), so
    // they are compared over the agent's passes, which read them.
    let ib = over_samples("gpuscope_host_network_receive_bytes_total{interface=\"mlx5_0/1\"}");
    assert!((ib / 11e9 - 1.0).abs() < 0.03, "InfiniBand receive {ib} B/s, scenario 11 GB/s");
    let nvme = over_uptime("gpuscope_host_disk_read_bytes_total{device=\"nvme0n1\"}");
    assert!((nvme / 900e6 - 1.0).abs() < 0.03, "NVMe read {nvme} B/s, scenario 900 MB/s");
    let cpu = over_uptime("gpuscope_process_cpu_seconds_total{gpu=\"0\"}");
    assert!((cpu / 24.0 - 1.0).abs() < 0.03, "training process uses {cpu} cores, scenario 24");
    // PromQL's rate() of the energy counter (read from NVML when sampled, so only the snapshot's
    // age moves it): the age differs between the window's ends by at most one sampling interval
    // (0.5 s of 10 s), so rate() is the mean power within 10 %.
    let rate_energy = one(&prom, "rate(gpuscope_gpu_energy_joules_total{gpu=\"0\"}[10s])");
    assert!((rate_energy / mean_power - 1.0).abs() < 0.1, "rate(energy) {rate_energy} W vs mean power {mean_power} W");
    let busy = one(&prom, "avg_over_time(gpuscope_host_cpu_busy_ratio[10s])");
    assert!((busy - 0.12).abs() < 0.02, "host busy {busy}, scenario 0.12");
    assert_eq!(one(&prom, "count(gpuscope_host_cpu_core_busy_ratio)"), 224.0);
}
