//! Where the simulated GPUs sit on the host, shared by the NVML library (affinity and topology
//! answers) and the /sys tree (`bus/pci/devices/<bus>/numa_node`, `local_cpulist`), so that both
//! tell the same story.
//!
//! A node with four or more GPUs has two NUMA nodes (two sockets, as HGX and most 4- and 8-GPU
//! servers have), the first half of the GPUs on node 0; a smaller node has one. The CPUs split
//! evenly and contiguously between the NUMA nodes.

use std::ops::Range;

/// NUMA nodes of a node with `gpus` GPUs.
pub fn numa_nodes(gpus: usize) -> u32 {
    if gpus >= 4 { 2 } else { 1 }
}

/// The NUMA node GPU `index` of `gpus` is attached to.
pub fn numa_node(index: u32, gpus: usize) -> u32 {
    let n = gpus.max(1) as u32;
    index.min(n - 1) * numa_nodes(gpus) / n
}

/// The CPUs of NUMA node `node` on a host with `cpus` CPUs and `gpus` GPUs.
pub fn node_cpus(node: u32, gpus: usize, cpus: u32) -> Range<u32> {
    let nodes = numa_nodes(gpus);
    node * cpus / nodes..(node + 1) * cpus / nodes
}

/// A CPU range as a Linux CPU list (`0-111`); empty for an empty range.
pub fn cpu_list(cpus: &Range<u32>) -> String {
    match cpus.end.checked_sub(cpus.start) {
        None | Some(0) => String::new(),
        Some(1) => cpus.start.to_string(),
        _ => format!("{}-{}", cpus.start, cpus.end - 1),
    }
}

/// The sysfs name of a PCI device from NVML's bus id (`00000000:18:00.0` → `0000:18:00.0`).
pub fn sysfs_pci_name(nvml_bus_id: &str) -> String {
    let id = nvml_bus_id.to_ascii_lowercase();
    match id.split_once(':') {
        Some((domain, rest)) if domain.len() > 4 => format!("{}:{rest}", &domain[domain.len() - 4..]),
        _ => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_sockets_from_four_gpus() {
        assert_eq!((0..8).map(|g| numa_node(g, 8)).collect::<Vec<_>>(), [0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!((0..4).map(|g| numa_node(g, 4)).collect::<Vec<_>>(), [0, 0, 1, 1]);
        assert_eq!((0..2).map(|g| numa_node(g, 2)).collect::<Vec<_>>(), [0, 0]);
        assert_eq!(cpu_list(&node_cpus(1, 8, 224)), "112-223");
        assert_eq!(cpu_list(&node_cpus(0, 2, 32)), "0-31");
        assert_eq!(cpu_list(&(3..4)), "3");
        assert_eq!(sysfs_pci_name("00000000:AB:00.0"), "0000:ab:00.0");
    }
}
