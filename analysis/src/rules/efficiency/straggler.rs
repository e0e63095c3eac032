//! `straggler`: one member of a synchronous job slows all the others.
//!
//! In a synchronous data-parallel job every member does the same work per step, so the members
//! wait for the slowest at every collective. Waiting has a signature: utilization stays high
//! (the NCCL kernels keep the GPU "busy") while SM activity drops (they occupy few SMs). The
//! straggler is the member that does **not** show it while the others do:
//! - a member that computes slowly (clocks throttled, a weaker GPU) never waits: its SM
//!   activity is the job's **highest**, at least `straggler_gap` above the others' median;
//! - a member held back by something else (its host, its input) is the job's **lowest** and is
//!   not spinning in a collective: its utilization is below the wait level too.
//!
//! The comparison is of each member with the others (not with a median that includes it), so
//! it works for two-node jobs. Single GPUs are compared first, then whole nodes. The members
//! that wait get no single-GPU efficiency findings (see `explained_by_waiting`).

use super::{job_hit, jobs};
use crate::rules::power::{HW_POWER_BRAKE, HW_SLOWDOWN, HW_THERMAL, SW_POWER_CAP, SW_THERMAL};
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, pct};
use crate::window::{NodeWindow, mean};
use gpuscope_core::{Evidence, NodeSnapshot, Severity};

settings! {
    /// SM activity (or utilization) this far above or below the other members' median names a
    /// straggler.
    straggler_gap = 0.15,
    /// Utilization at or above this is the wait signature (with SM activity low): the others
    /// spin in collectives. The straggler held back by something else stays below it.
    straggler_others_util = 0.8,
    /// A host this busy (CPU busy fraction) is named as what slows its straggler.
    busy_host_cpu = 0.9,
    /// CPU steal at or above this fraction is named as a noisy neighbour.
    busy_host_steal = 0.1,
    /// An SM clock below this fraction of its maximum is named as throttling.
    throttled_clock_fraction = 0.9,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "straggler",
    title: "one member of a synchronous job slows all the others",
    scope: RuleScope::Job,
    severity: Severity::Warning,
    timing: STD,
    condition: "in a synchronous job (two or more members), the others wait (util >= 0.8) while one member does not: its sm_active is >= 15 points above the others' median (it computes slowly and never waits), or >= 15 points below with util < 0.8 (something else holds it back); single GPUs are compared first, then nodes",
    recommendation: "One member slows the whole job. Look at that GPU/node: throttling, a degraded link, a busy host, a noisy neighbour (the finding names what the telemetry shows). The other members' low SM activity is waiting, not their own problem.",
    action: None,
    workloads: "multi-member jobs (a job label on two or more GPUs)",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// A GPU or a node of the job, with its mean activity and utilization.
#[derive(Debug, Clone)]
struct Unit<'a> {
    node: &'a str,
    gpus: Vec<u32>,
    act: f64,
    util: Option<f64>,
}

/// How the straggler differs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Computes slowly: the highest activity, never waits.
    Slow,
    /// Held back by something else: the lowest activity, not waiting either.
    HeldBack,
}

/// The one unit that does not wait while the others do, with the others' median activity.
fn straggler<'u, 'a>(units: &'u [Unit<'a>], t: &Settings) -> Option<(&'u Unit<'a>, Kind, f64)> {
    if units.len() < 2 {
        return None;
    }
    let mut found = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let others: Vec<&Unit> = units.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, o)| o).collect();
        let mut acts: Vec<f64> = others.iter().map(|o| o.act).collect();
        let Some(med) = median(&mut acts) else { continue };
        let utils: Vec<f64> = others.iter().filter_map(|o| o.util).collect();
        if !mean(&utils).is_some_and(|m| m >= t.straggler_others_util) {
            continue;
        }
        if u.act >= med + t.straggler_gap {
            found.push((u, Kind::Slow, med));
        } else if u.act <= med - t.straggler_gap && u.util.is_some_and(|x| x < t.straggler_others_util) {
            found.push((u, Kind::HeldBack, med));
        }
    }
    (found.len() == 1).then(|| found[0])
}

/// What the telemetry shows slowing the straggler: throttled clocks, a degraded PCIe link, a
/// busy host or a noisy neighbour, a slower network port than the other members have.
fn causes(
    c: &Ctx,
    t: &Settings,
    unit: &Unit,
    w: &NodeWindow,
    s: &NodeSnapshot,
    members: &[(&str, &NodeWindow, &NodeSnapshot)],
) -> (Vec<String>, Vec<Evidence>) {
    let (mut words, mut evidence) = (Vec::new(), Vec::new());
    for g in s.gpus.iter().filter(|g| unit.gpus.contains(&g.index) && !g.lost) {
        let reasons = g.clock_event_reasons.unwrap_or(0);
        let named: Vec<&str> = [
            (SW_THERMAL | HW_THERMAL, "thermal"),
            (SW_POWER_CAP, "power cap"),
            (HW_SLOWDOWN, "HW slowdown"),
            (HW_POWER_BRAKE, "power brake"),
        ]
        .iter()
        .filter(|(bit, _)| reasons & bit != 0)
        .map(|(_, n)| *n)
        .collect();
        let clock = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.sm_clock_hertz);
        let frac = clock.zip(g.sm_clock_max_hertz).filter(|(_, m)| *m > 0.0).map(|(c, m)| c / m);
        if !named.is_empty() || frac.is_some_and(|f| f < t.throttled_clock_fraction) {
            let mut w = format!("GPU {} clocks throttled", g.index);
            if !named.is_empty() {
                w.push_str(&format!(" ({})", named.join(", ")));
            }
            if let Some(f) = frac {
                w.push_str(&format!(", SM clock at {} of its maximum", pct(f)));
                evidence
                    .push(Evidence { gpu: Some(g.index), ..ev("sm_clock_fraction", f, t.throttled_clock_fraction) });
            }
            words.push(w);
        }
        if let (Some(generation), Some(max_gen), Some(width), Some(max_width)) =
            (g.pcie_link_generation, g.pcie_link_generation_max, g.pcie_link_width, g.pcie_link_width_max)
            && (generation < max_gen || width < max_width)
        {
            words.push(format!("GPU {} PCIe link at Gen{generation} x{width} of Gen{max_gen} x{max_width}", g.index));
            evidence.push(Evidence { gpu: Some(g.index), ..ev("pcie_link_width", width as f64, max_width as f64) });
        }
    }
    let busy = w.host_mean(c.now_ms, c.span(), |h| h.cpu_busy_ratio);
    let steal = w.host_mean(c.now_ms, c.span(), |h| h.cpu_steal_ratio);
    if let Some(b) = busy.filter(|b| *b >= t.busy_host_cpu) {
        words.push(format!("its host's CPUs are {} busy", pct(b)));
        evidence.push(ev("cpu_busy", b, t.busy_host_cpu));
    }
    if let Some(st) = steal.filter(|x| *x >= t.busy_host_steal) {
        words.push(format!("the hypervisor steals {} of its CPU time (a noisy neighbour)", pct(st)));
        evidence.push(ev("cpu_steal", st, t.busy_host_steal));
    }
    // A network port trained slower than the same port on the other members.
    if let Some(host) = &s.host {
        for nic in &host.nics {
            let Some(speed) = nic.speed_bytes_per_second else { continue };
            let best = members
                .iter()
                .filter(|(n, _, _)| *n != unit.node)
                .filter_map(|(_, _, o)| o.host.as_ref())
                .flat_map(|h| h.nics.iter().filter(|x| x.name == nic.name))
                .filter_map(|x| x.speed_bytes_per_second)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            if let Some(best) = best.filter(|b| speed < *b) {
                words.push(format!(
                    "its port {} runs at {:.0} Gb/s where the others' run at {:.0}",
                    nic.name,
                    speed * 8.0 / 1e9,
                    best * 8.0 / 1e9
                ));
                evidence.push(ev(&format!("{}_speed_gbps", nic.name), speed * 8.0 / 1e9, best * 8.0 / 1e9));
            }
        }
    }
    (words, evidence)
}

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.straggler;
    let mut out = Vec::new();
    for (job, members) in jobs(c) {
        // Every GPU of the job, compared on one signal: SM activity where every GPU has it, else
        // utilization (a GPU without GPM is not compared with the others' SM activity).
        let mut read: Vec<(&str, u32, Option<f64>, Option<f64>)> = Vec::new();
        for (node, w, s) in &members {
            for g in s.gpus.iter().filter(|g| !g.lost) {
                let sm = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.sm_active_ratio);
                let util = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.utilization_ratio);
                read.push((node, g.index, sm, util));
            }
        }
        let by_sm = read.iter().all(|r| r.2.is_some());
        let name = if by_sm { "sm_active" } else { "util" };
        let gpus: Vec<Unit> = read
            .iter()
            .filter_map(|(node, g, sm, util)| {
                Some(Unit { node, gpus: vec![*g], act: if by_sm { (*sm)? } else { (*util)? }, util: *util })
            })
            .collect();
        // Single GPUs first; then nodes (their GPUs' means), when several GPUs of one node stand out.
        let mut nodes: Vec<Unit> = Vec::new();
        for (node, _, _) in &members {
            let mine: Vec<&Unit> = gpus.iter().filter(|u| u.node == *node).collect();
            let acts: Vec<f64> = mine.iter().map(|u| u.act).collect();
            let utils: Vec<f64> = mine.iter().filter_map(|u| u.util).collect();
            if let Some(act) = mean(&acts) {
                nodes.push(Unit {
                    node,
                    gpus: mine.iter().flat_map(|u| u.gpus.clone()).collect(),
                    act,
                    util: mean(&utils),
                });
            }
        }
        let found = straggler(&gpus, t).map(|x| (x, false)).or_else(|| straggler(&nodes, t).map(|x| (x, true)));
        let Some(((unit, kind, med), whole_node)) = found else { continue };
        let Some((_, w, s)) = members.iter().find(|(n, _, _)| *n == unit.node) else { continue };
        let who = if whole_node {
            format!("Node {}", unit.node)
        } else {
            format!("GPU {} on {}", unit.gpus.first().copied().unwrap_or(0), unit.node)
        };
        let how = match kind {
            Kind::Slow => format!(
                "it never waits ({name} {}) while the others wait for it at every collective ({name} median {})",
                pct(unit.act),
                pct(med)
            ),
            Kind::HeldBack => format!(
                "it is held back ({name} {}, utilization {}) while the others wait for it at every collective ({name} median {})",
                pct(unit.act),
                pct(unit.util.unwrap_or(0.0)),
                pct(med)
            ),
        };
        let (why, cause_evidence) = causes(c, t, unit, w, s, &members);
        let why = if why.is_empty() {
            String::from(
                ". The telemetry shows no cause on it (no throttling, link or host problem): look for a noisy neighbour or a slower part.",
            )
        } else {
            format!(": {}.", why.join("; "))
        };
        let threshold = match kind {
            Kind::Slow => med + t.straggler_gap,
            Kind::HeldBack => med - t.straggler_gap,
        };
        let mut evidence = vec![ev(name, unit.act, threshold), ev("others_median", med, med)];
        evidence.extend(cause_evidence);
        out.push(job_hit(
            &job,
            Some(unit.node),
            unit.gpus.clone(),
            format!("{who} is the straggler of job {job}: {how}{why}"),
            evidence,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use crate::window::NodeWindow;
    use gpuscope_core::{GpuSample, HostSample, NodeInfo, NodeSnapshot};

    /// A member of job `llm` whose two GPUs run at SM activity `sm` and utilization `util`.
    fn member(host: &str, sm: [Option<f64>; 2], util: f64) -> NodeWindow {
        member_with(host, sm, util, |_| {})
    }

    fn member_with(host: &str, sm: [Option<f64>; 2], util: f64, f: impl Fn(&mut NodeSnapshot)) -> NodeWindow {
        let gpus = (0..2u32)
            .map(|i| GpuSample { sm_active_ratio: sm[i as usize], utilization_ratio: Some(util), ..gpu(i) })
            .collect();
        let node = NodeInfo { hostname: host.into(), job: Some("llm".into()), ..NodeInfo::default() };
        let mut snap = NodeSnapshot { node, gpus, ..NodeSnapshot::default() };
        f(&mut snap);
        steady(snap)
    }

    fn both(x: f64) -> [Option<f64>; 2] {
        [Some(x), Some(x)]
    }

    /// n0, n1, n3 wait (SM activity `waiting`, utilization `others_util`); n2 is `n2`.
    fn job(toml: &str, waiting: f64, others_util: f64, n2: &NodeWindow) -> Vec<crate::rules::Hit> {
        let cfg = toml::from_str(toml).unwrap_or_else(|e| panic!("{e}"));
        let (a, b, d) = (
            member("n0", both(waiting), others_util),
            member("n1", both(waiting), others_util),
            member("n3", both(waiting), others_util),
        );
        eval_with("straggler", &cfg, &[("n0", &a), ("n1", &b), ("n2", n2), ("n3", &d)])
    }

    /// A member that computes slowly never waits: it has the job's highest SM activity.
    #[test]
    fn the_member_that_never_waits_is_the_straggler() {
        assert!(job("", 0.5, 0.95, &member("n2", both(0.64), 0.97)).is_empty(), "14 points above");
        let hits = job("", 0.5, 0.95, &member("n2", both(0.66), 0.97));
        assert_eq!(hits.len(), 1, "{hits:#?}");
        let h = &hits[0];
        assert_eq!((h.job.as_deref(), h.node.as_deref(), h.gpus.clone()), (Some("llm"), Some("n2"), vec![0, 1]));
        assert_eq!(evidence(h), vec![("sm_active".into(), 0.66, 0.65), ("others_median".into(), 0.5, 0.5)]);
        assert!(h.summary.starts_with("Node n2 is the straggler of job llm: it never waits"), "{}", h.summary);
        assert!(h.summary.contains("shows no cause"), "{}", h.summary);
    }

    /// A member held back by something else is the lowest and does not spin in collectives.
    #[test]
    fn a_held_back_member_is_the_straggler_only_when_it_does_not_wait_itself() {
        let hits = job("", 0.6, 0.95, &member("n2", both(0.44), 0.6));
        assert_eq!(hits.len(), 1, "{hits:#?}");
        assert_eq!(evidence(&hits[0]), vec![("sm_active".into(), 0.44, 0.45), ("others_median".into(), 0.6, 0.6)]);
        assert!(hits[0].summary.contains("it is held back"), "{}", hits[0].summary);
        assert!(job("", 0.6, 0.95, &member("n2", both(0.46), 0.6)).is_empty(), "14 points below");
        assert!(job("", 0.6, 0.95, &member("n2", both(0.3), 0.85)).is_empty(), "it waits too: not a straggler");
    }

    #[test]
    fn nobody_waits_nobody_straggles() {
        assert!(job("", 0.5, 0.79, &member("n2", both(0.9), 0.97)).is_empty());
    }

    /// Two members: each is compared with the other, not with a median between them.
    #[test]
    fn a_two_node_job_names_its_straggler() {
        let cfg = crate::config::AnalysisConfig::default();
        let (slow, waiting) = (member("a", both(0.85), 0.97), member("b", both(0.55), 0.96));
        let hits = eval_with("straggler", &cfg, &[("a", &slow), ("b", &waiting)]);
        assert_eq!(hits.len(), 1, "{hits:#?}");
        assert_eq!(hits[0].node.as_deref(), Some("a"));
        let (held, waiting) = (member("a", both(0.3), 0.5), member("b", both(0.6), 0.95));
        let hits = eval_with("straggler", &cfg, &[("a", &held), ("b", &waiting)]);
        assert_eq!(hits.len(), 1, "{hits:#?}");
        assert_eq!(hits[0].node.as_deref(), Some("a"));
        assert!(hits[0].summary.contains("held back"));
    }

    /// One GPU stands out: it is named, not its node.
    #[test]
    fn one_gpu_that_never_waits_is_named() {
        let hits = job("", 0.45, 0.95, &member("n2", [Some(0.45), Some(0.88)], 0.96));
        assert_eq!(hits.len(), 1, "{hits:#?}");
        assert_eq!((hits[0].node.as_deref(), hits[0].gpus.clone()), (Some("n2"), vec![1]));
        assert!(hits[0].summary.starts_with("GPU 1 on n2 is the straggler"), "{}", hits[0].summary);
    }

    /// What slows it is named when the telemetry shows it.
    #[test]
    fn the_cause_is_named_throttled_clocks_and_a_busy_host() {
        let hot = member_with("n2", both(0.86), 0.97, |s| {
            for g in &mut s.gpus {
                g.clock_event_reasons = Some(crate::rules::power::SW_THERMAL);
                g.sm_clock_hertz = Some(1.386e9);
                g.sm_clock_max_hertz = Some(1.98e9);
            }
            s.host =
                Some(HostSample { cpu_busy_ratio: Some(0.3), cpu_steal_ratio: Some(0.2), ..HostSample::default() });
        });
        let hits = job("", 0.5, 0.95, &hot);
        assert_eq!(hits.len(), 1, "{hits:#?}");
        let s = &hits[0].summary;
        assert!(s.contains("GPU 0 clocks throttled (thermal), SM clock at 70% of its maximum"), "{s}");
        assert!(s.contains("steals 20% of its CPU time"), "{s}");
        let ev = evidence(&hits[0]);
        assert!(ev.contains(&("sm_clock_fraction".into(), 0.7, 0.9)), "{ev:?}");
        assert!(ev.contains(&("cpu_steal".into(), 0.2, 0.1)), "{ev:?}");
    }

    #[test]
    fn absent_activity_is_not_slow() {
        assert!(job("", 0.5, 0.95, &member("n2", [None, None], 0.95)).is_empty());
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        assert_eq!(job("[rules.straggler]\nstraggler_gap = 0.1", 0.5, 0.95, &member("n2", both(0.62), 0.97)).len(), 1);
        assert_eq!(
            job("[rules.straggler]\nstraggler_others_util = 0.7", 0.5, 0.75, &member("n2", both(0.9), 0.97)).len(),
            1
        );
    }
}
