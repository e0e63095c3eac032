//! Kernel-level rules: they need CUPTI activity records, which the analysis does not receive
//! yet, so they have metadata and settings but no evaluation.

pub mod fp32_gemm_kernels;
pub mod gpu_gaps;
pub mod pageable_memcpy;
pub mod short_kernels;
pub mod sync_heavy;
