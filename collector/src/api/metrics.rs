//! `GET /metrics`: open findings and the collector's own health, in Prometheus text format.

use crate::ingest::{Counters, Refusal, Transport};
use crate::state::State;

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The exposition at `now_ms` (which decides which nodes count as stale).
pub fn render(st: &State, counters: &Counters, now_ms: u64) -> String {
    let mut out = String::from(
        "# HELP gpuscope_finding_active 1 while a finding is open.\n# TYPE gpuscope_finding_active gauge\n",
    );
    for r in st.active() {
        let f = &r.finding;
        let gpus: Vec<String> = f.scope.gpus.iter().map(u32::to_string).collect();
        out.push_str(&format!(
            "gpuscope_finding_active{{rule=\"{}\",severity=\"{}\",node=\"{}\",gpu=\"{}\",job=\"{}\"}} 1\n",
            esc(&f.rule),
            f.severity.as_str(),
            esc(f.scope.node.as_deref().unwrap_or("")),
            gpus.join(","),
            esc(f.scope.job.as_deref().unwrap_or(""))
        ));
    }
    out.push_str("# HELP gpuscope_collector_nodes Nodes known, by liveness.\n# TYPE gpuscope_collector_nodes gauge\n");
    let stale = st.nodes.values().filter(|v| st.is_stale(v, now_ms)).count();
    out.push_str(&format!("gpuscope_collector_nodes{{state=\"reporting\"}} {}\n", st.nodes.len() - stale));
    out.push_str(&format!("gpuscope_collector_nodes{{state=\"stale\"}} {stale}\n"));
    out.push_str("# HELP gpuscope_collector_requests_total OTLP requests accepted, by transport.\n# TYPE gpuscope_collector_requests_total counter\n");
    // A label appears once it has counted something, as it did when these were sorted maps.
    for t in Transport::ALL {
        let v = counters.requests(t);
        if v > 0 {
            out.push_str(&format!("gpuscope_collector_requests_total{{transport=\"{}\"}} {v}\n", t.label()));
        }
    }
    out.push_str("# HELP gpuscope_collector_refused_total OTLP requests refused, by reason.\n# TYPE gpuscope_collector_refused_total counter\n");
    for r in Refusal::ALL {
        let v = counters.refusals(r);
        if v > 0 {
            out.push_str(&format!("gpuscope_collector_refused_total{{reason=\"{}\"}} {v}\n", r.label()));
        }
    }
    out.push_str(&format!(
        "# HELP gpuscope_collector_snapshots_total Node snapshots ingested.\n# TYPE gpuscope_collector_snapshots_total counter\ngpuscope_collector_snapshots_total {}\n",
        counters.snapshots()
    ));
    out.push_str(&format!(
        "# HELP gpuscope_collector_rejected_points_total Data points that could not be used.\n# TYPE gpuscope_collector_rejected_points_total counter\ngpuscope_collector_rejected_points_total {}\n",
        counters.points_rejected()
    ));
    out
}
