//! Units of the catalogue's signals and how each is spelled in Prometheus and OTLP (UCUM).

use serde::{Deserialize, Serialize};

/// The base unit a signal is stored and exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A 0–1 fraction (utilization, activity).
    Ratio,
    /// Bytes.
    Bytes,
    /// Bytes per second.
    BytesPerSecond,
    /// Degrees Celsius.
    Celsius,
    /// Watts.
    Watts,
    /// Joules.
    Joules,
    /// Hertz.
    Hertz,
    /// Events per second (kernel launches).
    PerSecond,
    /// Seconds.
    Seconds,
    /// A plain count of events or things (errors, pages, rows).
    Count,
    /// A 0/1 state or a code (no unit).
    State,
    /// An `_info` series whose value is always 1 and whose labels carry identity.
    Info,
}

impl Unit {
    /// The suffix a Prometheus metric name in this unit must carry (before `_total`).
    pub fn prometheus_suffix(self) -> Option<&'static str> {
        match self {
            Unit::Ratio => Some("_ratio"),
            Unit::Bytes => Some("_bytes"),
            Unit::BytesPerSecond => Some("_bytes_per_second"),
            Unit::Celsius => Some("_celsius"),
            Unit::Watts => Some("_watts"),
            Unit::Joules => Some("_joules"),
            Unit::Hertz => Some("_hertz"),
            Unit::PerSecond => Some("_per_second"),
            Unit::Seconds => Some("_seconds"),
            Unit::Info => Some("_info"),
            Unit::Count | Unit::State => None,
        }
    }

    /// The UCUM unit string used in OTLP.
    pub fn ucum(self) -> &'static str {
        match self {
            Unit::Ratio | Unit::Count | Unit::State | Unit::Info => "1",
            Unit::Bytes => "By",
            Unit::BytesPerSecond => "By/s",
            Unit::Celsius => "Cel",
            Unit::Watts => "W",
            Unit::Joules => "J",
            Unit::Hertz => "Hz",
            Unit::PerSecond => "1/s",
            Unit::Seconds => "s",
        }
    }
}

/// Usable PCIe bandwidth per direction for a link generation and lane count, bytes/s (after
/// 8b/10b encoding for Gen1–2 and 128b/130b from Gen3).
pub fn pcie_bytes_per_second(generation: u32, lanes: u32) -> f64 {
    let per_lane = match generation {
        1 => 250e6,
        2 => 500e6,
        3 => 984.6e6,
        4 => 1969.2e6,
        5 => 3938.5e6,
        _ => 7877e6,
    };
    per_lane * f64::from(lanes)
}
