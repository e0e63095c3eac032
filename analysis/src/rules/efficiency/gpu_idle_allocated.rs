//! `gpu-idle-allocated`: a process holds memory on a GPU that does nothing.

use crate::rules::{Ctx, Hit, LONG, PromAlert, RuleInfo, RuleScope, ev, gpu_hit, pct, workload};
use gpuscope_core::{Severity, WorkloadClass};

settings! {
    /// SM activity (or utilization) below this is idle.
    idle = 0.05,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "gpu-idle-allocated",
    title: "the GPU is held by a process but idle",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: LONG,
    condition: "a process holds memory on the GPU and sm_active (or util) < 0.05 for 10 min",
    recommendation: "The GPU is reserved but idle (hung job, notebook left open, waiting on input). Release it or find what blocks the job.",
    action: None,
    workloads: "any; advice per class (a notebook kernel left open, an idle inference server, a hung or waiting training job)",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: "(gpuscope_gpu_sm_active_ratio or gpuscope_gpu_utilization_ratio) < 0.05 and on (instance, gpu) (gpuscope_process_gpu_memory_bytes > 0)",
        for_s: 600,
        severity: Severity::Warning,
        summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} is held by a process but idle (activity {{ $value | humanizePercentage }}) for 10 minutes.",
        advice: None,
    }],
};

/// The advice for a notebook or an inference server holding an idle GPU (the rule's own advice
/// fits a training job or an unclassified process).
fn advice(class: Option<WorkloadClass>) -> Option<(WorkloadClass, &'static str)> {
    match class? {
        WorkloadClass::Notebook => Some((
            WorkloadClass::Notebook,
            "A notebook kernel holds the GPU while nobody uses it. Shut the kernel down when done, or let the notebook server cull idle kernels (JupyterHub's idle culler, MappedKernelManager.cull_idle_timeout); share notebook GPUs with MIG or time-slicing.",
        )),
        WorkloadClass::Inference => Some((
            WorkloadClass::Inference,
            "An inference server holds the GPU without traffic. Scale it to zero when idle (KServe/Knative, Ray Serve autoscaling), or pack several small models on one GPU (MIG, MPS, the server's multi-model support).",
        )),
        WorkloadClass::Training | WorkloadClass::Unknown => None,
    }
}

/// Who holds the GPU: the process, its user, and its pod or container, where known.
fn holder(p: &gpuscope_core::ProcessSample) -> String {
    crate::rules::process_who(
        &p.name,
        p.pid,
        p.user.as_deref(),
        p.namespace.as_deref(),
        p.pod.as_deref(),
        p.container.as_deref(),
    )
}

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.gpu_idle_allocated;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let holders: Vec<String> = s
            .processes
            .iter()
            .filter(|p| p.gpu_index == g.index && p.gpu_memory_bytes.is_some_and(|m| m > 0))
            .map(holder)
            .collect();
        if holders.is_empty() {
            continue;
        }
        let Some((act, name)) = c.activity(w, g.index) else { continue };
        if act < t.idle {
            // Workload hours of the unbroken idle run the window holds (an hour at most).
            let hours =
                w.gpu_idle_ms(g.index, c.now_ms, t.idle).map_or(0.0, |ms| ms as f64 / 1000.0 / c.scale / 3600.0);
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} is held by {} but does nothing ({} {}) for {hours:.2} GPU-hours",
                    g.index,
                    holders.join(", "),
                    name,
                    pct(act)
                ),
                vec![ev(name, act, t.idle), ev("idle_gpu_hours", hours, 0.0)],
            );
            if let Some((class, advice)) = advice(workload(s, g.index)) {
                h.recommendation = Some(advice.to_string());
                h.cause = Some(class.as_str().to_string());
            }
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{GpuSample, NodeSnapshot};

    fn held(sm: Option<f64>, util: Option<f64>) -> crate::window::NodeWindow {
        let g = GpuSample { sm_active_ratio: sm, utilization_ratio: util, ..gpu(0) };
        steady(NodeSnapshot { processes: vec![process(0, 2 << 30)], ..node("n0", vec![g]) })
    }

    #[test]
    fn activity_just_above_the_threshold_is_not_a_hit() {
        assert!(eval("gpu-idle-allocated", &held(Some(0.06), Some(0.0))).is_empty());
    }

    #[test]
    fn activity_just_below_is_a_hit_naming_the_holder() {
        let hits = eval("gpu-idle-allocated", &held(Some(0.04), None));
        let h = one_hit(&hits, &[0]);
        // The steady window is 10 s of idle records: 10/3600 GPU-hours.
        assert_eq!(evidence(h), vec![("sm_active".into(), 0.04, 0.05), ("idle_gpu_hours".into(), 0.002778, 0.0)]);
        assert_eq!(h.summary, "GPU 0 is held by python (4242) but does nothing (sm_active 4%) for 0.00 GPU-hours");
        let hits = eval("gpu-idle-allocated", &held(None, Some(0.04)));
        assert_eq!(evidence(one_hit(&hits, &[0]))[0], ("util".into(), 0.04, 0.05), "utilization stands in");
    }

    #[test]
    fn absent_activity_is_not_idle() {
        assert!(eval("gpu-idle-allocated", &held(None, None)).is_empty());
        let free = NodeSnapshot {
            processes: vec![process(0, 0)],
            ..node("n0", vec![GpuSample { sm_active_ratio: Some(0.0), ..gpu(0) }])
        };
        assert!(eval("gpu-idle-allocated", &steady(free)).is_empty(), "no memory held");
    }

    #[test]
    fn the_threshold_is_read_from_the_rules_section() {
        let w = held(Some(0.08), None);
        assert_eq!(eval_toml("gpu-idle-allocated", "[rules.gpu-idle-allocated]\nidle = 0.1", &w).len(), 1);
    }

    /// Forty idle minutes after twenty busy ones, held by a user's process in a pod: the hours
    /// count from the start of the idle run, and the finding names the pod and the user.
    #[test]
    fn the_idle_hours_and_the_pod_and_user_holding_the_gpu() {
        let w = series(3600, |t| {
            let g = GpuSample { sm_active_ratio: Some(if t < 1200 { 0.8 } else { 0.01 }), ..gpu(0) };
            let p = gpuscope_core::ProcessSample {
                user: Some("alice".into()),
                pod: Some("nb-alice-0".into()),
                namespace: Some("research".into()),
                container: Some("3f1c2a9b7d6e5f4a3b2c1d0e".into()),
                ..process(0, 2 << 30)
            };
            NodeSnapshot { processes: vec![p], ..node("n0", vec![g]) }
        });
        let hits = eval("gpu-idle-allocated", &w);
        let h = one_hit(&hits, &[0]);
        assert_eq!(
            h.summary,
            "GPU 0 is held by python (4242, user alice, pod research/nb-alice-0) but does nothing (sm_active 1%) for 0.67 GPU-hours"
        );
        assert_eq!(evidence(h)[1], ("idle_gpu_hours".into(), 0.666667, 0.0));
        // Without a pod the container stands in, by its short id.
        let bare = gpuscope_core::ProcessSample { container: Some("3f1c2a9b7d6e5f4a3b2c".into()), ..process(0, 1) };
        assert_eq!(super::holder(&bare), "python (4242, container 3f1c2a9b7d6e)");
    }

    /// The advice fits what holds the GPU.
    #[test]
    fn a_notebook_and_a_server_get_their_own_advice() {
        let with = |class| {
            let g = GpuSample { sm_active_ratio: Some(0.01), ..gpu(0) };
            let p = gpuscope_core::ProcessSample { workload: Some(class), ..process(0, 2 << 30) };
            eval("gpu-idle-allocated", &steady(NodeSnapshot { processes: vec![p], ..node("n0", vec![g]) }))
        };
        let nb = with(gpuscope_core::WorkloadClass::Notebook);
        assert!(nb[0].recommendation.as_deref().is_some_and(|r| r.contains("cull")), "{nb:#?}");
        assert_eq!(nb[0].cause.as_deref(), Some("notebook"));
        let srv = with(gpuscope_core::WorkloadClass::Inference);
        assert!(srv[0].recommendation.as_deref().is_some_and(|r| r.contains("Scale it to zero")), "{srv:#?}");
        let train = with(gpuscope_core::WorkloadClass::Training);
        assert_eq!((train[0].recommendation.clone(), train[0].cause.clone()), (None, None), "the rule's own advice");
    }
}
