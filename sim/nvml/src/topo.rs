//! Host topology: where each GPU sits on the host (NUMA node, nearest CPUs, the PCIe path to
//! every other GPU; `gpuscope_sim::topology` places them) and where its NVLink links go.
//!
//! GPUs on one NUMA node meet at it (`NVML_TOPOLOGY_NODE`: each
//! GPU hangs off its own root port or PCIe switch), GPUs on different nodes only across the
//! socket interconnect (`NVML_TOPOLOGY_SYSTEM`). NVLink links of HGX boards go to the NVSwitches
//! (H100: 18 links over 4 switches, 5/4/4/5; A100: 12 links over 6, 2 each); those of a DGX-1
//! style board (V100 SXM2) go straight to peer GPUs, in the hybrid cube-mesh on eight GPUs, else
//! spread evenly over the peers.

use super::*;

/// `nvmlGpuTopologyLevel_t`.
const TOPOLOGY_NODE: c_uint = 40;
const TOPOLOGY_SYSTEM: c_uint = 50;
/// `nvmlAffinityScope_t`.
const AFFINITY_SCOPE_SOCKET: c_uint = 1;
/// Bits per word of the CPU and node sets (`unsigned long` on 64-bit Linux).
const WORD: u32 = c_ulong::BITS;

/// NVLink links between each pair of GPUs of a DGX-1 with V100 (hybrid cube-mesh, six links per
/// GPU), as `nvidia-smi topo -m` shows it.
const DGX1_MESH: [[u32; 8]; 8] = [
    [0, 1, 1, 2, 2, 0, 0, 0],
    [1, 0, 2, 1, 0, 2, 0, 0],
    [1, 2, 0, 2, 0, 0, 1, 0],
    [2, 1, 2, 0, 0, 0, 0, 1],
    [2, 0, 0, 0, 0, 1, 1, 2],
    [0, 2, 0, 0, 1, 0, 2, 1],
    [0, 0, 1, 0, 1, 2, 0, 2],
    [0, 0, 0, 1, 2, 1, 2, 0],
];

/// The NUMA node GPU `index` is attached to.
fn numa_node(l: &Loaded, index: u32) -> u32 {
    gpuscope_sim::topology::numa_node(index, l.devices.len())
}

/// The CPUs of NUMA node `node`.
fn node_cpus(l: &Loaded, node: u32) -> std::ops::Range<u32> {
    gpuscope_sim::topology::node_cpus(node, l.devices.len(), l.sim.scenario().node.cpus)
}

/// Writes the set bits `bits` into the caller's `size`-word set (bits past it are cut, as the
/// driver does when the caller's set is short).
fn out_set(size: c_uint, set: *mut c_ulong, bits: impl Iterator<Item = u32>) -> Result<(), Ret> {
    if set.is_null() || size == 0 {
        return Err(INVALID_ARGUMENT);
    }
    let mut words = vec![0 as c_ulong; size as usize];
    for b in bits {
        if let Some(w) = words.get_mut((b / WORD) as usize) {
            *w |= 1 << (b % WORD);
        }
    }
    // SAFETY: the caller's set holds `size` words.
    unsafe { std::ptr::copy_nonoverlapping(words.as_ptr(), set, words.len()) };
    Ok(())
}

/// The NVSwitch link `link` of GPU model `p` goes to.
fn switch_of(p: &GpuPreset, link: u32) -> u32 {
    if p.nvlinks == 18 {
        // Hopper HGX: 5, 4, 4 and 5 links to the four NVSwitches.
        match link {
            0..=4 => 0,
            5..=8 => 1,
            9..=12 => 2,
            _ => 3,
        }
    } else {
        link / (p.nvlinks / 6).max(1)
    }
}

/// The peer GPU link `link` of GPU `index` goes to on a board without NVSwitches.
fn peer_of(l: &Loaded, p: &GpuPreset, index: u32, link: u32) -> Option<u32> {
    let n = l.devices.len() as u32;
    if n == 8 && p.nvlinks == 6 {
        let mut first = 0;
        for (peer, count) in (0..).zip(DGX1_MESH[index as usize]) {
            if link < first + count {
                return Some(peer);
            }
            first += count;
        }
        return None;
    }
    let peers: Vec<u32> = (0..n).filter(|&g| g != index).collect();
    (!peers.is_empty()).then(|| peers[(link as usize) % peers.len()])
}

use gpuscope_sim::presets::GpuPreset;

fn remote_pci(dev: *mut c_void, link: c_uint, pci: *mut PciInfo) -> Result<(), Ret> {
    let (l, g, _) = link_state(dev, link)?;
    let p = g.preset;
    if pci.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    if p.nvswitch {
        let s = switch_of(p, link);
        let bus = 0xC0 + s;
        let id = format!("00000000:{bus:02X}:00.0");
        let mut full = [0 as c_char; 32];
        let mut legacy = [0 as c_char; 16];
        for (d, b) in full.iter_mut().zip(id.bytes()) {
            *d = b as c_char;
        }
        for (d, b) in legacy.iter_mut().zip(format!("0000:{bus:02X}:00.0").bytes()) {
            *d = b as c_char;
        }
        // NVSwitch (third generation with Hopper, second with Ampere).
        let device_id: u32 = if p.compute_capability.0 >= 9 { 0x22A3 } else { 0x1AF1 };
        return out(
            pci,
            PciInfo {
                bus_id_legacy: legacy,
                domain: 0,
                bus,
                device: 0,
                pci_device_id: (device_id << 16) | 0x10DE,
                pci_sub_system_id: (0x1626 << 16) | 0x10DE,
                bus_id: full,
            },
        );
    }
    // A board without peers has nothing at the far end of its links.
    let peer = peer_of(l, p, g.index, link).ok_or(NOT_SUPPORTED)?;
    pci_info(handle(l, peer), pci)
}

nvml! {
    fn nvmlDeviceGetNvLinkRemotePciInfo_v2(dev: *mut c_void, link: c_uint, pci: *mut PciInfo) { remote_pci(dev, link, pci) }

    fn nvmlDeviceGetTopologyCommonAncestor(a: *mut c_void, b: *mut c_void, level: *mut c_uint) {
        let (l, ga, _) = live(a)?;
        let (_, gb, _) = live(b)?;
        if ga.index == gb.index { return Err(INVALID_ARGUMENT); }
        let same = numa_node(l, ga.index) == numa_node(l, gb.index);
        out(level, if same { TOPOLOGY_NODE } else { TOPOLOGY_SYSTEM })
    }
    fn nvmlDeviceGetTopologyNearestGpus(dev: *mut c_void, level: c_uint, count: *mut c_uint, devs: *mut *mut c_void) {
        let (l, g, _) = live(dev)?;
        if count.is_null() || level > TOPOLOGY_SYSTEM { return Err(INVALID_ARGUMENT); }
        let node = numa_node(l, g.index);
        let near: Vec<*mut c_void> = (0..l.devices.len() as u32)
            .filter(|&i| i != g.index)
            .filter(|&i| (if numa_node(l, i) == node { TOPOLOGY_NODE } else { TOPOLOGY_SYSTEM }) <= level)
            .map(|i| handle(l, i))
            .collect();
        // A zero count asks how many there are; else the array takes up to `count` of them.
        // SAFETY: `count` is non-null and points to the caller's c_uint.
        let cap = unsafe { *count } as usize;
        if cap == 0 {
            return out(count, near.len() as c_uint);
        }
        if devs.is_null() { return Err(INVALID_ARGUMENT); }
        let n = near.len().min(cap);
        for (i, h) in near.into_iter().take(n).enumerate() {
            // SAFETY: the caller's array has room for `cap >= n` handles.
            unsafe { devs.add(i).write(h) };
        }
        out(count, n as c_uint)
    }
    fn nvmlDeviceGetCpuAffinity(dev: *mut c_void, size: c_uint, set: *mut c_ulong) {
        let (l, g, _) = live(dev)?;
        out_set(size, set, node_cpus(l, numa_node(l, g.index)))
    }
    // One socket per NUMA node: the node and socket scopes name the same CPUs.
    fn nvmlDeviceGetCpuAffinityWithinScope(dev: *mut c_void, size: c_uint, set: *mut c_ulong, scope: c_uint) {
        let (l, g, _) = live(dev)?;
        if scope > AFFINITY_SCOPE_SOCKET { return Err(INVALID_ARGUMENT); }
        out_set(size, set, node_cpus(l, numa_node(l, g.index)))
    }
    fn nvmlDeviceGetMemoryAffinity(dev: *mut c_void, size: c_uint, set: *mut c_ulong, scope: c_uint) {
        let (l, g, _) = live(dev)?;
        if scope > AFFINITY_SCOPE_SOCKET { return Err(INVALID_ARGUMENT); }
        out_set(size, set, std::iter::once(numa_node(l, g.index)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dgx1_mesh_is_symmetric_with_six_links_per_gpu() {
        for (a, row) in DGX1_MESH.iter().enumerate() {
            assert_eq!(row.iter().sum::<u32>(), 6);
            assert_eq!(row[a], 0);
            for (b, n) in row.iter().enumerate() {
                assert_eq!(*n, DGX1_MESH[b][a]);
            }
        }
    }

    #[test]
    fn hopper_links_spread_5_4_4_5_and_ampere_2_each() {
        let h100 = gpuscope_sim::presets::preset("H100-SXM5-80GB").expect("preset");
        let per: Vec<usize> = (0..4).map(|s| (0..18).filter(|&l| switch_of(h100, l) == s).count()).collect();
        assert_eq!(per, [5, 4, 4, 5]);
        let a100 = gpuscope_sim::presets::preset("A100-SXM4-80GB").expect("preset");
        let per: Vec<usize> = (0..6).map(|s| (0..12).filter(|&l| switch_of(a100, l) == s).count()).collect();
        assert_eq!(per, [2; 6]);
    }
}
