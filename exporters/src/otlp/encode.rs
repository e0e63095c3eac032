//! Snapshot → `ExportMetricsServiceRequest`. The collector decodes with the same catalogue and
//! attribute keys (`gpuscope_core::catalogue::otlp_keys`), so a round trip loses nothing.

use gpuscope_core::catalogue::{Accessor, CATALOGUE, MetricDef, MetricKind, otlp_keys as k};
use gpuscope_core::{GpuSample, NodeSnapshot, ProcessSample};
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

fn gpu_attrs(g: &GpuSample) -> Vec<KeyValue> {
    vec![
        s(k::HW_ID, &g.uuid),
        s(k::HW_TYPE, "gpu"),
        s(k::HW_VENDOR, "nvidia"),
        s(k::HW_MODEL, &g.model),
        i(k::GPU_INDEX, i64::from(g.index)),
    ]
}

fn process_attrs(p: &ProcessSample, g: Option<&GpuSample>) -> Vec<KeyValue> {
    let mut a = match g {
        Some(g) => gpu_attrs(g),
        None => vec![s(k::HW_ID, &p.gpu_uuid), s(k::HW_TYPE, "gpu"), i(k::GPU_INDEX, i64::from(p.gpu_index))],
    };
    a.push(i(k::PID, i64::from(p.pid)));
    a.push(s(k::PROCESS, &p.name));
    for (key, v) in [
        (k::OWNER, &p.user),
        (k::CONTAINER, &p.container),
        (k::POD, &p.pod),
        (k::NAMESPACE, &p.namespace),
        (k::POD_UID, &p.pod_uid),
    ] {
        if let Some(v) = v {
            a.push(s(key, v));
        }
    }
    a
}

/// Data points of one catalogue row.
fn points(m: &MetricDef, snap: &NodeSnapshot, time: u64, start: u64) -> Vec<NumberDataPoint> {
    let mut out = Vec::new();
    let fixed: Vec<KeyValue> = m.otlp_attributes.iter().map(|(a, v)| s(a, *v)).collect();
    let mut push = |mut attrs: Vec<KeyValue>, v: f64| {
        attrs.extend(fixed.iter().cloned());
        out.push(NumberDataPoint {
            attributes: attrs,
            start_time_unix_nano: if m.kind == MetricKind::Gauge { 0 } else { start },
            time_unix_nano: time,
            exemplars: Vec::new(),
            flags: 0,
            value: Some(number_data_point::Value::AsDouble(v)),
        });
    };
    let host = snap.host.as_ref();
    match m.accessor {
        Accessor::Gpu(get, _) => {
            for g in &snap.gpus {
                if let Some(v) = get(g) {
                    let mut a = gpu_attrs(g);
                    // Identity rides on the one point every GPU always has.
                    if m.prometheus == "gpuscope_gpu_up" {
                        for (key, val) in [
                            (k::GPU_CC, &g.compute_capability),
                            (k::GPU_SERIAL, &g.serial),
                            (k::GPU_PCI, &g.pci_bus_id),
                        ] {
                            if let Some(val) = val {
                                a.push(s(key, val));
                            }
                        }
                    }
                    push(a, v);
                }
            }
        }
        Accessor::GpuLabelled(get, _) => {
            let key = k::for_label(m.label.unwrap_or(""));
            for g in &snap.gpus {
                for (label, v) in get(g) {
                    let mut a = gpu_attrs(g);
                    a.push(s(key, label));
                    push(a, v);
                }
            }
        }
        Accessor::NvLink(get, _) => {
            for g in &snap.gpus {
                for l in &g.nvlinks {
                    if let Some(v) = get(l) {
                        let mut a = gpu_attrs(g);
                        a.push(i(k::for_label("link"), i64::from(l.link)));
                        push(a, v);
                    }
                }
            }
        }
        Accessor::Process(get, _) => {
            for p in &snap.processes {
                if let Some(v) = get(p) {
                    push(process_attrs(p, snap.gpus.iter().find(|g| g.index == p.gpu_index)), v);
                }
            }
        }
        Accessor::Host(get, _) => {
            if let Some(v) = host.and_then(get) {
                push(Vec::new(), v);
            }
        }
        Accessor::Cpu(get, _) => {
            for c in host.map(|h| h.cpus.as_slice()).unwrap_or_default() {
                if let Some(v) = get(c) {
                    push(vec![i(k::CPU, i64::from(c.cpu))], v);
                }
            }
        }
        Accessor::Nic(get, _) => {
            for n in host.map(|h| h.nics.as_slice()).unwrap_or_default() {
                if let Some(v) = get(n) {
                    push(vec![s(k::INTERFACE, &n.name), s(k::NIC_KIND, n.kind.as_str())], v);
                }
            }
        }
        Accessor::Disk(get, _) => {
            for d in host.map(|h| h.disks.as_slice()).unwrap_or_default() {
                if let Some(v) = get(d) {
                    push(vec![s(k::DEVICE, &d.name)], v);
                }
            }
        }
    }
    out
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
        let pts: Vec<NumberDataPoint> =
            snaps.iter().flat_map(|snap| points(m, snap, snap.timestamp_ms * 1_000_000, id.start_unix_nano)).collect();
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
