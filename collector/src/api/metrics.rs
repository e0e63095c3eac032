//! `GET /metrics`: open findings and the collector's own health, in Prometheus text format
//! (through the shared writer in `gpuscope_core::exposition`).

use crate::decode::Limit;
use crate::ingest::{Counters, Refusal, Transport};
use crate::listener::{Closed, Listener};
use crate::state::State;
use gpuscope_core::exposition::{Format, Kind, Writer};

/// The exposition at `now_ms` (which decides which nodes count as stale); `stored` when a
/// findings store is configured (without one there are no store writes to count).
pub fn render(st: &State, counters: &Counters, stored: bool, now_ms: u64) -> String {
    let mut out = String::new();
    let mut w = Writer::new(&mut out, Format::Text);
    w.header("gpuscope_finding_active", Kind::Gauge, "1 while a finding is open.");
    for r in st.active() {
        let f = &r.finding;
        let gpus: Vec<String> = f.scope.gpus.iter().map(u32::to_string).collect();
        let gpus = gpus.join(",");
        w.series("gpuscope_finding_active")
            .label("rule", f.rule.as_str())
            .label("severity", f.severity.as_str())
            .label("node", f.scope.node.as_deref().unwrap_or(""))
            .label("gpu", gpus.as_str())
            // Not `job`: Prometheus renames a scraped `job` label to `exported_job`.
            .label("gpuscope_job", f.scope.job.as_deref().unwrap_or(""))
            .value(1.0);
    }
    w.header("gpuscope_collector_nodes", Kind::Gauge, "Nodes known, by liveness.");
    let stale = st.nodes.values().filter(|v| st.is_stale(v, now_ms)).count();
    w.sample("gpuscope_collector_nodes", &[("state", "reporting".into())], (st.nodes.len() - stale) as f64);
    w.sample("gpuscope_collector_nodes", &[("state", "stale".into())], stale as f64);
    w.header("gpuscope_collector_requests_total", Kind::Counter, "OTLP requests accepted, by transport.");
    // A label appears once it has counted something, as it did when these were sorted maps.
    for t in Transport::ALL {
        let v = counters.requests(t);
        if v > 0 {
            w.sample("gpuscope_collector_requests_total", &[("transport", t.label().into())], v as f64);
        }
    }
    w.header("gpuscope_collector_refused_total", Kind::Counter, "OTLP requests refused, by reason.");
    for r in Refusal::ALL {
        let v = counters.refusals(r);
        if v > 0 {
            w.sample("gpuscope_collector_refused_total", &[("reason", r.label().into())], v as f64);
        }
    }
    w.header("gpuscope_collector_connections", Kind::Gauge, "Connections open, by listener.");
    for l in Listener::ALL {
        w.sample(
            "gpuscope_collector_connections",
            &[("listener", l.label().into())],
            counters.connections.open(l) as f64,
        );
    }
    w.header(
        "gpuscope_collector_connections_closed_total",
        Kind::Counter,
        "Connections the collector closed before its client did (over the listener's cap, or past a timeout), by listener and reason.",
    );
    for l in Listener::ALL {
        for why in Closed::ALL {
            let v = counters.connections.closed(l, why) as f64;
            w.sample(
                "gpuscope_collector_connections_closed_total",
                &[("listener", l.label().into()), ("reason", why.label().into())],
                v,
            );
        }
    }
    w.header("gpuscope_collector_snapshots_total", Kind::Counter, "Node snapshots ingested.");
    w.sample("gpuscope_collector_snapshots_total", &[], counters.snapshots() as f64);
    w.header("gpuscope_collector_rejected_points_total", Kind::Counter, "Data points that could not be used.");
    w.sample("gpuscope_collector_rejected_points_total", &[], counters.points_rejected() as f64);
    w.header(
        "gpuscope_collector_limited_total",
        Kind::Counter,
        "What the collector's limits refused, by reason: samples (future_timestamp, too_many_nodes), resources (invalid_host_name), GPUs, processes, labels, attribute values.",
    );
    for why in Limit::ALL {
        let v = counters.limited_total(why) + if why == Limit::TooManyNodes { st.nodes_refused } else { 0 };
        w.sample("gpuscope_collector_limited_total", &[("reason", why.label().into())], v as f64);
    }
    w.header(
        "gpuscope_collector_nodes_evicted_total",
        Kind::Counter,
        "Nodes dropped from memory after the eviction time of silence.",
    );
    w.sample("gpuscope_collector_nodes_evicted_total", &[], st.nodes_evicted as f64);
    w.header(
        "gpuscope_collector_duplicate_samples_total",
        Kind::Counter,
        "Samples received again (same node and timestamp), e.g. a batch re-sent after a timeout: used once.",
    );
    w.sample("gpuscope_collector_duplicate_samples_total", &[], st.duplicates as f64);
    w.header(
        "gpuscope_collector_impossible_values_total",
        Kind::Counter,
        "Values dropped as physically impossible (a rate above its link, a ratio above 1), by reason; no rule sees them.",
    );
    for why in gpuscope_analysis::validate::Impossible::ALL {
        let v = st.impossible.get(&why).copied().unwrap_or(0);
        w.sample("gpuscope_collector_impossible_values_total", &[("reason", why.as_str().into())], v as f64);
    }
    if stored {
        w.header(
            "gpuscope_collector_store_writes_dropped_total",
            Kind::Counter,
            "Findings-store writes dropped because the store could not keep up (its history misses them).",
        );
        w.sample("gpuscope_collector_store_writes_dropped_total", &[], counters.store_writes_dropped() as f64);
    }
    w.finish();
    out
}
