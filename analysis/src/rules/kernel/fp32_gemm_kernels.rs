//! `fp32-gemm-kernels`: matrix math in kernels that do not use the tensor cores.

use crate::rules::kernel::{KERNEL, both, process_hit, profiles, who};
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, ev, pct};
use gpuscope_core::{KernelProfile, NodeSnapshot, Severity};
use gpuscope_cupti::{KernelClass, KernelKind, MathPipe, Precision};

settings! {
    /// Share of the matmul/convolution kernel time in kernels without tensor cores (SIMT) at or above this is a hit.
    fp32_share = 0.5,
    /// Matmul/convolution kernels must be at least this share of the process's kernel time to be judged.
    matmul_share_min = 0.05,
    /// GPM tensor activity of the process's GPUs below this is cited as "tensor cores idle" too.
    tensor_low = 0.05,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "fp32-gemm-kernels",
    title: "matrix kernels run without tensor cores",
    scope: RuleScope::Process,
    severity: Severity::Warning,
    timing: KERNEL,
    condition: "on GPUs with tensor cores (CC >= 7.0), >= 50% of the process's matmul/convolution kernel time is in SIMT kernels (no tensor cores; FP64 left to fp64-heavy), in two consecutive profiling windows",
    recommendation: "Same fix as no-tensor-cores: enable automatic mixed precision (bf16 on Ampere+, fp16 with loss scaling on Volta/Turing), or at least allow TF32 (torch.backends.cuda.matmul.allow_tf32 = True, torch.set_float32_matmul_precision(\"high\")). The finding names the top offending kernels where the snapshot carries them (the agent's; the collector's do not), else `gpuscope profile --pid PID` on the node lists them.",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

/// A matrix-math class this rule judges: matmul and convolution, FP64 aside (a DGEMM is not a
/// precision choice the FP32 advice fixes; fp64-heavy judges it).
fn judged(c: &KernelClass) -> bool {
    matches!(c.kind, KernelKind::Gemm | KernelKind::Conv) && c.precision != Precision::Fp64
}

/// Of the judged classes: seconds in SIMT kernels, seconds in all of them, and their share of
/// the process's kernel time. A kernel whose name does not say its pipe counts in the total only,
/// so an unknown name never makes a hit.
fn shares(p: &KernelProfile) -> Option<(f64, f64)> {
    let matmul: f64 = p.classes.iter().filter(|c| judged(&c.class)).map(|c| c.seconds).sum();
    let simt: f64 =
        p.classes.iter().filter(|c| judged(&c.class) && c.class.pipe == MathPipe::Simt).map(|c| c.seconds).sum();
    (matmul > 0.0 && p.kernel_seconds > 0.0).then(|| (simt / matmul, matmul / p.kernel_seconds))
}

/// Whether the GPUs the process runs on have tensor cores: every one that reports its compute
/// capability has 7.0 or more, and one does. The node's GPUs stand in when the agent could not
/// tell which GPUs the process uses.
fn tensor_cores(s: &NodeSnapshot, p: &KernelProfile) -> bool {
    let majors: Vec<u32> = s
        .gpus
        .iter()
        .filter(|g| !g.lost && (p.gpus.is_empty() || p.gpus.contains(&g.index)))
        .filter_map(|g| g.compute_capability.as_deref()?.split('.').next()?.parse().ok())
        .collect();
    !majors.is_empty() && majors.iter().all(|m| *m >= 7)
}

/// The top offending kernels of the latest window, longest first, with their share of its
/// matmul/convolution time: at most three, names cut to 80 characters.
fn offenders(p: &KernelProfile, matmul_s: f64) -> Vec<String> {
    p.top_kernels
        .iter()
        .filter(|k| judged(&k.class) && k.class.pipe == MathPipe::Simt)
        .take(3)
        .map(|k| {
            let name: String = k.name.chars().take(80).collect();
            let cut = if name.len() < k.name.len() { "…" } else { "" };
            format!("{name}{cut} ({})", pct(k.seconds / matmul_s))
        })
        .collect()
}

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.fp32_gemm_kernels;
    let mut out = Vec::new();
    for (node, w, s, p) in profiles(c) {
        if !tensor_cores(s, p) {
            continue;
        }
        let Some(((simt_a, mm_a), (simt_b, mm_b))) = both(w, p, shares) else { continue };
        if simt_a.min(simt_b) < t.fp32_share || mm_a.min(mm_b) < t.matmul_share_min {
            continue;
        }
        let share = simt_a.min(simt_b);
        let matmul_s: f64 = p.classes.iter().filter(|k| judged(&k.class)).map(|k| k.seconds).sum();
        let top = offenders(p, matmul_s);
        let mut summary =
            format!("{} runs {} of its matmul/convolution kernel time without tensor cores", who(p), pct(share));
        if top.is_empty() {
            // Kernel names stay on the agent (never labels): say where to read them.
            summary += &format!(" (its kernels: gpuscope profile --pid {} on {node})", p.pid);
        } else {
            summary += &format!(" (top: {})", top.join(", "));
        }
        let mut evidence = vec![ev("fp32_matmul_share", share, t.fp32_share)];
        // GPM's tensor activity of the process's own GPUs over the smoothing span: the same
        // verdict from the hardware counters, when both say so.
        let tensor: Vec<f64> =
            p.gpus.iter().filter_map(|g| w.gpu_mean(*g, c.now_ms, c.span(), |x| x.tensor_active_ratio)).collect();
        if !p.gpus.is_empty() && tensor.len() == p.gpus.len() {
            let most = tensor.iter().copied().fold(0.0, f64::max);
            if most < t.tensor_low {
                summary += &format!("; GPM confirms the tensor cores idle ({})", pct(most));
                evidence.push(ev("tensor", most, t.tensor_low));
            }
        }
        out.push(process_hit(node, s, p, summary, evidence));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{GpuSample, KernelClassTime, KernelProfile, TopKernel};
    use gpuscope_cupti::{KernelClass, KernelKind, MathPipe, Precision};

    const SGEMM: &str = "ampere_sgemm_128x64_nn";
    const BF16: &str = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1";

    fn class(kind: KernelKind, pipe: MathPipe, precision: Precision) -> KernelClass {
        KernelClass { kind, pipe, precision }
    }

    /// A window with `simt` seconds of SGEMM, `tensor` seconds of bf16 tensor-core GEMM and
    /// 0.1 s of elementwise kernels.
    fn window(simt: f64, tensor: f64) -> KernelProfile {
        let sgemm = class(KernelKind::Gemm, MathPipe::Simt, Precision::Fp32);
        let bf16 = class(KernelKind::Gemm, MathPipe::TensorCore, Precision::Bf16);
        let elementwise = class(KernelKind::Elementwise, MathPipe::Unknown, Precision::Unknown);
        KernelProfile {
            classes: vec![
                KernelClassTime { class: sgemm, count: 100, seconds: simt },
                KernelClassTime { class: bf16, count: 100, seconds: tensor },
                KernelClassTime { class: elementwise, count: 400, seconds: 0.1 },
            ],
            kernel_seconds: simt + tensor + 0.1,
            top_kernels: vec![
                TopKernel { name: SGEMM.into(), class: sgemm, count: 100, seconds: simt },
                TopKernel { name: BF16.into(), class: bf16, count: 100, seconds: tensor },
            ],
            ..kernel_profile(4242)
        }
    }

    fn h100(tensor: Option<f64>) -> GpuSample {
        GpuSample { compute_capability: Some("9.0".into()), tensor_active_ratio: tensor, ..gpu(0) }
    }

    #[test]
    fn half_the_matmul_time_in_simt_kernels_in_two_windows_is_a_hit_naming_the_kernels() {
        // 0.2 s SGEMM of 0.4 s matmul: exactly the threshold, in both windows.
        let w = profiled(60, vec![h100(None)], |_| window(0.2, 0.2));
        let hits = eval("fp32-gemm-kernels", &w);
        let h = one_hit(&hits, &[0]);
        assert_eq!(evidence(h), vec![("fp32_matmul_share".into(), 0.5, 0.5)]);
        assert_eq!(
            h.summary,
            "python (4242) runs 50% of its matmul/convolution kernel time without tensor cores (top: ampere_sgemm_128x64_nn (50%))"
        );
        assert_eq!(h.cause.as_deref(), Some("process 4242"));
    }

    #[test]
    fn just_below_the_share_or_in_one_window_only_is_not_a_hit() {
        assert!(eval("fp32-gemm-kernels", &profiled(60, vec![h100(None)], |_| window(0.199, 0.201))).is_empty());
        // The latest window alone: its first.
        assert!(eval("fp32-gemm-kernels", &profiled(20, vec![h100(None)], |_| window(0.3, 0.0))).is_empty());
        // The window before it was bf16: one window is not enough.
        let w = profiled(60, vec![h100(None)], |k| if k == 2 { window(0.3, 0.0) } else { window(0.0, 0.3) });
        assert!(eval("fp32-gemm-kernels", &w).is_empty());
        // The weaker window is the evidence.
        let w = profiled(60, vec![h100(None)], |k| if k == 2 { window(0.3, 0.0) } else { window(0.3, 0.1) });
        assert_eq!(evidence(&eval("fp32-gemm-kernels", &w)[0])[0], ("fp32_matmul_share".into(), 0.75, 0.5));
    }

    #[test]
    fn gpus_without_tensor_cores_and_tiny_matmul_shares_are_not_judged() {
        let pascal = GpuSample { compute_capability: Some("6.0".into()), ..gpu(0) };
        assert!(eval("fp32-gemm-kernels", &profiled(60, vec![pascal], |_| window(0.3, 0.0))).is_empty());
        assert!(eval("fp32-gemm-kernels", &profiled(60, vec![gpu(0)], |_| window(0.3, 0.0))).is_empty(), "CC unknown");
        // 4 ms of SGEMM among 100 ms of elementwise kernels: under 5% of the kernel time.
        assert!(eval("fp32-gemm-kernels", &profiled(60, vec![h100(None)], |_| window(0.004, 0.0))).is_empty());
        assert_eq!(eval("fp32-gemm-kernels", &profiled(60, vec![h100(None)], |_| window(0.006, 0.0))).len(), 1);
        // The node's GPUs stand in when the process's are unknown.
        let w = profiled(60, vec![h100(None)], |_| KernelProfile { gpus: vec![], ..window(0.3, 0.0) });
        assert_eq!(one_hit(&eval("fp32-gemm-kernels", &w), &[]).evidence.len(), 1);
        // Without kernel names (the collector's snapshots): where to read them.
        let w = profiled(60, vec![h100(None)], |_| KernelProfile { top_kernels: vec![], ..window(0.3, 0.0) });
        assert_eq!(
            eval("fp32-gemm-kernels", &w)[0].summary,
            "python (4242) runs 100% of its matmul/convolution kernel time without tensor cores (its kernels: gpuscope profile --pid 4242 on n0)"
        );
    }

    #[test]
    fn gpm_tensor_activity_near_zero_is_cited_too() {
        let w = profiled(60, vec![h100(Some(0.01))], |_| window(0.3, 0.0));
        let hits = eval("fp32-gemm-kernels", &w);
        let h = one_hit(&hits, &[0]);
        assert_eq!(evidence(h), vec![("fp32_matmul_share".into(), 1.0, 0.5), ("tensor".into(), 0.01, 0.05)]);
        assert!(h.summary.ends_with("; GPM confirms the tensor cores idle (1%)"), "{}", h.summary);
        // Busy tensor cores (another process's work on the GPU) are not cited.
        let w = profiled(60, vec![h100(Some(0.4))], |_| window(0.3, 0.0));
        assert_eq!(evidence(&eval("fp32-gemm-kernels", &w)[0]).len(), 1);
    }

    #[test]
    fn fp64_and_unnamed_pipes_are_not_offenders_and_thresholds_are_read() {
        let dgemm = class(KernelKind::Gemm, MathPipe::Simt, Precision::Fp64);
        let unknown = class(KernelKind::Gemm, MathPipe::Unknown, Precision::Unknown);
        let w = profiled(60, vec![h100(None)], |_| KernelProfile {
            classes: vec![
                KernelClassTime { class: dgemm, count: 10, seconds: 0.3 },
                KernelClassTime { class: unknown, count: 10, seconds: 0.3 },
            ],
            kernel_seconds: 0.6,
            ..kernel_profile(7)
        });
        assert!(eval("fp32-gemm-kernels", &w).is_empty());
        let w = profiled(60, vec![h100(None)], |_| window(0.1, 0.3));
        assert!(eval("fp32-gemm-kernels", &w).is_empty());
        assert_eq!(eval_toml("fp32-gemm-kernels", "[rules.fp32-gemm-kernels]\nfp32_share = 0.2", &w).len(), 1);
    }
}
