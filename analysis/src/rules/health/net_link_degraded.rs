//! `net-link-degraded`: an InfiniBand or RoCE port trained below its adapter's rate or width,
//! not ACTIVE, or with rising error counters; one such port holds back every collective of a
//! multi-node job.

use crate::rules::{Ctx, Hit, PromAlert, RuleInfo, RuleScope, STD, ev, node_hit};
use gpuscope_core::{Action, NicSample, Severity};

settings! {
    /// Symbol plus receive errors per minute on one port at or above this are degraded (a
    /// healthy link sees a few an hour at most).
    errors_per_min = 10.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "net-link-degraded",
    title: "a network port trained low, is not active, or counts errors",
    scope: RuleScope::Node,
    severity: Severity::Warning,
    timing: STD,
    condition: "an InfiniBand/RoCE port trained below its adapter's maximum rate or width, not ACTIVE though linked \
                (or after going down), link recoveries or link-downs rising, or symbol + receive errors >= 10/min",
    recommendation: "Degraded fabric port: check the cable/transceiver and the switch port (ibdiagnet, mlxlink); \
                     reseat or replace the cable; drain the node if the job's collectives slow down.",
    action: Some(Action::Monitor),
    workloads: "any (a multi-node job runs at the pace of its slowest port)",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: "count by (instance) (gpuscope_host_network_speed_bytes_per_second{kind=\"infiniband\"} < gpuscope_host_network_speed_max_bytes_per_second or gpuscope_host_network_link_width < gpuscope_host_network_link_width_max or (gpuscope_host_network_infiniband_state != 4 and gpuscope_host_network_infiniband_physical_state == 5) or increase(gpuscope_host_network_infiniband_link_error_recovery_total[2m]) > 0 or increase(gpuscope_host_network_infiniband_link_downed_total[2m]) > 0 or (increase(gpuscope_host_network_infiniband_symbol_errors_total[2m]) + on (instance, interface, kind) increase(gpuscope_host_network_receive_errors_total{kind=\"infiniband\"}[2m])) / 2 >= 10)",
        for_s: 60,
        severity: Severity::Warning,
        summary: "{{ $labels.instance }}: {{ $value }} InfiniBand port(s) trained below the adapter's maximum, not active, or counting errors.",
        advice: None,
    }],
};

/// What is wrong with one port, in words, with its evidence; empty when nothing is.
fn port_faults(
    first: Option<&NicSample>,
    last: &NicSample,
    minutes: f64,
    t: &Settings,
) -> (Vec<String>, Vec<gpuscope_core::Evidence>) {
    let mut what = Vec::new();
    let mut evidence = Vec::new();
    let active = last.ib_state == Some(4);
    if let (true, Some(rate), Some(max)) = (active, last.speed_bytes_per_second, last.speed_max_bytes_per_second)
        && rate < max
    {
        what.push(format!("trained at {:.0} of {:.0} Gb/s", rate * 8e-9, max * 8e-9));
        evidence.push(ev("rate_gbps", rate * 8e-9, max * 8e-9));
    }
    if let (true, Some(w), Some(max)) = (active, last.link_width, last.link_width_max)
        && w < max
    {
        what.push(format!("{w}X of {max}X lanes"));
        evidence.push(ev("link_width", f64::from(w), f64::from(max)));
    }
    let increase = |f: fn(&NicSample) -> Option<u64>| -> f64 {
        match (first.and_then(f), f(last)) {
            // A counter that went back was reset: it counts from 0.
            (Some(a), Some(b)) => (if b >= a { b - a } else { b }) as f64,
            _ => 0.0,
        }
    };
    let downed = increase(|n| n.link_downed_total);
    if let Some(state) = last.ib_state.filter(|s| *s != 4)
        && (last.ib_phys_state == Some(5) || downed > 0.0)
    {
        let name = ["", "DOWN", "INIT", "ARMED", "ACTIVE", "ACTIVE_DEFER"].get(state as usize).copied().unwrap_or("?");
        what.push(format!("port state {name}"));
        evidence.push(ev("port_state", f64::from(state), 4.0));
    }
    let recoveries = increase(|n| n.link_error_recovery_total);
    if recoveries > 0.0 || downed > 0.0 {
        what.push(format!("{recoveries:.0} link recoveries and {downed:.0} link-downs"));
        evidence.push(ev("link_error_recovery", recoveries, 0.0));
        evidence.push(ev("link_downed", downed, 0.0));
    }
    if minutes > 0.0 {
        let per_min = (increase(|n| n.symbol_errors_total) + increase(|n| n.rx_errors_total)) / minutes;
        if per_min >= t.errors_per_min {
            what.push(format!("{per_min:.0} symbol/receive errors a minute"));
            evidence.push(ev("errors_per_min", per_min, t.errors_per_min));
        }
    }
    (what, evidence)
}

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.net_link_degraded;
    let mut out = Vec::new();
    for (node, w, s) in c.latest() {
        let Some(h) = &s.host else { continue };
        let recent: Vec<_> = w.recent(c.now_ms, c.span()).collect();
        let oldest = recent.first().copied();
        // Workload minutes between the oldest and the newest snapshot of the span.
        let minutes =
            oldest.map_or(0.0, |o| s.timestamp_ms.saturating_sub(o.timestamp_ms) as f64 / 1000.0 / c.scale / 60.0);
        let mut ports = Vec::new();
        let mut evidence = Vec::new();
        // Ports only (they have a port state); the IPoIB netdev on top of one is the same link.
        for nic in h.nics.iter().filter(|n| n.ib_state.is_some()) {
            let first = oldest.and_then(|o| o.host.as_ref()).and_then(|oh| oh.nics.iter().find(|n| n.name == nic.name));
            let (what, ev) = port_faults(first, nic, minutes, t);
            if !what.is_empty() {
                ports.push(format!("{}: {}", nic.name, what.join(", ")));
                evidence.extend(ev);
            }
        }
        if !ports.is_empty() {
            out.push(node_hit(node, s, Vec::new(), format!("Network port {}", ports.join("; ")), evidence));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{HostSample, NicKind, NicSample};

    /// A ConnectX-7 port (NDR 400, 4X) as read at second `t`.
    fn port(rate_gbps: f64, width: u32, state: u32, errors_per_s: u64, t: u64) -> NicSample {
        NicSample {
            name: "mlx5_1/1".into(),
            kind: NicKind::Infiniband,
            speed_bytes_per_second: Some(rate_gbps * 1e9 / 8.0),
            speed_max_bytes_per_second: Some(400e9 / 8.0),
            link_width: Some(width),
            link_width_max: Some(4),
            up: Some(state == 4),
            ib_state: Some(state),
            ib_phys_state: Some(5),
            symbol_errors_total: Some(errors_per_s * t),
            rx_errors_total: Some(0),
            link_error_recovery_total: Some(0),
            link_downed_total: Some(0),
            ..NicSample::default()
        }
    }

    fn window(p: impl Fn(u64) -> NicSample) -> crate::window::NodeWindow {
        series(10, |t| busy_host("n0", Some(0.8), HostSample { nics: vec![p(t)], ..HostSample::default() }))
    }

    #[test]
    fn a_healthy_port_is_no_hit() {
        assert!(eval("net-link-degraded", &window(|t| port(400.0, 4, 4, 0, t))).is_empty());
    }

    #[test]
    fn a_port_trained_at_2x_200_is_named_with_what_is_wrong() {
        let hits = eval("net-link-degraded", &window(|t| port(200.0, 2, 4, 0, t)));
        let h = one_hit(&hits, &[]);
        assert_eq!(h.summary, "Network port mlx5_1/1: trained at 200 of 400 Gb/s, 2X of 4X lanes");
        assert_eq!(evidence(h), vec![("rate_gbps".into(), 200.0, 400.0), ("link_width".into(), 2.0, 4.0)]);
    }

    #[test]
    fn a_linked_port_that_is_not_active_is_a_hit() {
        let hits = eval("net-link-degraded", &window(|t| port(400.0, 4, 2, 0, t)));
        assert_eq!(one_hit(&hits, &[]).summary, "Network port mlx5_1/1: port state INIT");
    }

    #[test]
    fn an_uncabled_port_polling_is_no_hit() {
        let w = window(|t| NicSample { ib_phys_state: Some(2), ..port(400.0, 4, 1, 0, t) });
        assert!(eval("net-link-degraded", &w).is_empty());
    }

    /// 10 s of symbol errors at 1/s is 60 a minute; at the threshold the rule fires, just below not.
    #[test]
    fn symbol_errors_at_the_threshold_per_minute() {
        let hits = eval_toml(
            "net-link-degraded",
            "[rules.net-link-degraded]\nerrors_per_min = 60",
            &window(|t| port(400.0, 4, 4, 1, t)),
        );
        assert_eq!(one_hit(&hits, &[]).summary, "Network port mlx5_1/1: 60 symbol/receive errors a minute");
        let hits = eval_toml(
            "net-link-degraded",
            "[rules.net-link-degraded]\nerrors_per_min = 61",
            &window(|t| port(400.0, 4, 4, 1, t)),
        );
        assert!(hits.is_empty(), "{hits:?}");
    }

    #[test]
    fn a_link_down_event_is_a_hit() {
        let w = window(|t| NicSample { link_downed_total: Some(u64::from(t >= 5)), ..port(400.0, 4, 4, 0, t) });
        let hits = eval("net-link-degraded", &w);
        assert_eq!(one_hit(&hits, &[]).summary, "Network port mlx5_1/1: 0 link recoveries and 1 link-downs");
    }

    /// An adapter the agent cannot name has no maximum: its rate alone says nothing.
    #[test]
    fn an_unknown_adapter_maximum_is_no_hit() {
        let w =
            window(|t| NicSample { speed_max_bytes_per_second: None, link_width_max: None, ..port(200.0, 2, 4, 0, t) });
        assert!(eval("net-link-degraded", &w).is_empty());
    }
}
