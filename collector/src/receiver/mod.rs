//! The OTLP receivers, one file per transport; both hand requests to [`crate::ingest`].

pub mod grpc;
pub mod http;
