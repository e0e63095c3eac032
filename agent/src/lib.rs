//! The node agent's sampling side: independent samplers (NVML devices and GPM, XID events, GPU
//! processes, host CPU, memory, network and storage, and the CUPTI receiver's kernel profiles)
//! run by a sampling engine on its own thread, which publishes the latest
//! [`NodeSnapshot`](gpuscope_core::NodeSnapshot) on a watch channel.
//!
//! A failing sampler is logged (rate-limited) and counted, and the others go on. Values that
//! cannot be read stay `None`.

pub mod cgroup;
pub mod cupti;
pub mod engine;
pub mod options;
pub mod sampler;

pub use engine::{Engine, sample_once};
pub use options::AgentOptions;
