//! gpuscope's kernel-level profiling core, shared by the CUPTI injection library, the simulated
//! CUPTI and the agent's receiver: the kernel-name classifier (kind, tensor/SIMT pipe,
//! precision).
//!
//! Nothing here talks to CUPTI or to a socket; it is pure logic, tested without a GPU.

pub mod classify;

pub use classify::{CollectiveKind, KernelClass, KernelKind, MathPipe, Precision, classify};
