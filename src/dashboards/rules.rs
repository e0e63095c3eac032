//! Prometheus rules from the rule catalogue: recording rules the dashboards read, one alert per
//! collector finding (`gpuscope_finding_active`), and the standalone PromQL alerts of the rules
//! that PromQL can express over the agent's metrics, for fleets that run only Prometheus.

use super::m;
use gpuscope_analysis::{RULES, RuleInfo};

/// One rule of a group.
enum Rule {
    /// `record:` with optional static labels.
    Record { name: String, expr: String, labels: Vec<(&'static str, String)> },
    /// `alert:`.
    Alert {
        name: String,
        expr: String,
        for_s: u32,
        labels: Vec<(&'static str, String)>,
        annotations: Vec<(&'static str, String)>,
    },
}

/// A rule group.
struct Group {
    name: &'static str,
    rules: Vec<Rule>,
}

/// `xid-error` → `XidError`.
fn camel(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The alert of the collector's findings of rule `r`.
pub fn finding_alert(r: &RuleInfo) -> String {
    format!("GpuscopeFinding{}", camel(r.id))
}

/// The standalone PromQL alerts of rule `r`, by name.
pub fn promql_alerts(r: &RuleInfo) -> Vec<String> {
    r.promql.iter().map(|a| format!("Gpuscope{}{}", camel(r.id), a.variant)).collect()
}

/// The default of threshold `name` of rule `id` (the PromQL uses the Rust rule's defaults).
fn threshold(id: &str, name: &str) -> f64 {
    RULES
        .iter()
        .find(|r| r.id == id)
        .and_then(|r| r.thresholds.iter().find(|t| t.name == name))
        .map_or_else(|| panic!("dashboards: rule {id} has no threshold {name}"), |t| t.default)
}

/// `gpuscope_node_info`'s node and job, joined onto a per-instance expression.
fn per_node(expr: &str) -> String {
    format!("{expr} * on (instance) group_left (node, gpuscope_job) gpuscope_node_info")
}

fn recording() -> Group {
    let rec = |name: &str, expr: String| Rule::Record { name: name.to_string(), expr, labels: Vec::new() };
    let activity = format!("({} or {})", m("gpuscope_gpu_sm_active_ratio"), m("gpuscope_gpu_utilization_ratio"));
    let idle = threshold("gpu-idle-allocated", "idle");
    let mut rules = vec![
        rec(
            "gpuscope:gpu_allocated:bool",
            format!(
                "max by (instance, gpu) ({} > bool 0) or max by (instance, gpu) (0 * {})",
                m("gpuscope_process_gpu_memory_bytes"),
                m("gpuscope_gpu_up")
            ),
        ),
        rec("gpuscope:gpu_active:bool", format!("max by (instance, gpu) ({activity} >= bool {idle})")),
        rec(
            "gpuscope:gpu_idle_allocated:bool",
            "gpuscope:gpu_allocated:bool * (1 - gpuscope:gpu_active:bool)".to_string(),
        ),
        rec("gpuscope:gpu_lost:bool", format!("max by (instance, gpu) ({} == bool 0)", m("gpuscope_gpu_up"))),
        rec("gpuscope:node_gpu_activity:avg", per_node(&format!("avg by (instance) ({activity})"))),
        rec(
            "gpuscope:node_network_bytes_per_second:sum",
            per_node(&format!(
                "sum by (instance, kind) ({} + {})",
                m("gpuscope_host_network_receive_bytes_per_second"),
                m("gpuscope_host_network_transmit_bytes_per_second")
            )),
        ),
        rec(
            "gpuscope:node_nvlink_bytes_per_second:sum",
            per_node(&format!(
                "sum by (instance) ({} + {})",
                m("gpuscope_gpu_nvlink_rx_bytes_per_second"),
                m("gpuscope_gpu_nvlink_tx_bytes_per_second")
            )),
        ),
    ];
    // The advice of every rule as a series, so that findings panels and alerts can join it by
    // the `rule` label.
    for r in RULES {
        rules.push(Rule::Record {
            name: "gpuscope:rule_advice:info".to_string(),
            expr: "vector(1)".to_string(),
            labels: vec![
                ("rule", r.id.to_string()),
                ("title", r.title.to_string()),
                ("advice", r.recommendation.to_string()),
            ],
        });
    }
    Group { name: "gpuscope-recording", rules }
}

fn findings() -> Group {
    let rules = RULES
        .iter()
        .map(|r: &RuleInfo| Rule::Alert {
            name: finding_alert(r),
            expr: format!(
                "max by (rule, severity, node, gpu, gpuscope_job) (gpuscope_finding_active{{rule=\"{}\"}}) == 1",
                r.id
            ),
            for_s: 0,
            labels: vec![("source", "collector".to_string())],
            annotations: vec![
                (
                    "summary",
                    format!(
                        "{{{{ $labels.node }}}}{{{{ if $labels.gpu }}}} GPU {{{{ $labels.gpu }}}}{{{{ end }}}}: {}.",
                        r.title
                    ),
                ),
                (
                    "observed",
                    format!(
                        "an open {} finding of the gpuscope collector; its evidence is at /api/v1/findings?rule={}",
                        r.id, r.id
                    ),
                ),
                ("advice", r.recommendation.to_string()),
                ("runbook_url", r.docs()),
            ],
        })
        .collect();
    Group { name: "gpuscope-findings", rules }
}

fn standalone() -> Group {
    let mut rules = Vec::new();
    for r in RULES {
        for (a, name) in r.promql.iter().zip(promql_alerts(r)) {
            rules.push(Rule::Alert {
                name,
                expr: a.expr.to_string(),
                for_s: a.for_s,
                labels: vec![
                    ("severity", a.severity.as_str().to_string()),
                    ("rule", r.id.to_string()),
                    ("source", "promql".to_string()),
                ],
                annotations: vec![
                    ("summary", a.summary.to_string()),
                    ("observed", "{{ $value }}".to_string()),
                    ("advice", a.advice.unwrap_or(r.recommendation).to_string()),
                    ("runbook_url", r.docs()),
                ],
            });
        }
    }
    Group { name: "gpuscope-health-promql", rules }
}

fn groups() -> Vec<Group> {
    vec![recording(), findings(), standalone()]
}

/// A YAML double-quoted scalar (JSON's string escapes are YAML's).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The groups as YAML, every line indented by `indent` spaces.
fn groups_yaml(indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = format!("{pad}groups:\n");
    for g in groups() {
        out.push_str(&format!("{pad}  - name: {}\n{pad}    rules:\n", g.name));
        for r in g.rules {
            match r {
                Rule::Record { name, expr, labels } => {
                    out.push_str(&format!("{pad}      - record: {name}\n{pad}        expr: {}\n", q(&expr)));
                    if !labels.is_empty() {
                        out.push_str(&format!("{pad}        labels:\n"));
                        for (k, v) in labels {
                            out.push_str(&format!("{pad}          {k}: {}\n", q(&v)));
                        }
                    }
                }
                Rule::Alert { name, expr, for_s, labels, annotations } => {
                    out.push_str(&format!("{pad}      - alert: {name}\n{pad}        expr: {}\n", q(&expr)));
                    if for_s > 0 {
                        out.push_str(&format!("{pad}        for: {for_s}s\n"));
                    }
                    out.push_str(&format!("{pad}        labels:\n"));
                    for (k, v) in labels {
                        out.push_str(&format!("{pad}          {k}: {}\n", q(&v)));
                    }
                    out.push_str(&format!("{pad}        annotations:\n"));
                    for (k, v) in annotations {
                        out.push_str(&format!("{pad}          {k}: {}\n", q(&v)));
                    }
                }
            }
        }
    }
    out
}

/// `dashboards/alerts.yml`: Prometheus's `rule_files` format.
pub fn alerts_yaml() -> String {
    format!(
        "# Generated by `gpuscope dashboards export` from the metric and rule catalogues; do not edit.\n\
         # gpuscope-recording: series the dashboards read. gpuscope-findings: one alert per rule of the\n\
         # gpuscope collector (scrape its /metrics). gpuscope-health-promql: the rules PromQL can express\n\
         # over the agents' metrics, for fleets without a collector (docs in dashboards/README.md).\n{}",
        groups_yaml(0)
    )
}

/// `dashboards/prometheusrule.yaml`: the same groups as a Prometheus Operator `PrometheusRule`.
pub fn prometheus_rule() -> String {
    format!(
        "# Generated by `gpuscope dashboards export`: dashboards/alerts.yml as a Prometheus Operator\n\
         # resource (kubectl apply -f); match the label to your Prometheus's ruleSelector.\n\
         apiVersion: monitoring.coreos.com/v1\n\
         kind: PrometheusRule\n\
         metadata:\n  \
           name: gpuscope\n  \
           labels:\n    \
             app.kubernetes.io/name: gpuscope\n    \
             app.kubernetes.io/component: rules\n\
         spec:\n{}",
        groups_yaml(2)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_camel_case() {
        assert_eq!(camel("xid-error"), "XidError");
        assert_eq!(camel("gpu-lost"), "GpuLost");
    }

    /// The manifest's spec is alerts.yml's groups, indented.
    #[test]
    fn the_manifest_carries_the_same_groups() {
        let plain = groups_yaml(0);
        let nested = groups_yaml(2);
        let dedented: String = nested.lines().map(|l| format!("{}\n", &l[2..])).collect();
        assert_eq!(plain, dedented);
        assert!(prometheus_rule().ends_with(&nested));
    }

    /// Every rule has one finding alert; every PromQL alert name is unique.
    #[test]
    fn one_alert_per_rule_and_unique_names() {
        let mut names = std::collections::HashSet::new();
        let mut findings = 0;
        for g in groups() {
            for r in g.rules {
                if let Rule::Alert { name, .. } = r {
                    assert!(names.insert(name.clone()), "duplicate alert {name}");
                    findings += usize::from(name.starts_with("GpuscopeFinding"));
                }
            }
        }
        assert_eq!(findings, RULES.len());
    }
}
