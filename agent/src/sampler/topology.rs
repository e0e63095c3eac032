//! What is read once per GPU when NVML comes up, beyond its identity: VBIOS version, NUMA node
//! and CPU affinity, and how it reaches every other GPU (NVLink links, directly or through
//! NVSwitches, and the PCIe path), the way `nvidia-smi topo -m` derives them. Where NVML cannot
//! tell the NUMA node or the CPUs, the PCI device's `numa_node` and `local_cpulist` in sysfs can.

use super::nvml::call;
use gpuscope_core::{GpuPeer, GpuSample};
use nvml_wrapper::error::{NvmlError, nvml_try};
use nvml_wrapper::{Device, Nvml};
use std::collections::BTreeMap;
use std::os::raw::c_ulong;
use std::path::Path;

/// `NVML_AFFINITY_SCOPE_NODE`: affinity to NUMA nodes rather than sockets.
const AFFINITY_SCOPE_NODE: u32 = nvml_wrapper_sys::bindings::NVML_AFFINITY_SCOPE_NODE;
/// `nvmlIntNvLinkDeviceType_t`.
const NVLINK_DEVICE_TYPE_GPU: u32 = 0;
const NVLINK_DEVICE_TYPE_SWITCH: u32 = 2;
/// Words of the CPU (1,024 CPUs) and NUMA node (256 nodes) bitmasks asked for.
const CPU_SET_WORDS: usize = 16;
const NODE_SET_WORDS: usize = 4;

/// One GPU's inventory.
#[derive(Debug, Default)]
pub(super) struct Inventory {
    vbios_version: Option<String>,
    numa_node: Option<u32>,
    cpu_affinity: Option<String>,
    peers: Vec<GpuPeer>,
}

impl Inventory {
    /// Copies the inventory into a reading.
    pub(super) fn fill(&self, g: &mut GpuSample) {
        g.vbios_version.clone_from(&self.vbios_version);
        g.numa_node = self.numa_node;
        g.cpu_affinity.clone_from(&self.cpu_affinity);
        g.peers.clone_from(&self.peers);
    }
}

/// Where one GPU's NVLink links go.
#[derive(Default)]
struct Links {
    /// Active links to each peer GPU, by PCI bus id.
    to_gpu: BTreeMap<String, u32>,
    /// Active links to NVSwitches.
    to_switch: u32,
}

/// The inventory of every GPU: `gpus` holds each one's handle, PCI bus id and NVLink link count,
/// in NVML index order. A query a GPU does not support leaves its value absent.
pub(super) fn read(
    nvml: &Nvml,
    gpus: &[(u32, &Device<'_>, Option<&str>, u32)],
    sysfs: Option<&Path>,
) -> Vec<Inventory> {
    let links: Vec<Option<Links>> = gpus.iter().map(|(_, d, _, n)| (*n > 0).then(|| nvlinks(nvml, d, *n))).collect();
    gpus.iter()
        .zip(&links)
        .map(|((index, d, bus, _), mine)| {
            let pci_dir = sysfs.zip(*bus).map(|(root, bus)| root.join("bus/pci/devices").join(sysfs_pci_name(bus)));
            let peers = gpus
                .iter()
                .zip(&links)
                .filter(|((peer, ..), _)| peer != index)
                .map(|((peer, other, bus, _), theirs)| {
                    // Over NVSwitches every pair of GPUs on the fabric talks over as many links as
                    // the one with fewer switch links has; direct links count once.
                    let nvlinks = match (mine, theirs) {
                        (Some(a), Some(b)) => {
                            let direct = bus.and_then(|bus| a.to_gpu.get(&bus.to_ascii_uppercase())).copied();
                            Some(direct.unwrap_or(0) + a.to_switch.min(b.to_switch))
                        }
                        (Some(a), None) => {
                            Some(bus.and_then(|bus| a.to_gpu.get(&bus.to_ascii_uppercase())).copied().unwrap_or(0))
                        }
                        (None, _) => None,
                    };
                    GpuPeer { peer_gpu: *peer, nvlinks, pcie_topology_level: pcie_level(nvml, d, other) }
                })
                .collect();
            Inventory {
                vbios_version: call("nvmlDeviceGetVbiosVersion", d.vbios_version()).ok(),
                numa_node: call("nvmlDeviceGetMemoryAffinity", d.memory_affinity(NODE_SET_WORDS, AFFINITY_SCOPE_NODE))
                    .ok()
                    .and_then(|set| single_bit(&set))
                    .or_else(|| pci_dir.as_deref().and_then(sysfs_numa_node)),
                cpu_affinity: call("nvmlDeviceGetCpuAffinity", d.cpu_affinity(CPU_SET_WORDS))
                    .ok()
                    .and_then(|set| cpu_list(&set))
                    .or_else(|| pci_dir.as_deref().and_then(sysfs_cpu_list)),
                peers,
            }
        })
        .collect()
}

/// The nearest common PCIe ancestor of `d` and `other`, as NVML's topology level.
fn pcie_level(nvml: &Nvml, d: &Device<'_>, other: &Device<'_>) -> Option<u32> {
    // nvml-wrapper takes the peer by value; a second wrapper of the same handle costs no
    // nvmlDeviceGetHandleByIndex call per pair.
    // SAFETY: `other`'s handle belongs to this live NVML instance, which outlives the call.
    let other = unsafe { Device::new(other.handle(), nvml) };
    let level = call("nvmlDeviceGetTopologyCommonAncestor", d.topology_common_ancestor(other)).ok()?;
    use nvml_wrapper::enum_wrappers::device::TopologyLevel as L;
    Some(match level {
        L::Internal => 0,
        L::Single => 10,
        L::Multiple => 20,
        L::HostBridge => 30,
        L::Node => 40,
        L::System => 50,
    })
}

/// Where the active links of `d` go: the remote end's device type and PCI bus id per link.
fn nvlinks(nvml: &Nvml, d: &Device<'_>, count: u32) -> Links {
    let mut out = Links::default();
    for link in 0..count {
        let w = d.link_wrapper_for(link);
        if !call("nvmlDeviceGetNvLinkState", w.is_active()).unwrap_or(false) {
            continue;
        }
        match remote_device_type(nvml, d, link) {
            Ok(NVLINK_DEVICE_TYPE_SWITCH) => out.to_switch += 1,
            Ok(NVLINK_DEVICE_TYPE_GPU) => {
                if let Ok(pci) = call("nvmlDeviceGetNvLinkRemotePciInfo_v2", w.remote_pci_info()) {
                    *out.to_gpu.entry(pci.bus_id.to_ascii_uppercase()).or_insert(0) += 1;
                }
            }
            // An IBM NPU, or a type this build does not know: neither a peer GPU nor a switch.
            Ok(_) => {}
            Err(e) => tracing::debug!(link, "nvmlDeviceGetNvLinkRemoteDeviceType: {e}"),
        }
    }
    out
}

/// `nvmlDeviceGetNvLinkRemoteDeviceType` through the raw entry point: nvml-wrapper 0.13's
/// wrapper discards the answer.
fn remote_device_type(nvml: &Nvml, d: &Device<'_>, link: u32) -> Result<u32, NvmlError> {
    let f = nvml.lib().nvmlDeviceGetNvLinkRemoteDeviceType.as_ref().map_err(|_| NvmlError::NotSupported)?;
    let mut kind: nvml_wrapper_sys::bindings::nvmlIntNvLinkDeviceType_t = 0;
    // SAFETY: the handle belongs to this live NVML instance; `kind` outlives the call.
    call("nvmlDeviceGetNvLinkRemoteDeviceType", nvml_try(unsafe { f(d.handle(), link, &mut kind) }))?;
    Ok(kind)
}

/// The sysfs name of a PCI device from NVML's bus id (`00000000:18:00.0` → `0000:18:00.0`).
fn sysfs_pci_name(nvml_bus_id: &str) -> String {
    let id = nvml_bus_id.to_ascii_lowercase();
    match id.split_once(':') {
        Some((domain, rest)) if domain.len() > 4 => format!("{}:{rest}", &domain[domain.len() - 4..]),
        _ => id,
    }
}

/// A PCI device's NUMA node from sysfs; the kernel writes -1 where the platform names none.
fn sysfs_numa_node(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("numa_node")).ok()?.trim().parse::<i64>().ok().and_then(|n| u32::try_from(n).ok())
}

/// A PCI device's nearest CPUs from sysfs, already a Linux CPU list.
fn sysfs_cpu_list(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("local_cpulist")).ok()?;
    let list = text.trim();
    let valid = !list.is_empty() && list.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ',');
    valid.then(|| list.to_string())
}

/// The one bit set in a bitmask, or `None` when none or several are.
fn single_bit(set: &[c_ulong]) -> Option<u32> {
    let bits = bits(set);
    (bits.len() == 1).then(|| bits[0])
}

fn bits(set: &[c_ulong]) -> Vec<u32> {
    let width = c_ulong::BITS;
    set.iter()
        .enumerate()
        .flat_map(|(w, word)| (0..width).filter(move |b| word >> b & 1 == 1).map(move |b| w as u32 * width + b))
        .collect()
}

/// A CPU bitmask as a Linux CPU list (`0-3,8-11`); `None` when empty.
fn cpu_list(set: &[c_ulong]) -> Option<String> {
    let cpus = bits(set);
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for c in cpus {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == c => *end = c,
            _ => ranges.push((c, c)),
        }
    }
    if ranges.is_empty() {
        return None;
    }
    let parts: Vec<String> =
        ranges.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    Some(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmasks_read_as_linux_lists() {
        assert_eq!(cpu_list(&[0b1111_0000_1111, 0]), Some("0-3,8-11".into()));
        assert_eq!(cpu_list(&[1 << 63, 1]), Some("63-64".into()));
        assert_eq!(cpu_list(&[0, 0]), None);
        assert_eq!(single_bit(&[0, 0b10]), Some(65));
        assert_eq!(single_bit(&[0b11]), None, "a GPU between two nodes has no single node");
        assert_eq!(single_bit(&[0]), None);
    }

    #[test]
    fn sysfs_tells_the_node_and_cpus_when_nvml_cannot() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("bus/pci/devices").join(sysfs_pci_name("00000000:9A:00.0"));
        assert!(dir.ends_with("0000:9a:00.0"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("numa_node"), "1\n").expect("write");
        std::fs::write(dir.join("local_cpulist"), "56-111,168-223\n").expect("write");
        assert_eq!(sysfs_numa_node(&dir), Some(1));
        assert_eq!(sysfs_cpu_list(&dir).as_deref(), Some("56-111,168-223"));
        std::fs::write(dir.join("numa_node"), "-1\n").expect("write");
        std::fs::write(dir.join("local_cpulist"), "garbage\n").expect("write");
        assert_eq!(sysfs_numa_node(&dir), None, "no NUMA node, not node 0");
        assert_eq!(sysfs_cpu_list(&dir), None);
        assert_eq!(sysfs_numa_node(&root.path().join("missing")), None);
    }
}
