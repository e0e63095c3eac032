//! The generated rules through Prometheus's own tool (`promtool`, Debian's package): the rule
//! files pass `promtool check rules`, and `promtool test rules` unit tests show that every alert
//! fires on bad series with the expected labels and annotations (summary, observed value,
//! advice) and stays quiet on healthy ones.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use gpuscope_analysis::RULES;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

fn promtool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is installed (scripts/test installs Debian's prometheus package)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn promtool_checks_the_rules_and_the_manifests_spec() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo("dashboards/alerts.yml"), dir.path().join("alerts.yml")).unwrap();
    let out = promtool(dir.path(), &["check", "rules", "alerts.yml"]);
    let alerts: usize = RULES.iter().map(|r| 1 + r.promql.len()).sum();
    // The recording rules the dashboards read (7) and the advice of every rule.
    let expected = alerts + 7 + RULES.len();
    assert!(out.contains(&format!("SUCCESS: {expected} rules found")), "{out}");
    // The PrometheusRule's spec is the same rule file, indented under `spec:`.
    let manifest = std::fs::read_to_string(repo("dashboards/prometheusrule.yaml")).unwrap();
    let spec = manifest.split_once("\nspec:\n").unwrap().1;
    let groups: String = spec.lines().map(|l| format!("{}\n", l.strip_prefix("  ").unwrap())).collect();
    std::fs::write(dir.path().join("spec.yml"), groups).unwrap();
    let out = promtool(dir.path(), &["check", "rules", "spec.yml"]);
    assert!(out.contains(&format!("SUCCESS: {expected} rules found")), "{out}");
    assert!(manifest.contains("kind: PrometheusRule\n") && manifest.contains("apiVersion: monitoring.coreos.com/v1\n"));
}

/// Labels of the GPU series an agent serves, as Prometheus stores them.
fn gpu(instance: &str, gpu: u32) -> String {
    format!(
        "instance=\"{instance}\", job=\"gpuscope\", gpu=\"{gpu}\", uuid=\"GPU-{gpu}\", model=\"NVIDIA H100 80GB HBM3\""
    )
}

/// The labels of `gpu(instance, gpu)` as a YAML map body.
fn gpu_labels(instance: &str, gpu: u32) -> Vec<(String, String)> {
    vec![
        ("instance".into(), instance.into()),
        ("job".into(), "gpuscope".into()),
        ("gpu".into(), gpu.to_string()),
        ("uuid".into(), format!("GPU-{gpu}")),
        ("model".into(), "NVIDIA H100 80GB HBM3".into()),
    ]
}

/// One expected alert: its labels besides the rule's own, and its rendered summary and value.
struct Expect {
    labels: Vec<(String, String)>,
    summary: String,
    observed: &'static str,
}

/// One unit test: the input series (bad on n1, healthy elsewhere), when to look, what fires.
struct Case {
    alert: &'static str,
    series: Vec<(String, String)>,
    eval: &'static str,
    expect: Vec<Expect>,
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn s(name: &str, labels: &str, values: &str) -> (String, String) {
    (format!("{name}{{{labels}}}"), values.to_string())
}

fn with(mut l: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    l
}

/// The hand-written cases of the standalone PromQL alerts.
fn promql_cases() -> Vec<Case> {
    let n1 = "n1:9466";
    let (bad, ok, ok2) = (gpu(n1, 3), gpu("n2:9466", 3), gpu("n3:9466", 3));
    let alternating: String = (0..50).map(|i| if i % 2 == 0 { "0" } else { "1" }).collect::<Vec<_>>().join(" ");
    vec![
        Case {
            alert: "GpuscopeGpuLost",
            series: vec![
                s("gpuscope_gpu_up", &bad, "1 1 0 0 0"),
                s("gpuscope_gpu_up", &ok, "1 1 1 1 1"),
                // XID 79 on a GPU that still answers.
                s("gpuscope_gpu_xid_errors_total", &format!("{}, xid=\"79\"", gpu(n1, 5)), "_ _ 1 1 1"),
                s("gpuscope_gpu_xid_errors_total", &format!("{ok}, xid=\"13\""), "_ _ 1 1 1"),
            ],
            eval: "1m",
            expect: vec![
                Expect {
                    labels: gpu_labels(n1, 3),
                    summary: "GPU 3 on n1:9466 has fallen off the bus (lost, or XID 79).".into(),
                    observed: "0",
                },
                Expect {
                    labels: gpu_labels(n1, 5),
                    summary: "GPU 5 on n1:9466 has fallen off the bus (lost, or XID 79).".into(),
                    observed: "1",
                },
            ],
        },
        Case {
            alert: "GpuscopeXidError",
            series: vec![
                s("gpuscope_gpu_xid_errors_total", &format!("{bad}, xid=\"154\""), "_ _ 1 1 1"),
                s("gpuscope_gpu_xid_errors_total", &format!("{ok}, xid=\"13\""), "_ _ 1 1 1"),
            ],
            eval: "1m",
            expect: vec![Expect {
                labels: with(gpu_labels(n1, 3), &[("xid", "154")]),
                summary: "GPU 3 on n1:9466 reported XID 154 (1 in the last 5 minutes), a code outside the classified ones.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopeXidErrorReset",
            series: vec![
                s("gpuscope_gpu_xid_errors_total", &format!("{bad}, xid=\"62\""), "_ _ 1 1 1"),
                s("gpuscope_gpu_xid_errors_total", &format!("{ok}, xid=\"13\""), "_ _ 1 1 1"),
            ],
            eval: "1m",
            expect: vec![Expect {
                labels: with(gpu_labels(n1, 3), &[("xid", "62")]),
                summary: "GPU 3 on n1:9466 reported XID 62 (1 in the last 5 minutes): a GPU reset is needed.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopeXidErrorReboot",
            series: vec![
                s("gpuscope_gpu_xid_errors_total", &format!("{bad}, xid=\"79\""), "_ _ 1 1 1"),
                s("gpuscope_gpu_xid_errors_total", &format!("{ok}, xid=\"13\""), "_ _ 1 1 1"),
            ],
            eval: "1m",
            expect: vec![Expect {
                labels: with(gpu_labels(n1, 3), &[("xid", "79")]),
                summary: "GPU 3 on n1:9466 reported XID 79 (1 in the last 5 minutes): the GPU fell off the bus.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopeXidErrorNvlink",
            series: vec![
                s("gpuscope_gpu_xid_errors_total", &format!("{bad}, xid=\"74\""), "_ _ 1 1 1"),
                s("gpuscope_gpu_xid_errors_total", &format!("{ok}, xid=\"13\""), "_ _ 1 1 1"),
            ],
            eval: "1m",
            expect: vec![Expect {
                labels: with(gpu_labels(n1, 3), &[("xid", "74")]),
                summary: "GPU 3 on n1:9466 reported XID 74 (1 in the last 5 minutes): an NVLink fault.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopeXidErrorMemory",
            series: vec![
                s("gpuscope_gpu_xid_errors_total", &format!("{bad}, xid=\"48\""), "_ _ 1 1 1"),
                s("gpuscope_gpu_xid_errors_total", &format!("{ok}, xid=\"13\""), "_ _ 1 1 1"),
            ],
            eval: "1m",
            expect: vec![Expect {
                labels: with(gpu_labels(n1, 3), &[("xid", "48")]),
                summary: "GPU 3 on n1:9466 reported XID 48 (1 in the last 5 minutes): a memory fault.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopeXidErrorApplication",
            series: vec![
                s("gpuscope_gpu_xid_errors_total", &format!("{bad}, xid=\"13\""), "_ _ 1 1 1"),
                s("gpuscope_gpu_xid_errors_total", &format!("{ok}, xid=\"48\""), "_ _ 1 1 1"),
            ],
            eval: "1m",
            expect: vec![Expect {
                labels: with(gpu_labels(n1, 3), &[("xid", "13")]),
                summary: "GPU 3 on n1:9466 reported XID 13 (1 in the last 5 minutes): an application fault.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopeEccUncorrectable",
            series: vec![
                s("gpuscope_gpu_ecc_uncorrected_volatile_errors_total", &bad, "0 0 0 1 1"),
                s("gpuscope_gpu_ecc_uncorrected_volatile_errors_total", &ok, "0 0 0 0 0"),
            ],
            eval: "1m",
            expect: vec![Expect {
                labels: gpu_labels(n1, 3),
                summary: "GPU 3 on n1:9466 had 1 uncorrectable ECC error(s) in the last 5 minutes.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopeRowRemapPending",
            series: vec![s("gpuscope_gpu_row_remap_pending", &bad, "0 0 1 1 1"), s("gpuscope_gpu_row_remap_pending", &ok, "0 0 0 0 0")],
            eval: "1m",
            expect: vec![Expect {
                labels: gpu_labels(n1, 3),
                summary: "GPU 3 on n1:9466: a row remapping is pending until the next reset.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopeRowRemapFailed",
            series: vec![s("gpuscope_gpu_row_remap_failed", &bad, "0 0 1 1 1"), s("gpuscope_gpu_row_remap_failed", &ok, "0 0 0 0 0")],
            eval: "1m",
            expect: vec![Expect {
                labels: gpu_labels(n1, 3),
                summary: "GPU 3 on n1:9466: a row remapping failed.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopeRetiredPages",
            series: vec![
                s("gpuscope_gpu_retired_pages", &bad, "58 59 60 60 60"),
                s("gpuscope_gpu_retired_pages_pending", &bad, "0 0 0 0 0"),
                s("gpuscope_gpu_retired_pages", &ok, "3 3 3 3 3"),
                s("gpuscope_gpu_retired_pages_pending", &ok, "0 0 0 0 0"),
            ],
            eval: "1m",
            expect: vec![Expect {
                labels: gpu_labels(n1, 3),
                summary: "GPU 3 on n1:9466: a page retirement is pending or the retired pages (60) reached the limit of 60.".into(),
                observed: "60",
            }],
        },
        Case {
            alert: "GpuscopePcieReplay",
            series: vec![s("gpuscope_gpu_pcie_replays_total", &bad, "0 5 10 15 20"), s("gpuscope_gpu_pcie_replays_total", &ok, "0 0 1 1 1")],
            eval: "1m",
            expect: vec![Expect {
                labels: gpu_labels(n1, 3),
                summary: "GPU 3 on n1:9466: the PCIe link replays 20 times a minute (more than 8).".into(),
                observed: "20",
            }],
        },
        Case {
            alert: "GpuscopeNvlinkErrors",
            series: vec![
                s("gpuscope_gpu_nvlink_crc_errors_total", &format!("{bad}, link=\"0\""), "0 0 0 5 5"),
                s("gpuscope_gpu_nvlink_replay_errors_total", &format!("{bad}, link=\"0\""), "0 0 0 0 0"),
                s("gpuscope_gpu_nvlink_recovery_errors_total", &format!("{bad}, link=\"0\""), "0 0 0 0 0"),
                s("gpuscope_gpu_nvlink_up", &format!("{}, link=\"1\"", gpu(n1, 4)), "1 1 0 0 0"),
                s("gpuscope_gpu_nvlink_crc_errors_total", &format!("{ok}, link=\"0\""), "0 0 0 0 0"),
                s("gpuscope_gpu_nvlink_replay_errors_total", &format!("{ok}, link=\"0\""), "0 0 0 0 0"),
                s("gpuscope_gpu_nvlink_recovery_errors_total", &format!("{ok}, link=\"0\""), "0 0 0 0 0"),
                s("gpuscope_gpu_nvlink_up", &format!("{ok}, link=\"0\""), "1 1 1 1 1"),
            ],
            eval: "1m",
            expect: vec![
                Expect {
                    labels: gpu_labels(n1, 3),
                    summary: "GPU 3 on n1:9466: 5 NVLink errors in the last 2 minutes, or links down.".into(),
                    observed: "5",
                },
                Expect {
                    labels: gpu_labels(n1, 4),
                    summary: "GPU 4 on n1:9466: 1 NVLink errors in the last 2 minutes, or links down.".into(),
                    observed: "1",
                },
            ],
        },
        Case {
            alert: "GpuscopeNvlinkErrorsCritical",
            series: vec![
                s("gpuscope_gpu_nvlink_crc_errors_total", &format!("{bad}, link=\"0\""), "0 3000 6000 9000 12000"),
                s("gpuscope_gpu_nvlink_crc_errors_total", &format!("{ok}, link=\"0\""), "0 15 30 45 60"),
            ],
            eval: "1m",
            expect: vec![Expect {
                labels: gpu_labels(n1, 3),
                summary: "GPU 3 on n1:9466: 200 NVLink CRC errors per second (100 or more).".into(),
                observed: "200",
            }],
        },
        Case {
            alert: "GpuscopeNetLinkDegraded",
            series: {
                let port = |inst: &str, port: &str| format!("instance=\"{inst}\", job=\"gpuscope\", interface=\"{port}\", kind=\"infiniband\"");
                let mut v = Vec::new();
                // n1: mlx5_1/1 trained at 2X 200 Gb/s; mlx5_0/1 fine. n2: counts 5 symbol errors a
                // minute (below 10) and recovered from nothing.
                for (inst, name, rate, width, symbols) in [
                    (n1, "mlx5_1/1", "25000000000x8", "2x8", "0x8"),
                    (n1, "mlx5_0/1", "50000000000x8", "4x8", "0x8"),
                    ("n2:9466", "mlx5_0/1", "50000000000x8", "4x8", "0+1.25x8"),
                ] {
                    let l = port(inst, name);
                    v.push(s("gpuscope_host_network_speed_bytes_per_second", &l, rate));
                    v.push(s("gpuscope_host_network_speed_max_bytes_per_second", &l, "50000000000x8"));
                    v.push(s("gpuscope_host_network_link_width", &l, width));
                    v.push(s("gpuscope_host_network_link_width_max", &l, "4x8"));
                    v.push(s("gpuscope_host_network_infiniband_state", &l, "4x8"));
                    v.push(s("gpuscope_host_network_infiniband_physical_state", &l, "5x8"));
                    v.push(s("gpuscope_host_network_infiniband_symbol_errors_total", &l, symbols));
                    v.push(s("gpuscope_host_network_receive_errors_total", &l, "0x8"));
                    v.push(s("gpuscope_host_network_infiniband_link_error_recovery_total", &l, "0x8"));
                    v.push(s("gpuscope_host_network_infiniband_link_downed_total", &l, "0x8"));
                }
                v
            },
            eval: "2m",
            expect: vec![Expect {
                labels: vec![("instance".into(), n1.into())],
                summary: "n1:9466: 1 InfiniBand port(s) trained below the adapter's maximum, not active, or counting errors.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopePowerCapped",
            series: vec![
                s("gpuscope_gpu_clock_event_active", &format!("{bad}, reason=\"sw_power_cap\""), "1x12"),
                s("gpuscope_gpu_sm_clock_hertz", &bad, "1500000000x12"),
                s("gpuscope_gpu_sm_clock_max_hertz", &bad, "1980000000x12"),
                s("gpuscope_gpu_clock_event_active", &format!("{ok}, reason=\"sw_power_cap\""), "0x12"),
                s("gpuscope_gpu_sm_clock_hertz", &ok, "1980000000x12"),
                s("gpuscope_gpu_sm_clock_max_hertz", &ok, "1980000000x12"),
            ],
            eval: "2m",
            expect: vec![Expect {
                labels: with(gpu_labels(n1, 3), &[("reason", "sw_power_cap")]),
                summary: "GPU 3 on n1:9466 is held at its power cap 100% of the time with the SM clock below 90% of its maximum.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopeThermalThrottle",
            series: vec![
                s("gpuscope_gpu_clock_event_active", &format!("{bad}, reason=\"sw_thermal_slowdown\""), "1x12"),
                s("gpuscope_gpu_clock_event_active", &format!("{bad}, reason=\"hw_thermal_slowdown\""), "0x12"),
                s("gpuscope_gpu_temperature_celsius", &bad, "70x12"),
                s("gpuscope_gpu_slowdown_temperature_celsius", &bad, "87x12"),
                s("gpuscope_gpu_clock_event_active", &format!("{ok}, reason=\"sw_thermal_slowdown\""), "0x12"),
                s("gpuscope_gpu_clock_event_active", &format!("{ok}, reason=\"hw_thermal_slowdown\""), "0x12"),
                s("gpuscope_gpu_temperature_celsius", &ok, "60x12"),
                s("gpuscope_gpu_slowdown_temperature_celsius", &ok, "87x12"),
                // Hot but not yet slowed: within 5 C of the threshold.
                s("gpuscope_gpu_temperature_celsius", &ok2, "83x12"),
                s("gpuscope_gpu_slowdown_temperature_celsius", &ok2, "87x12"),
            ],
            eval: "2m",
            expect: vec![
                Expect {
                    labels: gpu_labels(n1, 3),
                    summary: "GPU 3 on n1:9466 is slowed for heat (thermal slowdown active, or within 5 C of its slowdown temperature).".into(),
                    observed: "1",
                },
                Expect {
                    labels: gpu_labels("n3:9466", 3),
                    summary: "GPU 3 on n3:9466 is slowed for heat (thermal slowdown active, or within 5 C of its slowdown temperature).".into(),
                    observed: "4",
                },
            ],
        },
        Case {
            alert: "GpuscopeHwSlowdown",
            series: vec![
                s("gpuscope_gpu_clock_event_active", &format!("{bad}, reason=\"hw_slowdown\""), &alternating),
                s("gpuscope_gpu_clock_event_active", &format!("{bad}, reason=\"hw_power_brake_slowdown\""), "0x49"),
                s("gpuscope_gpu_clock_event_active", &format!("{ok}, reason=\"hw_slowdown\""), "0x49"),
                s("gpuscope_gpu_clock_event_active", &format!("{ok}, reason=\"hw_power_brake_slowdown\""), "0x49"),
            ],
            eval: "12m",
            expect: vec![Expect {
                labels: gpu_labels(n1, 3),
                summary: "GPU 3 on n1:9466: hardware slowdown or power brake 2.0 times a minute over 10 minutes.".into(),
                observed: "2",
            }],
        },
        Case {
            alert: "GpuscopeAppClocksCapped",
            series: vec![
                s("gpuscope_gpu_clock_event_active", &format!("{bad}, reason=\"applications_clocks_setting\""), "1x12"),
                s("gpuscope_gpu_clock_event_active", &format!("{ok}, reason=\"applications_clocks_setting\""), "0x12"),
            ],
            eval: "2m",
            expect: vec![Expect {
                labels: with(gpu_labels(n1, 3), &[("reason", "applications_clocks_setting")]),
                summary: "GPU 3 on n1:9466: application clocks cap the GPU.".into(),
                observed: "1",
            }],
        },
        Case {
            alert: "GpuscopePcieLinkDegraded",
            series: vec![
                s("gpuscope_gpu_pcie_link_generation", &bad, "3x12"),
                s("gpuscope_gpu_pcie_link_generation_max", &bad, "5x12"),
                s("gpuscope_gpu_pcie_link_width", &bad, "16x12"),
                s("gpuscope_gpu_pcie_link_width_max", &bad, "16x12"),
                s("gpuscope_gpu_utilization_ratio", &bad, "0.9x12"),
                s("gpuscope_gpu_pcie_link_generation", &ok, "5x12"),
                s("gpuscope_gpu_pcie_link_generation_max", &ok, "5x12"),
                s("gpuscope_gpu_pcie_link_width", &ok, "16x12"),
                s("gpuscope_gpu_pcie_link_width_max", &ok, "16x12"),
                s("gpuscope_gpu_utilization_ratio", &ok, "0.9x12"),
                // Trained down while idle saves power: not a fault.
                s("gpuscope_gpu_pcie_link_generation", &ok2, "1x12"),
                s("gpuscope_gpu_pcie_link_generation_max", &ok2, "5x12"),
                s("gpuscope_gpu_pcie_link_width", &ok2, "16x12"),
                s("gpuscope_gpu_pcie_link_width_max", &ok2, "16x12"),
                s("gpuscope_gpu_utilization_ratio", &ok2, "0x12"),
            ],
            eval: "2m",
            expect: vec![Expect {
                labels: gpu_labels(n1, 3),
                summary: "GPU 3 on n1:9466: the PCIe link trained below its maximum generation or width under load.".into(),
                observed: "3",
            }],
        },
        Case {
            alert: "GpuscopeGpuIdleAllocated",
            series: vec![
                s("gpuscope_gpu_sm_active_ratio", &bad, "0.01x60"),
                s("gpuscope_process_gpu_memory_bytes", &format!("{bad}, pid=\"7\", process=\"jupyter\""), "45000000000x60"),
                // Idle and free: nothing to release.
                s("gpuscope_gpu_sm_active_ratio", &ok, "0.01x60"),
                // Held and busy.
                s("gpuscope_gpu_sm_active_ratio", &ok2, "0.8x60"),
                s("gpuscope_process_gpu_memory_bytes", &format!("{ok2}, pid=\"8\", process=\"python\""), "45000000000x60"),
            ],
            eval: "11m",
            expect: vec![Expect {
                labels: gpu_labels(n1, 3),
                summary: "GPU 3 on n1:9466 is held by a process but idle (activity 1%) for 10 minutes.".into(),
                observed: "0.01",
            }],
        },
    ]
}

/// One case per rule's collector finding: the rule's open finding fires its alert; another
/// rule's finding on another node does not.
fn finding_cases() -> Vec<Case> {
    RULES
        .iter()
        .map(|r| {
            let other = RULES.iter().find(|o| o.id != r.id).unwrap();
            let finding = |rule: &str, sev: &str, node: &str| {
                s(
                    "gpuscope_finding_active",
                    &format!("instance=\"c:9467\", job=\"gpuscope-collector\", rule=\"{rule}\", severity=\"{sev}\", node=\"{node}\", gpu=\"0,1\", gpuscope_job=\"llm\""),
                    "1x8",
                )
            };
            Case {
                alert: Box::leak(format!("GpuscopeFinding{}", camel(r.id)).into_boxed_str()),
                series: vec![finding(r.id, r.severity.as_str(), "n1"), finding(other.id, other.severity.as_str(), "n2")],
                eval: "1m",
                expect: vec![Expect {
                    labels: vec![
                        ("rule".into(), r.id.into()),
                        ("severity".into(), r.severity.as_str().into()),
                        ("node".into(), "n1".into()),
                        ("gpu".into(), "0,1".into()),
                        ("gpuscope_job".into(), "llm".into()),
                        ("source".into(), "collector".into()),
                    ],
                    summary: format!("n1 GPU 0,1: {}.", r.title),
                    observed: "",
                }],
            }
        })
        .collect()
}

fn camel(id: &str) -> String {
    id.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect()
}

/// The promtool test file for `cases`.
fn test_file(cases: &[Case]) -> String {
    let mut y = String::from("rule_files: ['alerts.yml']\nevaluation_interval: 15s\ntests:\n");
    for c in cases {
        let (rule, promql) =
            if let Some(r) = RULES.iter().find(|r| format!("GpuscopeFinding{}", camel(r.id)) == c.alert) {
                (r, false)
            } else {
                let r = RULES
                    .iter()
                    .find(|r| r.promql.iter().any(|a| format!("Gpuscope{}{}", camel(r.id), a.variant) == c.alert))
                    .unwrap_or_else(|| panic!("no rule has alert {}", c.alert));
                (r, true)
            };
        writeln!(y, "  - interval: 15s\n    input_series:").unwrap();
        for (series, values) in &c.series {
            writeln!(y, "      - series: '{series}'\n        values: '{values}'").unwrap();
        }
        writeln!(
            y,
            "    alert_rule_test:\n      - eval_time: {}\n        alertname: {}\n        exp_alerts:",
            c.eval, c.alert
        )
        .unwrap();
        for e in &c.expect {
            writeln!(y, "          - exp_labels:").unwrap();
            let mut labels = e.labels.clone();
            if promql {
                let a =
                    rule.promql.iter().find(|a| format!("Gpuscope{}{}", camel(rule.id), a.variant) == c.alert).unwrap();
                labels.push(("severity".into(), a.severity.as_str().into()));
                labels.push(("rule".into(), rule.id.into()));
                labels.push(("source".into(), "promql".into()));
            }
            for (k, v) in labels {
                writeln!(y, "              {k}: {}", q(&v)).unwrap();
            }
            let observed = if promql {
                e.observed.to_string()
            } else {
                format!(
                    "an open {} finding of the gpuscope collector; its evidence is at /api/v1/findings?rule={}",
                    rule.id, rule.id
                )
            };
            writeln!(y, "            exp_annotations:").unwrap();
            writeln!(y, "              summary: {}", q(&e.summary)).unwrap();
            writeln!(y, "              observed: {}", q(&observed)).unwrap();
            let advice = if promql {
                let a =
                    rule.promql.iter().find(|a| format!("Gpuscope{}{}", camel(rule.id), a.variant) == c.alert).unwrap();
                a.advice.unwrap_or(rule.recommendation)
            } else {
                rule.recommendation
            };
            writeln!(y, "              advice: {}", q(advice)).unwrap();
            writeln!(y, "              runbook_url: {}", q(&rule.docs())).unwrap();
        }
    }
    y
}

#[test]
fn promtool_unit_tests_cover_every_alert() {
    let mut cases = promql_cases();
    cases.extend(finding_cases());
    // Every alert of the rule file has a case.
    let rules = std::fs::read_to_string(repo("dashboards/alerts.yml")).unwrap();
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    for a in &alerts {
        assert!(cases.iter().any(|c| c.alert == *a), "alert {a} has no promtool test");
    }
    assert_eq!(cases.len(), alerts.len());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alerts.yml"), &rules).unwrap();
    std::fs::write(dir.path().join("alerts_test.yml"), test_file(&cases)).unwrap();
    let out = promtool(dir.path(), &["test", "rules", "alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}
