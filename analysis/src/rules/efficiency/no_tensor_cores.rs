//! `no-tensor-cores`: matrix math in FP32 on a GPU whose tensor cores idle.

use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, gpu_hit, pct, workload};
use gpuscope_core::Severity;

settings! {
    /// FP32 pipe activity at or above this is "matrix math in FP32".
    fp32_high = 0.3,
    /// Without pipe data, SM activity at or above this stands for FP32 work.
    sm_active_low = 0.5,
    /// Tensor activity below this is "tensor cores unused".
    tensor_low = 0.05,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "no-tensor-cores",
    title: "matrix math runs in FP32 on the CUDA cores, not on the tensor cores",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: STD,
    condition: "GPU has tensor cores (CC >= 7.0), fp32 >= 0.3 (or sm_active >= 0.5 without pipe data) and tensor < 0.05",
    recommendation: "Matrix math runs in FP32 on the CUDA cores. Enable automatic mixed precision (bf16 on Ampere+, fp16 with loss scaling on Volta/Turing); on Ampere+ at least allow TF32; on Hopper consider FP8 for transformer layers. Expected gain: several times on matmul-heavy steps.",
    action: None,
    workloads: "any; advice per class (inference: serve in bf16/fp16 or a quantized format; training: mixed precision)",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

/// The advice for an inference server: the precision is a serving choice.
const SERVER_ADVICE: &str = "The model is served in FP32 on the CUDA cores. Serve it in bf16/fp16 (vLLM --dtype bfloat16, TensorRT-LLM/Triton fp16 engines), or quantized (FP8 on Hopper, INT8/INT4 weight-only) where accuracy allows.";

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.no_tensor_cores;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let major =
            g.compute_capability.as_deref().and_then(|cc| cc.split('.').next()).and_then(|m| m.parse::<u32>().ok());
        if major.is_none_or(|m| m < 7) {
            continue;
        }
        // Tensor activity must have been measured: absent is not "unused".
        let Some(tensor) = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.tensor_active_ratio) else { continue };
        let fp32 = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.fp32_active_ratio);
        let busy = match fp32 {
            Some(f) => (f >= t.fp32_high).then(|| ev("fp32", f, t.fp32_high)),
            None => {
                c.activity(w, g.index).filter(|(a, _)| *a >= t.sm_active_low).map(|(a, n)| ev(n, a, t.sm_active_low))
            }
        };
        if let Some(e) = busy
            && tensor < t.tensor_low
        {
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} does its math in FP32 ({} FP32 pipe) while its tensor cores idle ({})",
                    g.index,
                    pct(e.value),
                    pct(tensor)
                ),
                vec![e, ev("tensor", tensor, t.tensor_low)],
            );
            if workload(s, g.index) == Some(gpuscope_core::WorkloadClass::Inference) {
                h.recommendation = Some(SERVER_ADVICE.to_string());
                h.cause = Some("inference".to_string());
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

    fn hopper(fp32: Option<f64>, sm: Option<f64>, tensor: Option<f64>) -> crate::window::NodeWindow {
        let g = GpuSample {
            compute_capability: Some("9.0".into()),
            fp32_active_ratio: fp32,
            sm_active_ratio: sm,
            tensor_active_ratio: tensor,
            ..gpu(2)
        };
        steady(node("n0", vec![gpu(0), g]))
    }

    #[test]
    fn fp32_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("no-tensor-cores", &hopper(Some(0.29), Some(0.9), Some(0.0))).is_empty());
    }

    #[test]
    fn fp32_just_above_with_idle_tensor_cores_is_a_hit_on_that_gpu() {
        let hits = eval("no-tensor-cores", &hopper(Some(0.31), Some(0.9), Some(0.04)));
        let h = one_hit(&hits, &[2]);
        assert_eq!(evidence(h), vec![("fp32".into(), 0.31, 0.3), ("tensor".into(), 0.04, 0.05)]);
        assert!(eval("no-tensor-cores", &hopper(Some(0.31), Some(0.9), Some(0.06))).is_empty(), "tensor at 6 %");
    }

    #[test]
    fn without_pipe_data_sm_activity_stands_in() {
        let hits = eval("no-tensor-cores", &hopper(None, Some(0.51), Some(0.0)));
        assert_eq!(evidence(one_hit(&hits, &[2])), vec![("sm_active".into(), 0.51, 0.5), ("tensor".into(), 0.0, 0.05)]);
        assert!(eval("no-tensor-cores", &hopper(None, Some(0.49), Some(0.0))).is_empty());
    }

    #[test]
    fn absent_tensor_activity_is_not_unused_tensor_cores() {
        assert!(eval("no-tensor-cores", &hopper(Some(0.9), Some(0.9), None)).is_empty());
        let volta_less = GpuSample {
            compute_capability: None,
            fp32_active_ratio: Some(0.9),
            tensor_active_ratio: Some(0.0),
            ..gpu(0)
        };
        assert!(eval("no-tensor-cores", &steady(node("n0", vec![volta_less]))).is_empty(), "no compute capability");
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let w = hopper(Some(0.29), Some(0.9), Some(0.0));
        assert_eq!(eval_toml("no-tensor-cores", "[rules.no-tensor-cores]\nfp32_high = 0.25", &w).len(), 1);
        let w = hopper(Some(0.9), Some(0.9), Some(0.06));
        assert_eq!(eval_toml("no-tensor-cores", "[rules.no-tensor-cores]\ntensor_low = 0.1", &w).len(), 1);
        let w = hopper(None, Some(0.45), Some(0.0));
        assert_eq!(eval_toml("no-tensor-cores", "[rules.no-tensor-cores]\nsm_active_low = 0.4", &w).len(), 1);
    }

    /// A server is told about serving precision, not about training with mixed precision.
    #[test]
    fn an_inference_server_gets_serving_advice() {
        let g = GpuSample {
            compute_capability: Some("9.0".into()),
            fp32_active_ratio: Some(0.5),
            tensor_active_ratio: Some(0.0),
            ..gpu(2)
        };
        let p = gpuscope_core::ProcessSample {
            workload: Some(gpuscope_core::WorkloadClass::Inference),
            ..process(2, 1 << 30)
        };
        let w = steady(gpuscope_core::NodeSnapshot { processes: vec![p], ..node("n0", vec![g]) });
        let hits = eval("no-tensor-cores", &w);
        let h = one_hit(&hits, &[2]);
        assert!(h.recommendation.as_deref().is_some_and(|r| r.contains("Serve it in bf16")), "{h:#?}");
        assert_eq!(h.cause.as_deref(), Some("inference"));
    }
}
