//! The rule catalogue of RULES.md, one module per rule (`efficiency/`, `power/`, `health/`,
//! `kernel/`, the file named after the rule's id): each holds the rule's metadata, its own
//! settings with their defaults (its `[rules.<id>]` section), its evaluation and its boundary
//! tests. This module holds what they share: the context a rule sees, the hit it returns, the
//! helpers every rule calls, and the list of all rules with the `[rules]` table built from it.

use crate::config::Timing;
use crate::window::NodeWindow;
use gpuscope_core::{Action, Evidence, GpuSample, NodeSnapshot, Severity, WorkloadClass};
use serde::Deserialize;

/// Declares the settings of the rule in the current module: a `Settings` struct (its
/// `[rules.<id>]` section) with the `disabled`, `sustain_s` and `clear_s` every rule has, then
/// the rule's thresholds with their defaults and meanings (the doc comments, which the generated
/// documentation shows). One macro so that each rule lists its thresholds once, while a typo
/// in a configuration file still names the key (serde's `deny_unknown_fields` cannot see through
/// a flattened common part).
macro_rules! settings {
    ($($(#[doc = $doc:literal])+ $name:ident = $default:expr),* $(,)?) => {
        /// This rule's section of the analysis configuration, `[rules.<id>]`.
        #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Settings {
            /// Turn the rule off.
            pub disabled: bool,
            /// Override the sustain period, workload seconds.
            pub sustain_s: Option<f64>,
            /// Override the clear period, workload seconds.
            pub clear_s: Option<f64>,
            $($(#[doc = $doc])+ pub $name: f64,)*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { disabled: false, sustain_s: None, clear_s: None, $($name: $default,)* }
            }
        }

        impl Settings {
            /// Each threshold's name, default and meaning.
            pub const THRESHOLDS: &'static [$crate::rules::Threshold] = &[$($crate::rules::Threshold {
                name: stringify!($name),
                default: $default,
                meaning: concat!($($doc),+),
            }),*];

            /// The settings every rule has.
            pub fn common(&self) -> $crate::rules::Common {
                $crate::rules::Common { disabled: self.disabled, sustain_s: self.sustain_s, clear_s: self.clear_s }
            }
        }
    };
}

pub mod efficiency;
pub mod health;
pub mod kernel;

/// A process named for a finding: `name (pid, user u, pod ns/pod)`, or the container's short id
/// where it has no pod; each part only where known.
pub(crate) fn process_who(
    name: &str,
    pid: u32,
    user: Option<&str>,
    namespace: Option<&str>,
    pod: Option<&str>,
    container: Option<&str>,
) -> String {
    let mut who = format!("{name} ({pid}");
    if let Some(u) = user {
        who += &format!(", user {u}");
    }
    match (namespace, pod, container) {
        (Some(ns), Some(pod), _) => who += &format!(", pod {ns}/{pod}"),
        (None, Some(pod), _) => who += &format!(", pod {pod}"),
        (_, None, Some(c)) => who += &format!(", container {}", c.get(..12).unwrap_or(c)),
        _ => {}
    }
    who + ")"
}

pub mod power;
#[cfg(test)]
mod testkit;

/// Lists every rule once, in the catalogue's order: `RULES` and the `[rules]` table (one field
/// per rule, named after the module; serde's kebab-case turns it into the rule's id, and a test
/// checks that every id is its own section).
macro_rules! catalogue {
    ($($group:ident::$rule:ident),* $(,)?) => {
        /// Every rule of RULES.md.
        pub static RULES: &[RuleInfo] = &[$($group::$rule::RULE),*];

        /// The `[rules]` table of the analysis configuration: one section per rule id, each with
        /// that rule's own settings; an unknown id or key is an error that names it.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
        pub struct RulesConfig {
            $(#[doc = concat!("Settings of `", stringify!($rule), "` (the id with hyphens).")]
            pub $rule: $group::$rule::Settings,)*
        }

        impl RulesConfig {
            /// The settings every rule has, of the rule `id`.
            pub fn common(&self, id: &str) -> Option<Common> {
                $(if id == $group::$rule::RULE.id {
                    return Some(self.$rule.common());
                })*
                None
            }
        }
    };
}

catalogue! {
    efficiency::no_tensor_cores,
    efficiency::fp64_heavy,
    efficiency::launch_bound,
    efficiency::memory_bandwidth_bound,
    efficiency::input_bound_cpu,
    efficiency::input_bound_io,
    efficiency::host_thread_bound,
    efficiency::pcie_h2d_bound,
    efficiency::comm_bound,
    efficiency::nccl_over_tcp,
    efficiency::memory_underused,
    efficiency::memory_near_full,
    efficiency::gpu_idle_allocated,
    efficiency::straggler,
    power::power_capped,
    power::thermal_throttle,
    power::hw_slowdown,
    power::app_clocks_capped,
    power::pcie_link_degraded,
    health::gpu_lost,
    health::xid_error,
    health::ecc_uncorrectable,
    health::row_remap,
    health::retired_pages,
    health::pcie_replay,
    health::nvlink_errors,
    health::net_link_degraded,
    kernel::fp32_gemm_kernels,
    kernel::pageable_memcpy,
    kernel::sync_heavy,
    kernel::gpu_gaps,
    kernel::short_kernels,
}

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id == id)
}

/// What a finding of the rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleScope {
    /// One GPU.
    Gpu,
    /// One node.
    Node,
    /// A multi-node job.
    Job,
    /// One process (kernel-level rules: they read its CUPTI profiling windows).
    Process,
}

impl RuleScope {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleScope::Gpu => "gpu",
            RuleScope::Node => "node",
            RuleScope::Job => "job",
            RuleScope::Process => "process",
        }
    }
}

/// The settings every rule has: on/off and its timing overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Common {
    /// The rule is off.
    pub disabled: bool,
    /// Sustain period override, workload seconds.
    pub sustain_s: Option<f64>,
    /// Clear period override, workload seconds.
    pub clear_s: Option<f64>,
}

/// One threshold of a rule, as the documentation shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// Key in the rule's `[rules.<id>]` section.
    pub name: &'static str,
    /// Default, from RULES.md.
    pub default: f64,
    /// What it means (its doc comment, with the leading space of each line).
    pub meaning: &'static str,
}

/// One rule: what the documentation, the findings and the engine need of it.
pub struct RuleInfo {
    /// Stable id.
    pub id: &'static str,
    /// What is wrong, as a sentence fragment without a subject (a finding that groups several
    /// GPUs says "GPUs 0–3: <title>").
    pub title: &'static str,
    /// Scope.
    pub scope: RuleScope,
    /// Default severity.
    pub severity: Severity,
    /// Default timing.
    pub timing: Timing,
    /// The condition, in words.
    pub condition: &'static str,
    /// What to change.
    pub recommendation: &'static str,
    /// Operator action for health rules.
    pub action: Option<Action>,
    /// The workloads it judges and how its advice depends on them, in words (the rules
    /// documentation shows it).
    pub workloads: &'static str,
    /// Its condition reads low SM activity as the GPU's own problem, which on a member of a job
    /// waiting for a straggler it is not (the member spins in a collective): the straggler
    /// finding explains it, and this rule says nothing there.
    pub explained_by_waiting: bool,
    /// The rule's thresholds (its `[rules.<id>]` keys besides the common ones).
    pub thresholds: &'static [Threshold],
    /// Evaluation; `None` for a rule listed before its input exists.
    pub eval: Option<fn(&Ctx) -> Vec<Hit>>,
    /// Standalone PromQL versions over the agent's native metrics, for fleets that run only
    /// Prometheus (empty when PromQL cannot express the rule: windows of snapshots, jobs, CUPTI).
    pub promql: &'static [PromAlert],
}

/// One standalone PromQL alert of a rule: the generated alerting rules (`dashboards/alerts.yml`)
/// are built from it, and the scenario tests check that it fires where the rule does.
#[derive(Debug, Clone, Copy)]
pub struct PromAlert {
    /// Appended to the rule's alert name when a rule has several alerts (`Pending`, `Failed`).
    pub variant: &'static str,
    /// The expression; each result series is one GPU (or node) where the condition holds, and its
    /// value is what the annotation reports as observed.
    pub expr: &'static str,
    /// How long the expression must hold before the alert fires (Prometheus `for`), seconds.
    pub for_s: u32,
    /// Severity label.
    pub severity: Severity,
    /// One sentence with Prometheus templating (`{{ $labels.gpu }}`, `{{ $value }}`).
    pub summary: &'static str,
    /// Advice when it differs from the rule's recommendation (an XID class's own).
    pub advice: Option<&'static str>,
}

impl RuleInfo {
    /// Documentation link.
    pub fn docs(&self) -> String {
        format!("https://github.com/gpuscope/gpuscope/blob/main/docs/rules.md#{}", self.id)
    }
}

/// Sustain and clear of most rules.
pub(crate) const STD: Timing = Timing { sustain_s: 60.0, clear_s: 60.0 };
/// The 10-minute rules.
pub(crate) const LONG: Timing = Timing { sustain_s: 600.0, clear_s: 60.0 };
/// Events open at once.
pub(crate) const EVENT: Timing = Timing { sustain_s: 0.0, clear_s: 60.0 };

/// The condition holds now for one scope key.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Node, for GPU and node scopes.
    pub node: Option<String>,
    /// GPUs concerned.
    pub gpus: Vec<u32>,
    /// Job, when known.
    pub job: Option<String>,
    /// Severity when it differs from the rule's default.
    pub severity: Option<Severity>,
    /// One sentence: what is wrong, here.
    pub summary: String,
    /// Observed values against thresholds.
    pub evidence: Vec<Evidence>,
    /// Action when it differs from the rule's default.
    pub action: Option<Action>,
    /// Advice when it differs from the rule's default.
    pub recommendation: Option<String>,
    /// What tells this hit's cause apart from others of the rule on the same node (an XID class,
    /// a workload class): hits with different causes become different findings.
    pub cause: Option<String>,
}

/// What a rule sees.
pub struct Ctx<'a> {
    /// Evaluation time, ms since the epoch.
    pub now_ms: u64,
    /// Every node's window, by host name.
    pub nodes: Vec<(&'a str, &'a NodeWindow)>,
    /// The configuration: the common settings and each rule's own (`cfg.rules.<rule>`).
    pub cfg: &'a crate::config::AnalysisConfig,
    /// Wall seconds per workload second.
    pub scale: f64,
}

impl Ctx<'_> {
    /// The smoothing span, ms.
    pub fn span(&self) -> u64 {
        self.ms(self.cfg.eval_span_s)
    }

    /// Workload seconds as wall milliseconds.
    pub fn ms(&self, secs: f64) -> u64 {
        (secs * self.scale * 1000.0) as u64
    }

    /// A rate the agent derived from counters over wall time, in workload units.
    pub fn workload_rate(&self, r: f64) -> f64 {
        r * self.scale
    }

    /// (node, window, latest snapshot) for every node with data.
    pub fn latest(&self) -> impl Iterator<Item = (&str, &NodeWindow, &NodeSnapshot)> {
        self.nodes.iter().filter_map(|(n, w)| w.latest().map(|s| (*n, *w, s)))
    }

    /// (node, window, latest, gpu) for every GPU that answers.
    pub fn gpus(&self) -> impl Iterator<Item = (&str, &NodeWindow, &NodeSnapshot, &GpuSample)> {
        self.latest().flat_map(|(n, w, s)| s.gpus.iter().filter(|g| !g.lost).map(move |g| (n, w, s, g)))
    }

    /// Mean SM activity of a GPU, or its utilization when GPM is absent (lower confidence).
    pub fn activity(&self, w: &NodeWindow, gpu: u32) -> Option<(f64, &'static str)> {
        w.gpu_mean(gpu, self.now_ms, self.span(), |g| g.sm_active_ratio)
            .map(|v| (v, "sm_active"))
            .or_else(|| w.gpu_mean(gpu, self.now_ms, self.span(), |g| g.utilization_ratio).map(|v| (v, "util")))
    }
}

/// The node- and GPU-scope hits without those a job-scope finding explains: on the members of a
/// job that wait for its straggler, the rules that read low SM activity as the GPU's own problem
/// (`explained_by_waiting`) are dropped. The straggler itself keeps them (they may name its
/// cause), and so does its node for node-scope rules.
pub fn explained_by_jobs(
    node_hits: Vec<(&'static RuleInfo, Hit)>,
    job_hits: &[(&'static RuleInfo, Hit)],
) -> Vec<(&'static RuleInfo, Hit)> {
    let stragglers: Vec<&Hit> =
        job_hits.iter().filter(|(r, _)| r.id == efficiency::straggler::RULE.id).map(|(_, h)| h).collect();
    if stragglers.is_empty() {
        return node_hits;
    }
    let is_the_straggler = |h: &Hit, s: &Hit| {
        h.node == s.node
            && (s.gpus.is_empty() || h.gpus.is_empty() || h.gpus.len() > 1 || h.gpus.iter().all(|g| s.gpus.contains(g)))
    };
    node_hits
        .into_iter()
        .filter(|(rule, h)| {
            !rule.explained_by_waiting
                || !stragglers.iter().any(|s| s.job.is_some() && s.job == h.job && !is_the_straggler(h, s))
        })
        .collect()
}

/// What the processes on GPU `gpu` do, as the agent classified them: training when any of them
/// trains (its advice is the one that applies), else an inference server, else a notebook, else
/// unknown; `None` when no process on it was classified (an agent that does not classify).
pub fn workload(s: &NodeSnapshot, gpu: u32) -> Option<WorkloadClass> {
    s.processes.iter().filter(|p| p.gpu_index == gpu).filter_map(|p| p.workload).min_by_key(|w| match w {
        WorkloadClass::Training => 0,
        WorkloadClass::Inference => 1,
        WorkloadClass::Notebook => 2,
        WorkloadClass::Unknown => 3,
    })
}

/// Evidence entry.
pub fn ev(signal: &str, value: f64, threshold: f64) -> Evidence {
    Evidence { signal: signal.to_string(), value, threshold, gpu: None }
}

/// A GPU-scope hit.
pub fn gpu_hit(node: &str, snap: &NodeSnapshot, gpu: u32, summary: String, evidence: Vec<Evidence>) -> Hit {
    Hit {
        node: Some(node.to_string()),
        gpus: vec![gpu],
        job: snap.node.job.clone(),
        severity: None,
        summary,
        evidence,
        action: None,
        recommendation: None,
        cause: None,
    }
}

/// A node-scope hit.
pub fn node_hit(node: &str, snap: &NodeSnapshot, gpus: Vec<u32>, summary: String, evidence: Vec<Evidence>) -> Hit {
    Hit { gpus, ..gpu_hit(node, snap, 0, summary, evidence) }
}

/// A ratio as a whole percentage, for summaries.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AnalysisConfig;

    #[test]
    fn ids_are_unique_and_every_id_is_its_own_section() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        assert_eq!(RULES.len(), 32, "the 32 rules of RULES.md");
        assert_eq!(RULES.iter().filter(|r| r.eval.is_none()).count(), 0, "every rule evaluates, the kernel-level too");
        assert_eq!(RULES.iter().filter(|r| r.scope == RuleScope::Process).count(), 5, "the kernel-level rules");
        for r in RULES {
            let cfg: AnalysisConfig = toml::from_str(&format!("[rules.{}]\ndisabled = true\nsustain_s = 7\n", r.id))
                .unwrap_or_else(|e| panic!("{}: {e}", r.id));
            assert!(!cfg.enabled(r.id), "{}", r.id);
            assert_eq!(cfg.rules.common(r.id).and_then(|c| c.sustain_s), Some(7.0));
            assert!(RULES.iter().filter(|o| o.id != r.id).all(|o| cfg.enabled(o.id)), "{} touches only itself", r.id);
            assert_eq!(rule(r.id).map(|x| x.id), Some(r.id));
        }
        assert!(rule("no-such-rule").is_none());
    }

    /// Every threshold is a key of its rule's section, read as written.
    #[test]
    fn every_threshold_is_a_key_of_its_rules_section() {
        for r in RULES {
            for t in r.thresholds {
                assert!(!t.meaning.trim().is_empty(), "{}.{} explains itself", r.id, t.name);
                let cfg: AnalysisConfig =
                    toml::from_str(&format!("[rules.{}]\n{} = {:?}\n", r.id, t.name, t.default + 1.0))
                        .unwrap_or_else(|e| panic!("{}.{}: {e}", r.id, t.name));
                assert_ne!(cfg, AnalysisConfig::default(), "{}.{} was read", r.id, t.name);
            }
        }
    }

    /// A threshold several rules share by name is each rule's own: tuning one leaves the others.
    #[test]
    fn a_shared_threshold_name_is_set_per_rule() {
        let cfg: AnalysisConfig = toml::from_str("[rules.launch-bound]\nsm_active_low = 0.4\n").unwrap();
        assert_eq!(cfg.rules.launch_bound.sm_active_low, 0.4);
        assert_eq!(cfg.rules.input_bound_cpu.sm_active_low, 0.5);
        assert_eq!(cfg.rules.comm_bound.sm_active_low, 0.5);
    }
}
