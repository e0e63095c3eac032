//! Hardware health.

use super::{Ctx, Hit, ev, gpu_hit};
use crate::xid::{XidClass, classify};
use gpuscope_core::{Action, Severity};

pub(super) fn gpu_lost(c: &Ctx) -> Vec<Hit> {
    let mut out = Vec::new();
    for (node, _, s) in c.latest() {
        for g in &s.gpus {
            let xid79 = s.xid_events.iter().any(|e| e.gpu == g.index && e.code == 79);
            if g.lost || xid79 {
                let mut h = gpu_hit(
                    node,
                    s,
                    g.index,
                    format!(
                        "GPU {} ({}) {}",
                        g.index,
                        g.uuid,
                        if g.lost { "has fallen off the bus" } else { "reported XID 79 (fell off the bus)" }
                    ),
                    vec![ev("gpu_lost", if g.lost { 1.0 } else { 0.0 }, 1.0)],
                );
                h.severity = Some(Severity::Critical);
                out.push(h);
            }
        }
    }
    out
}

pub(super) fn xid_error(c: &Ctx) -> Vec<Hit> {
    let hold = c.ms(c.t.event_hold_s);
    let mut out = Vec::new();
    for (node, _, s) in c.latest() {
        for g in &s.gpus {
            let recent: Vec<u64> = s
                .xid_events
                .iter()
                .filter(|e| e.gpu == g.index && e.unix_ms + hold >= c.now_ms)
                .map(|e| e.code)
                .collect();
            if recent.is_empty() {
                continue;
            }
            // The worst class decides severity and action.
            let worst = recent
                .iter()
                .map(|c| classify(*c))
                .max_by_key(|k| match k {
                    XidClass::Reboot => 5,
                    XidClass::Reset => 4,
                    XidClass::NvLink => 3,
                    XidClass::Memory => 2,
                    XidClass::Other => 1,
                    XidClass::Application => 0,
                })
                .unwrap_or(XidClass::Other);
            let (severity, action, advice) = worst.advice();
            let mut codes = recent.clone();
            codes.sort_unstable();
            codes.dedup();
            let list: Vec<String> = codes.iter().map(|c| format!("{c} ({})", classify(*c).as_str())).collect();
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!("GPU {} reported XID {}", g.index, list.join(", ")),
                codes
                    .iter()
                    .map(|c| ev(&format!("xid_{c}"), recent.iter().filter(|x| *x == c).count() as f64, 1.0))
                    .collect(),
            );
            h.severity = Some(severity);
            h.action = Some(action);
            h.recommendation = Some(advice.to_string());
            out.push(h);
        }
    }
    out
}

pub(super) fn ecc_uncorrectable(c: &Ctx) -> Vec<Hit> {
    let span = c.ms(c.t.event_hold_s);
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let Some((inc, _)) = w.gpu_increase(g.index, c.now_ms, span, |g| g.ecc_uncorrected.map(|v| v as f64)) else {
            continue;
        };
        // The first reading of a fresh agent is compared with the GPU's driver-load state: a
        // non-zero volatile count at first sight is a new error since the last reset.
        let first = w
            .thin(c.now_ms, span)
            .find_map(|s| s.gpus.iter().find(|x| x.index == g.index)?.ecc_uncorrected)
            .unwrap_or(0);
        let total = inc + first as f64;
        if total > 0.0 {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!("GPU {} had {total:.0} uncorrectable ECC error(s) since its last reset", g.index),
                vec![ev("ecc_uncorrected_volatile", total, 0.0)],
            ));
        }
    }
    out
}

pub(super) fn row_remap(c: &Ctx) -> Vec<Hit> {
    let mut out = Vec::new();
    for (node, _, s, g) in c.gpus() {
        let failed = g.row_remap_failed == Some(true);
        if g.row_remap_pending == Some(true) || failed {
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                if failed {
                    format!("GPU {}: a row remapping failed", g.index)
                } else {
                    format!("GPU {}: a row remapping is pending until the next reset", g.index)
                },
                vec![
                    ev("row_remap_pending", f64::from(u8::from(g.row_remap_pending == Some(true))), 1.0),
                    ev("row_remap_failed", f64::from(u8::from(failed)), 1.0),
                ],
            );
            if failed {
                h.severity = Some(Severity::Critical);
                h.action = Some(Action::FieldDiagnostic);
            }
            out.push(h);
        }
    }
    out
}

pub(super) fn retired_pages(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, _, s, g) in c.gpus() {
        let pages = g.retired_pages_total.map(|p| p as f64);
        let pending = g.retired_pages_pending == Some(true);
        let at_limit = pages.is_some_and(|p| p >= t.retired_pages_max);
        if pending || at_limit {
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} has {} retired pages{}",
                    g.index,
                    pages.map_or("?".into(), |p| format!("{p:.0}")),
                    if pending { ", a retirement pending until the next reset" } else { "" }
                ),
                vec![
                    ev("retired_pages", pages.unwrap_or(0.0), t.retired_pages_max),
                    ev("retired_pages_pending", f64::from(u8::from(pending)), 1.0),
                ],
            );
            if at_limit {
                h.severity = Some(Severity::Critical);
                h.action = Some(Action::FieldDiagnostic);
            }
            out.push(h);
        }
    }
    out
}

pub(super) fn pcie_replay(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let Some((inc, secs)) = w.gpu_increase(g.index, c.now_ms, c.ms(60.0), |g| g.pcie_replays.map(|v| v as f64))
        else {
            continue;
        };
        if secs < 20.0 * c.scale {
            continue;
        }
        let per_min = inc / (secs / c.scale) * 60.0;
        if per_min > t.pcie_replays_per_min {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!("GPU {}'s PCIe link replays {per_min:.0} times a minute", g.index),
                vec![ev("pcie_replays_per_minute", per_min, t.pcie_replays_per_min)],
            ));
        }
    }
    out
}

pub(super) fn nvlink_errors(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        if g.nvlinks.is_empty() {
            continue;
        }
        let span = c.ms(120.0);
        let crc = w.gpu_increase(g.index, c.now_ms, span, |g| g.nvlink_crc.map(|v| v as f64));
        let replay =
            w.gpu_increase(g.index, c.now_ms, span, |g| g.nvlink_replay.map(|v| v as f64)).map_or(0.0, |x| x.0);
        let recovery =
            w.gpu_increase(g.index, c.now_ms, span, |g| g.nvlink_recovery.map(|v| v as f64)).map_or(0.0, |x| x.0);
        let down = g.nvlinks.iter().filter(|l| l.active == Some(false)).count();
        let crc_rate = crc.filter(|(_, secs)| *secs > 0.0).map_or(0.0, |(inc, secs)| inc / (secs / c.scale));
        if crc_rate > 0.0 || replay > 0.0 || recovery > 0.0 || down > 0 {
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} NVLink: {crc_rate:.0} CRC errors/s, {replay:.0} replay and {recovery:.0} recovery errors, {down} link(s) down",
                    g.index
                ),
                vec![
                    ev("nvlink_crc_per_second", crc_rate, t.nvlink_crc_per_s_critical),
                    ev("nvlink_replay_errors", replay, 0.0),
                    ev("nvlink_recovery_errors", recovery, 0.0),
                    ev("nvlink_links_down", down as f64, 0.0),
                ],
            );
            if crc_rate >= t.nvlink_crc_per_s_critical || down > 0 {
                h.severity = Some(Severity::Critical);
                h.action = Some(Action::Drain);
            }
            out.push(h);
        }
    }
    out
}
