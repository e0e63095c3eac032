//! `launch-bound`: a kernel always runs, but it occupies few SMs.

use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, gpu_hit, pct, workload};
use gpuscope_core::{Severity, WorkloadClass};

settings! {
    /// NVML utilization at or above this is "always a kernel running".
    util_high = 0.9,
    /// SM activity below this is "few SMs busy".
    sm_active_low = 0.5,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "launch-bound",
    title: "a kernel always runs but few SMs are busy (launch overhead, small kernels)",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: STD,
    condition: "util >= 0.9 and sm_active < 0.5",
    recommendation: "Kernels are always running but occupy few SMs: tiny kernels or small batches, launch overhead. Larger batch, kernel fusion (torch.compile), CUDA Graphs.",
    action: None,
    workloads: "any; advice per class (inference: the server's batching and concurrency settings; training: batch size, fusion, CUDA Graphs)",
    explained_by_waiting: true,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

/// The advice for an inference server: its batching decides how much work each kernel gets.
const SERVER_ADVICE: &str = "The server sends the GPU small batches: raise its maximum batch size and concurrency (vLLM --max-num-seqs and --max-num-batched-tokens, Triton dynamic batching with a queue delay, TGI --max-batch-total-tokens), keep CUDA graphs enabled, and check that clients send enough concurrent requests.";

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.launch_bound;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let util = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.utilization_ratio);
        let sm = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.sm_active_ratio);
        if let (Some(u), Some(sm)) = (util, sm)
            && u >= t.util_high
            && sm < t.sm_active_low
        {
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} always has a kernel running ({}) but only {} of its SMs are busy",
                    g.index,
                    pct(u),
                    pct(sm)
                ),
                vec![ev("util", u, t.util_high), ev("sm_active", sm, t.sm_active_low)],
            );
            if workload(s, g.index) == Some(WorkloadClass::Inference) {
                h.recommendation = Some(SERVER_ADVICE.to_string());
                h.cause = Some(WorkloadClass::Inference.as_str().to_string());
            }
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::GpuSample;

    fn busy(util: Option<f64>, sm: Option<f64>) -> crate::window::NodeWindow {
        steady(node("n0", vec![GpuSample { utilization_ratio: util, sm_active_ratio: sm, ..gpu(3) }]))
    }

    #[test]
    fn utilization_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("launch-bound", &busy(Some(0.89), Some(0.2))).is_empty());
        assert!(eval("launch-bound", &busy(Some(0.95), Some(0.51))).is_empty(), "half the SMs busy");
    }

    #[test]
    fn utilization_just_above_with_few_sms_is_a_hit_on_that_gpu() {
        let hits = eval("launch-bound", &busy(Some(0.91), Some(0.49)));
        assert_eq!(evidence(one_hit(&hits, &[3])), vec![("util".into(), 0.91, 0.9), ("sm_active".into(), 0.49, 0.5)]);
    }

    #[test]
    fn absent_sm_activity_is_not_low() {
        assert!(eval("launch-bound", &busy(Some(1.0), None)).is_empty());
        assert!(eval("launch-bound", &busy(None, Some(0.1))).is_empty());
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let w = busy(Some(0.85), Some(0.3));
        assert_eq!(eval_toml("launch-bound", "[rules.launch-bound]\nutil_high = 0.8", &w).len(), 1);
        let w = busy(Some(0.95), Some(0.55));
        assert_eq!(eval_toml("launch-bound", "[rules.launch-bound]\nsm_active_low = 0.6", &w).len(), 1);
    }

    /// A server's kernels are small because its batches are: the advice is its batching.
    #[test]
    fn an_inference_server_gets_batching_advice() {
        let g = GpuSample { utilization_ratio: Some(0.95), sm_active_ratio: Some(0.3), ..gpu(3) };
        let p = gpuscope_core::ProcessSample {
            workload: Some(gpuscope_core::WorkloadClass::Inference),
            ..process(3, 1 << 30)
        };
        let w = steady(gpuscope_core::NodeSnapshot { processes: vec![p], ..node("n0", vec![g]) });
        let hits = eval("launch-bound", &w);
        let h = one_hit(&hits, &[3]);
        assert!(h.recommendation.as_deref().is_some_and(|r| r.contains("--max-num-seqs")), "{h:#?}");
        let hits = eval("launch-bound", &busy(Some(0.95), Some(0.3)));
        assert_eq!(one_hit(&hits, &[3]).recommendation, None, "the rule's own advice elsewhere");
    }
}
