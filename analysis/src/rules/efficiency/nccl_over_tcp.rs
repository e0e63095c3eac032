//! `nccl-over-tcp`: a multi-node job talks over Ethernet while its InfiniBand idles.

use super::{job_hit, jobs};
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev};
use gpuscope_core::{NicKind, Severity};

settings! {
    /// InfiniBand traffic per node below this (bytes/s) counts as none.
    ib_idle_bytes_per_second = 10e6,
    /// Ethernet traffic per node at or above this (bytes/s) while InfiniBand idles suggests NCCL on TCP.
    ethernet_busy_bytes_per_second = 1e9,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "nccl-over-tcp",
    title: "NCCL traffic goes over TCP instead of InfiniBand",
    scope: RuleScope::Job,
    severity: Severity::Warning,
    timing: STD,
    condition: "multi-node job, InfiniBand present but idle while Ethernet carries >= 1 GB/s",
    recommendation: "NCCL is likely falling back to TCP sockets. Check NCCL_IB_HCA, RDMA drivers and the container's access to /dev/infiniband.",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.nccl_over_tcp;
    let mut out = Vec::new();
    for (job, members) in jobs(c) {
        if members.len() < 2 {
            continue;
        }
        let mut ib_total = 0.0;
        let mut eth_total = 0.0;
        let mut has_ib = false;
        for (_, w, s) in &members {
            for nic in s.host.as_ref().map(|h| h.nics.as_slice()).unwrap_or_default() {
                let r = w.host_mean(c.now_ms, c.span(), |h| {
                    h.nics
                        .iter()
                        .find(|n| n.name == nic.name)
                        .and_then(|n| Some(n.rx_bytes_per_second? + n.tx_bytes_per_second?))
                });
                let Some(r) = r.map(|r| c.workload_rate(r)) else { continue };
                match nic.kind {
                    NicKind::Infiniband => {
                        has_ib = true;
                        ib_total += r;
                    }
                    NicKind::Ethernet => eth_total += r,
                }
            }
        }
        let ib_per_node = ib_total / members.len() as f64;
        let eth_per_node = eth_total / members.len() as f64;
        if has_ib && ib_per_node < t.ib_idle_bytes_per_second && eth_per_node >= t.ethernet_busy_bytes_per_second {
            out.push(job_hit(
                &job,
                None,
                Vec::new(),
                format!(
                    "Job {job} ({} nodes) moves {:.1} GB/s per node over Ethernet while InfiniBand carries {:.0} MB/s: NCCL is on TCP",
                    members.len(),
                    eth_per_node / 1e9,
                    ib_per_node / 1e6
                ),
                vec![ev("ethernet_bytes_per_second", eth_per_node, t.ethernet_busy_bytes_per_second), ev("infiniband_bytes_per_second", ib_per_node, t.ib_idle_bytes_per_second)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use crate::window::NodeWindow;
    use gpuscope_core::{HostSample, NicKind, NicSample, NodeInfo, NodeSnapshot};

    fn nic(name: &str, kind: NicKind, bytes_per_second: Option<f64>) -> NicSample {
        NicSample {
            name: name.into(),
            kind,
            rx_bytes_per_second: bytes_per_second.map(|b| b / 2.0),
            tx_bytes_per_second: bytes_per_second.map(|b| b / 2.0),
            ..NicSample::default()
        }
    }

    /// A member of job `llm` moving `eth` over Ethernet and `ib` over InfiniBand.
    fn member(host: &str, eth: Option<f64>, ib: Option<f64>) -> NodeWindow {
        let h = HostSample {
            nics: vec![nic("eth0", NicKind::Ethernet, eth), nic("ib0", NicKind::Infiniband, ib)],
            ..HostSample::default()
        };
        let node = NodeInfo { hostname: host.into(), job: Some("llm".into()), ..NodeInfo::default() };
        steady(NodeSnapshot { node, host: Some(h), ..NodeSnapshot::default() })
    }

    fn job_eval(toml: &str, eth: Option<f64>, ib: Option<f64>) -> Vec<crate::rules::Hit> {
        let cfg = toml::from_str(toml).unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (member("a", eth, ib), member("b", eth, ib));
        eval_with("nccl-over-tcp", &cfg, &[("a", &a), ("b", &b)])
    }

    #[test]
    fn ethernet_just_below_the_threshold_is_not_a_hit() {
        assert!(job_eval("", Some(0.99e9), Some(0.0)).is_empty());
        assert!(job_eval("", Some(5e9), Some(10.1e6)).is_empty(), "InfiniBand carries traffic");
    }

    #[test]
    fn ethernet_just_above_with_idle_infiniband_is_a_hit_on_the_job() {
        let hits = job_eval("", Some(1.01e9), Some(9.9e6));
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].job.as_deref(), hits[0].node.as_deref()), (Some("llm"), None));
        assert_eq!(
            evidence(&hits[0]),
            vec![
                ("ethernet_bytes_per_second".into(), 1.01e9, 1e9),
                ("infiniband_bytes_per_second".into(), 9.9e6, 10e6)
            ]
        );
    }

    #[test]
    fn absent_infiniband_or_a_single_node_is_no_hit() {
        assert!(job_eval("", Some(5e9), None).is_empty(), "InfiniBand not read");
        let a = member("a", Some(5e9), Some(0.0));
        assert!(eval_with("nccl-over-tcp", &Default::default(), &[("a", &a)]).is_empty(), "one node");
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let section = "[rules.nccl-over-tcp]\n";
        assert_eq!(
            job_eval(&format!("{section}ethernet_busy_bytes_per_second = 0.5e9"), Some(0.8e9), Some(0.0)).len(),
            1
        );
        assert_eq!(job_eval(&format!("{section}ib_idle_bytes_per_second = 50e6"), Some(2e9), Some(20e6)).len(), 1);
    }
}
