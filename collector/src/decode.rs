//! `ExportMetricsServiceRequest` → node snapshots, through the catalogue. One snapshot per
//! (resource host, point timestamp). Points of metrics the catalogue does not know (any other
//! OTLP exporter's) are counted as rejected: the request still succeeds, partially.

use gpuscope_core::catalogue::{Accessor, MetricDef, otlp_keys as k};
use gpuscope_core::{
    CpuSample, DiskSample, DriverInfo, GpuSample, HostSample, NicKind, NicSample, NodeSnapshot, NvLinkSample,
    ProcessSample,
};
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
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()).and_then(|v| v.value.as_ref())
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

/// Sets `field` to the attribute's value unless it already holds it (no allocation then).
fn update(field: &mut String, attrs: &[KeyValue], key: &str) {
    if let Some(v) = str_attr_cow(attrs, key)
        && *field != *v
    {
        *field = v.into_owned();
    }
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

/// The element `is` picks, appended from `new` when absent; `hint` is where it usually sits
/// (GPUs and CPUs at the position of their index), tried before the scan.
fn find_or_push<T>(v: &mut Vec<T>, hint: usize, is: impl Fn(&T) -> bool, new: impl FnOnce() -> T) -> &mut T {
    let pos = match v.get(hint).filter(|x| is(x)).map(|_| hint).or_else(|| v.iter().position(&is)) {
        Some(p) => p,
        None => {
            v.push(new());
            v.len() - 1
        }
    };
    &mut v[pos]
}

fn gpu<'a>(snap: &'a mut NodeSnapshot, attrs: &[KeyValue]) -> Option<&'a mut GpuSample> {
    let index = u32::try_from(int_attr(attrs, k::GPU_INDEX)?).ok()?;
    let g = find_or_push(
        &mut snap.gpus,
        index as usize,
        |g| g.index == index,
        || GpuSample { index, ..GpuSample::default() },
    );
    update(&mut g.uuid, attrs, k::HW_ID);
    update(&mut g.model, attrs, k::HW_MODEL);
    Some(g)
}

fn host(snap: &mut NodeSnapshot) -> &mut HostSample {
    snap.host.get_or_insert_with(HostSample::default)
}

/// Applies one point to its snapshot; false when it cannot be placed.
fn apply(m: &MetricDef, snap: &mut NodeSnapshot, attrs: &[KeyValue], v: f64) -> bool {
    match m.accessor {
        Accessor::Gpu(_, set) => {
            let Some(g) = gpu(snap, attrs) else { return false };
            if m.prometheus == "gpuscope_gpu_up" {
                g.compute_capability = str_attr(attrs, k::GPU_CC).or(g.compute_capability.take());
                g.serial = str_attr(attrs, k::GPU_SERIAL).or(g.serial.take());
                g.pci_bus_id = str_attr(attrs, k::GPU_PCI).or(g.pci_bus_id.take());
            }
            set(g, v);
        }
        Accessor::GpuLabelled(_, set) => {
            let Some(label) = str_attr_cow(attrs, k::for_label(m.label.unwrap_or(""))) else { return false };
            let Some(g) = gpu(snap, attrs) else { return false };
            set(g, &label, v);
        }
        Accessor::NvLink(_, set) => {
            let Some(link) = int_attr(attrs, k::for_label("link")).and_then(|l| u32::try_from(l).ok()) else {
                return false;
            };
            let Some(g) = gpu(snap, attrs) else { return false };
            set(
                find_or_push(
                    &mut g.nvlinks,
                    0,
                    |l| l.link == link,
                    || NvLinkSample { link, ..NvLinkSample::default() },
                ),
                v,
            );
        }
        Accessor::Process(_, set) => {
            let (Some(pid), Some(gi)) = (int_attr(attrs, k::PID), int_attr(attrs, k::GPU_INDEX)) else { return false };
            let (Ok(pid), Ok(gi)) = (u32::try_from(pid), u32::try_from(gi)) else { return false };
            let p = find_or_push(
                &mut snap.processes,
                0,
                |p| p.pid == pid && p.gpu_index == gi,
                || ProcessSample {
                    pid,
                    gpu_index: gi,
                    gpu_uuid: str_attr(attrs, k::HW_ID).unwrap_or_default(),
                    name: str_attr(attrs, k::PROCESS).unwrap_or_default(),
                    user: str_attr(attrs, k::OWNER),
                    container: str_attr(attrs, k::CONTAINER),
                    pod: str_attr(attrs, k::POD),
                    namespace: str_attr(attrs, k::NAMESPACE),
                    pod_uid: str_attr(attrs, k::POD_UID),
                    ..ProcessSample::default()
                },
            );
            set(p, v);
        }
        Accessor::Host(_, set) => set(host(snap), v),
        Accessor::Cpu(_, set) => {
            let Some(cpu) = int_attr(attrs, k::CPU).and_then(|c| u32::try_from(c).ok()) else { return false };
            let c = find_or_push(
                &mut host(snap).cpus,
                cpu as usize,
                |c| c.cpu == cpu,
                || CpuSample { cpu, ..CpuSample::default() },
            );
            set(c, v);
        }
        Accessor::Nic(_, set) => {
            let Some(name) = str_attr_cow(attrs, k::INTERFACE) else { return false };
            let nic = find_or_push(
                &mut host(snap).nics,
                0,
                |n| n.name == name,
                || {
                    let kind = if str_attr_cow(attrs, k::NIC_KIND).as_deref() == Some("infiniband") {
                        NicKind::Infiniband
                    } else {
                        NicKind::Ethernet
                    };
                    NicSample { name: name.to_string(), kind, ..NicSample::default() }
                },
            );
            set(nic, v);
        }
        Accessor::Disk(_, set) => {
            let Some(name) = str_attr_cow(attrs, k::DEVICE) else { return false };
            let d = find_or_push(
                &mut host(snap).disks,
                0,
                |d| d.name == name,
                || DiskSample { name: name.to_string(), ..DiskSample::default() },
            );
            set(d, v);
        }
    }
    true
}

/// Decodes a request.
pub fn decode(req: &ExportMetricsServiceRequest) -> Decoded {
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
        let mut by_time: BTreeMap<u64, NodeSnapshot> = BTreeMap::new();
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
                let snap = by_time.entry(p.time_unix_nano).or_default();
                if !apply(def, snap, &p.attributes, v) {
                    reject(&mut out, 1, format!("{}: missing identifying attributes", m.name));
                }
            }
        }
        let labels: BTreeMap<String, String> = rattrs
            .iter()
            .filter_map(|a| {
                let key = a.key.strip_prefix(k::LABEL_PREFIX)?;
                Some((key.to_string(), str_attr(rattrs, &a.key)?))
            })
            .collect();
        for (t, mut snap) in by_time {
            snap.timestamp_ms = t / 1_000_000;
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
