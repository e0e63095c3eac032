//! Power, thermals and clocks, and the clock event reason bits they read.

pub mod app_clocks_capped;
pub mod hw_slowdown;
pub mod pcie_link_degraded;
pub mod power_capped;
pub mod thermal_throttle;

const APP_CLOCKS: u64 = 0x2;
pub(crate) const SW_POWER_CAP: u64 = 0x4;
pub(crate) const HW_SLOWDOWN: u64 = 0x8;
pub(crate) const SW_THERMAL: u64 = 0x20;
pub(crate) const HW_THERMAL: u64 = 0x40;
pub(crate) const HW_POWER_BRAKE: u64 = 0x80;
