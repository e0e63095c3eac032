//! The classifier against real kernel names collected from public profiler output
//! (`kernel_names.tsv`, one name per line with its expected class and its source).

use std::collections::BTreeSet;

use gpuscope_cupti::classify;

const TABLE: &str = include_str!("kernel_names.tsv");

struct Case<'a> {
    line: usize,
    expected: &'a str,
    name: &'a str,
    source: &'a str,
}

fn cases() -> Vec<Case<'static>> {
    TABLE
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#') && !line.trim().is_empty())
        .map(|(index, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "kernel_names.tsv line {}: want 3 tab-separated fields", index + 1);
            Case { line: index + 1, expected: fields[0], name: fields[1], source: fields[2] }
        })
        .collect()
}

#[test]
fn every_real_kernel_name_gets_its_expected_class() {
    let failures: Vec<String> = cases()
        .iter()
        .filter_map(|case| {
            let got = classify(case.name).label();
            (got != case.expected)
                .then(|| format!("line {}: {:?}: expected {}, got {}", case.line, case.name, case.expected, got))
        })
        .collect();
    assert!(failures.is_empty(), "{} misclassified:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_list_holds_at_least_100_distinct_sourced_names() {
    let cases = cases();
    let distinct: BTreeSet<&str> = cases.iter().map(|case| case.name).collect();
    assert!(distinct.len() >= 100, "only {} distinct names", distinct.len());
    for case in &cases {
        assert!(case.source.starts_with("https://"), "line {}: source is not a link: {:?}", case.line, case.source);
    }
}

#[test]
fn the_list_covers_every_class_family() {
    let labels: BTreeSet<String> = cases().iter().map(|case| case.expected.to_string()).collect();
    for wanted in [
        "gemm/tensor/bf16",
        "gemm/tensor/fp16",
        "gemm/tensor/tf32",
        "gemm/tensor/fp8",
        "gemm/simt/fp32",
        "conv/tensor/fp16",
        "conv/simt/fp32",
        "attention/tensor/unknown",
        "elementwise",
        "reduction",
        "normalization",
        "collective/allreduce",
        "collective/sendrecv",
        "memcpy",
        "other",
    ] {
        assert!(labels.contains(wanted), "no real name of class {wanted} in the list");
    }
}
