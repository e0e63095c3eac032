//! The collector: receives OTLP metrics from many agents (and any other OTLP exporter), keeps a
//! window per node, runs the analysis and publishes findings.

pub mod decode;
