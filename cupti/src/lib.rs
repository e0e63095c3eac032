//! gpuscope's kernel-level profiling core, shared by the CUPTI injection library, the simulated
//! CUPTI and the agent's receiver: the kernel-name classifier (kind, tensor/SIMT pipe,
//! precision), the in-process aggregator that turns activity records into one summary per
//! profiling window with bounded memory, and the versioned wire format that carries a summary
//! from the profiled process to the local agent (`docs/cupti-protocol.md`).
//!
//! Nothing here talks to CUPTI or to a socket; it is pure logic, tested without a GPU.

pub mod aggregate;
pub mod classify;
pub mod summary;
pub mod wire;

pub use aggregate::{
    Aggregator, AggregatorConfig, KernelRecord, KernelRef, MemcpyRecord, MemsetRecord, SyncRecord, WindowMeta,
};
pub use classify::{CollectiveKind, KernelClass, KernelKind, MathPipe, Precision, classify};
pub use summary::WindowSummary;
pub use wire::{ReadError, WireError, decode, decode_request, encode, encode_request, read_frame, read_request};
