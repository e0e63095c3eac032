//! The `[cuda]` table: defaults, and bad tables refused with the key named.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpuscope_sim::Scenario;

const BASE: &str = "name = \"c\"\n[[gpus]]\nmodel = \"H100-SXM5-80GB\"\ncount = 2\n\
    [[processes]]\npid = 5\nname = \"p\"\ngpus = [0, 1]\n[[processes]]\npid = 6\nname = \"launcher\"\ngpus = []\n\
    [[phases]]\nname = \"p\"\nduration_s = 1\n";

const KERNEL: &str = "[[cuda.kernels]]\nname = \"k\"\nshare = 1\nduration_us = 10\n";

fn load(cuda: &str) -> Result<Scenario, String> {
    Scenario::from_toml(&format!("{BASE}{cuda}"), "c.toml").map_err(|e| e.to_string())
}

#[test]
fn a_cuda_table_takes_its_defaults() {
    let s = load(&format!("[cuda]\npid = 5\nlaunches_per_s = 100\n{KERNEL}")).unwrap();
    let c = s.cuda.unwrap();
    assert_eq!(c.name, "c", "the workload is named after the scenario");
    assert_eq!((c.device, c.launch_latency_us), (0, 4.0));
    let k = &c.kernels[0];
    assert_eq!((k.grid, k.block, k.stream, k.graph), ([1, 1, 1], [128, 1, 1], 7, false));
    assert!(load("").unwrap().cuda.is_none(), "scenarios without [cuda] stay valid");
}

#[test]
fn bad_cuda_tables_name_the_key() {
    let cases = [
        (format!("[cuda]\npid = 9\nlaunches_per_s = 100\n{KERNEL}"), "cuda.pid 9 is not a process"),
        (format!("[cuda]\npid = 6\nlaunches_per_s = 100\n{KERNEL}"), "holds no GPU"),
        (format!("[cuda]\npid = 5\ndevice = 2\nlaunches_per_s = 100\n{KERNEL}"), "cuda.device 2 is beyond the 2 GPUs"),
        ("[cuda]\npid = 5\nlaunches_per_s = 100\nkernels = []\n".to_string(), "cuda.kernels"),
        (format!("[cuda]\npid = 5\nlaunches_per_s = 0\n{KERNEL}"), "cuda.launches_per_s"),
        (format!("[cuda]\npid = 5\nlaunches_per_s = 200000\n{KERNEL}"), "busy 2.00 s per second"),
        (
            "[cuda]\npid = 5\nlaunches_per_s = 100\n[[cuda.kernels]]\nname = \"k\"\nshare = 0\nduration_us = 1\n"
                .to_string(),
            "cuda.kernels.share of k",
        ),
        (
            "[cuda]\npid = 5\nlaunches_per_s = 100\n[[cuda.kernels]]\nname = \"k\"\nshare = 1\nduration_us = 1\n\
             block = [64, 32, 1]\n"
                .to_string(),
            "more than 1024 threads",
        ),
        (
            format!(
                "[cuda]\npid = 5\nlaunches_per_s = 100\n{KERNEL}[[cuda.copies]]\nkind = \"htod\"\nbytes = 1\nduration_us = 1\nevery = 1\n"
            ),
            "cuda.copies.host",
        ),
        (
            format!(
                "[cuda]\npid = 5\nlaunches_per_s = 100\n{KERNEL}[[cuda.copies]]\nkind = \"dtod\"\nhost = \"pinned\"\nbytes = 1\nduration_us = 1\nevery = 1\n"
            ),
            "not allowed on a dtod copy",
        ),
        (
            format!(
                "[cuda]\npid = 5\nlaunches_per_s = 1000\n{KERNEL}[[cuda.syncs]]\nkind = \"device\"\nduration_us = 2000\nevery = 1\n"
            ),
            "cuda.syncs and cuda.idle take 2000.0 µs",
        ),
        (format!("[cuda]\npid = 5\nlaunches_per_s = 100\nrate = 3\n{KERNEL}"), "unknown field `rate`"),
        (
            format!(
                "[cuda]\npid = 5\nlaunches_per_s = 100\n{KERNEL}[[cuda.syncs]]\nkind = \"context\"\nduration_us = 1\nevery = 1\n"
            ),
            "unknown variant `context`",
        ),
    ];
    for (cuda, want) in cases {
        let err = load(&cuda).expect_err(&cuda);
        assert!(err.contains(want), "{cuda}\n→ {err}\n(wanted {want:?})");
        assert!(err.contains("c.toml"), "{err}");
    }
}

/// The kernel-level rules (`analysis/src/rules/kernel/`), which need CUPTI records.
const KERNEL_RULES: &[&str] = &["fp32-gemm-kernels", "pageable-memcpy", "sync-heavy", "gpu-gaps", "short-kernels"];

#[test]
fn the_built_in_cuda_workloads_expect_kernel_level_rules_only() {
    let mut workloads = Vec::new();
    for (name, _) in gpuscope_sim::scenario::BUILTIN {
        let s = Scenario::load(name).unwrap();
        let Some(c) = s.cuda else { continue };
        for id in &c.expect {
            assert!(KERNEL_RULES.contains(&id.as_str()), "{name}: cuda.expect {id} is not a kernel-level rule");
        }
        for id in &s.expect {
            assert!(!KERNEL_RULES.contains(&id.as_str()), "{name}: kernel-level {id} belongs in cuda.expect");
        }
        workloads.push(c.name);
    }
    workloads.sort();
    assert_eq!(
        workloads,
        ["cuda-bf16-tensor", "cuda-decode-short-kernels", "cuda-fp32-sgemm", "cuda-pageable-copies", "cuda-sync-heavy"]
    );
}
