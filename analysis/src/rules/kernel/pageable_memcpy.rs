//! `pageable-memcpy`: asynchronous copies that pageable host memory makes synchronous.

use crate::rules::kernel::{KERNEL, both, process_hit, profiles, who};
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, ev};
use gpuscope_core::Severity;

settings! {
    /// Asynchronous copies from or to pageable host memory per profiling window at or above this is a hit.
    async_pageable_copies = 1.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "pageable-memcpy",
    title: "copies from pageable host memory",
    scope: RuleScope::Process,
    severity: Severity::Warning,
    timing: KERNEL,
    condition: "asynchronous copies from or to pageable host memory, in two consecutive profiling windows",
    recommendation: "The copy silently becomes synchronous. Pin host memory (pin_memory=True, tensor.pin_memory()).",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

/// Bytes in the unit that reads best (binary prefixes, as the copies are buffers).
fn bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.pageable_memcpy;
    let mut out = Vec::new();
    for (node, w, s, p) in profiles(c) {
        let Some((a, b)) = both(w, p, |p| Some(p.async_pageable_copies)) else { continue };
        let low = a.min(b);
        if low as f64 >= t.async_pageable_copies {
            out.push(process_hit(
                node,
                s,
                p,
                format!(
                    "{} issues asynchronous copies from or to pageable host memory, which run synchronously ({} in the latest profiling window; {} copies, {} from pageable memory in all)",
                    who(p),
                    p.async_pageable_copies,
                    p.pageable_copies,
                    bytes(p.pageable_copy_bytes)
                ),
                vec![
                    ev("async_pageable_copies", low as f64, t.async_pageable_copies),
                    ev("pageable_copy_bytes", p.pageable_copy_bytes as f64, 0.0),
                ],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::KernelProfile;

    fn copies(async_pageable: u64) -> KernelProfile {
        KernelProfile {
            async_pageable_copies: async_pageable,
            pageable_copies: async_pageable + 2,
            pageable_copy_bytes: (async_pageable + 2) * (48 << 20),
            ..kernel_profile(4242)
        }
    }

    #[test]
    fn async_pageable_copies_in_two_windows_are_a_hit() {
        let w = profiled(60, vec![gpu(0)], |k| copies(if k == 2 { 6 } else { 1 }));
        let hits = eval("pageable-memcpy", &w);
        let h = one_hit(&hits, &[0]);
        // 8 copies of 48 MiB.
        assert_eq!(
            evidence(h),
            vec![("async_pageable_copies".into(), 1.0, 1.0), ("pageable_copy_bytes".into(), 402_653_184.0, 0.0)]
        );
        assert_eq!(
            h.summary,
            "python (4242) issues asynchronous copies from or to pageable host memory, which run synchronously (6 in the latest profiling window; 8 copies, 384.0 MiB from pageable memory in all)"
        );
    }

    #[test]
    fn synchronous_pageable_copies_or_one_window_are_not_a_hit() {
        // Two synchronous pageable copies a window: cudaMemcpy waits anyway.
        assert!(eval("pageable-memcpy", &profiled(60, vec![gpu(0)], |_| copies(0))).is_empty());
        let w = profiled(60, vec![gpu(0)], |k| copies(if k == 1 { 0 } else { 5 }));
        assert!(eval("pageable-memcpy", &w).is_empty(), "the window before the latest had none");
        let w = profiled(60, vec![gpu(0)], |_| copies(3));
        assert!(eval_toml("pageable-memcpy", "[rules.pageable-memcpy]\nasync_pageable_copies = 4", &w).is_empty());
        assert_eq!(eval("pageable-memcpy", &w).len(), 1);
    }

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(3 << 30), "3.0 GiB");
    }
}
