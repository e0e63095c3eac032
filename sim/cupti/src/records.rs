//! The CUDA 12.8 CUPTI ABI the library speaks: result codes, enum values, and the activity
//! records it writes, laid out as `cupti_activity.h` declares them (`tests/layout.rs` checks every
//! size and offset against cudarc's bindings of the 12.8 headers).

#![allow(non_snake_case)]

use std::ffi::{c_char, c_void};

/// `CUptiResult` values the library returns.
pub mod result {
    /// `CUPTI_SUCCESS`.
    pub const SUCCESS: u32 = 0;
    /// `CUPTI_ERROR_INVALID_PARAMETER`.
    pub const INVALID_PARAMETER: u32 = 1;
    /// `CUPTI_ERROR_INVALID_OPERATION`.
    pub const INVALID_OPERATION: u32 = 7;
    /// `CUPTI_ERROR_MAX_LIMIT_REACHED`: no more records in the buffer.
    pub const MAX_LIMIT_REACHED: u32 = 12;
    /// `CUPTI_ERROR_NOT_COMPATIBLE`.
    pub const NOT_COMPATIBLE: u32 = 14;
    /// `CUPTI_ERROR_NOT_INITIALIZED`: no CUDA driver in the process.
    pub const NOT_INITIALIZED: u32 = 15;
    /// `CUPTI_ERROR_INVALID_KIND`.
    pub const INVALID_KIND: u32 = 21;
    /// `CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED`.
    pub const MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED: u32 = 39;
    /// `CUPTI_ERROR_UNKNOWN`.
    pub const UNKNOWN: u32 = 999;
}

/// `CUPTI_API_VERSION` of CUDA 12.8.
pub const API_VERSION: u32 = 26;

/// `CUpti_ActivityKind` values the library writes records of.
pub mod kind {
    /// `CUPTI_ACTIVITY_KIND_MEMCPY`.
    pub const MEMCPY: u32 = 1;
    /// `CUPTI_ACTIVITY_KIND_MEMSET`.
    pub const MEMSET: u32 = 2;
    /// `CUPTI_ACTIVITY_KIND_KERNEL` (serialized kernel tracing).
    pub const KERNEL: u32 = 3;
    /// `CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL`.
    pub const CONCURRENT_KERNEL: u32 = 10;
    /// `CUPTI_ACTIVITY_KIND_SYNCHRONIZATION`.
    pub const SYNCHRONIZATION: u32 = 38;
    /// `CUPTI_ACTIVITY_KIND_COUNT` of CUDA 12.8: valid kinds are 1 to COUNT − 1.
    pub const COUNT: u32 = 55;
}

/// `CUpti_CallbackDomain` values and the number of callback ids in each (CUDA 12.8).
pub mod domain {
    /// `CUPTI_CB_DOMAIN_DRIVER_API`.
    pub const DRIVER_API: u32 = 1;
    /// `CUPTI_CB_DOMAIN_RUNTIME_API`.
    pub const RUNTIME_API: u32 = 2;
    /// `CUPTI_CB_DOMAIN_SIZE`: valid domains are 1 to SIZE − 1.
    pub const SIZE: u32 = 7;
    /// Callback ids per domain (`CUPTI_DRIVER_TRACE_CBID_SIZE`, `CUPTI_RUNTIME_TRACE_CBID_SIZE`,
    /// `CUPTI_CBID_RESOURCE_SIZE`, `…_SYNCHRONIZE_SIZE`, `…_NVTX_SIZE`, `…_STATE_SIZE`), by domain.
    pub const CBID_COUNT: [u32; SIZE as usize] = [0, 782, 487, 22, 3, 50, 4];
}

/// Driver API callback ids (`CUpti_driver_api_trace_cbid`).
pub mod driver_cbid {
    /// `cuCtxSynchronize`.
    pub const CTX_SYNCHRONIZE: u32 = 17;
    /// `cuEventSynchronize`.
    pub const EVENT_SYNCHRONIZE: u32 = 121;
    /// `cuStreamSynchronize`.
    pub const STREAM_SYNCHRONIZE: u32 = 126;
    /// `cuMemsetD8Async`.
    pub const MEMSET_D8_ASYNC: u32 = 216;
    /// `cuMemsetD8_v2`.
    pub const MEMSET_D8_V2: u32 = 249;
    /// `cuMemcpyHtoD_v2`.
    pub const MEMCPY_HTOD_V2: u32 = 276;
    /// `cuMemcpyHtoDAsync_v2`.
    pub const MEMCPY_HTOD_ASYNC_V2: u32 = 277;
    /// `cuMemcpyDtoH_v2`.
    pub const MEMCPY_DTOH_V2: u32 = 278;
    /// `cuMemcpyDtoHAsync_v2`.
    pub const MEMCPY_DTOH_ASYNC_V2: u32 = 279;
    /// `cuMemcpyDtoD_v2`.
    pub const MEMCPY_DTOD_V2: u32 = 280;
    /// `cuMemcpyDtoDAsync_v2`.
    pub const MEMCPY_DTOD_ASYNC_V2: u32 = 281;
    /// `cuStreamWaitEvent`.
    pub const STREAM_WAIT_EVENT: u32 = 295;
    /// `cuMemcpy`.
    pub const MEMCPY: u32 = 305;
    /// `cuMemcpyAsync`.
    pub const MEMCPY_ASYNC: u32 = 306;
    /// `cuLaunchKernel`.
    pub const LAUNCH_KERNEL: u32 = 307;
    /// `cuGraphLaunch`.
    pub const GRAPH_LAUNCH: u32 = 514;
}

/// Runtime API callback ids (`CUpti_runtime_api_trace_cbid`).
pub mod runtime_cbid {
    /// `cudaMemcpy_v3020`.
    pub const MEMCPY: u32 = 31;
    /// `cudaMemcpyAsync_v3020`.
    pub const MEMCPY_ASYNC: u32 = 41;
    /// `cudaMemset_v3020`.
    pub const MEMSET: u32 = 49;
    /// `cudaMemsetAsync_v3020`.
    pub const MEMSET_ASYNC: u32 = 51;
    /// `cudaStreamSynchronize_v3020`.
    pub const STREAM_SYNCHRONIZE: u32 = 131;
    /// `cudaEventSynchronize_v3020`.
    pub const EVENT_SYNCHRONIZE: u32 = 137;
    /// `cudaStreamWaitEvent_v3020`.
    pub const STREAM_WAIT_EVENT: u32 = 147;
    /// `cudaDeviceSynchronize_v3020`.
    pub const DEVICE_SYNCHRONIZE: u32 = 165;
    /// `cudaLaunchKernel_v7000`.
    pub const LAUNCH_KERNEL: u32 = 211;
    /// `cudaGraphLaunch_v10000`.
    pub const GRAPH_LAUNCH: u32 = 311;
}

/// `CUpti_ApiCallbackSite`: `CUPTI_API_ENTER`.
pub const API_ENTER: u32 = 0;
/// `CUpti_ApiCallbackSite`: `CUPTI_API_EXIT`.
pub const API_EXIT: u32 = 1;

/// `CUpti_ActivityMemcpyKind` values.
pub mod memcpy_kind {
    /// `CUPTI_ACTIVITY_MEMCPY_KIND_HTOD`.
    pub const HTOD: u8 = 1;
    /// `CUPTI_ACTIVITY_MEMCPY_KIND_DTOH`.
    pub const DTOH: u8 = 2;
    /// `CUPTI_ACTIVITY_MEMCPY_KIND_DTOD`.
    pub const DTOD: u8 = 8;
    /// `CUPTI_ACTIVITY_MEMCPY_KIND_HTOH`.
    pub const HTOH: u8 = 9;
}

/// `CUpti_ActivityMemoryKind` values.
pub mod memory_kind {
    /// `CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE`.
    pub const PAGEABLE: u8 = 1;
    /// `CUPTI_ACTIVITY_MEMORY_KIND_PINNED`.
    pub const PINNED: u8 = 2;
    /// `CUPTI_ACTIVITY_MEMORY_KIND_DEVICE`.
    pub const DEVICE: u8 = 3;
}

/// `CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC` / `CUPTI_ACTIVITY_FLAG_MEMSET_ASYNC`.
pub const FLAG_ASYNC: u8 = 1;

/// `CUpti_ActivitySynchronizationType` values.
pub mod sync_type {
    /// `CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_EVENT_SYNCHRONIZE`.
    pub const EVENT_SYNCHRONIZE: u32 = 1;
    /// `CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT`.
    pub const STREAM_WAIT_EVENT: u32 = 2;
    /// `CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE`.
    pub const STREAM_SYNCHRONIZE: u32 = 3;
    /// `CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE`.
    pub const CONTEXT_SYNCHRONIZE: u32 = 4;
}

/// `CUPTI_SYNCHRONIZATION_INVALID_VALUE`: the stream or event id a sync record does not have.
pub const SYNC_INVALID: u32 = u32::MAX;

/// `CUPTI_CHANNEL_TYPE_COMPUTE`.
pub const CHANNEL_COMPUTE: u32 = 1;
/// `CUPTI_CHANNEL_TYPE_ASYNC_MEMCPY`.
pub const CHANNEL_ASYNC_MEMCPY: u32 = 2;

/// `CUpti_ActivityKernel9`: the kernel record of CUDA 12.x (`CONCURRENT_KERNEL` and `KERNEL`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ActivityKernel9 {
    pub kind: u32,
    /// Requested (low nibble) and executed (high nibble) cache configuration.
    pub cacheConfig: u8,
    pub sharedMemoryConfig: u8,
    pub registersPerThread: u16,
    pub partitionedGlobalCacheRequested: u32,
    pub partitionedGlobalCacheExecuted: u32,
    pub start: u64,
    pub end: u64,
    pub completed: u64,
    pub deviceId: u32,
    pub contextId: u32,
    pub streamId: u32,
    pub gridX: i32,
    pub gridY: i32,
    pub gridZ: i32,
    pub blockX: i32,
    pub blockY: i32,
    pub blockZ: i32,
    pub staticSharedMemory: i32,
    pub dynamicSharedMemory: i32,
    pub localMemoryPerThread: u32,
    pub localMemoryTotal: u32,
    pub correlationId: u32,
    pub gridId: i64,
    pub name: *const c_char,
    pub reserved0: *mut c_void,
    pub queued: u64,
    pub submitted: u64,
    pub launchType: u8,
    pub isSharedMemoryCarveoutRequested: u8,
    pub sharedMemoryCarveoutRequested: u8,
    pub padding: u8,
    pub sharedMemoryExecuted: u32,
    pub graphNodeId: u64,
    pub shmemLimitConfig: u32,
    pub graphId: u32,
    pub pAccessPolicyWindow: *mut c_void,
    pub channelID: u32,
    pub channelType: u32,
    pub clusterX: u32,
    pub clusterY: u32,
    pub clusterZ: u32,
    pub clusterSchedulingPolicy: u32,
    pub localMemoryTotal_v2: u64,
    pub maxPotentialClusterSize: u32,
    pub maxActiveClusters: u32,
}

/// `CUpti_ActivityMemcpy6`: the memcpy record of CUDA 12.8.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ActivityMemcpy6 {
    pub kind: u32,
    pub copyKind: u8,
    pub srcKind: u8,
    pub dstKind: u8,
    pub flags: u8,
    pub bytes: u64,
    pub start: u64,
    pub end: u64,
    pub deviceId: u32,
    pub contextId: u32,
    pub streamId: u32,
    pub correlationId: u32,
    pub runtimeCorrelationId: u32,
    pub pad: u32,
    pub reserved0: *mut c_void,
    pub graphNodeId: u64,
    pub graphId: u32,
    pub channelID: u32,
    pub channelType: u32,
    pub pad2: u32,
    pub copyCount: u64,
}

/// `CUpti_ActivityMemset4`: the memset record of CUDA 12.8.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ActivityMemset4 {
    pub kind: u32,
    pub value: u32,
    pub bytes: u64,
    pub start: u64,
    pub end: u64,
    pub deviceId: u32,
    pub contextId: u32,
    pub streamId: u32,
    pub correlationId: u32,
    pub flags: u16,
    pub memoryKind: u16,
    pub pad: u32,
    pub reserved0: *mut c_void,
    pub graphNodeId: u64,
    pub graphId: u32,
    pub channelID: u32,
    pub channelType: u32,
    pub pad2: u32,
}

/// `CUpti_ActivitySynchronization2`: the synchronization record of CUDA 12.8.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ActivitySynchronization2 {
    pub kind: u32,
    pub type_: u32,
    pub start: u64,
    pub end: u64,
    pub correlationId: u32,
    pub contextId: u32,
    pub streamId: u32,
    pub cudaEventId: u32,
    pub cudaEventSyncId: u64,
    pub returnValue: u32,
    pub pad: u32,
}

/// `CUpti_CallbackData`: what an API callback receives.
#[repr(C)]
#[derive(Debug)]
pub struct CallbackData {
    pub callbackSite: u32,
    pub functionName: *const c_char,
    pub functionParams: *const c_void,
    pub functionReturnValue: *mut c_void,
    pub symbolName: *const c_char,
    pub context: *mut c_void,
    pub contextUid: u32,
    pub correlationData: *mut u64,
    pub correlationId: u32,
}

/// `cuLaunchKernel_params`: the `functionParams` of a `cuLaunchKernel` callback.
#[repr(C)]
#[derive(Debug)]
pub struct CuLaunchKernelParams {
    pub f: *mut c_void,
    pub gridDimX: u32,
    pub gridDimY: u32,
    pub gridDimZ: u32,
    pub blockDimX: u32,
    pub blockDimY: u32,
    pub blockDimZ: u32,
    pub sharedMemBytes: u32,
    pub hStream: *mut c_void,
    pub kernelParams: *mut *mut c_void,
    pub extra: *mut *mut c_void,
}

/// The size of one record of `kind` in a buffer, or `None` for a kind this library never writes.
pub fn record_size(kind: u32) -> Option<usize> {
    match kind {
        kind::KERNEL | kind::CONCURRENT_KERNEL => Some(size_of::<ActivityKernel9>()),
        kind::MEMCPY => Some(size_of::<ActivityMemcpy6>()),
        kind::MEMSET => Some(size_of::<ActivityMemset4>()),
        kind::SYNCHRONIZATION => Some(size_of::<ActivitySynchronization2>()),
        _ => None,
    }
}

/// Records start at multiples of this in a buffer (`ACTIVITY_RECORD_ALIGNMENT`).
pub const RECORD_ALIGNMENT: usize = 8;

/// A record the library writes into activity buffers.
pub trait Record: Copy {
    /// Its activity kind.
    fn kind(&self) -> u32;
    /// When the GPU is done with it, ns: until then a default flush does not deliver its buffer.
    fn end_ns(&self) -> u64;
}

impl Record for ActivityKernel9 {
    fn kind(&self) -> u32 {
        self.kind
    }
    fn end_ns(&self) -> u64 {
        self.end
    }
}

impl Record for ActivityMemcpy6 {
    fn kind(&self) -> u32 {
        self.kind
    }
    fn end_ns(&self) -> u64 {
        self.end
    }
}

impl Record for ActivityMemset4 {
    fn kind(&self) -> u32 {
        self.kind
    }
    fn end_ns(&self) -> u64 {
        self.end
    }
}

impl Record for ActivitySynchronization2 {
    fn kind(&self) -> u32 {
        self.kind
    }
    fn end_ns(&self) -> u64 {
        self.end
    }
}
