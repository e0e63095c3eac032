//! Power, thermals and clocks.

use super::{Ctx, Hit, ev, gpu_hit};

const APP_CLOCKS: u64 = 0x2;
const SW_POWER_CAP: u64 = 0x4;
const HW_SLOWDOWN: u64 = 0x8;
const SW_THERMAL: u64 = 0x20;
const HW_THERMAL: u64 = 0x40;
const HW_POWER_BRAKE: u64 = 0x80;

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

pub(super) fn power_capped(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let span = c.ms(60.0).max(c.span());
        let Some(frac) = w.gpu_fraction(g.index, c.now_ms, span, |g| g.reasons.map(|r| r & SW_POWER_CAP != 0)) else {
            continue;
        };
        let (Some(clock), Some(max)) =
            (w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.sm_clock_hertz), g.sm_clock_max_hertz)
        else {
            continue;
        };
        if frac >= t.power_cap_fraction && clock < t.clock_low * max {
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} is power-capped {} of the time at {:.0} MHz ({} of its maximum clock)",
                    g.index,
                    pct(frac),
                    clock / 1e6,
                    pct(clock / max)
                ),
                vec![
                    ev("sw_power_cap_fraction", frac, t.power_cap_fraction),
                    ev("sm_clock_fraction", clock / max, t.clock_low),
                ],
            );
            if let (Some(limit), Some(default)) = (g.power_limit_watts, g.power_default_limit_watts)
                && limit < default
            {
                h.severity = Some(gpuscope_core::Severity::Warning);
                h.summary.push_str(&format!(
                    "; its power limit was lowered to {limit:.0} W from the default {default:.0} W"
                ));
                h.evidence.push(ev("power_limit_watts", limit, default));
                h.recommendation = Some(format!(
                    "The power limit was lowered from {default:.0} W to {limit:.0} W: restore it (nvidia-smi -pl {default:.0}) unless the cap is intended."
                ));
            }
            out.push(h);
        }
    }
    out
}

pub(super) fn thermal_throttle(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let active =
            w.gpu_fraction(g.index, c.now_ms, c.span(), |g| g.reasons.map(|r| r & (SW_THERMAL | HW_THERMAL) != 0));
        let temp = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.temperature_celsius);
        let near = match (temp, g.slowdown_temperature_celsius) {
            (Some(t0), Some(slow)) => t0 >= slow - t.thermal_margin_c,
            _ => false,
        };
        if active.is_some_and(|f| f > 0.0) || near {
            let mut evidence = Vec::new();
            if let Some(f) = active.filter(|f| *f > 0.0) {
                evidence.push(ev("thermal_slowdown_fraction", f, 0.0));
            }
            if let (Some(t0), Some(slow)) = (temp, g.slowdown_temperature_celsius) {
                evidence.push(ev("temperature_celsius", t0, slow - t.thermal_margin_c));
            }
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} runs hot: {}{}",
                    g.index,
                    temp.zip(g.slowdown_temperature_celsius)
                        .map_or(String::new(), |(t0, sl)| format!("{t0:.0} °C against a slowdown at {sl:.0} °C")),
                    active
                        .filter(|f| *f > 0.0)
                        .map_or(String::new(), |f| format!(", thermal slowdown active {} of the time", pct(f)))
                ),
                evidence,
            ));
        }
    }
    out
}

pub(super) fn hw_slowdown(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let span = c.ms(t.hw_slowdown_window_s);
        let states: Vec<(u64, bool)> = w
            .thin(c.now_ms, span)
            .filter_map(|snap| {
                let gs = snap.gpus.iter().find(|x| x.index == g.index)?;
                gs.reasons.map(|r| (snap.timestamp_ms, r & (HW_SLOWDOWN | HW_POWER_BRAKE) != 0))
            })
            .collect();
        let (Some(first), Some(last)) = (states.first(), states.last()) else { continue };
        let minutes = (last.0 - first.0) as f64 / 1000.0 / 60.0 / c.scale;
        // Onsets: inactive → active transitions (a held state counts once).
        let onsets = states.windows(2).filter(|p| !p[0].1 && p[1].1).count() + usize::from(first.1);
        if minutes >= 1.0 {
            let per_min = onsets as f64 / minutes;
            if per_min >= t.hw_slowdown_per_min {
                out.push(gpu_hit(
                    node,
                    s,
                    g.index,
                    format!(
                        "Hardware cut GPU {}'s clocks {onsets} times in {minutes:.0} min (HW slowdown / power brake)",
                        g.index
                    ),
                    vec![ev("hw_slowdown_per_minute", per_min, t.hw_slowdown_per_min)],
                ));
            }
        }
    }
    out
}

pub(super) fn app_clocks_capped(c: &Ctx) -> Vec<Hit> {
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let Some(f) = w.gpu_fraction(g.index, c.now_ms, c.span(), |g| g.reasons.map(|r| r & APP_CLOCKS != 0)) else {
            continue;
        };
        if f >= 0.5 {
            let clock = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.sm_clock_hertz).unwrap_or(0.0);
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!("Application clocks hold GPU {} at {:.0} MHz", g.index, clock / 1e6),
                vec![ev("applications_clocks_fraction", f, 0.5)],
            ));
        }
    }
    out
}

pub(super) fn pcie_link_degraded(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let (Some(gen_), Some(gmax), Some(width), Some(wmax)) =
            (g.pcie_link_generation, g.pcie_link_generation_max, g.pcie_link_width, g.pcie_link_width_max)
        else {
            continue;
        };
        // Idle GPUs train their links down to save power: only a loaded GPU tells.
        let Some(util) = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.utilization_ratio) else { continue };
        if util >= t.load_util && (gen_ < gmax || width < wmax) {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {}'s PCIe link runs at Gen{gen_} x{width} under load; it is capable of Gen{gmax} x{wmax}",
                    g.index
                ),
                vec![
                    ev("pcie_link_generation", f64::from(gen_), f64::from(gmax)),
                    ev("pcie_link_width", f64::from(width), f64::from(wmax)),
                ],
            ));
        }
    }
    out
}
