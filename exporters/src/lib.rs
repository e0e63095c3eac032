//! Exporters: the Prometheus scrape endpoint, which encodes the latest node snapshot on every
//! scrape (never calling NVML), in gpuscope's native names and optionally dcgm-exporter's; and
//! the OTLP encoding of snapshots for pushing to a collector.

pub mod otlp;
pub mod prometheus;
