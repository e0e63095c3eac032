//! Snapshot → `ExportMetricsServiceRequest`. The catalogue's walk gives the series; this file
//! turns their identities into attributes. The collector decodes with the same catalogue and
//! attribute keys (`gpuscope_core::catalogue::otlp_keys`), so a round trip loses nothing.

use gpuscope_core::NodeSnapshot;
use gpuscope_core::catalogue::{self, CATALOGUE, GpuId, MetricDef, MetricKind, Owner, otlp_keys as k};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Who is pushing: the resource of every request.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `service.instance.id`.
    pub instance: String,
    /// When the agent started (start time of cumulative sums), ns since the epoch.
    pub start_unix_nano: u64,
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(v) }), ..KeyValue::default() }
}

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}

fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

fn gpu_attrs(a: &mut Vec<KeyValue>, g: &GpuId<'_>) {
    a.extend([
        s(k::HW_ID, g.uuid.as_deref().unwrap_or_default()),
        s(k::HW_TYPE, "gpu"),
        s(k::HW_VENDOR, "nvidia"),
        s(k::HW_MODEL, g.model.as_deref().unwrap_or_default()),
        i(k::GPU_INDEX, i64::from(g.index)),
    ]);
}

/// A process's own attributes, for a process on a GPU and a profiled process alike: its PID and
/// name, then owner, container, pod, namespace and pod UID where known.
fn process_attrs(a: &mut Vec<KeyValue>, pid: u32, name: &str, known: [&Option<std::borrow::Cow<'_, str>>; 5]) {
    a.push(i(k::PID, i64::from(pid)));
    a.push(s(k::PROCESS, name));
    for (key, v) in [k::OWNER, k::CONTAINER, k::POD, k::NAMESPACE, k::POD_UID].into_iter().zip(known) {
        if let Some(v) = v {
            a.push(s(key, &**v));
        }
    }
}

fn profile_attrs(a: &mut Vec<KeyValue>, p: &catalogue::ProfileId<'_>) {
    process_attrs(a, p.pid, &p.name, [&p.user, &p.container, &p.pod, &p.namespace, &p.pod_uid]);
    if !p.gpus.is_empty() {
        a.push(s(k::PROCESS_GPUS, p.gpus_label()));
    }
}

/// The attributes of a series: its owner's (with the GPU's identity on the row that carries it),
/// then the row's extra label.
fn attributes(id: &catalogue::Identity<'_>, carries_gpu_identity: bool) -> Vec<KeyValue> {
    let mut a = Vec::new();
    match &id.owner {
        Owner::Gpu(g) => {
            gpu_attrs(&mut a, g);
            if carries_gpu_identity {
                for (key, val) in [
                    (k::GPU_CC, &g.compute_capability),
                    (k::GPU_SERIAL, &g.serial),
                    (k::GPU_PCI, &g.pci_bus_id),
                    (k::GPU_VBIOS, &g.vbios_version),
                    (k::GPU_CPU_AFFINITY, &g.cpu_affinity),
                ] {
                    if let Some(val) = val {
                        a.push(s(key, &**val));
                    }
                }
            }
        }
        Owner::NvLink { gpu, link } => {
            gpu_attrs(&mut a, gpu);
            a.push(i(k::for_label("link"), i64::from(*link)));
        }
        Owner::Mig { gpu, gpu_instance_id, profile } => {
            gpu_attrs(&mut a, gpu);
            a.push(i(k::MIG_GPU_INSTANCE, i64::from(*gpu_instance_id)));
            a.push(s(k::MIG_PROFILE, &**profile));
        }
        Owner::Process(p) => {
            match &p.gpu {
                Some(g) => gpu_attrs(&mut a, &GpuId::of(g)),
                None => {
                    a.extend([s(k::HW_ID, &*p.gpu_uuid), s(k::HW_TYPE, "gpu"), i(k::GPU_INDEX, i64::from(p.gpu_index))])
                }
            }
            process_attrs(&mut a, p.pid, &p.name, [&p.user, &p.container, &p.pod, &p.namespace, &p.pod_uid]);
            if let Some(w) = p.workload {
                a.push(s(k::WORKLOAD, w.as_str()));
            }
            if let Some(ppid) = p.ppid {
                a.push(i(k::PPID, i64::from(ppid)));
            }
            if let Some(n) = &p.parent_name {
                a.push(s(k::PARENT_NAME, &**n));
            }
        }
        Owner::Host => {}
        Owner::Cpu(cpu) => a.push(i(k::CPU, i64::from(*cpu))),
        Owner::Nic { name, kind } => a.extend([s(k::INTERFACE, &**name), s(k::NIC_KIND, kind.as_str())]),
        Owner::Disk(name) => a.push(s(k::DEVICE, &**name)),
        Owner::Fs(m) => a.push(s(k::MOUNTPOINT, &**m)),
        Owner::Profile(p) => profile_attrs(&mut a, p),
        Owner::ProfileClass { profile, class } => {
            profile_attrs(&mut a, profile);
            for (label, v) in catalogue::kernel_class_labels(class) {
                let key = match label {
                    "kind" => k::KERNEL_KIND,
                    "collective" => k::KERNEL_COLLECTIVE,
                    "pipe" => k::KERNEL_PIPE,
                    _ => k::KERNEL_PRECISION,
                };
                a.push(s(key, v));
            }
        }
    }
    if let Some(l) = &id.label {
        a.push(s(k::for_label(l.key), l.value.to_string()));
    }
    a
}

/// Appends the data points of one catalogue row in one snapshot to `out`.
fn points(m: &MetricDef, snap: &NodeSnapshot, time: u64, start: u64, out: &mut Vec<NumberDataPoint>) {
    for series in m.series(snap) {
        let mut attributes = attributes(&series.identity, m.carries_gpu_identity);
        attributes.extend(m.otlp_attributes.iter().map(|(a, v)| s(a, *v)));
        out.push(NumberDataPoint {
            attributes,
            start_time_unix_nano: if m.kind == MetricKind::Gauge { 0 } else { start },
            time_unix_nano: time,
            exemplars: Vec::new(),
            flags: 0,
            value: Some(number_data_point::Value::AsDouble(series.value)),
        });
    }
}

/// Encodes snapshots of one node (oldest first) as one request: every catalogue row becomes one
/// metric whose points carry each snapshot's own timestamp.
pub fn encode(snaps: &[&NodeSnapshot], id: &Identity) -> ExportMetricsServiceRequest {
    let Some(last) = snaps.last() else { return ExportMetricsServiceRequest::default() };
    let mut resource = vec![
        s(k::HOST_NAME, &last.node.hostname),
        s("service.name", "gpuscope-agent"),
        s("service.instance.id", &id.instance),
        s("service.version", env!("CARGO_PKG_VERSION")),
    ];
    if let Some(mid) = &last.node.machine_id {
        resource.push(s(k::HOST_ID, mid));
    }
    if let Some(job) = &last.node.job {
        resource.push(s(k::JOB, job));
    }
    if let Some(d) = &last.driver {
        resource.push(s(k::DRIVER, &d.driver_version));
    }
    for (key, v) in &last.node.labels {
        resource.push(s(&format!("{}{key}", k::LABEL_PREFIX), v));
    }
    let mut metrics = Vec::new();
    for m in CATALOGUE {
        let mut pts = Vec::new();
        for snap in snaps {
            points(m, snap, snap.timestamp_ms * 1_000_000, id.start_unix_nano, &mut pts);
        }
        if pts.is_empty() {
            continue;
        }
        let data = match m.kind {
            MetricKind::Gauge => metric::Data::Gauge(Gauge { data_points: pts }),
            MetricKind::Counter | MetricKind::UpDownCounter => metric::Data::Sum(Sum {
                data_points: pts,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: m.kind == MetricKind::Counter,
            }),
        };
        metrics.push(Metric {
            name: m.otlp.to_string(),
            description: m.help.to_string(),
            unit: m.unit.ucum().to_string(),
            metadata: Vec::new(),
            data: Some(data),
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: resource, dropped_attributes_count: 0, entity_refs: Vec::new() }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "gpuscope".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpuscope_core::{GpuSample, HostSample, MigSample, NicKind, NicSample, ProcessSample};

    /// Attributes of every point of the metric named `otlp` (with `task` as its fixed attribute
    /// value when given), as `key=value` strings.
    fn attrs(req: &ExportMetricsServiceRequest, otlp: &str) -> Vec<Vec<String>> {
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        let m = metrics.iter().find(|m| m.name == otlp).unwrap_or_else(|| panic!("no {otlp}"));
        let pts = match &m.data {
            Some(metric::Data::Gauge(g)) => &g.data_points,
            Some(metric::Data::Sum(s)) => &s.data_points,
            _ => panic!("{otlp}: not a gauge or sum"),
        };
        pts.iter()
            .map(|p| {
                p.attributes
                    .iter()
                    .map(|a| match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(any_value::Value::StringValue(v)) => format!("{}={v}", a.key),
                        Some(any_value::Value::IntValue(v)) => format!("{}={v}i", a.key),
                        other => format!("{}={other:?}", a.key),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn identities_become_attributes() {
        let mut g = GpuSample {
            index: 0,
            uuid: "GPU-a".into(),
            model: "H100".into(),
            serial: Some("165".into()),
            power_watts: Some(1.0),
            ..GpuSample::default()
        };
        g.xid_counts.insert(79, 1);
        g.mig_instances.push(MigSample {
            gpu_instance_id: 9,
            profile: "1g.10gb".into(),
            memory_used_bytes: Some(4),
            ..MigSample::default()
        });
        let snap = NodeSnapshot {
            timestamp_ms: 1,
            gpus: vec![g],
            processes: vec![ProcessSample {
                pid: 7,
                gpu_index: 0,
                gpu_uuid: "GPU-a".into(),
                name: "python".into(),
                pod: Some("p".into()),
                rss_bytes: Some(1),
                ..ProcessSample::default()
            }],
            host: Some(HostSample {
                nics: vec![NicSample {
                    name: "mlx5_0/1".into(),
                    kind: NicKind::Infiniband,
                    rx_bytes_total: Some(1),
                    ..NicSample::default()
                }],
                ..HostSample::default()
            }),
            ..NodeSnapshot::default()
        };
        let req = encode(&[&snap], &Identity { instance: "n".into(), start_unix_nano: 1 });
        let gpu = ["hw.id=GPU-a", "hw.type=gpu", "hw.vendor=nvidia", "hw.model=H100", "gpuscope.gpu.index=0i"];
        let with = |extra: &[&str]| -> Vec<String> { gpu.iter().chain(extra).map(|s| s.to_string()).collect() };
        // The GPU's identity rides on the row that carries it, only the parts it has.
        assert_eq!(attrs(&req, "gpuscope.gpu.up"), vec![with(&["gpuscope.gpu.serial=165"])]);
        assert_eq!(attrs(&req, "hw.power"), vec![with(&[])]);
        assert_eq!(attrs(&req, "gpuscope.gpu.xid.errors"), vec![with(&["gpuscope.xid.code=79"])]);
        // A MIG instance: its GPU's attributes, then its GPU instance id and profile.
        assert_eq!(
            attrs(&req, "gpuscope.gpu.mig.memory.usage"),
            vec![with(&["gpuscope.gpu.mig.gpu_instance.id=9i", "gpuscope.gpu.mig.profile=1g.10gb"])]
        );
        assert_eq!(
            attrs(&req, "process.memory.usage"),
            vec![with(&["process.pid=7i", "process.executable.name=python", "k8s.pod.name=p"])]
        );
        assert_eq!(
            attrs(&req, "system.network.io"),
            vec![vec![
                "network.interface.name=mlx5_0/1".to_string(),
                "gpuscope.network.kind=infiniband".into(),
                "network.io.direction=receive".into()
            ]]
        );
    }
}
