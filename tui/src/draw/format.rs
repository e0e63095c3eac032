//! Value formatting. An absent value is [`UNKNOWN`], never 0.

/// What an unreadable value looks like on screen.
pub const UNKNOWN: &str = "—";

/// A ratio as a whole percentage (`42%`).
pub fn pct(v: Option<f64>) -> String {
    v.map_or(UNKNOWN.into(), |x| format!("{:.0}%", x * 100.0))
}

/// Bytes in GiB with one decimal.
pub fn gib(v: Option<u64>) -> String {
    v.map_or(UNKNOWN.into(), |b| format!("{:.1}", b as f64 / (1u64 << 30) as f64))
}

/// Bytes with a binary unit (`812M`, `3.2G`).
pub fn bytes(v: Option<u64>) -> String {
    let Some(b) = v else { return UNKNOWN.into() };
    let b = b as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1}G", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.0}M", b / (1u64 << 20) as f64)
    } else {
        format!("{:.0}K", b / 1024.0)
    }
}

/// A rate in decimal units per second (`1.2G/s`, `340M/s`).
pub fn rate(v: Option<f64>) -> String {
    let Some(r) = v else { return UNKNOWN.into() };
    if r >= 1e9 {
        format!("{:.1}G/s", r / 1e9)
    } else if r >= 1e6 {
        format!("{:.0}M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.0}K/s", r / 1e3)
    } else {
        format!("{r:.0}B/s")
    }
}

/// A plain number with `digits` decimals and a unit.
pub fn num(v: Option<f64>, scale: f64, digits: usize, unit: &str) -> String {
    v.map_or(UNKNOWN.into(), |x| format!("{:.*}{unit}", digits, x * scale))
}

/// A short time span given in seconds (`850ns`, `16µs`, `3.1ms`, `1.25s`).
pub fn seconds(v: Option<f64>) -> String {
    let Some(s) = v else { return UNKNOWN.into() };
    if s < 1e-6 {
        format!("{:.0}ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.0}µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{s:.2}s")
    }
}

/// A count or rate with a decimal unit (`950`, `12.3K`, `4.1M`).
pub fn count(v: Option<f64>) -> String {
    let Some(x) = v else { return UNKNOWN.into() };
    if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}K", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.1}K", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Wall-clock time of day (UTC) of a timestamp in ms.
pub fn clock(ms: u64) -> String {
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// A duration, short (`42s`, `3m05s`, `1h02m`).
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s / 60) % 60)
    }
}

/// A bar of `width` cells filled to `ratio` (`▕████▌   ▏`-like, with plain block characters);
/// dots when the value is unknown.
pub fn bar(ratio: Option<f64>, width: usize) -> String {
    let Some(r) = ratio else { return "·".repeat(width) };
    let eighths = (r.clamp(0.0, 1.0) * (width * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    if !eighths.is_multiple_of(8) {
        s.push_str(PARTS[eighths % 8]);
    }
    let used = eighths / 8 + usize::from(!eighths.is_multiple_of(8));
    s.push_str(&" ".repeat(width.saturating_sub(used)));
    s
}

/// Short badge per clock-event reason bit (NVML encoding, as the catalogue lists them).
pub fn clock_badges(mask: Option<u64>) -> Vec<&'static str> {
    let Some(m) = mask else { return Vec::new() };
    gpuscope_core::catalogue::CLOCK_EVENT_REASONS
        .iter()
        .filter(|(bit, _)| m & bit != 0)
        .map(|(_, name)| match *name {
            "gpu_idle" => "IDLE",
            "applications_clocks_setting" => "APP-CLK",
            "sw_power_cap" => "PWR-CAP",
            "hw_slowdown" => "HW-SLOW",
            "sync_boost" => "SYNC",
            "sw_thermal_slowdown" => "SW-THERM",
            "hw_thermal_slowdown" => "HW-THERM",
            "hw_power_brake_slowdown" => "PWR-BRAKE",
            other => other,
        })
        .collect()
}

/// PCIe bandwidth per direction of a link, from its generation and width (after line encoding).
pub fn pcie_capacity(generation: Option<u32>, width: Option<u32>) -> Option<f64> {
    let per_lane = match generation? {
        1 => 0.25e9,
        2 => 0.5e9,
        3 => 0.985e9,
        4 => 1.969e9,
        5 => 3.938e9,
        6 => 7.563e9,
        _ => return None,
    };
    Some(per_lane * f64::from(width?))
}

/// NVLink bandwidth per direction over the active links. NVLink 3 (A100, compute capability
/// 8.x) and NVLink 4 (H100, 9.x) both carry 25 GB/s per link and direction; the model does not
/// name the NVLink version, so older GPUs' capacity stays unknown.
pub fn nvlink_capacity(g: &gpuscope_core::GpuSample) -> Option<f64> {
    let major: u32 = g.compute_capability.as_deref()?.split('.').next()?.parse().ok()?;
    let active = g.nvlinks.iter().filter(|l| l.active == Some(true)).count();
    (major >= 8 && active > 0).then_some(active as f64 * 25e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_is_never_zero() {
        assert_eq!(pct(None), UNKNOWN);
        assert_eq!(rate(None), UNKNOWN);
        assert_eq!(bytes(None), UNKNOWN);
        assert_eq!(bar(None, 3), "···");
        assert_eq!(pct(Some(0.0)), "0%");
    }

    #[test]
    fn formats() {
        assert_eq!(duration_ms(185_000), "3m05s");
        assert_eq!(duration_ms(3_720_000), "1h02m");
        assert_eq!(clock(1_800_000_000_000), "08:00:00");
        assert_eq!(bar(Some(0.5), 4), "██  ");
        assert_eq!(rate(Some(2.5e9)), "2.5G/s");
        assert_eq!(pcie_capacity(Some(5), Some(16)), Some(3.938e9 * 16.0));
        assert_eq!(clock_badges(Some(0x4 | 0x40)), vec!["PWR-CAP", "HW-THERM"]);
        assert_eq!(seconds(Some(850e-9)), "850ns");
        assert_eq!(seconds(Some(16.4e-6)), "16µs");
        assert_eq!(seconds(Some(0.0031)), "3.1ms");
        assert_eq!(seconds(Some(1.25)), "1.25s");
        assert_eq!(seconds(None), UNKNOWN);
        assert_eq!(count(Some(950.0)), "950");
        assert_eq!(count(Some(1234.0)), "1.2K");
        assert_eq!(count(Some(12_345.0)), "12K");
        assert_eq!(count(Some(4.1e6)), "4.1M");
    }
}
