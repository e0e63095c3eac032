//! Why is the job slow: the efficiency rules, and the helpers several of them share.

pub mod comm_bound;
pub mod fp64_heavy;
pub mod gpu_idle_allocated;
pub mod host_thread_bound;
pub mod input_bound_cpu;
pub mod input_bound_io;
pub mod launch_bound;
pub mod memory_bandwidth_bound;
pub mod memory_near_full;
pub mod memory_underused;
pub mod nccl_over_tcp;
pub mod no_tensor_cores;
pub mod pcie_h2d_bound;
pub mod straggler;

use super::{Ctx, Hit};
use crate::window::{NodeWindow, mean};
use gpuscope_core::{Evidence, NodeSnapshot};
use std::collections::BTreeMap;

/// GPUs with a process on them in this snapshot.
fn held(s: &NodeSnapshot) -> Vec<u32> {
    let mut v: Vec<u32> = s.processes.iter().map(|p| p.gpu_index).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Mean activity over the GPUs that hold a process (the job's GPUs), with the signal used.
fn job_gpu_activity(c: &Ctx, w: &NodeWindow, s: &NodeSnapshot) -> Option<(f64, &'static str, Vec<u32>)> {
    let gpus: Vec<u32> = held(s).into_iter().filter(|g| s.gpus.iter().any(|x| x.index == *g && !x.lost)).collect();
    let acts: Vec<(f64, &'static str)> = gpus.iter().filter_map(|g| c.activity(w, *g)).collect();
    let name = acts.first()?.1;
    Some((mean(&acts.iter().map(|a| a.0).collect::<Vec<_>>())?, name, gpus))
}

/// The members of a job: (node, window, latest snapshot).
type Members<'a> = Vec<(&'a str, &'a NodeWindow, &'a NodeSnapshot)>;

/// Nodes grouped by job (only nodes that report one).
fn jobs<'a>(c: &'a Ctx) -> BTreeMap<String, Members<'a>> {
    let mut m: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (n, w, s) in c.latest() {
        if let Some(j) = &s.node.job {
            m.entry(j.clone()).or_default().push((n, w, s));
        }
    }
    m
}

/// A job-scope hit, on one node of the job or on the whole job.
fn job_hit(job: &str, node: Option<&str>, gpus: Vec<u32>, summary: String, evidence: Vec<Evidence>) -> Hit {
    Hit {
        node: node.map(str::to_string),
        gpus,
        job: Some(job.to_string()),
        severity: None,
        summary,
        evidence,
        action: None,
        recommendation: None,
        cause: None,
    }
}
