//! Hardware health.

pub mod ecc_uncorrectable;
pub mod gpu_lost;
pub mod net_link_degraded;
pub mod nvlink_errors;
pub mod pcie_replay;
pub mod retired_pages;
pub mod row_remap;
pub mod xid_error;
