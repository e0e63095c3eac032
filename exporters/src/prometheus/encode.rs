//! Encodes a node snapshot in the Prometheus text formats: the catalogue's walk gives the
//! series, this file turns their identities into labels, the core writer writes the lines.

use gpuscope_core::catalogue::{CATALOGUE, GpuId, Identity, MetricDef, MetricKind, Owner, ProfileId};
use gpuscope_core::exposition::{Kind, Series, Writer};
use gpuscope_core::{DcgmProfile, NodeSnapshot, Unit};

pub use gpuscope_core::exposition::Format;

/// Which name sets to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    /// gpuscope's own `gpuscope_*` names.
    pub native: bool,
    /// dcgm-exporter's `DCGM_FI_*` names, types, units and labels, as this release serves them.
    pub dcgm: Option<DcgmProfile>,
}

impl Default for Names {
    fn default() -> Self {
        Names { native: true, dcgm: None }
    }
}

fn gpu_labels<'w, 'a>(line: Series<'w, 'a>, g: &GpuId<'_>) -> Series<'w, 'a> {
    line.label("gpu", g.index)
        .label("uuid", g.uuid.as_deref().unwrap_or_default())
        .label("model", g.model.as_deref().unwrap_or_default())
}

/// A profiled process's labels: those of a process, without a GPU (a profile spans the
/// process's GPUs), and `gpus`, the GPUs it uses (`0,1`; none when NVML lists none of them),
/// fixed while the process lives.
fn profile_labels<'w, 'a>(mut line: Series<'w, 'a>, p: &ProfileId<'_>) -> Series<'w, 'a> {
    line = process_labels(line, p.pid, &p.name, [&p.user, &p.container, &p.pod, &p.namespace]);
    if p.gpus.is_empty() {
        return line;
    }
    line.label("gpus", p.gpus_label().as_str())
}

/// A process's own labels, for a process on a GPU and a profiled process alike: `pid`,
/// `process`, and `user`, `container`, `pod`, `namespace` where known (in that order).
fn process_labels<'w, 'a>(
    mut line: Series<'w, 'a>,
    pid: u32,
    name: &str,
    known: [&Option<std::borrow::Cow<'_, str>>; 4],
) -> Series<'w, 'a> {
    line = line.label("pid", pid).label("process", name);
    for (k, v) in ["user", "container", "pod", "namespace"].into_iter().zip(known) {
        if let Some(v) = v {
            line = line.label(k, &**v);
        }
    }
    line
}

/// The labels of a series: its owner's, then the row's extra label.
fn labels<'w, 'a>(mut line: Series<'w, 'a>, id: &Identity<'_>) -> Series<'w, 'a> {
    match &id.owner {
        Owner::Gpu(g) => line = gpu_labels(line, g),
        Owner::NvLink { gpu, link } => line = gpu_labels(line, gpu).label("link", *link),
        Owner::Mig { gpu, gpu_instance_id, profile } => {
            line = gpu_labels(line, gpu)
                .label("gpu_instance_id", *gpu_instance_id)
                .label("gpu_instance_profile", &**profile)
        }
        Owner::Process(p) => {
            line = line.label("gpu", p.gpu_index).label("uuid", &*p.gpu_uuid);
            if let Some(g) = &p.gpu {
                line = line.label("model", g.model.as_str());
            }
            line = process_labels(line, p.pid, &p.name, [&p.user, &p.container, &p.pod, &p.namespace]);
            if let Some(w) = p.workload {
                line = line.label("workload", w.as_str());
            }
        }
        Owner::Host => {}
        Owner::Cpu(cpu) => line = line.label("cpu", *cpu),
        Owner::Nic { name, kind } => line = line.label("interface", &**name).label("kind", kind.as_str()),
        Owner::Disk(name) => line = line.label("device", &**name),
        Owner::Fs(m) => line = line.label("mountpoint", &**m),
        Owner::Profile(p) => line = profile_labels(line, p),
        Owner::ProfileClass { profile, class } => {
            line = profile_labels(line, profile);
            for (k, v) in gpuscope_core::catalogue::kernel_class_labels(class) {
                line = line.label(k, v);
            }
        }
    }
    if let Some(l) = &id.label {
        line = line.label(l.key, l.value);
    }
    line
}

fn native(w: &mut Writer<'_>, snap: &NodeSnapshot) {
    w.header("gpuscope_build_info", Kind::Info, "gpuscope build information.");
    w.sample("gpuscope_build_info", &[("version", env!("CARGO_PKG_VERSION").into())], 1.0);
    w.header("gpuscope_gpu_driver_up", Kind::Gauge, "1 when the NVIDIA driver (NVML) is loaded and answering.");
    w.sample("gpuscope_gpu_driver_up", &[], if snap.agent.driver_up { 1.0 } else { 0.0 });
    // Prometheus knows a target by its address; this joins it to the host name and the job the
    // collector's findings carry (`node`, `gpuscope_job`: `job` is Prometheus's own label).
    w.header("gpuscope_node_info", Kind::Info, "The node's host name and job; the value is always 1.");
    let mut node = w.series("gpuscope_node_info").label("node", snap.node.hostname.as_str());
    if let Some(job) = &snap.node.job {
        node = node.label("gpuscope_job", job.as_str());
    }
    node.value(1.0);
    if !snap.gpus.is_empty() {
        w.header("gpuscope_gpu_info", Kind::Info, "GPU identity; the value is always 1.");
        let driver = snap.driver.as_ref().map(|d| d.driver_version.as_str()).unwrap_or_default();
        for g in &snap.gpus {
            gpu_labels(w.series("gpuscope_gpu_info"), &GpuId::of(g))
                .label("serial", g.serial.as_deref().unwrap_or_default())
                .label("pci_bus_id", g.pci_bus_id.as_deref().unwrap_or_default())
                .label("compute_capability", g.compute_capability.as_deref().unwrap_or_default())
                .label("driver_version", driver)
                .label("vbios_version", g.vbios_version.as_deref().unwrap_or_default())
                .label("cpu_affinity", g.cpu_affinity.as_deref().unwrap_or_default())
                .value(1.0);
        }
    }
    for m in CATALOGUE {
        let mut series = m.series(snap).peekable();
        if series.peek().is_none() {
            continue;
        }
        w.header(m.prometheus, m.kind.exposition(), m.help);
        for s in series {
            labels(w.series(m.prometheus), &s.identity).value(s.value);
        }
    }
    self_metrics(w, snap);
}

fn self_metrics(w: &mut Writer<'_>, snap: &NodeSnapshot) {
    let a = &snap.agent;
    w.header("gpuscope_agent_sample_duration_seconds", Kind::Gauge, "Wall time of the last sampling pass.");
    w.sample("gpuscope_agent_sample_duration_seconds", &[], a.sample_duration_seconds);
    w.header("gpuscope_agent_last_sample_timestamp_seconds", Kind::Gauge, "When the published snapshot was taken.");
    w.sample("gpuscope_agent_last_sample_timestamp_seconds", &[], snap.timestamp_ms as f64 / 1000.0);
    if !a.samplers.is_empty() {
        w.header("gpuscope_agent_sampler_errors_total", Kind::Counter, "Sampling passes that failed, per sampler.");
        for (name, s) in &a.samplers {
            w.sample("gpuscope_agent_sampler_errors_total", &[("sampler", name.into())], s.errors_total as f64);
        }
        w.header("gpuscope_agent_sampler_up", Kind::Gauge, "1 when the sampler's last pass succeeded.");
        for (name, s) in &a.samplers {
            let up = if s.last_error.is_none() { 1.0 } else { 0.0 };
            w.sample("gpuscope_agent_sampler_up", &[("sampler", name.into())], up);
        }
        let succeeded: Vec<_> = a.samplers.iter().filter_map(|(n, s)| s.last_success_ms.map(|t| (n, t))).collect();
        if !succeeded.is_empty() {
            w.header(
                "gpuscope_agent_sampler_last_success_timestamp_seconds",
                Kind::Gauge,
                "When the sampler last succeeded.",
            );
            for (name, t) in succeeded {
                w.sample(
                    "gpuscope_agent_sampler_last_success_timestamp_seconds",
                    &[("sampler", name.into())],
                    t as f64 / 1000.0,
                );
            }
        }
    }
    if a.driver_up {
        w.header(
            "gpuscope_agent_gpm_unavailable_gpus",
            Kind::Gauge,
            "GPUs whose GPM profiling failed at its last read: their profiling ratios are absent until it answers (asked every 30 s).",
        );
        w.sample("gpuscope_agent_gpm_unavailable_gpus", &[], a.gpm_unavailable.len() as f64);
    }
    if !a.nvml_errors.is_empty() {
        w.header(
            "gpuscope_agent_nvml_errors_total",
            Kind::Counter,
            "NVML calls that failed (not counting NOT_SUPPORTED), per signal.",
        );
        for (call, n) in &a.nvml_errors {
            w.sample("gpuscope_agent_nvml_errors_total", &[("signal", call.into())], *n as f64);
        }
    }
    if !a.nvml_calls.is_empty() {
        w.header(
            "gpuscope_agent_nvml_calls_total",
            Kind::Counter,
            "NVML calls the agent made, per entry point (on a real driver most are an ioctl).",
        );
        for (entry_point, n) in &a.nvml_calls {
            w.sample("gpuscope_agent_nvml_calls_total", &[("entry_point", entry_point.into())], *n as f64);
        }
    }
    if let Some(c) = &a.cupti {
        for (name, kind, help, v) in [
            (
                "gpuscope_agent_cupti_connections",
                Kind::Gauge,
                "Injection library connections open on the CUPTI socket.",
                c.connections,
            ),
            (
                "gpuscope_agent_cupti_connections_total",
                Kind::Counter,
                "Injection library connections accepted on the CUPTI socket.",
                c.connections_total,
            ),
            (
                "gpuscope_agent_cupti_connections_refused_total",
                Kind::Counter,
                "CUPTI socket connections closed at once because the connection limit was reached.",
                c.connections_refused_total,
            ),
            (
                "gpuscope_agent_cupti_frames_received_total",
                Kind::Counter,
                "Window summaries received from injection libraries.",
                c.frames_received_total,
            ),
            (
                "gpuscope_agent_cupti_profiles_evicted_total",
                Kind::Counter,
                "Kernel profiles dropped to make room for a new process (the profile limit was reached).",
                c.profiles_evicted_total,
            ),
        ] {
            w.header(name, kind, help);
            w.sample(name, &[], v as f64);
        }
        w.header(
            "gpuscope_agent_cupti_frames_rejected_total",
            Kind::Counter,
            "Frames from injection libraries rejected (their connection was closed), by reason.",
        );
        for (reason, n) in &c.frames_rejected_total {
            w.sample("gpuscope_agent_cupti_frames_rejected_total", &[("reason", reason.into())], *n as f64);
        }
    }
    if !a.unsupported.is_empty() {
        w.header(
            "gpuscope_agent_unsupported_gpus",
            Kind::Gauge,
            "GPUs on which NVML reports the signal as not supported (absent, not zero).",
        );
        for (signal, n) in &a.unsupported {
            w.sample("gpuscope_agent_unsupported_gpus", &[("signal", signal.into())], *n as f64);
        }
    }
}

/// dcgm-exporter's help texts carry the unit; a state (P-state, a mode) has none.
fn dcgm_unit(scale: f64, m: &MetricDef) -> Option<&'static str> {
    let base = scale == 1.0;
    Some(match (m.unit, scale) {
        (_, s) if (s - 100.0).abs() < 1e-9 => "in %",
        (Unit::Hertz, _) if base => "in Hz",
        (Unit::Hertz, _) => "in MHz",
        (Unit::Bytes, _) if base => "in B",
        (Unit::Bytes, _) => "in MiB",
        (Unit::Joules, _) if base => "in J",
        (Unit::Joules, _) => "in mJ",
        (Unit::Watts, _) => "in W",
        (Unit::Celsius, _) => "in C",
        (Unit::BytesPerSecond, _) => "in B/s",
        (Unit::Ratio, _) => "ratio",
        (Unit::State, _) => return None,
        _ => "count",
    })
}

fn dcgm(w: &mut Writer<'_>, snap: &NodeSnapshot, profile: DcgmProfile) {
    let hostname = snap.node.hostname.as_str();
    let driver = snap.driver.as_ref().map(|d| d.driver_version.as_str());
    for (at, m) in CATALOGUE.iter().enumerate() {
        let Some(alias) = m.dcgm else { continue };
        // dcgm-exporter serves a MIG instance's series in its GPU's family, labelled
        // GPU_I_PROFILE and GPU_I_ID: the rows sharing an alias are written as one family, at the
        // first of them.
        if CATALOGUE[..at].iter().any(|e| e.dcgm.is_some_and(|d| d.name == alias.name)) {
            continue;
        }
        let (name, scale) = (alias.name_in(profile), alias.scale_in(profile));
        let rows = || CATALOGUE[at..].iter().filter(|e| e.dcgm.is_some_and(|d| d.name == alias.name));
        let mut series = rows().flat_map(|e| e.series(snap).map(move |s| (e, s))).peekable();
        if series.peek().is_none() {
            continue;
        }
        // dcgm-exporter's counters carry no `_total`; OpenMetrics would demand one, so they are
        // declared as unknown-typed there, as Prometheus does when it converts them.
        let kind = match (alias.kind, w.format()) {
            (MetricKind::Counter, Format::OpenMetrics) => Kind::Unknown,
            (k, _) => k.exposition(),
        };
        let help = match dcgm_unit(scale, m) {
            Some(unit) => format!("{} ({unit}).", m.help.trim_end_matches('.')),
            None => m.help.to_string(),
        };
        w.header(name, kind, &help);
        for (m, s) in series {
            // Aliases sit on per-GPU and per-MIG-instance rows only (a catalogue invariant).
            let (g, instance) = match &s.identity.owner {
                Owner::Gpu(g) => (g, None),
                Owner::Mig { gpu, gpu_instance_id, profile } => (gpu, Some((*gpu_instance_id, &**profile))),
                _ => continue,
            };
            let mut line = w
                .series(name)
                .label("gpu", g.index)
                .label("UUID", g.uuid.as_deref().unwrap_or_default())
                .label("pci_bus_id", g.pci_bus_id.as_deref().unwrap_or_default())
                .label("device", format!("nvidia{}", g.index).as_str())
                .label("modelName", g.model.as_deref().unwrap_or_default());
            if let Some((id, gi_profile)) = instance {
                line = line.label("GPU_I_PROFILE", gi_profile).label("GPU_I_ID", id);
            }
            let mut line = line.label(profile.hostname_label(), hostname);
            // dcgm-exporter's default counters turn the driver version into a label.
            if let Some(v) = driver {
                line = line.label(profile.driver_label(), v);
            }
            // dcgm-exporter labels a GPU with the pod using it.
            if let Some(p) = snap.processes.iter().find(|p| p.gpu_index == g.index && p.pod.is_some()) {
                line = line
                    .label("container", p.container.as_deref().unwrap_or_default())
                    .label("namespace", p.namespace.as_deref().unwrap_or_default())
                    .label("pod", p.pod.as_deref().unwrap_or_default());
            }
            // dcgm-exporter reports %, MHz, MiB and mJ as integers, and from 4.9 Hz, bytes and J
            // (DCGM's integer fields).
            let integer = scale != 1.0 || matches!(m.unit, Unit::Hertz | Unit::Bytes | Unit::Joules);
            let scaled = if integer { (s.value * scale).round() } else { s.value };
            line.value(scaled);
        }
    }
}

/// Writes the families of `names` for `snap` (no `# EOF`: the caller may append its own families
/// before [`Writer::finish`]).
pub fn write(w: &mut Writer<'_>, snap: &NodeSnapshot, names: Names) {
    if names.native {
        native(w, snap);
    }
    if let Some(profile) = names.dcgm {
        dcgm(w, snap, profile);
    }
}

/// Encodes `snap` into `out`. `extra` labels are added to every series (node labels).
pub fn encode(snap: &NodeSnapshot, format: Format, names: Names, extra: &[(String, String)], out: &mut String) {
    let mut w = Writer::new(out, format).with_labels(extra);
    write(&mut w, snap, names);
    w.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpuscope_core::{CpuSample, GpuSample, HostSample, ProcessSample};

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
        let t = text(Format::Text, Names { native: false, dcgm: Some(DcgmProfile::Legacy) });
        assert!(!t.contains("gpuscope_"));
        assert!(t.contains("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"));
        assert!(t.contains(
            "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-1\",pci_bus_id=\"\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"\",container=\"\",namespace=\"ml\",pod=\"trainer-0\",cluster=\"c1\"} 512.5\n"
        ));
        assert!(t.contains("} 1000000\n"), "energy in mJ");
        assert!(t.contains("DCGM_FI_DEV_GPU_UTIL{") && t.contains("} 97\n"), "utilization in %");
        assert!(t.contains("DCGM_FI_DEV_FB_USED{") && t.contains("} 1024\n"), "memory in MiB");
    }

    /// 4.9 renamed the fields to DCGM 4.7's names in base units and lower-cased `hostname`; 4.10
    /// added `_PER_SECOND` to the PCIe rates.
    #[test]
    fn dcgm_4_9_and_4_10_names_units_and_labels() {
        let t = text(Format::Text, Names { native: false, dcgm: Some(DcgmProfile::V4_9) });
        assert!(!t.contains("DCGM_FI_DEV_POWER_USAGE") && !t.contains("Hostname="));
        assert!(t.contains("# TYPE DCGM_FI_DEV_GPU_ENERGY_JOULES_TOTAL counter\n"));
        assert!(t.contains(
            "DCGM_FI_DEV_BOARD_POWER_WATTS{gpu=\"0\",UUID=\"GPU-1\",pci_bus_id=\"\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",hostname=\"\",container=\"\",namespace=\"ml\",pod=\"trainer-0\",cluster=\"c1\"} 512.5\n"
        ));
        let value = |family: &str| {
            let line = t.lines().find(|l| l.starts_with(&format!("{family}{{"))).unwrap_or_else(|| panic!("{family}"));
            line.rsplit_once(' ').map(|(_, v)| v.to_string()).unwrap_or_default()
        };
        assert_eq!(value("DCGM_FI_DEV_GPU_ENERGY_JOULES_TOTAL"), "1000", "energy in J");
        assert_eq!(value("DCGM_FI_DEV_GPU_UTIL_RATIO"), "0.97", "utilization as a ratio");
        assert_eq!(value("DCGM_FI_DEV_FB_USED_BYTES"), (1u64 << 30).to_string(), "memory in bytes");
        assert!(t.contains(
            "# HELP DCGM_FI_DEV_GPU_ENERGY_JOULES_TOTAL Energy consumed since the driver was loaded (in J).\n"
        ));
        let t10 = text(Format::Text, Names { native: false, dcgm: Some(DcgmProfile::V4_10) });
        assert_eq!(
            t10.replace("DCGM_FI_PROF_PCIE_TX_BYTES_PER_SECOND", "DCGM_FI_PROF_PCIE_TX_BYTES")
                .replace("DCGM_FI_PROF_PCIE_RX_BYTES_PER_SECOND", "DCGM_FI_PROF_PCIE_RX_BYTES"),
            t,
            "4.10 differs from 4.9 in the PCIe rates' names only"
        );
    }

    #[test]
    fn every_owner_becomes_its_labels() {
        use gpuscope_core::{DiskSample, NicKind, NicSample, NvLinkSample};
        let mut snap = snap();
        snap.gpus[0].nvlinks = vec![NvLinkSample { link: 3, crc_errors_total: Some(9), ..NvLinkSample::default() }];
        snap.processes[0].sm_utilization_ratio = Some(0.5);
        snap.processes.push(ProcessSample {
            pid: 43,
            gpu_index: 5,
            gpu_uuid: "GPU-5".into(),
            rss_bytes: Some(1),
            ..ProcessSample::default()
        });
        let host = snap.host.get_or_insert_with(HostSample::default);
        host.load1 = Some(1.5);
        host.nics = vec![NicSample {
            name: "eth0".into(),
            kind: NicKind::Ethernet,
            rx_bytes_total: Some(7),
            ..NicSample::default()
        }];
        host.disks = vec![DiskSample { name: "nvme0n1".into(), busy_ratio: Some(0.25), ..DiskSample::default() }];
        let mut t = String::new();
        encode(&snap, Format::Text, Names::default(), &[], &mut t);
        for line in [
            "gpuscope_gpu_nvlink_crc_errors_total{gpu=\"0\",uuid=\"GPU-1\",model=\"NVIDIA H100 80GB HBM3\",link=\"3\"} 9\n",
            "gpuscope_process_sm_utilization_ratio{gpu=\"0\",uuid=\"GPU-1\",model=\"NVIDIA H100 80GB HBM3\",pid=\"42\",process=\"py\\\"thon\",pod=\"trainer-0\",namespace=\"ml\"} 0.5\n",
            // A process on a GPU the snapshot does not hold has no model label.
            "gpuscope_process_resident_memory_bytes{gpu=\"5\",uuid=\"GPU-5\",pid=\"43\",process=\"\"} 1\n",
            "gpuscope_host_load1 1.5\n",
            "gpuscope_host_network_receive_bytes_total{interface=\"eth0\",kind=\"ethernet\"} 7\n",
            "gpuscope_host_disk_busy_ratio{device=\"nvme0n1\"} 0.25\n",
        ] {
            assert!(t.contains(line), "missing {line}");
        }
    }
}
