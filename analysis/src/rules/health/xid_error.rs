//! `xid-error`: the driver reported XID events, classified for severity and action.

use crate::rules::{Ctx, EVENT, Hit, PromAlert, RuleInfo, RuleScope, ev, gpu_hit};
use crate::xid::{XidClass, classify};
use gpuscope_core::{Action, Severity};

settings! {
    /// How long an XID event keeps its finding open, seconds.
    event_hold_s = 300.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "xid-error",
    title: "the driver reported XID errors",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: EVENT,
    condition: "any XID event (classified: application, reset, reboot, NVLink, memory)",
    recommendation: "Per class: debug the application, reset the GPU, reboot, NVLink or memory workflow.",
    action: Some(Action::Monitor),
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[
        PromAlert {
            variant: "",
            expr: r#"increase(gpuscope_gpu_xid_errors_total{xid!~"13|31|43|45|68|69|94"}[5m]) > 0 or (gpuscope_gpu_xid_errors_total{xid!~"13|31|43|45|68|69|94"} unless gpuscope_gpu_xid_errors_total{xid!~"13|31|43|45|68|69|94"} offset 5m)"#,
            for_s: 0,
            severity: Severity::Critical,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} reported XID {{ $labels.xid }} ({{ $value }} in the last 5 minutes): a hardware, reset, NVLink or memory fault.",
        },
        PromAlert {
            variant: "Application",
            expr: r#"increase(gpuscope_gpu_xid_errors_total{xid=~"13|31|43|45|68|69|94"}[5m]) > 0 or (gpuscope_gpu_xid_errors_total{xid=~"13|31|43|45|68|69|94"} unless gpuscope_gpu_xid_errors_total{xid=~"13|31|43|45|68|69|94"} offset 5m)"#,
            for_s: 0,
            severity: Severity::Warning,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} reported application XID {{ $labels.xid }} ({{ $value }} in the last 5 minutes).",
        },
    ],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let hold = c.ms(c.cfg.rules.xid_error.event_hold_s);
    let mut out = Vec::new();
    for (node, _, s) in c.latest() {
        for g in &s.gpus {
            let recent: Vec<u64> = s
                .xid_events
                .iter()
                .filter(|e| e.gpu == g.index && e.unix_ms + hold >= c.now_ms)
                .map(|e| e.code)
                .collect();
            if recent.is_empty() {
                continue;
            }
            // The worst class decides severity and action.
            let worst = recent
                .iter()
                .map(|c| classify(*c))
                .max_by_key(|k| match k {
                    XidClass::Reboot => 5,
                    XidClass::Reset => 4,
                    XidClass::NvLink => 3,
                    XidClass::Memory => 2,
                    XidClass::Other => 1,
                    XidClass::Application => 0,
                })
                .unwrap_or(XidClass::Other);
            let (severity, action, advice) = worst.advice();
            let mut codes = recent.clone();
            codes.sort_unstable();
            codes.dedup();
            let list: Vec<String> = codes.iter().map(|c| format!("{c} ({})", classify(*c).as_str())).collect();
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!("GPU {} reported XID {}", g.index, list.join(", ")),
                codes
                    .iter()
                    .map(|c| ev(&format!("xid_{c}"), recent.iter().filter(|x| *x == c).count() as f64, 1.0))
                    .collect(),
            );
            h.severity = Some(severity);
            h.action = Some(action);
            h.recommendation = Some(advice.to_string());
            h.cause = Some(format!("xid-{}", worst.as_str()));
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{Action, NodeSnapshot, XidEvent};

    /// XID `code` on GPU 1, `age_s` seconds before the evaluation.
    fn xid(code: u64, age_s: u64) -> crate::window::NodeWindow {
        let e = XidEvent { unix_ms: NOW_MS - age_s * 1000, gpu: 1, code };
        steady(NodeSnapshot { xid_events: vec![e], ..node("n0", vec![gpu(0), gpu(1)]) })
    }

    #[test]
    fn an_event_just_older_than_the_hold_is_not_a_hit() {
        assert!(eval("xid-error", &xid(13, 301)).is_empty());
    }

    #[test]
    fn an_event_just_within_the_hold_is_a_hit_on_that_gpu() {
        let hits = eval("xid-error", &xid(13, 299));
        let h = one_hit(&hits, &[1]);
        assert_eq!(evidence(h), vec![("xid_13".into(), 1.0, 1.0)]);
        assert_eq!(h.summary, "GPU 1 reported XID 13 (application)");
        assert_eq!(h.action, Some(Action::RestartApp));
    }

    #[test]
    fn no_event_is_no_hit() {
        assert!(eval("xid-error", &steady(node("n0", vec![gpu(0), gpu(1)]))).is_empty());
    }

    #[test]
    fn the_hold_is_read_from_the_rules_section() {
        let w = xid(13, 350);
        assert_eq!(eval_toml("xid-error", "[rules.xid-error]\nevent_hold_s = 400", &w).len(), 1);
    }
}
