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
    // One alert per XID class, with its severity and advice; the test below checks that each
    // regex holds exactly the codes `classify` puts in its class.
    promql: &[
        PromAlert {
            variant: "Reset",
            expr: r#"increase(gpuscope_gpu_xid_errors_total{xid=~"46|62|64|95|109|119|120|136|140|143|155|156"}[5m]) > 0 or (gpuscope_gpu_xid_errors_total{xid=~"46|62|64|95|109|119|120|136|140|143|155|156"} unless gpuscope_gpu_xid_errors_total{xid=~"46|62|64|95|109|119|120|136|140|143|155|156"} offset 5m)"#,
            for_s: 0,
            severity: Severity::Critical,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} reported XID {{ $labels.xid }} ({{ $value }} in the last 5 minutes): a GPU reset is needed.",
            advice: Some(XidClass::Reset.advice().2),
        },
        PromAlert {
            variant: "Reboot",
            expr: r#"increase(gpuscope_gpu_xid_errors_total{xid=~"79"}[5m]) > 0 or (gpuscope_gpu_xid_errors_total{xid=~"79"} unless gpuscope_gpu_xid_errors_total{xid=~"79"} offset 5m)"#,
            for_s: 0,
            severity: Severity::Critical,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} reported XID {{ $labels.xid }} ({{ $value }} in the last 5 minutes): the GPU fell off the bus.",
            advice: Some(XidClass::Reboot.advice().2),
        },
        PromAlert {
            variant: "Nvlink",
            expr: r#"increase(gpuscope_gpu_xid_errors_total{xid=~"74|144|145|146|147|148|149|150"}[5m]) > 0 or (gpuscope_gpu_xid_errors_total{xid=~"74|144|145|146|147|148|149|150"} unless gpuscope_gpu_xid_errors_total{xid=~"74|144|145|146|147|148|149|150"} offset 5m)"#,
            for_s: 0,
            severity: Severity::Critical,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} reported XID {{ $labels.xid }} ({{ $value }} in the last 5 minutes): an NVLink fault.",
            advice: Some(XidClass::NvLink.advice().2),
        },
        PromAlert {
            variant: "Memory",
            expr: r#"increase(gpuscope_gpu_xid_errors_total{xid=~"48|63|92"}[5m]) > 0 or (gpuscope_gpu_xid_errors_total{xid=~"48|63|92"} unless gpuscope_gpu_xid_errors_total{xid=~"48|63|92"} offset 5m)"#,
            for_s: 0,
            severity: Severity::Critical,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} reported XID {{ $labels.xid }} ({{ $value }} in the last 5 minutes): a memory fault.",
            advice: Some(XidClass::Memory.advice().2),
        },
        PromAlert {
            variant: "Application",
            expr: r#"increase(gpuscope_gpu_xid_errors_total{xid=~"13|31|43|45|68|69|94"}[5m]) > 0 or (gpuscope_gpu_xid_errors_total{xid=~"13|31|43|45|68|69|94"} unless gpuscope_gpu_xid_errors_total{xid=~"13|31|43|45|68|69|94"} offset 5m)"#,
            for_s: 0,
            severity: Severity::Warning,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} reported XID {{ $labels.xid }} ({{ $value }} in the last 5 minutes): an application fault.",
            advice: Some(XidClass::Application.advice().2),
        },
        PromAlert {
            variant: "",
            expr: r#"increase(gpuscope_gpu_xid_errors_total{xid!~"46|62|64|95|109|119|120|136|140|143|155|156|79|74|144|145|146|147|148|149|150|48|63|92|13|31|43|45|68|69|94"}[5m]) > 0 or (gpuscope_gpu_xid_errors_total{xid!~"46|62|64|95|109|119|120|136|140|143|155|156|79|74|144|145|146|147|148|149|150|48|63|92|13|31|43|45|68|69|94"} unless gpuscope_gpu_xid_errors_total{xid!~"46|62|64|95|109|119|120|136|140|143|155|156|79|74|144|145|146|147|148|149|150|48|63|92|13|31|43|45|68|69|94"} offset 5m)"#,
            for_s: 0,
            severity: Severity::Warning,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} reported XID {{ $labels.xid }} ({{ $value }} in the last 5 minutes), a code outside the classified ones.",
            advice: Some(XidClass::Other.advice().2),
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

    /// Each PromQL alert's codes are exactly its class's, and every code is in one alert.
    #[test]
    fn the_promql_alerts_split_the_codes_by_class() {
        use crate::xid::{XidClass, classify};
        let rule = &super::RULE;
        let codes_of = |expr: &str| -> (bool, Vec<u64>) {
            let negated = expr.contains("{xid!~");
            let list = expr.split("{xid").nth(1).and_then(|s| s.split('"').nth(1)).unwrap_or_default();
            (negated, list.split('|').filter_map(|c| c.parse().ok()).collect())
        };
        for code in 0..=300u64 {
            let matching: Vec<&str> = rule
                .promql
                .iter()
                .filter(|a| {
                    let (negated, codes) = codes_of(a.expr);
                    codes.contains(&code) != negated
                })
                .map(|a| a.variant)
                .collect();
            assert_eq!(matching.len(), 1, "XID {code}: {matching:?}");
            let class = classify(code);
            let want = match class {
                XidClass::Other => "",
                XidClass::NvLink => "Nvlink",
                c => match c {
                    XidClass::Application => "Application",
                    XidClass::Reset => "Reset",
                    XidClass::Reboot => "Reboot",
                    _ => "Memory",
                },
            };
            assert_eq!(matching[0], want, "XID {code}");
            let alert = rule.promql.iter().find(|a| a.variant == want).map(|a| (a.severity, a.advice));
            assert_eq!(alert, Some((class.advice().0, Some(class.advice().2))), "XID {code}");
        }
    }

    #[test]
    fn the_hold_is_read_from_the_rules_section() {
        let w = xid(13, 350);
        assert_eq!(eval_toml("xid-error", "[rules.xid-error]\nevent_hold_s = 400", &w).len(), 1);
    }
}
