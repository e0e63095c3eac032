//! `ExportMetricsServiceRequest` → node snapshots, through the catalogue: a point's attributes
//! name a series ([`Identity`]), the catalogue finds or creates its owner in the snapshot and sets
//! the value. One snapshot per (resource host, point timestamp). Points of metrics the catalogue does not know (any other
//! OTLP exporter's) are counted as rejected: the request still succeeds, partially.

use gpuscope_core::catalogue::{GpuId, Identity, Label, MetricDef, Owner, ProcessId, ProfileId, Scope, otlp_keys as k};
use gpuscope_core::exposition::LabelValue;
use gpuscope_core::{DriverInfo, NicKind, NodeSnapshot};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, metric, number_data_point};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The result of decoding one request.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Snapshots, oldest first per node.
    pub snapshots: Vec<NodeSnapshot>,
    /// Points that could not be used.
    pub rejected: i64,
    /// Why, for the first rejected points.
    pub reasons: Vec<String>,
    /// What the limits refused, by [`Limit`].
    pub limited: [u64; Limit::ALL.len()],
}

/// A limit on what one push can make the collector hold (the `reason` label of
/// `gpuscope_collector_limited_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// An attribute value longer than [`MAX_ATTRIBUTE_BYTES`], ignored (a point it identifies is rejected).
    AttributeTooLong,
    /// A sample timestamped further ahead of the receive time than the allowed clock skew: dropped.
    FutureTimestamp,
    /// A resource whose host name is not a host name (too long, control characters): its points are dropped.
    InvalidHostName,
    /// GPUs of a sample beyond the per-node limit (the highest indexes): dropped.
    TooManyGpus,
    /// Node labels beyond [`MAX_NODE_LABELS`]: dropped.
    TooManyLabels,
    /// A sample of a new node while the collector already knows its maximum of nodes: dropped.
    TooManyNodes,
    /// GPU processes of a sample beyond the per-node limit: dropped.
    TooManyProcesses,
}

impl Limit {
    /// Every limit, in label order.
    pub const ALL: [Limit; 7] = [
        Limit::AttributeTooLong,
        Limit::FutureTimestamp,
        Limit::InvalidHostName,
        Limit::TooManyGpus,
        Limit::TooManyLabels,
        Limit::TooManyNodes,
        Limit::TooManyProcesses,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            Limit::AttributeTooLong => "attribute_too_long",
            Limit::FutureTimestamp => "future_timestamp",
            Limit::InvalidHostName => "invalid_host_name",
            Limit::TooManyGpus => "too_many_gpus",
            Limit::TooManyLabels => "too_many_labels",
            Limit::TooManyNodes => "too_many_nodes",
            Limit::TooManyProcesses => "too_many_processes",
        }
    }
}

/// Longest attribute value used, bytes: names, identifiers, labels (a Kubernetes label value is at
/// most 63 characters, a pod name 253; a megabyte-long one is an attack, not a name).
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;
/// Longest host name, bytes (DNS allows 253).
pub const MAX_HOST_NAME_BYTES: usize = 253;
/// Node labels (`gpuscope.label.*` resource attributes) kept per node.
pub const MAX_NODE_LABELS: usize = 64;

/// What a push may carry, and the receive time its timestamps are judged against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The receive time, ms since the epoch.
    pub now_ms: u64,
    /// How far ahead of `now_ms` a sample may be timestamped (clock skew), ms.
    pub max_future_ms: u64,
    /// GPUs kept per sample.
    pub max_gpus: usize,
    /// GPU processes kept per sample.
    pub max_processes: usize,
}

impl Limits {
    /// No limit but the fixed ones on attribute sizes (tests and benchmarks).
    pub const NONE: Limits =
        Limits { now_ms: 0, max_future_ms: u64::MAX, max_gpus: usize::MAX, max_processes: usize::MAX };
}

thread_local! {
    /// Attribute values found too long by the decode running on this thread.
    static TOO_LONG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    let v = attrs.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()).and_then(|v| v.value.as_ref())?;
    if let any_value::Value::StringValue(s) = v
        && s.len() > MAX_ATTRIBUTE_BYTES
    {
        TOO_LONG.with(|n| n.set(n.get() + 1));
        return None;
    }
    Some(v)
}

/// Whether `name` can be a node's name: a host name's length, no control characters (a name
/// goes into log lines and terminals).
fn valid_host_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_HOST_NAME_BYTES && !name.chars().any(char::is_control)
}

/// A string attribute (numbers and booleans as text), borrowed when it is a string: most points
/// repeat identifying strings the snapshot already holds, so they are compared, not copied.
fn str_attr_cow<'a>(attrs: &'a [KeyValue], key: &str) -> Option<Cow<'a, str>> {
    Some(match attr(attrs, key)? {
        any_value::Value::StringValue(s) => Cow::Borrowed(s.as_str()),
        any_value::Value::IntValue(i) => Cow::Owned(i.to_string()),
        any_value::Value::DoubleValue(d) => Cow::Owned(d.to_string()),
        any_value::Value::BoolValue(b) => Cow::Owned(b.to_string()),
        _ => return None,
    })
}

fn str_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    str_attr_cow(attrs, key).map(Cow::into_owned)
}

fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        any_value::Value::StringValue(s) => s.parse().ok(),
        _ => None,
    }
}

fn value(p: &NumberDataPoint) -> Option<f64> {
    match p.value? {
        number_data_point::Value::AsDouble(d) => Some(d),
        number_data_point::Value::AsInt(i) => Some(i as f64),
    }
}

fn index(attrs: &[KeyValue], key: &str) -> Option<u32> {
    u32::try_from(int_attr(attrs, key)?).ok()
}

/// The GPU a point names; its identity (serial, PCI bus id, compute capability) is read from the
/// points of the row that carries it.
fn gpu_id<'a>(attrs: &'a [KeyValue], with_identity: bool) -> Option<GpuId<'a>> {
    let mut g = GpuId {
        index: index(attrs, k::GPU_INDEX)?,
        uuid: str_attr_cow(attrs, k::HW_ID),
        model: str_attr_cow(attrs, k::HW_MODEL),
        ..GpuId::default()
    };
    if with_identity {
        g.compute_capability = str_attr_cow(attrs, k::GPU_CC);
        g.serial = str_attr_cow(attrs, k::GPU_SERIAL);
        g.pci_bus_id = str_attr_cow(attrs, k::GPU_PCI);
        g.vbios_version = str_attr_cow(attrs, k::GPU_VBIOS);
        g.cpu_affinity = str_attr_cow(attrs, k::GPU_CPU_AFFINITY);
    }
    Some(g)
}

/// A profiled process a point names: by PID; described from the attributes only when the
/// snapshot does not hold it yet.
fn profile_id<'a>(attrs: &'a [KeyValue], snap: &NodeSnapshot) -> Option<ProfileId<'a>> {
    let pid = index(attrs, k::PID)?;
    if snap.kernel_profiles.iter().any(|p| p.pid == pid) {
        return Some(ProfileId { pid, ..ProfileId::default() });
    }
    Some(ProfileId {
        pid,
        name: str_attr_cow(attrs, k::PROCESS).unwrap_or_default(),
        user: str_attr_cow(attrs, k::OWNER),
        container: str_attr_cow(attrs, k::CONTAINER),
        pod: str_attr_cow(attrs, k::POD),
        namespace: str_attr_cow(attrs, k::NAMESPACE),
        pod_uid: str_attr_cow(attrs, k::POD_UID),
        gpus: Cow::Owned(str_attr_cow(attrs, k::PROCESS_GPUS).map(|g| ProfileId::parse_gpus(&g)).unwrap_or_default()),
    })
}

/// The series a point of `def` names, built from its attributes (borrowed, not copied); `None`
/// when an identifying attribute is missing. `scratch` holds a label that was not sent as text.
/// The series a point names. `snap` is the snapshot it goes into: a process or interface already
/// there keeps the descriptions it was created with, so they are read from the attributes only
/// for a new one (seven more attribute look-ups on every process point were most of the
/// decoder's work on process series).
fn identity<'a>(
    def: &MetricDef,
    attrs: &'a [KeyValue],
    snap: &NodeSnapshot,
    scratch: &'a mut String,
) -> Option<Identity<'a>> {
    let owner = match def.scope() {
        Scope::Gpu => Owner::Gpu(gpu_id(attrs, def.carries_gpu_identity)?),
        Scope::NvLink => {
            let link = index(attrs, k::for_label("link"))?;
            Owner::NvLink { gpu: gpu_id(attrs, false)?, link }
        }
        Scope::Mig => {
            let gpu_instance_id = index(attrs, k::MIG_GPU_INSTANCE)?;
            let profile = str_attr_cow(attrs, k::MIG_PROFILE).unwrap_or_default();
            Owner::Mig { gpu: gpu_id(attrs, false)?, gpu_instance_id, profile }
        }
        Scope::Process => {
            let (pid, gpu_index) = (index(attrs, k::PID)?, index(attrs, k::GPU_INDEX)?);
            let known = snap.processes.iter().any(|p| p.pid == pid && p.gpu_index == gpu_index);
            Owner::Process(if known {
                ProcessId { pid, gpu_index, ..ProcessId::default() }
            } else {
                ProcessId {
                    pid,
                    gpu_index,
                    gpu_uuid: str_attr_cow(attrs, k::HW_ID).unwrap_or_default(),
                    gpu: None,
                    name: str_attr_cow(attrs, k::PROCESS).unwrap_or_default(),
                    user: str_attr_cow(attrs, k::OWNER),
                    container: str_attr_cow(attrs, k::CONTAINER),
                    pod: str_attr_cow(attrs, k::POD),
                    namespace: str_attr_cow(attrs, k::NAMESPACE),
                    pod_uid: str_attr_cow(attrs, k::POD_UID),
                    workload: str_attr_cow(attrs, k::WORKLOAD)
                        .and_then(|w| gpuscope_core::workload::WorkloadClass::parse(&w)),
                    ppid: index(attrs, k::PPID),
                    parent_name: str_attr_cow(attrs, k::PARENT_NAME),
                }
            })
        }
        Scope::Host => Owner::Host,
        Scope::Cpu => Owner::Cpu(index(attrs, k::CPU)?),
        Scope::Nic => {
            let name = str_attr_cow(attrs, k::INTERFACE)?;
            let known = snap.host.as_ref().and_then(|h| h.nics.iter().find(|n| n.name == *name)).map(|n| n.kind);
            let kind = known.unwrap_or_else(|| match str_attr_cow(attrs, k::NIC_KIND).as_deref() {
                Some("infiniband") => NicKind::Infiniband,
                _ => NicKind::Ethernet,
            });
            Owner::Nic { name, kind }
        }
        Scope::Disk => Owner::Disk(str_attr_cow(attrs, k::DEVICE)?),
        Scope::Filesystem => Owner::Fs(str_attr_cow(attrs, k::MOUNTPOINT)?),
        Scope::KernelProfile => Owner::Profile(profile_id(attrs, snap)?),
        Scope::KernelClass => {
            let class = gpuscope_core::catalogue::kernel_class_from_labels(
                &str_attr_cow(attrs, k::KERNEL_KIND)?,
                str_attr_cow(attrs, k::KERNEL_COLLECTIVE).as_deref(),
                &str_attr_cow(attrs, k::KERNEL_PIPE)?,
                &str_attr_cow(attrs, k::KERNEL_PRECISION)?,
            )?;
            Owner::ProfileClass { profile: profile_id(attrs, snap)?, class }
        }
    };
    let label = match def.label() {
        None => None,
        Some(key) => {
            let value = match str_attr_cow(attrs, k::for_label(key))? {
                Cow::Borrowed(v) => v,
                Cow::Owned(v) => {
                    *scratch = v;
                    scratch.as_str()
                }
            };
            Some(Label { key, value: LabelValue::Text(value) })
        }
    };
    Some(Identity { owner, label })
}

/// Decodes a request with no limit but the fixed ones.
pub fn decode(req: &ExportMetricsServiceRequest) -> Decoded {
    decode_with(req, &Limits::NONE)
}

/// Decodes a request received at `limits.now_ms`, keeping within `limits`.
pub fn decode_with(req: &ExportMetricsServiceRequest, limits: &Limits) -> Decoded {
    TOO_LONG.with(|n| n.set(0));
    let mut out = Decoded::default();
    let reject = |out: &mut Decoded, n: usize, why: String| {
        out.rejected += n as i64;
        if out.reasons.len() < 5 {
            out.reasons.push(why);
        }
    };
    for rm in &req.resource_metrics {
        let rattrs = rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
        let Some(hostname) = str_attr(rattrs, k::HOST_NAME).or_else(|| str_attr(rattrs, "service.instance.id")) else {
            let n: usize = rm.scope_metrics.iter().flat_map(|s| &s.metrics).map(point_count).sum();
            reject(&mut out, n, "resource has no host.name".into());
            continue;
        };
        if !valid_host_name(&hostname) {
            let n: usize = rm.scope_metrics.iter().flat_map(|s| &s.metrics).map(point_count).sum();
            out.limited[Limit::InvalidHostName as usize] += 1;
            reject(
                &mut out,
                n,
                format!(
                    "host.name {:?} is not a host name (at most {MAX_HOST_NAME_BYTES} bytes, no control characters)",
                    hostname.chars().take(64).collect::<String>()
                ),
            );
            continue;
        }
        let mut by_time: BTreeMap<u64, NodeSnapshot> = BTreeMap::new();
        let mut points_at: BTreeMap<u64, usize> = BTreeMap::new();
        let mut scratch = String::new();
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            let pts: &[NumberDataPoint] = match &m.data {
                Some(metric::Data::Gauge(g)) => &g.data_points,
                Some(metric::Data::Sum(s)) => &s.data_points,
                _ => {
                    reject(&mut out, point_count(m), format!("{}: only gauges and sums are used", m.name));
                    continue;
                }
            };
            let Some(candidates) = MetricDef::otlp_candidates(&m.name) else {
                reject(&mut out, pts.len(), format!("{}: not a gpuscope signal", m.name));
                continue;
            };
            for p in pts {
                let Some(def) = MetricDef::pick(candidates, |key| match attr(&p.attributes, key) {
                    Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
                    _ => None,
                }) else {
                    reject(&mut out, 1, format!("{}: not a gpuscope signal", m.name));
                    continue;
                };
                let Some(v) = value(p) else {
                    reject(&mut out, 1, format!("{}: point without a value", m.name));
                    continue;
                };
                *points_at.entry(p.time_unix_nano).or_default() += 1;
                let snap = by_time.entry(p.time_unix_nano).or_default();
                let placed = match identity(def, &p.attributes, snap, &mut scratch) {
                    Some(id) => def.set(snap, &id, v),
                    None => false,
                };
                if !placed {
                    reject(&mut out, 1, format!("{}: missing identifying attributes", m.name));
                }
            }
        }
        let mut labels: BTreeMap<String, String> = rattrs
            .iter()
            .filter_map(|a| {
                let key = a.key.strip_prefix(k::LABEL_PREFIX)?;
                Some((key.to_string(), str_attr(rattrs, &a.key)?))
            })
            .collect();
        if labels.len() > MAX_NODE_LABELS {
            out.limited[Limit::TooManyLabels as usize] += (labels.len() - MAX_NODE_LABELS) as u64;
            labels = labels.into_iter().take(MAX_NODE_LABELS).collect();
        }
        for (t, mut snap) in by_time {
            snap.timestamp_ms = t / 1_000_000;
            // One sample from the future would make every later one of its node "out of order".
            if snap.timestamp_ms > limits.now_ms.saturating_add(limits.max_future_ms) {
                out.limited[Limit::FutureTimestamp as usize] += 1;
                let ahead_s = (snap.timestamp_ms - limits.now_ms) as f64 / 1000.0;
                reject(
                    &mut out,
                    points_at.get(&t).copied().unwrap_or(0),
                    format!(
                        "sample timestamped {ahead_s:.0} s ahead of the collector's clock (more than the allowed skew)"
                    ),
                );
                continue;
            }
            if snap.gpus.len() > limits.max_gpus {
                out.limited[Limit::TooManyGpus as usize] += (snap.gpus.len() - limits.max_gpus) as u64;
                snap.gpus.sort_by_key(|g| g.index);
                snap.gpus.truncate(limits.max_gpus);
            }
            if snap.processes.len() > limits.max_processes {
                out.limited[Limit::TooManyProcesses as usize] += (snap.processes.len() - limits.max_processes) as u64;
                snap.processes.truncate(limits.max_processes);
            }
            // Kernel profiles are processes too, and held to the same bound.
            if snap.kernel_profiles.len() > limits.max_processes {
                let over = snap.kernel_profiles.len() - limits.max_processes;
                out.limited[Limit::TooManyProcesses as usize] += over as u64;
                snap.kernel_profiles.truncate(limits.max_processes);
            }
            snap.node.hostname = hostname.clone();
            snap.node.machine_id = str_attr(rattrs, k::HOST_ID);
            snap.node.job = str_attr(rattrs, k::JOB);
            snap.node.labels = labels.clone();
            snap.driver =
                str_attr(rattrs, k::DRIVER).map(|v| DriverInfo { driver_version: v, ..DriverInfo::default() });
            snap.agent.driver_up = snap.driver.is_some();
            snap.gpus.sort_by_key(|g| g.index);
            out.snapshots.push(snap);
        }
    }
    out.limited[Limit::AttributeTooLong as usize] += TOO_LONG.with(|n| n.take());
    out
}

fn point_count(m: &opentelemetry_proto::tonic::metrics::v1::Metric) -> usize {
    match &m.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, ResourceMetrics, ScopeMetrics, Sum};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..KeyValue::default() }
    }

    fn point(attributes: Vec<KeyValue>, v: f64) -> NumberDataPoint {
        NumberDataPoint {
            attributes,
            time_unix_nano: 1_000_000,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..NumberDataPoint::default()
        }
    }

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv(k::HOST_NAME, any_value::Value::StringValue("n".into()))],
                    ..Resource::default()
                }),
                scope_metrics: vec![ScopeMetrics { metrics, ..ScopeMetrics::default() }],
                ..ResourceMetrics::default()
            }],
        }
    }

    #[test]
    fn labels_sent_as_numbers_and_missing_identities() {
        let gpu = || kv(k::GPU_INDEX, any_value::Value::IntValue(2));
        let xid = Metric {
            name: "gpuscope.gpu.xid.errors".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![
                    // The code as a number rather than text still names the series.
                    point(vec![gpu(), kv(k::for_label("xid"), any_value::Value::IntValue(79))], 3.0),
                    point(vec![gpu(), kv(k::for_label("xid"), any_value::Value::StringValue("48".into()))], 1.0),
                    // No code: not placed.
                    point(vec![gpu()], 1.0),
                ],
                ..Sum::default()
            })),
            ..Metric::default()
        };
        let power = Metric {
            name: "hw.power".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![
                    point(vec![gpu(), kv(k::HW_ID, any_value::Value::StringValue("GPU-2".into()))], 250.0),
                    // No GPU index: not placed.
                    point(vec![kv(k::HW_ID, any_value::Value::StringValue("GPU-2".into()))], 1.0),
                ],
            })),
            ..Metric::default()
        };
        let d = decode(&request(vec![xid, power]));
        assert_eq!(d.rejected, 2, "{:?}", d.reasons);
        assert!(d.reasons.iter().all(|r| r.contains("missing identifying attributes")), "{:?}", d.reasons);
        let g = &d.snapshots[0].gpus;
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].index, g[0].uuid.as_str(), g[0].power_watts), (2, "GPU-2", Some(250.0)));
        assert_eq!(g[0].xid_counts, [(48, 1), (79, 3)].into());
    }

    #[test]
    fn kernel_profiles_are_held_to_the_process_bound() {
        use gpuscope_core::KernelProfile;
        let snap = NodeSnapshot {
            node: gpuscope_core::NodeInfo { hostname: "n1".into(), ..Default::default() },
            timestamp_ms: 1,
            kernel_profiles: (1..=3)
                .map(|pid| KernelProfile { pid, gpus: vec![0, 1], windows_total: 1, ..KernelProfile::default() })
                .collect(),
            ..NodeSnapshot::default()
        };
        let id = gpuscope_exporters::otlp::Identity { instance: "n1".into(), start_unix_nano: 1 };
        let req = gpuscope_exporters::otlp::encode(&[&snap], &id);
        let d = decode_with(&req, &Limits { max_processes: 2, ..Limits::NONE });
        let profiles = &d.snapshots[0].kernel_profiles;
        assert_eq!(profiles.iter().map(|p| p.pid).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(profiles[0].gpus, [0, 1], "the gpus attribute parses back");
        assert_eq!(d.limited[Limit::TooManyProcesses as usize], 1);
    }
}
