//! The four dashboards (fleet, node, job, findings) and Grafana's provisioning files.
//!
//! Label vocabulary: the agent's series are told apart by Prometheus's `instance` (one agent per
//! node); `gpuscope_node_info` joins an instance to its host name (`node`) and its job
//! (`gpuscope_job`), the labels the collector's findings carry. The `host` variable lists host
//! names and the hidden `node` variable the instances behind them.

use super::m;
use super::panels::{Layout, Panel, Target, Thresholds, datasource, unit_of};
use gpuscope_analysis::RULES;
use gpuscope_core::{CATALOGUE, Group, MetricDef, Scope};
use serde_json::{Value, json};

/// Every dashboard: (path under `dashboards/`, JSON model).
pub fn dashboards() -> Vec<(&'static str, Value)> {
    vec![
        ("grafana/gpuscope-fleet.json", fleet()),
        ("grafana/gpuscope-node.json", node()),
        ("grafana/gpuscope-job.json", job()),
        ("grafana/gpuscope-findings.json", findings()),
    ]
}

/// The dashboard model around `panels`.
fn dashboard(uid: &str, title: &str, description: &str, variables: Vec<Value>, panels: Vec<Value>) -> Value {
    let links: Vec<Value> = [
        ("Fleet", "gpuscope-fleet"),
        ("Node", "gpuscope-node"),
        ("Job", "gpuscope-job"),
        ("Findings", "gpuscope-findings"),
    ]
    .iter()
    .filter(|(_, u)| *u != uid)
    .map(|(t, u)| {
        json!({
            "title": format!("gpuscope / {t}"),
            "type": "link",
            "url": format!("/d/{u}"),
            "keepTime": true,
            "includeVars": false,
            "icon": "dashboard",
            "asDropdown": false,
            "targetBlank": false,
            "tags": [],
            "tooltip": ""
        })
    })
    .collect();
    json!({
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["gpuscope", "gpu"],
        "editable": true,
        "graphTooltip": 1,
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": { "from": "now-3h", "to": "now" },
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": false,
        "weekStart": "",
        "links": links,
        "annotations": { "list": [{
            "builtIn": 1,
            "datasource": { "type": "grafana", "uid": "-- Grafana --" },
            "enable": true,
            "hide": true,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard"
        }] },
        "templating": { "list": variables },
        "panels": panels,
    })
}

fn datasource_variable() -> Value {
    json!({
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "hide": 0,
        "includeAll": false,
        "multi": false,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": false
    })
}

/// A query variable over `label_values(expr, label)`. `all` is the regex "All" stands for
/// (`None`: the list of every value, which a hidden variable chained to another one needs).
fn query_variable(name: &str, label: &str, expr: &str, of: &str, all: Option<&str>, hidden: bool) -> Value {
    let q = format!("label_values({expr}, {of})");
    let mut v = json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "query": { "query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1 },
        // "All" selected until the user picks.
        "current": { "selected": true, "text": ["All"], "value": ["$__all"] },
        "hide": if hidden { 2 } else { 0 },
        "includeAll": true,
        "multi": true,
        "options": [],
        "refresh": 2,
        "regex": "",
        "sort": 3,
        "skipUrlSync": false
    });
    if let Some(a) = all {
        v["allValue"] = json!(a);
    }
    v
}

/// The `host` picker and the hidden `node` (the instances of the picked hosts).
fn node_variables() -> Vec<Value> {
    vec![
        query_variable("host", "Node", "gpuscope_node_info", "node", None, false),
        query_variable("node", "Instance", "gpuscope_node_info{node=~\"$host\"}", "instance", None, true),
    ]
}

fn gpu_variable() -> Value {
    query_variable("gpu", "GPU", &format!("{}{{instance=~\"$node\"}}", m("gpuscope_gpu_up")), "gpu", Some(".+"), false)
}

fn namespace_variable(scope: &str) -> Value {
    // Processes outside Kubernetes carry no namespace: "All" must match them too.
    query_variable(
        "namespace",
        "Namespace",
        &format!("{}{{{scope}}}", m("gpuscope_process_gpu_memory_bytes")),
        "namespace",
        Some(".*"),
        false,
    )
}

/// What a group's panels mean and what to do when they look wrong.
fn group_advice(g: Group) -> &'static str {
    match g {
        Group::State => {
            "Whether each GPU answers and how it is set up. A GPU that stops answering (up = 0) has fallen off the bus: drain the node and reboot it; if it happens again the card or its slot is failing. Persistence mode should be on for servers (it avoids driver re-initialisation on every job)."
        }
        Group::Utilization => {
            "NVML's coarse utilization: the fraction of time any kernel ran. High utilization says nothing about how much of the GPU the kernels use; compare with SM activity (Profiling row). A GPU held by a job at near-zero utilization is reserved but idle."
        }
        Group::Profiling => {
            "Profiling ratios (GPM on Hopper and newer; absent, not zero, on older GPUs). SM activity of 0.8 or more is necessary but not sufficient for good use; below 0.5 the GPU is mostly waiting. Tensor activity near zero while FP32 is busy means matrix math runs without tensor cores (enable mixed precision); DRAM activity near 0.8 means memory-bandwidth bound (fuse kernels, use flash attention)."
        }
        Group::Memory => {
            "Framebuffer memory. Near the total and growing means an out-of-memory crash is coming (activation checkpointing, smaller micro-batches); an inference server that pre-allocates its pool sits flat near the top on purpose. Training that uses less than half leaves room for a larger batch."
        }
        Group::Thermal => {
            "Temperatures against the GPU's own slowdown threshold. Within 5 C of slowdown the clocks drop: check airflow, fans, inlet temperature and the data-centre cooling."
        }
        Group::Power => {
            "Power draw against the limit in force, and energy. Held at the limit with lowered SM clocks means power bound; a limit below the default was lowered by someone, restore it unless intended."
        }
        Group::Clocks => {
            "Clocks and the reasons that hold them down (1 = active). sw_power_cap: power bound; sw/hw_thermal_slowdown: too hot; hw_slowdown or hw_power_brake_slowdown: the board or an external power brake cut the clocks hard (check PSU/PDU and cooling, drain if it persists); applications_clocks_setting: application clocks cap the GPU (reset them)."
        }
        Group::Pcie => {
            "PCIe throughput, link state and replays. A link below its maximum generation or width under load trained down (reseat, check riser, BIOS, ASPM). Replays rising by more than 8 a minute is a signal-integrity problem. Host-to-device traffic near the link's bandwidth with idle SMs: pin host memory and keep data on the GPU."
        }
        Group::NvLink => {
            "NVLink throughput, links down and error counters. Any replay or recovery error, rising CRC errors or a link down is an NVLink fault: check link state and Fabric Manager, run a field diagnostic if it persists. High NVLink traffic with idle SMs is communication bound (overlap communication with compute)."
        }
        Group::Health => {
            "ECC, retired pages, row remapping and XID errors. Uncorrectable ECC errors or a failed row remapping: drain the node, reset the GPU and run diagnostics. A pending remap or page retirement applies at the next reset. XIDs: application codes (13, 31, 43, ...) point to the job; reset, NVLink and memory codes to the hardware; XID 79 means the GPU fell off the bus."
        }
        Group::Process => {
            "GPU processes by container and pod: memory held, SM and memory-bandwidth share, host CPU and resident memory. A process that holds GPU memory at near-zero SM share keeps a GPU reserved but idle (a hung job or an open notebook)."
        }
        Group::HostCpu => {
            "Host CPU. Cores saturated while the GPUs wait means the input pipeline cannot keep up (more DataLoader workers, decode on the GPU); one core at 100 % with the others idle is a single-threaded training loop; I/O wait above 10 % means storage is too slow."
        }
        Group::HostMemory => {
            "Host memory. Little available memory slows data loading (page cache) and risks the kernel's OOM killer; pinned-memory buffers count here too."
        }
        Group::Network => {
            "Network interfaces, Ethernet and InfiniBand. InfiniBand near its link speed with idle SMs is communication bound; a multi-node job with InfiniBand present but idle while Ethernet carries gigabytes per second means NCCL fell back to TCP (check NCCL_IB_HCA and /dev/infiniband in the container). Errors and drops should stay at zero."
        }
        Group::Kernel => {
            "Kernel-level profiles of CUDA processes that load gpuscope's CUPTI injection library (CUDA_INJECTION64_PATH), from short profiling windows: kernel time by class (kind, tensor or SIMT pipe, precision), launch rate, median kernel duration, pageable copies, synchronization time and idle gaps between kernels. Much FP32 SIMT GEMM time means matrix math without tensor cores (enable TF32 or mixed precision); a median kernel under 10 us at a high launch rate is launch bound (CUDA graphs, torch.compile); async pageable copies are silently synchronous (pin host memory); long GPU gaps mean the host stalls between kernels."
        }
        Group::Disk => {
            "Block devices. A device near its maximum read rate or busy more than 90 % of the time while the GPUs wait means storage cannot feed the job: stage data on local NVMe, use large sequential record formats, raise prefetch."
        }
    }
}

/// Colours for a catalogue row's panel where a level is worth flagging.
fn thresholds_for(d: &MetricDef) -> Thresholds {
    match d.prometheus {
        "gpuscope_gpu_up" | "gpuscope_gpu_nvlink_up" => Thresholds::below(1.0, 1.0),
        "gpuscope_gpu_sm_active_ratio" | "gpuscope_gpu_graphics_active_ratio" => Thresholds::below(0.5, 0.8),
        "gpuscope_gpu_dram_active_ratio" => Thresholds::above(0.6, 0.8),
        "gpuscope_gpu_temperature_celsius" => Thresholds::above(80.0, 87.0),
        "gpuscope_gpu_memory_temperature_celsius" => Thresholds::above(85.0, 95.0),
        "gpuscope_host_cpu_busy_ratio" | "gpuscope_host_cpu_core_busy_ratio" => Thresholds::above(0.8, 0.9),
        "gpuscope_host_cpu_iowait_ratio" | "gpuscope_host_cpu_core_iowait_ratio" => Thresholds::above(0.05, 0.1),
        "gpuscope_host_disk_busy_ratio" | "gpuscope_host_disk_busy_seconds_total" => Thresholds::above(0.8, 0.9),
        "gpuscope_gpu_clock_event_active" | "gpuscope_gpu_row_remap_pending" | "gpuscope_gpu_retired_pages_pending" => {
            Thresholds::any()
        }
        "gpuscope_gpu_retired_pages" => Thresholds::above(30.0, 60.0),
        _ if d.group == Group::Health || d.prometheus.contains("errors") || d.prometheus.contains("dropped") => {
            Thresholds::any()
        }
        _ => Thresholds::none(),
    }
}

/// The panel of one catalogue row on the node dashboard: the query follows from the row's
/// scope (GPU, link, process, host, core, interface, device) and kind (a counter's rate).
fn catalogue_panel(d: &'static MetricDef) -> Panel {
    let (unit, rate) = unit_of(d);
    let sel = match d.scope() {
        Scope::Gpu | Scope::NvLink | Scope::Mig | Scope::Process => "{instance=~\"$node\", gpu=~\"$gpu\"}".to_string(),
        _ => "{instance=~\"$node\"}".to_string(),
    };
    let sel = if matches!(d.scope(), Scope::Process | Scope::KernelProfile | Scope::KernelClass) {
        sel.replace('}', ", namespace=~\"$namespace\"}")
    } else {
        sel
    };
    let series =
        if rate { format!("rate({}{sel}[$__rate_interval])", d.prometheus) } else { format!("{}{sel}", d.prometheus) };
    let (expr, legend) = match d.scope() {
        Scope::Gpu => match d.label() {
            Some(l) => (series, format!("{{{{host}}}} GPU {{{{gpu}}}} {{{{{l}}}}}")),
            None => (series, "{{host}} GPU {{gpu}}".to_string()),
        },
        // Per link is 18 series per GPU: the GPU's sum (links down: the count of 0s).
        Scope::NvLink if d.prometheus == "gpuscope_gpu_nvlink_up" => {
            (format!("sum without (link) (1 - {series})"), "{{host}} GPU {{gpu}} links down".to_string())
        }
        Scope::NvLink => (format!("sum without (link) ({series})"), "{{host}} GPU {{gpu}}".to_string()),
        Scope::Mig => (series, "{{host}} GPU {{gpu}} MIG {{gpu_instance_profile}} ({{gpu_instance_id}})".to_string()),
        Scope::Process => (series, "{{host}} GPU {{gpu}} {{namespace}}/{{pod}} {{process}} ({{pid}})".to_string()),
        Scope::Host => (series, "{{host}}".to_string()),
        // One series per core is hundreds of lines: the busiest core and the mean.
        Scope::Cpu => (format!("max without (cpu) ({series})"), "{{host}} busiest core".to_string()),
        Scope::Nic => (series, "{{host}} {{interface}} ({{kind}})".to_string()),
        Scope::Disk => (series, "{{host}} {{device}}".to_string()),
        Scope::Filesystem => (series, "{{host}} {{mountpoint}}".to_string()),
        Scope::KernelProfile => (series, "{{host}} {{namespace}}/{{pod}} {{process}} ({{pid}})".to_string()),
        Scope::KernelClass => (
            format!("sum without (collective) ({series})"),
            "{{host}} {{process}} ({{pid}}) {{kind}} {{pipe}} {{precision}}".to_string(),
        ),
    };
    // Legends name the host: join the instance to its host name.
    let expr = format!("{expr} * on (instance) group_left (host) {HOST}");
    let mut title = d.help.trim_end_matches('.').to_string();
    if rate {
        title.push_str(" (rate)");
    }
    let description =
        format!("`{}`{}: {} {}", d.prometheus, if rate { ", per second" } else { "" }, d.help, group_advice(d.group));
    let unit = if d.scope() == Scope::Process && rate { "short" } else { unit };
    let mut p = Panel::new("timeseries", title, description).unit(unit).thresholds(thresholds_for(d));
    if d.unit == gpuscope_core::Unit::State && d.prometheus != "gpuscope_gpu_xid_last" && d.scope() != Scope::NvLink {
        p = p.states("no", "yes");
    }
    p = p.target(Target::range(expr, legend));
    if d.scope() == Scope::Cpu {
        let mean = format!(
            "avg without (cpu) ({}{{instance=~\"$node\"}}) * on (instance) group_left (host) {HOST}",
            d.prometheus
        );
        p = p.target(Target::range(mean, "{{host}} mean of cores"));
    }
    p
}

/// Catalogue rows no agent fills yet, left off the node dashboard so that it shows no dead panel:
/// fan speed (the NVML sampler does not read it; datacenter GPUs are passively cooled and report
/// NOT_SUPPORTED, and the simulator models no fans).
const NOT_SAMPLED: &[&str] = &["gpuscope_gpu_fan_speed_ratio"];

/// `gpuscope_node_info` with its `node` label copied to `host`, for legends and joins.
const HOST: &str = "label_replace(gpuscope_node_info, \"host\", \"$1\", \"node\", \"(.*)\")";

fn node() -> Value {
    let mut l = Layout::new();
    l.row("Overview");
    l.add(
        Panel::new(
            "table",
            "GPUs",
            "Identity of every GPU on the selected nodes: model, serial, PCI bus id, compute capability and driver. Use the UUID and serial when opening a case with the vendor.",
        )
        .size(24, 7)
        .target(Target::instant(
            // Not a catalogue row: the exporter writes the identity series itself.
            format!("gpuscope_gpu_info{{instance=~\"$node\", gpu=~\"$gpu\"}} * on (instance) group_left (host) {HOST}"),
            "",
        )),
    );
    l.add(
        Panel::new(
            "table",
            "Active findings on these nodes",
            "What the gpuscope collector found wrong on the selected nodes right now, with the advice. Empty is good. See the Findings dashboard for history.",
        )
        .size(24, 6)
        .target(Target::instant(
            "gpuscope_finding_active{node=~\"$host\"} * on (rule) group_left (title, advice) gpuscope:rule_advice:info",
            "",
        )),
    );
    for g in Group::ALL {
        l.row(g.title());
        for d in CATALOGUE.iter().filter(|d| d.group == *g && !NOT_SAMPLED.contains(&d.prometheus)) {
            l.add(catalogue_panel(d));
        }
        if *g == Group::Network {
            l.add(
                Panel::new(
                    "timeseries",
                    "InfiniBand receive and transmit",
                    format!(
                        "InfiniBand ports only (`kind=\"infiniband\"`), against their link speed. {}",
                        group_advice(Group::Network)
                    ),
                )
                .unit("Bps")
                .target(Target::range(
                    format!(
                        "{}{{instance=~\"$node\", kind=\"infiniband\"}} * on (instance) group_left (host) {HOST}",
                        m("gpuscope_host_network_receive_bytes_per_second")
                    ),
                    "{{host}} {{interface}} receive",
                ))
                .target(Target::range(
                    format!(
                        "{}{{instance=~\"$node\", kind=\"infiniband\"}} * on (instance) group_left (host) {HOST}",
                        m("gpuscope_host_network_transmit_bytes_per_second")
                    ),
                    "{{host}} {{interface}} transmit",
                ))
                .target(Target::range(
                    format!(
                        "{}{{instance=~\"$node\", kind=\"infiniband\"}} * on (instance) group_left (host) {HOST}",
                        m("gpuscope_host_network_speed_bytes_per_second")
                    ),
                    "{{host}} {{interface}} link speed",
                )),
            );
        }
        if *g == Group::Process {
            l.add(
                Panel::new(
                    "bargauge",
                    "GPU memory by pod",
                    format!("GPU memory held per Kubernetes namespace and pod (processes outside Kubernetes under an empty name). {}", group_advice(Group::Process)),
                )
                .unit("bytes")
                .target(Target::instant(
                    format!("sum by (namespace, pod) ({}{{instance=~\"$node\", namespace=~\"$namespace\"}})", m("gpuscope_process_gpu_memory_bytes")),
                    "{{namespace}}/{{pod}}",
                )),
            );
            l.add(
                Panel::new(
                    "bargauge",
                    "SM share by container",
                    format!(
                        "Share of the GPUs' SM time used per container, summed over its GPUs. {}",
                        group_advice(Group::Process)
                    ),
                )
                .unit("percentunit")
                .target(Target::instant(
                    format!(
                        "sum by (container, pod) ({}{{instance=~\"$node\", namespace=~\"$namespace\"}})",
                        m("gpuscope_process_sm_utilization_ratio")
                    ),
                    "{{pod}} {{container}}",
                )),
            );
        }
    }
    let mut vars = vec![datasource_variable()];
    vars.extend(node_variables());
    vars.push(gpu_variable());
    vars.push(namespace_variable("instance=~\"$node\""));
    dashboard(
        "gpuscope-node",
        "gpuscope / Node",
        "Every signal gpuscope samples on the selected nodes, one row per group of the metric catalogue: GPU utilization, profiling ratios, memory, thermals, power, clocks and their reasons, PCIe, NVLink, errors, processes by pod, host CPU, memory, network, InfiniBand and NVMe.",
        vars,
        l.into_panels(),
    )
}

fn fleet() -> Value {
    let mut l = Layout::new();
    let sel = "{instance=~\"$node\"}";
    l.row("GPUs by state");
    let state = |title: &str, expr: String, what: &str, t: Thresholds| {
        Panel::new("stat", title, what).size(6, 5).thresholds(t).target(Target::instant(expr, ""))
    };
    l.add(state(
        "Busy",
        format!("sum(gpuscope:gpu_allocated:bool{sel} * gpuscope:gpu_active:bool{sel})"),
        "GPUs held by a process and active (SM activity, or utilization without profiling, of 5 % or more).",
        Thresholds::none(),
    ));
    l.add(state(
        "Idle but allocated",
        format!("sum(gpuscope:gpu_idle_allocated:bool{sel})"),
        "GPUs held by a process (memory allocated) but doing nothing: reserved capacity wasted. Find the job (Node dashboard, Processes) and release the GPU or find what blocks it; gpu-idle-allocated findings name them after 10 minutes.",
        Thresholds::above(1.0, 4.0),
    ));
    l.add(state(
        "Free",
        format!("sum((1 - gpuscope:gpu_allocated:bool{sel}) * (1 - gpuscope:gpu_lost:bool{sel}))"),
        "GPUs that answer and that no process holds: capacity the scheduler can hand out.",
        Thresholds::none(),
    ));
    l.add(state(
        "Unhealthy (lost)",
        format!("sum(gpuscope:gpu_lost:bool{sel})"),
        "GPUs that stopped answering (fallen off the bus). Drain the node and reboot it; a repeat means the card or its slot is failing.",
        Thresholds::any(),
    ));
    l.row("Activity");
    l.add(
        Panel::new(
            "timeseries",
            "Fleet SM activity vs utilization",
            "Mean over the fleet's GPUs. Utilization (NVML) counts time any kernel ran; SM activity counts how much of the GPU the kernels occupy. A wide gap (utilization high, SM activity low) means tiny kernels, small batches or waiting in collectives: the findings say which.",
        )
        .unit("percentunit")
        .thresholds(Thresholds::below(0.5, 0.8))
        .target(Target::range(format!("avg({}{sel})", m("gpuscope_gpu_sm_active_ratio")), "SM activity"))
        .target(Target::range(format!("avg({}{sel})", m("gpuscope_gpu_utilization_ratio")), "utilization")),
    );
    l.add(
        Panel::new(
            "timeseries",
            "GPUs by state over time",
            "Busy, idle-but-allocated and free GPUs over time. A growing idle-allocated band is reserved capacity that does no work.",
        )
        .target(Target::range(format!("sum(gpuscope:gpu_allocated:bool{sel} * gpuscope:gpu_active:bool{sel})"), "busy"))
        .target(Target::range(format!("sum(gpuscope:gpu_idle_allocated:bool{sel})"), "idle but allocated"))
        .target(Target::range(format!("sum(1 - gpuscope:gpu_allocated:bool{sel})"), "free")),
    );
    l.add(
        Panel::new(
            "stat",
            "Idle allocated GPU-hours",
            "GPU-hours in the selected time range during which a GPU was held by a process but idle: the cost of hung jobs, open notebooks and jobs waiting on input.",
        )
        .size(6, 6)
        .unit("h")
        .thresholds(Thresholds::above(1.0, 10.0))
        .target(Target::instant(
            format!("sum(avg_over_time(gpuscope:gpu_idle_allocated:bool{sel}[$__range])) * $__range_s / 3600"),
            "",
        )),
    );
    l.add(
        Panel::new(
            "bargauge",
            "Nodes by mean SM activity",
            "Each node's mean SM activity (utilization where profiling is absent), lowest first: the nodes to look at.",
        )
        .size(18, 6)
        .unit("percentunit")
        .thresholds(Thresholds::below(0.5, 0.8))
        .target(Target::instant(format!("sort(gpuscope:node_gpu_activity:avg{sel})"), "{{node}}")),
    );
    l.row("Energy and power");
    l.add(
        Panel::new(
            "timeseries",
            "Fleet power",
            "Total GPU power draw against the sum of the power limits in force. Far below the limits at full load is fine; pinned at them means the fleet is power bound.",
        )
        .unit("watt")
        .target(Target::range(format!("sum({}{sel})", m("gpuscope_gpu_power_watts")), "power"))
        .target(Target::range(format!("sum({}{sel})", m("gpuscope_gpu_power_limit_watts")), "power limits")),
    );
    l.add(
        Panel::new(
            "stat",
            "GPU energy in range",
            "Energy the GPUs consumed in the selected time range (from the driver's energy counter).",
        )
        .size(6, 8)
        .unit("kwatth")
        .target(Target::instant(
            format!("sum(increase({}{sel}[$__range])) / 3.6e6", m("gpuscope_gpu_energy_joules_total")),
            "",
        )),
    );
    l.add(
        Panel::new(
            "stat",
            "Energy per busy GPU-hour",
            "Mean power of a GPU while it is busy: what an hour of useful GPU time costs in energy.",
        )
        .size(6, 8)
        .unit("watt")
        .target(Target::instant(
            format!(
                "sum({p}{sel} * on (instance, gpu) group_left () (gpuscope:gpu_allocated:bool{sel} * gpuscope:gpu_active:bool{sel})) / sum(gpuscope:gpu_allocated:bool{sel} * gpuscope:gpu_active:bool{sel})",
                p = m("gpuscope_gpu_power_watts")
            ),
            "",
        )),
    );
    l.row("Findings");
    l.add(
        Panel::new(
            "bargauge",
            "Top findings by rule",
            "Open findings from the gpuscope collector, counted by rule. Each rule's advice is on the Findings dashboard.",
        )
        .thresholds(Thresholds::above(1.0, 10.0))
        .target(Target::instant("topk(10, count by (rule) (gpuscope_finding_active))", "{{rule}}")),
    );
    l.add(
        Panel::new(
            "table",
            "Nodes with critical health",
            "Nodes with an open critical finding (a lost GPU, uncorrectable ECC errors, a reset-class XID, a failed row remap, ...). Drain them: the finding's advice says what to do next.",
        )
        .thresholds(Thresholds::any())
        .target(Target::instant(
            "count by (node, rule) (gpuscope_finding_active{severity=\"critical\"}) * on (rule) group_left (advice) gpuscope:rule_advice:info",
            "",
        )),
    );
    l.add(
        Panel::new(
            "timeseries",
            "Open findings by severity",
            "Open findings over time by severity. Critical: hardware or a job failure, act now; warning: slower or costlier than it should be; info: an opportunity.",
        )
        .size(24, 7)
        .target(Target::range("sum by (severity) (gpuscope_finding_active)", "{{severity}}")),
    );
    let mut vars = vec![datasource_variable()];
    vars.extend(node_variables());
    dashboard(
        "gpuscope-fleet",
        "gpuscope / Fleet",
        "The fleet at a glance: GPUs busy, idle but allocated, free and lost; SM activity against utilization; idle allocated GPU-hours; energy and power; the findings the gpuscope collector opened.",
        vars,
        l.into_panels(),
    )
}

fn job() -> Value {
    let mut l = Layout::new();
    let sel = "{gpuscope_job=~\"$job\"}";
    l.row("Members");
    l.add(
        Panel::new(
            "table",
            "Members",
            "The nodes of the selected jobs (the agent's `job` setting, GPUSCOPE_JOB) with their GPU count. A member missing here has stopped reporting.",
        )
        .size(8, 8)
        .target(Target::instant(
            format!("count by (gpuscope_job, node) ({} * on (instance) group_left (gpuscope_job, node) gpuscope_node_info{sel})", m("gpuscope_gpu_up")),
            "",
        )),
    );
    l.add(
        Panel::new(
            "table",
            "Job findings",
            "Open findings on the job's members, with the advice: straggler, communication bound, NCCL over TCP, input bound, ...",
        )
        .size(16, 8)
        .target(Target::instant(
            format!("gpuscope_finding_active{sel} * on (rule) group_left (title, advice) gpuscope:rule_advice:info"),
            "",
        )),
    );
    l.row("Straggler view");
    l.add(
        Panel::new(
            "timeseries",
            "SM activity by member",
            "Each member's mean SM activity (utilization where profiling is absent). In a synchronous job the members wait for the slowest at every collective: the straggler is the one that does not wait, often the highest line while the others drop, or a line far below the others.",
        )
        .unit("percentunit")
        .thresholds(Thresholds::below(0.5, 0.8))
        .target(Target::range(format!("gpuscope:node_gpu_activity:avg{sel}"), "{{node}}")),
    );
    l.add(
        Panel::new(
            "timeseries",
            "Deviation from the job's mean",
            "Each member's SM activity minus the job's mean. A member 15 points or more away from the others while they wait is the straggler: look at its clocks, power limit, temperatures, host CPU and input.",
        )
        .unit("percentunit")
        .target(Target::range(
            format!("gpuscope:node_gpu_activity:avg{sel} - on (gpuscope_job) group_left () avg by (gpuscope_job) (gpuscope:node_gpu_activity:avg{sel})"),
            "{{node}}",
        ))
        .unit("percentunit"),
    );
    l.add(
        Panel::new(
            "timeseries",
            "SM clock by member",
            "Mean SM clock per member: a member clocked below the others (power cap, thermal slowdown) computes slower and holds the job back.",
        )
        .unit("hertz")
        .target(Target::range(
            format!("avg by (node) ({} * on (instance) group_left (node) gpuscope_node_info{sel})", m("gpuscope_gpu_sm_clock_hertz")),
            "{{node}}",
        )),
    );
    l.add(
        Panel::new(
            "timeseries",
            "Power against limit by member",
            "Mean power draw over the power limit per member; a member whose limit was lowered sits at 1 while computing slower.",
        )
        .unit("percentunit")
        .thresholds(Thresholds::above(0.95, 1.0))
        .target(Target::range(
            format!(
                "avg by (node) (({} / {}) * on (instance) group_left (node) gpuscope_node_info{sel})",
                m("gpuscope_gpu_power_watts"),
                m("gpuscope_gpu_power_limit_watts")
            ),
            "{{node}}",
        )),
    );
    l.row("Communication vs compute");
    l.add(
        Panel::new(
            "timeseries",
            "Network by member and kind",
            "Receive plus transmit per member, InfiniBand and Ethernet apart. High traffic with low SM activity is communication bound (overlap communication with compute, tune DDP/FSDP buckets); Ethernet busy while InfiniBand idles means NCCL fell back to TCP.",
        )
        .unit("Bps")
        .target(Target::range(format!("gpuscope:node_network_bytes_per_second:sum{sel}"), "{{node}} {{kind}}")),
    );
    l.add(
        Panel::new(
            "timeseries",
            "NVLink by member",
            "NVLink receive plus transmit per member, against SM activity in the straggler view: the intra-node share of communication.",
        )
        .unit("Bps")
        .target(Target::range(format!("gpuscope:node_nvlink_bytes_per_second:sum{sel}"), "{{node}}")),
    );
    l.add(
        Panel::new(
            "timeseries",
            "Utilization vs SM activity (job)",
            "The job's mean utilization against its mean SM activity. Utilization high with SM activity low is the wait signature: kernels (collectives) run but occupy few SMs.",
        )
        .size(24, 8)
        .unit("percentunit")
        .target(Target::range(format!("avg by (gpuscope_job) (gpuscope:node_gpu_activity:avg{sel})"), "{{gpuscope_job}} SM activity"))
        .target(Target::range(
            format!("avg by (gpuscope_job) ({} * on (instance) group_left (gpuscope_job) gpuscope_node_info{sel})", m("gpuscope_gpu_utilization_ratio")),
            "{{gpuscope_job}} utilization",
        )),
    );
    l.row("Input pipeline");
    l.add(
        Panel::new(
            "timeseries",
            "Host CPU busy and I/O wait by member",
            "Host CPU per member. Saturated cores while the GPUs wait: the input pipeline cannot keep up (more DataLoader workers, GPU decoding, cached preprocessing). I/O wait above 10 %: storage is too slow.",
        )
        .unit("percentunit")
        .thresholds(Thresholds::above(0.8, 0.9))
        .target(Target::range(
            format!("{} * on (instance) group_left (node) gpuscope_node_info{sel}", m("gpuscope_host_cpu_busy_ratio")),
            "{{node}} busy",
        ))
        .target(Target::range(
            format!("{} * on (instance) group_left (node) gpuscope_node_info{sel}", m("gpuscope_host_cpu_iowait_ratio")),
            "{{node}} iowait",
        )),
    );
    l.add(
        Panel::new(
            "timeseries",
            "Storage read by member",
            "Block-device read rate per member. Near a device's maximum with idle GPUs: stage the data set on local NVMe, use large sequential shards, raise prefetch.",
        )
        .unit("Bps")
        .target(Target::range(
            format!("sum by (node) ({} * on (instance) group_left (node) gpuscope_node_info{sel})", m("gpuscope_host_disk_read_bytes_per_second")),
            "{{node}}",
        )),
    );
    l.add(
        Panel::new(
            "timeseries",
            "Host-to-device PCIe by member",
            "PCIe receive (host to device) per member. High with idle SMs: pin host memory, copy with non_blocking=True, keep data on the GPU between steps.",
        )
        .unit("Bps")
        .target(Target::range(
            format!("sum by (node) ({} * on (instance) group_left (node) gpuscope_node_info{sel})", m("gpuscope_gpu_pcie_rx_bytes_per_second")),
            "{{node}}",
        )),
    );
    l.add(
        Panel::new(
            "bargauge",
            "GPU processes' host CPU by pod",
            "Host CPU cores the job's GPU processes use, per pod: a pod pinned at its CPU limit starves its GPUs.",
        )
        .target(Target::instant(
            format!(
                "sum by (namespace, pod) (rate({}{{namespace=~\"$namespace\"}}[$__rate_interval]) * on (instance) group_left () gpuscope_node_info{sel})",
                m("gpuscope_process_cpu_seconds_total")
            ),
            "{{namespace}}/{{pod}}",
        )),
    );
    let vars = vec![
        datasource_variable(),
        query_variable("job", "Job", "gpuscope_node_info", "gpuscope_job", Some(".+"), false),
        namespace_variable("instance=~\".+\""),
    ];
    dashboard(
        "gpuscope-job",
        "gpuscope / Job",
        "A multi-node job (the agents' `job` setting): its members, the straggler view, communication against compute and the input pipeline.",
        vars,
        l.into_panels(),
    )
}

fn findings() -> Value {
    let mut l = Layout::new();
    let sel = "{node=~\"$host\", severity=~\"$severity\", rule=~\"$rule\"}";
    l.row("Open findings");
    l.add(
        Panel::new("stat", "Open critical", "Open critical findings: hardware or a job failure. Act now: the advice column says how.")
            .size(8, 4)
            .thresholds(Thresholds::any())
            // Zero while the collector answers and nothing critical is open; no data when the
            // collector is not scraped at all.
            .target(Target::instant(
                "count(gpuscope_finding_active{node=~\"$host\", severity=\"critical\", rule=~\"$rule\"}) or 0 * max(gpuscope_collector_nodes)",
                "",
            )),
    );
    l.add(
        Panel::new("stat", "Open findings", "Every open finding in the selection.")
            .size(8, 4)
            .thresholds(Thresholds::above(1.0, 10.0))
            .target(Target::instant(
                format!("count(gpuscope_finding_active{sel}) or 0 * max(gpuscope_collector_nodes)"),
                "",
            )),
    );
    l.add(
        Panel::new(
            "stat",
            "Nodes reporting",
            "Nodes the collector hears from, and nodes that went stale (no data within the collector's stale period).",
        )
        .size(8, 4)
        .target(Target::instant("gpuscope_collector_nodes", "{{state}}")),
    );
    l.add(
        Panel::new(
            "table",
            "Open findings with advice",
            "Every open finding: rule, severity, node, GPUs and job, with what is wrong (title) and what to change (advice). The collector's API (/api/v1/findings) has each finding's evidence and summary.",
        )
        .size(24, 10)
        .target(Target::instant(format!("gpuscope_finding_active{sel} * on (rule) group_left (title, advice) gpuscope:rule_advice:info"), "")),
    );
    l.row("History");
    l.add(
        Panel::new(
            "timeseries",
            "Open findings by rule",
            "How many findings of each rule were open over time: a rule that keeps coming back is a pattern to fix at its root.",
        )
        .size(24, 8)
        .target(Target::range(format!("count by (rule) (gpuscope_finding_active{sel})"), "{{rule}}")),
    );
    l.add(
        Panel::new(
            "table",
            "Findings in the time range",
            "Every finding that was open at some point in the selected range, with the share of the range it stayed open and the advice.",
        )
        .size(24, 10)
        .unit("percentunit")
        .target(Target::instant(
            format!("avg_over_time(gpuscope_finding_active{sel}[$__range]) * on (rule) group_left (title, advice) gpuscope:rule_advice:info"),
            "",
        )),
    );
    l.row("Rules");
    let mut md = String::from("| rule | scope | severity | what is wrong | advice |\n|---|---|---|---|---|\n");
    for r in RULES {
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            r.id,
            r.scope.as_str(),
            r.severity.as_str(),
            r.title.replace('|', "\\|"),
            r.recommendation.replace('|', "\\|")
        ));
    }
    let mut text = Panel::new(
        "text",
        "The rules and their advice",
        "Every rule gpuscope evaluates (docs/rules.md has the conditions and thresholds).",
    )
    .size(24, 16);
    text.markdown = Some(md);
    l.add(text);
    let vars = vec![
        datasource_variable(),
        query_variable("host", "Node", "gpuscope_finding_active", "node", Some(".*"), false),
        query_variable("severity", "Severity", "gpuscope_finding_active", "severity", Some(".*"), false),
        query_variable("rule", "Rule", "gpuscope_finding_active", "rule", Some(".*"), false),
    ];
    dashboard(
        "gpuscope-findings",
        "gpuscope / Findings",
        "What the gpuscope collector found: open findings with their advice, their history, and every rule.",
        vars,
        l.into_panels(),
    )
}

/// Grafana's datasource provisioning: a Prometheus datasource named `Prometheus`.
pub fn datasource_provisioning() -> String {
    "# Generated by `gpuscope dashboards export`. Grafana reads this from\n\
     # /etc/grafana/provisioning/datasources/; set the URL to your Prometheus.\n\
     apiVersion: 1\n\
     datasources:\n  \
       - name: Prometheus\n    \
         uid: prometheus\n    \
         type: prometheus\n    \
         access: proxy\n    \
         url: http://localhost:9090\n    \
         isDefault: true\n    \
         editable: true\n"
        .to_string()
}

/// Grafana's dashboard provisioning: a `gpuscope` folder read from the JSON files.
pub fn dashboard_provisioning() -> String {
    "# Generated by `gpuscope dashboards export`. Grafana reads this from\n\
     # /etc/grafana/provisioning/dashboards/; copy dashboards/grafana/*.json to the path below.\n\
     apiVersion: 1\n\
     providers:\n  \
       - name: gpuscope\n    \
         folder: gpuscope\n    \
         type: file\n    \
         disableDeletion: false\n    \
         allowUiUpdates: true\n    \
         updateIntervalSeconds: 60\n    \
         options:\n      \
           path: /var/lib/grafana/dashboards/gpuscope\n      \
           foldersFromFilesStructure: false\n"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every panel has a description, a unit, thresholds and (but text panels) a query; ids are
    /// unique per dashboard.
    #[test]
    fn every_panel_is_complete() {
        for (path, d) in dashboards() {
            let panels = d["panels"].as_array().expect("panels");
            let mut ids = std::collections::HashSet::new();
            for p in panels {
                assert!(ids.insert(p["id"].as_u64()), "{path}: duplicate id {}", p["id"]);
                if p["type"] == "row" {
                    continue;
                }
                let title = p["title"].as_str().unwrap_or_default();
                assert!(p["description"].as_str().is_some_and(|s| s.len() > 20), "{path}: {title} has no description");
                if p["type"] == "text" {
                    continue;
                }
                assert!(p["fieldConfig"]["defaults"]["unit"].is_string(), "{path}: {title} has no unit");
                assert!(p["fieldConfig"]["defaults"]["thresholds"]["steps"].is_array(), "{path}: {title}");
                assert!(!p["targets"].as_array().is_none_or(|t| t.is_empty()), "{path}: {title} has no query");
            }
        }
    }

    /// The node dashboard has a row per catalogue group and a panel per catalogue row.
    #[test]
    fn the_node_dashboard_follows_the_catalogue() {
        let d = node();
        let panels = d["panels"].as_array().expect("panels");
        let rows: Vec<&str> =
            panels.iter().filter(|p| p["type"] == "row").filter_map(|p| p["title"].as_str()).collect();
        for g in Group::ALL {
            assert!(rows.contains(&g.title()), "no row for {}", g.title());
        }
        let text = serde_json::to_string(&d).unwrap_or_default();
        for row in CATALOGUE {
            assert_eq!(text.contains(row.prometheus), !NOT_SAMPLED.contains(&row.prometheus), "{}", row.prometheus);
        }
        assert_eq!(super::super::metric("gpuscope_gpu_up").prometheus, "gpuscope_gpu_up");
    }
}
