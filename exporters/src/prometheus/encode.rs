//! Encodes a node snapshot in the Prometheus text formats, walking the metric catalogue.

use gpuscope_core::catalogue::{Accessor, CATALOGUE, MetricDef, MetricKind};
use gpuscope_core::{GpuSample, NodeSnapshot, ProcessSample};
use std::fmt::Write;

/// Exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The Content-Type header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Which name sets to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    /// gpuscope's own `gpuscope_*` names.
    pub native: bool,
    /// dcgm-exporter's `DCGM_FI_*` names, types, units and labels.
    pub dcgm: bool,
}

impl Default for Names {
    fn default() -> Self {
        Names { native: true, dcgm: false }
    }
}

/// Label pairs of one series.
type Labels<'a> = Vec<(&'a str, String)>;

struct Writer<'a> {
    out: &'a mut String,
    format: Format,
    extra: &'a [(String, String)],
}

fn escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

impl Writer<'_> {
    /// HELP and TYPE lines. `name` is the sample name; counters in OpenMetrics name the family
    /// without `_total`.
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let family = match (self.format, kind) {
            (Format::OpenMetrics, "counter") => name.strip_suffix("_total").unwrap_or(name),
            (Format::OpenMetrics, "info") => name.strip_suffix("_info").unwrap_or(name),
            _ => name,
        };
        let kind = if self.format == Format::Text && kind == "info" { "gauge" } else { kind };
        let _ = writeln!(self.out, "# HELP {family} {help}");
        let _ = writeln!(self.out, "# TYPE {family} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, String)], v: f64) {
        self.out.push_str(name);
        let mut first = true;
        for (k, val) in
            labels.iter().map(|(k, v)| (*k, v.as_str())).chain(self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            self.out.push(if first { '{' } else { ',' });
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape(val, self.out);
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
        self.out.push(' ');
        value(v, self.out);
        self.out.push('\n');
    }
}

fn gpu_labels(g: &GpuSample) -> Labels<'_> {
    vec![("gpu", g.index.to_string()), ("uuid", g.uuid.clone()), ("model", g.model.clone())]
}

fn process_labels(p: &ProcessSample, g: Option<&GpuSample>) -> Labels<'static> {
    let mut l = vec![("gpu", p.gpu_index.to_string()), ("uuid", p.gpu_uuid.clone())];
    if let Some(g) = g {
        l.push(("model", g.model.clone()));
    }
    l.push(("pid", p.pid.to_string()));
    l.push(("process", p.name.clone()));
    for (k, v) in [("user", &p.user), ("container", &p.container), ("pod", &p.pod), ("namespace", &p.namespace)] {
        if let Some(v) = v {
            l.push((k, v.clone()));
        }
    }
    l
}

fn kind_str(k: MetricKind) -> &'static str {
    match k {
        MetricKind::Counter => "counter",
        MetricKind::Gauge | MetricKind::UpDownCounter => "gauge",
    }
}

/// Every (labels, value) of a catalogue row in this snapshot.
fn series<'s>(m: &MetricDef, snap: &'s NodeSnapshot) -> Vec<(Labels<'s>, f64)> {
    let mut out = Vec::new();
    let host = snap.host.as_ref();
    match m.accessor {
        Accessor::Gpu(get, _) => {
            for g in &snap.gpus {
                if let Some(v) = get(g) {
                    out.push((gpu_labels(g), v));
                }
            }
        }
        Accessor::GpuLabelled(get, _) => {
            for g in &snap.gpus {
                for (label, v) in get(g) {
                    let mut l = gpu_labels(g);
                    l.push((m.label.unwrap_or("label"), label));
                    out.push((l, v));
                }
            }
        }
        Accessor::NvLink(get, _) => {
            for g in &snap.gpus {
                for link in &g.nvlinks {
                    if let Some(v) = get(link) {
                        let mut l = gpu_labels(g);
                        l.push(("link", link.link.to_string()));
                        out.push((l, v));
                    }
                }
            }
        }
        Accessor::Process(get, _) => {
            for p in &snap.processes {
                if let Some(v) = get(p) {
                    let g = snap.gpus.iter().find(|g| g.index == p.gpu_index);
                    out.push((process_labels(p, g), v));
                }
            }
        }
        Accessor::Host(get, _) => {
            if let Some(v) = host.and_then(get) {
                out.push((Vec::new(), v));
            }
        }
        Accessor::Cpu(get, _) => {
            for c in host.map(|h| h.cpus.as_slice()).unwrap_or_default() {
                if let Some(v) = get(c) {
                    out.push((vec![("cpu", c.cpu.to_string())], v));
                }
            }
        }
        Accessor::Nic(get, _) => {
            for n in host.map(|h| h.nics.as_slice()).unwrap_or_default() {
                if let Some(v) = get(n) {
                    out.push((vec![("interface", n.name.clone()), ("kind", n.kind.as_str().to_string())], v));
                }
            }
        }
        Accessor::Disk(get, _) => {
            for d in host.map(|h| h.disks.as_slice()).unwrap_or_default() {
                if let Some(v) = get(d) {
                    out.push((vec![("device", d.name.clone())], v));
                }
            }
        }
    }
    out
}

fn native(w: &mut Writer<'_>, snap: &NodeSnapshot) {
    w.header("gpuscope_build_info", "info", "gpuscope build information.");
    w.sample("gpuscope_build_info", &[("version", env!("CARGO_PKG_VERSION").to_string())], 1.0);
    w.header("gpuscope_gpu_driver_up", "gauge", "1 when the NVIDIA driver (NVML) is loaded and answering.");
    w.sample("gpuscope_gpu_driver_up", &[], if snap.agent.driver_up { 1.0 } else { 0.0 });
    if !snap.gpus.is_empty() {
        w.header("gpuscope_gpu_info", "info", "GPU identity; the value is always 1.");
        let driver = snap.driver.as_ref();
        for g in &snap.gpus {
            let mut l = gpu_labels(g);
            let opt = |v: &Option<String>| v.clone().unwrap_or_default();
            l.push(("serial", opt(&g.serial)));
            l.push(("pci_bus_id", opt(&g.pci_bus_id)));
            l.push(("compute_capability", opt(&g.compute_capability)));
            l.push(("driver_version", driver.map(|d| d.driver_version.clone()).unwrap_or_default()));
            w.sample("gpuscope_gpu_info", &l, 1.0);
        }
    }
    for m in CATALOGUE {
        let s = series(m, snap);
        if s.is_empty() {
            continue;
        }
        w.header(m.prometheus, kind_str(m.kind), m.help);
        for (labels, v) in s {
            w.sample(m.prometheus, &labels, v);
        }
    }
    self_metrics(w, snap);
}

fn self_metrics(w: &mut Writer<'_>, snap: &NodeSnapshot) {
    let a = &snap.agent;
    w.header("gpuscope_agent_sample_duration_seconds", "gauge", "Wall time of the last sampling pass.");
    w.sample("gpuscope_agent_sample_duration_seconds", &[], a.sample_duration_seconds);
    w.header("gpuscope_agent_last_sample_timestamp_seconds", "gauge", "When the published snapshot was taken.");
    w.sample("gpuscope_agent_last_sample_timestamp_seconds", &[], snap.timestamp_ms as f64 / 1000.0);
    if !a.samplers.is_empty() {
        w.header("gpuscope_agent_sampler_errors_total", "counter", "Sampling passes that failed, per sampler.");
        for (name, s) in &a.samplers {
            w.sample("gpuscope_agent_sampler_errors_total", &[("sampler", name.clone())], s.errors_total as f64);
        }
        w.header("gpuscope_agent_sampler_up", "gauge", "1 when the sampler's last pass succeeded.");
        for (name, s) in &a.samplers {
            w.sample(
                "gpuscope_agent_sampler_up",
                &[("sampler", name.clone())],
                if s.last_error.is_none() { 1.0 } else { 0.0 },
            );
        }
        let succeeded: Vec<_> = a.samplers.iter().filter_map(|(n, s)| s.last_success_ms.map(|t| (n, t))).collect();
        if !succeeded.is_empty() {
            w.header(
                "gpuscope_agent_sampler_last_success_timestamp_seconds",
                "gauge",
                "When the sampler last succeeded.",
            );
            for (name, t) in succeeded {
                w.sample(
                    "gpuscope_agent_sampler_last_success_timestamp_seconds",
                    &[("sampler", name.clone())],
                    t as f64 / 1000.0,
                );
            }
        }
    }
    if !a.nvml_errors.is_empty() {
        w.header(
            "gpuscope_agent_nvml_errors_total",
            "counter",
            "NVML calls that failed (not counting NOT_SUPPORTED), per signal.",
        );
        for (call, n) in &a.nvml_errors {
            w.sample("gpuscope_agent_nvml_errors_total", &[("signal", call.clone())], *n as f64);
        }
    }
    if !a.unsupported.is_empty() {
        w.header(
            "gpuscope_agent_unsupported_gpus",
            "gauge",
            "GPUs on which NVML reports the signal as not supported (absent, not zero).",
        );
        for (signal, n) in &a.unsupported {
            w.sample("gpuscope_agent_unsupported_gpus", &[("signal", signal.clone())], *n as f64);
        }
    }
}

/// dcgm-exporter's help texts carry the unit.
fn dcgm_unit(scale: f64, m: &MetricDef) -> &'static str {
    match (m.unit, scale) {
        (_, s) if (s - 100.0).abs() < 1e-9 => "in %",
        (gpuscope_core::Unit::Hertz, _) => "in MHz",
        (gpuscope_core::Unit::Bytes, _) => "in MiB",
        (gpuscope_core::Unit::Joules, _) => "in mJ",
        (gpuscope_core::Unit::Watts, _) => "in W",
        (gpuscope_core::Unit::Celsius, _) => "in C",
        (gpuscope_core::Unit::BytesPerSecond, _) => "in B/s",
        (gpuscope_core::Unit::Ratio, _) => "ratio",
        _ => "count",
    }
}

fn dcgm(w: &mut Writer<'_>, snap: &NodeSnapshot) {
    let labels = |g: &GpuSample| -> Labels<'static> {
        let mut l = vec![
            ("gpu", g.index.to_string()),
            ("UUID", g.uuid.clone()),
            ("pci_bus_id", g.pci_bus_id.clone().unwrap_or_default()),
            ("device", format!("nvidia{}", g.index)),
            ("modelName", g.model.clone()),
            ("Hostname", snap.node.hostname.clone()),
        ];
        // dcgm-exporter labels a GPU with the pod using it.
        if let Some(p) = snap.processes.iter().find(|p| p.gpu_index == g.index && p.pod.is_some()) {
            l.push(("container", p.container.clone().unwrap_or_default()));
            l.push(("namespace", p.namespace.clone().unwrap_or_default()));
            l.push(("pod", p.pod.clone().unwrap_or_default()));
        }
        l
    };
    for m in CATALOGUE {
        let (Some(alias), Accessor::Gpu(get, _)) = (m.dcgm, m.accessor) else {
            continue;
        };
        let vals: Vec<_> = snap.gpus.iter().filter_map(|g| get(g).map(|v| (g, v))).collect();
        if vals.is_empty() {
            continue;
        }
        let kind = kind_str(alias.kind);
        // dcgm-exporter's counters carry no `_total`; OpenMetrics would demand one, so they are
        // declared as unknown-typed there, as Prometheus does when it converts them.
        let kind = if w.format == Format::OpenMetrics && kind == "counter" { "unknown" } else { kind };
        w.header(alias.name, kind, &format!("{} ({}).", m.help.trim_end_matches('.'), dcgm_unit(alias.scale, m)));
        for (g, v) in vals {
            // dcgm-exporter reports %, MHz, MiB and mJ as integers.
            let scaled = if alias.scale == 1.0 { v } else { (v * alias.scale).round() };
            w.sample(alias.name, &labels(g), scaled);
        }
    }
}

/// Encodes `snap` into `out`. `extra` labels are added to every series (node labels).
pub fn encode(snap: &NodeSnapshot, format: Format, names: Names, extra: &[(String, String)], out: &mut String) {
    let mut w = Writer { out, format, extra };
    if names.native {
        native(&mut w, snap);
    }
    if names.dcgm {
        dcgm(&mut w, snap);
    }
    if format == Format::OpenMetrics {
        w.out.push_str("# EOF\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpuscope_core::{CpuSample, HostSample};

    fn snap() -> NodeSnapshot {
        let mut g =
            GpuSample { index: 0, uuid: "GPU-1".into(), model: "NVIDIA H100 80GB HBM3".into(), ..GpuSample::default() };
        g.power_watts = Some(512.5);
        g.energy_joules = Some(1000.0);
        g.utilization_ratio = Some(0.97);
        g.memory_used_bytes = Some(1 << 30);
        g.clock_event_reasons = Some(0x4);
        g.xid_counts.insert(79, 2);
        let p = ProcessSample {
            pid: 42,
            name: "py\"thon".into(),
            gpu_index: 0,
            gpu_uuid: "GPU-1".into(),
            gpu_memory_bytes: Some(1 << 30),
            pod: Some("trainer-0".into()),
            namespace: Some("ml".into()),
            ..ProcessSample::default()
        };
        NodeSnapshot {
            gpus: vec![g],
            processes: vec![p],
            host: Some(HostSample {
                cpus: vec![CpuSample { cpu: 0, busy_ratio: Some(0.5), iowait_ratio: None }],
                ..HostSample::default()
            }),
            ..NodeSnapshot::default()
        }
    }

    fn text(format: Format, names: Names) -> String {
        let mut s = String::new();
        encode(&snap(), format, names, &[("cluster".into(), "c1".into())], &mut s);
        s
    }

    #[test]
    fn text_format_lines() {
        let t = text(Format::Text, Names::default());
        assert!(t.contains("# TYPE gpuscope_gpu_energy_joules_total counter\n"));
        assert!(t.contains(
            "gpuscope_gpu_power_watts{gpu=\"0\",uuid=\"GPU-1\",model=\"NVIDIA H100 80GB HBM3\",cluster=\"c1\"} 512.5\n"
        ));
        assert!(t.contains("gpuscope_gpu_clock_event_active{gpu=\"0\",uuid=\"GPU-1\",model=\"NVIDIA H100 80GB HBM3\",reason=\"sw_power_cap\",cluster=\"c1\"} 1\n"));
        assert!(t.contains("reason=\"gpu_idle\",cluster=\"c1\"} 0\n"));
        assert!(t.contains("gpuscope_gpu_xid_errors_total{gpu=\"0\",uuid=\"GPU-1\",model=\"NVIDIA H100 80GB HBM3\",xid=\"79\",cluster=\"c1\"} 2\n"));
        assert!(t.contains("process=\"py\\\"thon\",pod=\"trainer-0\",namespace=\"ml\""), "label values are escaped");
        assert!(t.contains("# TYPE gpuscope_gpu_info gauge\n"));
        assert!(t.contains("gpuscope_host_cpu_core_busy_ratio{cpu=\"0\",cluster=\"c1\"} 0.5\n"));
        // Absent is not zero: no temperature was read, so no temperature series exists.
        assert!(!t.contains("gpuscope_gpu_temperature_celsius"));
        assert!(!t.contains("gpuscope_host_cpu_core_iowait_ratio"));
        assert!(!t.contains("# EOF"));
        assert!(!t.contains("DCGM_"));
    }

    #[test]
    fn openmetrics_families_and_eof() {
        let t = text(Format::OpenMetrics, Names::default());
        assert!(t.contains("# TYPE gpuscope_gpu_energy_joules counter\ngpuscope_gpu_energy_joules_total{"));
        assert!(t.contains("# TYPE gpuscope_gpu info\ngpuscope_gpu_info{"));
        assert!(t.ends_with("# EOF\n"));
    }

    #[test]
    fn dcgm_names_units_and_labels() {
        let t = text(Format::Text, Names { native: false, dcgm: true });
        assert!(!t.contains("gpuscope_"));
        assert!(t.contains("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"));
        assert!(t.contains(
            "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-1\",pci_bus_id=\"\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"\",container=\"\",namespace=\"ml\",pod=\"trainer-0\",cluster=\"c1\"} 512.5\n"
        ));
        assert!(t.contains("} 1000000\n"), "energy in mJ");
        assert!(t.contains("DCGM_FI_DEV_GPU_UTIL{") && t.contains("} 97\n"), "utilization in %");
        assert!(t.contains("DCGM_FI_DEV_FB_USED{") && t.contains("} 1024\n"), "memory in MiB");
    }
}
