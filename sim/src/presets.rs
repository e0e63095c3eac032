//! GPU model presets with the real limits of each product (as `nvidia-smi -q` reports them).

use serde::Serialize;

/// Static specification of a GPU model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuPreset {
    /// Preset key used in scenario files, e.g. `H100-SXM5-80GB`.
    pub key: &'static str,
    /// Product name NVML reports.
    pub name: &'static str,
    /// Framebuffer size in MiB as NVML reports it.
    pub memory_mib: u64,
    /// Memory the driver reserves, MiB (part of total, neither used nor free).
    pub reserved_mib: u64,
    /// Default power limit, watts.
    pub power_default_w: f64,
    /// Lowest settable power limit, watts.
    pub power_min_w: f64,
    /// Highest settable power limit, watts.
    pub power_max_w: f64,
    /// Power draw when idle, watts.
    pub idle_power_w: f64,
    /// Maximum SM (and graphics) clock, MHz.
    pub max_sm_clock_mhz: u32,
    /// Maximum memory clock, MHz.
    pub max_mem_clock_mhz: u32,
    /// SM clock when idle, MHz.
    pub idle_sm_clock_mhz: u32,
    /// Temperature at which clocks slow down, °C.
    pub slowdown_temp_c: u32,
    /// Temperature at which the GPU shuts down, °C.
    pub shutdown_temp_c: u32,
    /// Maximum PCIe generation.
    pub pcie_gen: u32,
    /// Maximum PCIe width (lanes).
    pub pcie_width: u32,
    /// Number of NVLink links (0: none).
    pub nvlinks: u32,
    /// Bandwidth of one NVLink link per direction, bytes/s.
    pub nvlink_link_bytes_per_second: f64,
    /// CUDA compute capability (major, minor).
    pub compute_capability: (u32, u32),
    /// NVML GPM profiling metrics are available (Hopper and newer).
    pub gpm: bool,
    /// Memory temperature sensor present (HBM parts).
    pub memory_temperature: bool,
    /// A video encoder (NVENC) is present.
    pub encoder: bool,
    /// A video decoder (NVDEC) is present.
    pub decoder: bool,
    /// Row remapping (Ampere and newer) instead of page retirement.
    pub row_remapping: bool,
    /// PCI device id (upper 16 bits of `pciDeviceId`).
    pub pci_device_id: u32,
    /// `nvmlBrandType_t` NVML reports: 2 (Tesla) for Tesla-named boards, 14 (NVIDIA) after them,
    /// 13 (NVIDIA RTX) for the RTX workstation boards.
    pub brand: u32,
    /// Default applications clock for graphics and SM, MHz (`nvidia-smi -q`'s "Default
    /// Applications Clocks"); the memory one is the maximum memory clock.
    pub default_app_sm_clock_mhz: u32,
    /// BAR1 aperture size, MiB.
    pub bar1_mib: u64,
    /// The NVLink links go to NVSwitches (HGX baseboards), not directly to peer GPUs.
    pub nvswitch: bool,
    /// Fans on the board (0: passively cooled by the chassis, as every data-center board is).
    pub fans: u32,
}

impl GpuPreset {
    /// Bandwidth of the PCIe link at its maximum generation and width, bytes/s per direction.
    pub fn pcie_max_bytes_per_second(&self) -> f64 {
        pcie_bytes_per_second(self.pcie_gen, self.pcie_width)
    }

    /// The fan duty the board's fan curve sets at `temp_c`, percent; `None` without fans.
    /// The curve holds its floor (30 %, what an idle board shows) up to 45 °C and rises linearly
    /// to 100 % at the slowdown temperature, where the board needs all the air it can move.
    pub fn fan_speed_pct(&self, temp_c: f64) -> Option<u32> {
        const FLOOR: f64 = 30.0;
        const KNEE_C: f64 = 45.0;
        if self.fans == 0 {
            return None;
        }
        let span = (f64::from(self.slowdown_temp_c) - KNEE_C).max(1.0);
        let x = ((temp_c - KNEE_C) / span).clamp(0.0, 1.0);
        Some((FLOOR + (100.0 - FLOOR) * x).round() as u32)
    }

    /// The GPU has tensor cores (compute capability 7.0 or newer).
    pub fn has_tensor_cores(&self) -> bool {
        self.compute_capability.0 >= 7
    }
}

pub use gpuscope_core::units::pcie_bytes_per_second;

/// Every preset, by key.
pub static PRESETS: &[GpuPreset] = &[
    GpuPreset {
        key: "H100-SXM5-80GB",
        name: "NVIDIA H100 80GB HBM3",
        memory_mib: 81559,
        reserved_mib: 595,
        power_default_w: 700.0,
        power_min_w: 200.0,
        power_max_w: 700.0,
        idle_power_w: 72.0,
        max_sm_clock_mhz: 1980,
        max_mem_clock_mhz: 2619,
        idle_sm_clock_mhz: 345,
        slowdown_temp_c: 90,
        shutdown_temp_c: 92,
        pcie_gen: 5,
        pcie_width: 16,
        nvlinks: 18,
        nvlink_link_bytes_per_second: 25e9,
        compute_capability: (9, 0),
        gpm: true,
        memory_temperature: true,
        encoder: false,
        decoder: true,
        row_remapping: true,
        pci_device_id: 0x2330,
        brand: 14,
        default_app_sm_clock_mhz: 1980,
        bar1_mib: 131072,
        nvswitch: true,
        fans: 0,
    },
    GpuPreset {
        key: "A100-SXM4-80GB",
        name: "NVIDIA A100-SXM4-80GB",
        memory_mib: 81920,
        reserved_mib: 512,
        power_default_w: 400.0,
        power_min_w: 100.0,
        power_max_w: 400.0,
        idle_power_w: 62.0,
        max_sm_clock_mhz: 1410,
        max_mem_clock_mhz: 1593,
        idle_sm_clock_mhz: 210,
        slowdown_temp_c: 89,
        shutdown_temp_c: 92,
        pcie_gen: 4,
        pcie_width: 16,
        nvlinks: 12,
        nvlink_link_bytes_per_second: 25e9,
        compute_capability: (8, 0),
        gpm: false,
        memory_temperature: true,
        encoder: false,
        decoder: true,
        row_remapping: true,
        pci_device_id: 0x20B2,
        brand: 14,
        default_app_sm_clock_mhz: 1275,
        bar1_mib: 131072,
        nvswitch: true,
        fans: 0,
    },
    GpuPreset {
        key: "A100-PCIE-40GB",
        name: "NVIDIA A100-PCIE-40GB",
        memory_mib: 40960,
        reserved_mib: 512,
        power_default_w: 250.0,
        power_min_w: 150.0,
        power_max_w: 250.0,
        idle_power_w: 35.0,
        max_sm_clock_mhz: 1410,
        max_mem_clock_mhz: 1215,
        idle_sm_clock_mhz: 210,
        slowdown_temp_c: 89,
        shutdown_temp_c: 92,
        pcie_gen: 4,
        pcie_width: 16,
        nvlinks: 0,
        nvlink_link_bytes_per_second: 0.0,
        compute_capability: (8, 0),
        gpm: false,
        memory_temperature: true,
        encoder: false,
        decoder: true,
        row_remapping: true,
        pci_device_id: 0x20F1,
        brand: 14,
        default_app_sm_clock_mhz: 765,
        bar1_mib: 65536,
        nvswitch: false,
        fans: 0,
    },
    GpuPreset {
        key: "L4",
        name: "NVIDIA L4",
        memory_mib: 23034,
        reserved_mib: 436,
        power_default_w: 72.0,
        power_min_w: 40.0,
        power_max_w: 72.0,
        idle_power_w: 16.0,
        max_sm_clock_mhz: 2040,
        max_mem_clock_mhz: 6251,
        idle_sm_clock_mhz: 210,
        slowdown_temp_c: 92,
        shutdown_temp_c: 96,
        pcie_gen: 4,
        pcie_width: 16,
        nvlinks: 0,
        nvlink_link_bytes_per_second: 0.0,
        compute_capability: (8, 9),
        gpm: false,
        memory_temperature: false,
        encoder: true,
        decoder: true,
        row_remapping: true,
        pci_device_id: 0x27B8,
        brand: 14,
        default_app_sm_clock_mhz: 2040,
        bar1_mib: 32768,
        nvswitch: false,
        fans: 0,
    },
    GpuPreset {
        key: "V100-SXM2-32GB",
        name: "Tesla V100-SXM2-32GB",
        memory_mib: 32768,
        reserved_mib: 0,
        power_default_w: 300.0,
        power_min_w: 150.0,
        power_max_w: 300.0,
        idle_power_w: 42.0,
        max_sm_clock_mhz: 1530,
        max_mem_clock_mhz: 877,
        idle_sm_clock_mhz: 135,
        slowdown_temp_c: 87,
        shutdown_temp_c: 90,
        pcie_gen: 3,
        pcie_width: 16,
        nvlinks: 6,
        nvlink_link_bytes_per_second: 25e9,
        compute_capability: (7, 0),
        gpm: false,
        memory_temperature: true,
        encoder: true,
        decoder: true,
        row_remapping: false,
        pci_device_id: 0x1DB5,
        brand: 2,
        default_app_sm_clock_mhz: 1290,
        bar1_mib: 32768,
        nvswitch: false,
        fans: 0,
    },
    GpuPreset {
        key: "T4",
        name: "Tesla T4",
        memory_mib: 15360,
        reserved_mib: 0,
        power_default_w: 70.0,
        power_min_w: 60.0,
        power_max_w: 70.0,
        idle_power_w: 10.0,
        max_sm_clock_mhz: 1590,
        max_mem_clock_mhz: 5001,
        idle_sm_clock_mhz: 300,
        slowdown_temp_c: 93,
        shutdown_temp_c: 96,
        pcie_gen: 3,
        pcie_width: 16,
        nvlinks: 0,
        nvlink_link_bytes_per_second: 0.0,
        compute_capability: (7, 5),
        gpm: false,
        memory_temperature: false,
        encoder: true,
        decoder: true,
        row_remapping: false,
        pci_device_id: 0x1EB8,
        brand: 2,
        default_app_sm_clock_mhz: 585,
        bar1_mib: 256,
        nvswitch: false,
        fans: 0,
    },
    GpuPreset {
        key: "RTX6000-ADA",
        name: "NVIDIA RTX 6000 Ada Generation",
        memory_mib: 49140,
        reserved_mib: 542,
        power_default_w: 300.0,
        power_min_w: 100.0,
        power_max_w: 300.0,
        idle_power_w: 23.0,
        max_sm_clock_mhz: 3105,
        max_mem_clock_mhz: 10001,
        idle_sm_clock_mhz: 210,
        slowdown_temp_c: 95,
        shutdown_temp_c: 98,
        pcie_gen: 4,
        pcie_width: 16,
        nvlinks: 0,
        nvlink_link_bytes_per_second: 0.0,
        compute_capability: (8, 9),
        gpm: false,
        memory_temperature: false,
        encoder: true,
        decoder: true,
        row_remapping: true,
        pci_device_id: 0x26B1,
        brand: 13,
        default_app_sm_clock_mhz: 2505,
        bar1_mib: 65536,
        nvswitch: false,
        fans: 1,
    },
];

/// The preset with this key (case-insensitive).
pub fn preset(key: &str) -> Option<&'static GpuPreset> {
    PRESETS.iter().find(|p| p.key.eq_ignore_ascii_case(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_consistent() {
        for p in PRESETS {
            assert!(p.power_min_w <= p.power_default_w && p.power_default_w <= p.power_max_w, "{}", p.key);
            assert!(p.idle_power_w < p.power_min_w, "{}", p.key);
            assert!(p.slowdown_temp_c < p.shutdown_temp_c, "{}", p.key);
            assert_eq!(p.gpm, p.compute_capability.0 >= 9, "GPM is Hopper+ only: {}", p.key);
            assert_eq!(preset(&p.key.to_lowercase()), Some(p));
            assert!(p.default_app_sm_clock_mhz <= p.max_sm_clock_mhz, "{}", p.key);
            assert!(!p.nvswitch || p.nvlinks > 0, "NVSwitch without NVLink: {}", p.key);
            assert_eq!(p.fan_speed_pct(60.0).is_some(), p.fans > 0, "{}", p.key);
        }
        let ada = preset("RTX6000-ADA").expect("the workstation preset");
        assert_eq!(ada.fan_speed_pct(32.0), Some(30), "idle board: the curve's floor");
        assert_eq!(ada.fan_speed_pct(70.0), Some(65));
        assert_eq!(ada.fan_speed_pct(95.0), Some(100));
        assert_eq!(ada.fan_speed_pct(120.0), Some(100));
        assert!(
            (preset("H100-SXM5-80GB").map(GpuPreset::pcie_max_bytes_per_second).unwrap_or(0.0) - 63.0e9).abs() < 0.1e9
        );
    }
}
