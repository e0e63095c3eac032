//! `memory-near-full`: GPU memory close to out-of-memory.
//!
//! A training job at 95 % of its GPU's memory is one longer sequence away from an out-of-memory
//! crash. An inference server at 95 % is usually fine: vLLM, SGLang, TGI and TensorRT-LLM
//! allocate their KV-cache pool up front (vLLM's `--gpu-memory-utilization` defaults to 0.9) and
//! never grow, so for them the rule asks whether the usage still grows toward the limit.

use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, gpu_hit, pct, workload};
use gpuscope_core::{Severity, WorkloadClass};

settings! {
    /// Memory used at or above this fraction of total risks out-of-memory.
    memory_high = 0.95,
    /// An inference server is at risk only if its memory grew by at least this fraction of the
    /// total over the growth window (a pre-allocated pool stays flat).
    growth_min = 0.02,
    /// The window over which an inference server's growth is measured, workload seconds.
    growth_window_s = 120.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "memory-near-full",
    title: "GPU memory is nearly full",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: STD,
    condition: "mem_used >= 0.95 of total; for an inference server (which pre-allocates its pool by design) only while it also grew by >= 2 % of total over the last 120 s",
    recommendation: "Risk of out-of-memory. Activation checkpointing, mixed precision, smaller micro-batch with gradient accumulation.",
    action: None,
    workloads: "training (and unclassified): at the level; inference servers, which pre-allocate their pools by design (vLLM, SGLang, TGI, TensorRT-LLM), only while their usage grows toward the limit; advice per class",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

/// The advice for an inference server whose memory grows toward the limit.
const SERVER_ADVICE: &str = "The server's memory keeps growing toward the limit: lower its memory fraction (vLLM --gpu-memory-utilization, SGLang --mem-fraction-static, TensorRT-LLM kv_cache_free_gpu_memory_fraction) or its maximum batch size / sequence length; growth after the pool is allocated points to a leak or an unbounded cache in the server.";

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.memory_near_full;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let (Some(used), Some(total)) = (g.memory_used_bytes, g.memory_total_bytes) else { continue };
        let frac = used as f64 / total as f64;
        if frac < t.memory_high {
            continue;
        }
        let server = workload(s, g.index) == Some(WorkloadClass::Inference);
        let mut evidence = vec![ev("memory_used_fraction", frac, t.memory_high)];
        if server {
            // Growth: from the lowest reading in the window to now.
            let low = w
                .thin(c.now_ms, c.ms(t.growth_window_s))
                .filter_map(|x| x.gpus.iter().find(|x| x.index == g.index).and_then(|x| x.memory_used))
                .min();
            let Some(low) = low else { continue };
            let growth = used.saturating_sub(low) as f64 / total as f64;
            if growth < t.growth_min {
                continue;
            }
            evidence.push(ev("memory_growth_fraction", growth, t.growth_min));
        }
        let mut h = gpu_hit(
            node,
            s,
            g.index,
            format!(
                "GPU {} memory is {} full ({:.1} of {:.1} GiB){}",
                g.index,
                pct(frac),
                used as f64 / 1073741824.0,
                total as f64 / 1073741824.0,
                if server { " and the inference server's usage still grows" } else { "" }
            ),
            evidence,
        );
        if server {
            h.recommendation = Some(SERVER_ADVICE.to_string());
            h.cause = Some(WorkloadClass::Inference.as_str().to_string());
        }
        out.push(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{GpuSample, NodeSnapshot, WorkloadClass};

    const TOTAL: u64 = 80 << 30;

    fn used(fraction: Option<f64>) -> crate::window::NodeWindow {
        let g = GpuSample {
            memory_total_bytes: Some(TOTAL),
            memory_used_bytes: fraction.map(|f| (TOTAL as f64 * f) as u64),
            ..gpu(7)
        };
        steady(node("n0", vec![g]))
    }

    /// An inference server on GPU 7 whose memory goes from `from` to `to` of the total over the
    /// last 120 s.
    fn server(from: f64, to: f64) -> crate::window::NodeWindow {
        series(120, |t| {
            let f = from + (to - from) * t as f64 / 120.0;
            let g = GpuSample {
                memory_total_bytes: Some(TOTAL),
                memory_used_bytes: Some((TOTAL as f64 * f) as u64),
                ..gpu(7)
            };
            let p = gpuscope_core::ProcessSample { workload: Some(WorkloadClass::Inference), ..process(7, 70 << 30) };
            NodeSnapshot { processes: vec![p], ..node("n0", vec![g]) }
        })
    }

    /// A vLLM-style server at 97 % flat is provisioned, not at risk; one that grows is.
    #[test]
    fn a_server_is_at_risk_only_while_its_memory_grows() {
        assert!(eval("memory-near-full", &server(0.97, 0.97)).is_empty(), "a pre-allocated pool");
        assert!(eval("memory-near-full", &server(0.951, 0.97)).is_empty(), "grew 1.9 points");
        let hits = eval("memory-near-full", &server(0.949, 0.97));
        let h = one_hit(&hits, &[7]);
        assert_eq!(
            evidence(h),
            vec![("memory_used_fraction".into(), 0.97, 0.95), ("memory_growth_fraction".into(), 0.021, 0.02)]
        );
        assert!(h.recommendation.as_deref().is_some_and(|r| r.contains("--gpu-memory-utilization")));
        assert_eq!(h.cause.as_deref(), Some("inference"));
    }

    #[test]
    fn memory_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("memory-near-full", &used(Some(0.94))).is_empty());
    }

    #[test]
    fn memory_just_above_is_a_hit_on_that_gpu() {
        let hits = eval("memory-near-full", &used(Some(0.96)));
        let h = one_hit(&hits, &[7]);
        assert_eq!(evidence(h), vec![("memory_used_fraction".into(), 0.96, 0.95)]);
        assert_eq!(h.summary, "GPU 7 memory is 96% full (76.8 of 80.0 GiB)");
    }

    #[test]
    fn absent_memory_is_no_hit() {
        assert!(eval("memory-near-full", &used(None)).is_empty());
    }

    #[test]
    fn the_threshold_is_read_from_the_rules_section() {
        let w = used(Some(0.9));
        assert_eq!(eval_toml("memory-near-full", "[rules.memory-near-full]\nmemory_high = 0.85", &w).len(), 1);
    }
}
