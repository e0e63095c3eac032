//! The Prometheus endpoint: encoding (text 0.0.4 and OpenMetrics 1.0.0) and the HTTP server.
//!
//! The encoder is our own rather than prometheus-client's because that crate only writes
//! OpenMetrics, and Prometheus scrapers without content negotiation expect text 0.0.4.

pub mod encode;
pub mod server;
pub mod web_config;

pub use encode::{Format, Names, encode};
pub use server::{Endpoint, serve};
