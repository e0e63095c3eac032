//! `dashboards/`, generated: Grafana dashboards built from the metric catalogue (its groups are
//! the rows of the node dashboard) and the rule catalogue, Grafana provisioning files, and the
//! Prometheus recording and alerting rules (also as a Prometheus Operator `PrometheusRule`).
//! Every metric a panel or a rule names is looked up in the catalogue while generating, so a
//! renamed signal fails the generation instead of leaving a dead panel behind.

mod grafana;
mod panels;
mod rules;

pub use rules::{alerts_yaml, finding_alert, prometheus_rule, promql_alerts};

use gpuscope_core::MetricDef;

/// One generated file: its path under `dashboards/` and its content.
pub struct File {
    /// Path relative to the `dashboards/` directory.
    pub path: &'static str,
    /// The content.
    pub content: String,
}

/// Every generated file, in a stable order.
pub fn files() -> Vec<File> {
    let mut out: Vec<File> =
        grafana::dashboards().into_iter().map(|(path, d)| File { path, content: pretty(&d) }).collect();
    out.push(File { path: "provisioning/datasources/gpuscope.yml", content: grafana::datasource_provisioning() });
    out.push(File { path: "provisioning/dashboards/gpuscope.yml", content: grafana::dashboard_provisioning() });
    out.push(File { path: "alerts.yml", content: alerts_yaml() });
    out.push(File { path: "prometheusrule.yaml", content: prometheus_rule() });
    out
}

/// JSON as Grafana exports it: two-space indentation and a final newline.
fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// The catalogue row named `name`: a panel or rule that names a signal the catalogue lacks is a
/// bug in the generator, found by the regeneration test the moment a row is renamed.
pub(crate) fn metric(name: &str) -> &'static MetricDef {
    match MetricDef::by_prometheus(name) {
        Some(m) => m,
        None => panic!("dashboards: {name} is not in the metric catalogue"),
    }
}

/// `name`, checked against the catalogue.
pub(crate) fn m(name: &str) -> &'static str {
    metric(name).prometheus
}
