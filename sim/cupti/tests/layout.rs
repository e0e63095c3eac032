//! The records and callback structs the simulated CUPTI writes have the CUDA 12.8 layouts:
//! every field this library writes sits at the offset cudarc's bindings of the 12.8 headers
//! give it, and every struct has the header's size.

use cudarc::cupti::sys;
use cupti::records::*;
use std::mem::{offset_of, size_of};

macro_rules! same_layout {
    ($ours:ty, $theirs:ty, [$($field:ident),* $(,)?]) => {{
        assert_eq!(size_of::<$ours>(), size_of::<$theirs>(), "size of {}", stringify!($theirs));
        $(
            assert_eq!(
                offset_of!($ours, $field),
                offset_of!($theirs, $field),
                "offset of {}::{}",
                stringify!($theirs),
                stringify!($field)
            );
        )*
    }};
}

#[test]
fn kernel_record_is_cuda_12_8_kernel9() {
    same_layout!(
        ActivityKernel9,
        sys::CUpti_ActivityKernel9,
        [
            kind,
            cacheConfig,
            sharedMemoryConfig,
            registersPerThread,
            partitionedGlobalCacheRequested,
            partitionedGlobalCacheExecuted,
            start,
            end,
            completed,
            deviceId,
            contextId,
            streamId,
            gridX,
            gridY,
            gridZ,
            blockX,
            blockY,
            blockZ,
            staticSharedMemory,
            dynamicSharedMemory,
            localMemoryPerThread,
            localMemoryTotal,
            correlationId,
            gridId,
            name,
            reserved0,
            queued,
            submitted,
            launchType,
            isSharedMemoryCarveoutRequested,
            sharedMemoryCarveoutRequested,
            padding,
            sharedMemoryExecuted,
            graphNodeId,
            shmemLimitConfig,
            graphId,
            pAccessPolicyWindow,
            channelID,
            channelType,
            clusterX,
            clusterY,
            clusterZ,
            clusterSchedulingPolicy,
            localMemoryTotal_v2,
            maxPotentialClusterSize,
            maxActiveClusters,
        ]
    );
    assert_eq!(size_of::<ActivityKernel9>(), 208);
}

#[test]
fn memcpy_memset_and_sync_records_are_the_cuda_12_8_versions() {
    same_layout!(
        ActivityMemcpy6,
        sys::CUpti_ActivityMemcpy6,
        [
            kind,
            copyKind,
            srcKind,
            dstKind,
            flags,
            bytes,
            start,
            end,
            deviceId,
            contextId,
            streamId,
            correlationId,
            runtimeCorrelationId,
            pad,
            reserved0,
            graphNodeId,
            graphId,
            channelID,
            channelType,
            pad2,
            copyCount,
        ]
    );
    same_layout!(
        ActivityMemset4,
        sys::CUpti_ActivityMemset4,
        [
            kind,
            value,
            bytes,
            start,
            end,
            deviceId,
            contextId,
            streamId,
            correlationId,
            flags,
            memoryKind,
            pad,
            reserved0,
            graphNodeId,
            graphId,
            channelID,
            channelType,
            pad2,
        ]
    );
    same_layout!(
        ActivitySynchronization2,
        sys::CUpti_ActivitySynchronization2,
        [kind, type_, start, end, correlationId, contextId, streamId, cudaEventId, cudaEventSyncId, returnValue, pad,]
    );
    // Every record size keeps the next record 8-byte aligned.
    for k in [kind::KERNEL, kind::CONCURRENT_KERNEL, kind::MEMCPY, kind::MEMSET, kind::SYNCHRONIZATION] {
        let size = record_size(k).expect("a kind the library writes");
        assert_eq!(size % RECORD_ALIGNMENT, 0, "kind {k}");
    }
}

#[test]
fn callback_structs_match_the_headers() {
    same_layout!(
        CallbackData,
        sys::CUpti_CallbackData,
        [
            callbackSite,
            functionName,
            functionParams,
            functionReturnValue,
            symbolName,
            context,
            contextUid,
            correlationData,
            correlationId,
        ]
    );
    same_layout!(
        CuLaunchKernelParams,
        sys::cuLaunchKernel_params_st,
        [
            f,
            gridDimX,
            gridDimY,
            gridDimZ,
            blockDimX,
            blockDimY,
            blockDimZ,
            sharedMemBytes,
            hStream,
            kernelParams,
            extra,
        ]
    );
}

#[test]
fn enum_values_and_constants_match_the_headers() {
    use sys::CUpti_ActivityKind as K;
    assert_eq!(kind::MEMCPY, K::CUPTI_ACTIVITY_KIND_MEMCPY as u32);
    assert_eq!(kind::MEMSET, K::CUPTI_ACTIVITY_KIND_MEMSET as u32);
    assert_eq!(kind::KERNEL, K::CUPTI_ACTIVITY_KIND_KERNEL as u32);
    assert_eq!(kind::CONCURRENT_KERNEL, K::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL as u32);
    assert_eq!(kind::SYNCHRONIZATION, K::CUPTI_ACTIVITY_KIND_SYNCHRONIZATION as u32);
    assert_eq!(kind::COUNT, K::CUPTI_ACTIVITY_KIND_COUNT as u32);
    assert_eq!(API_VERSION, sys::CUPTI_API_VERSION);
    use sys::CUptiResult as R;
    assert_eq!(result::INVALID_PARAMETER, R::CUPTI_ERROR_INVALID_PARAMETER as u32);
    assert_eq!(result::MAX_LIMIT_REACHED, R::CUPTI_ERROR_MAX_LIMIT_REACHED as u32);
    assert_eq!(result::NOT_COMPATIBLE, R::CUPTI_ERROR_NOT_COMPATIBLE as u32);
    assert_eq!(result::NOT_INITIALIZED, R::CUPTI_ERROR_NOT_INITIALIZED as u32);
    assert_eq!(result::INVALID_KIND, R::CUPTI_ERROR_INVALID_KIND as u32);
    assert_eq!(result::MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED, R::CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED as u32);
    use sys::CUpti_CallbackDomain as D;
    assert_eq!(domain::DRIVER_API, D::CUPTI_CB_DOMAIN_DRIVER_API as u32);
    assert_eq!(domain::RUNTIME_API, D::CUPTI_CB_DOMAIN_RUNTIME_API as u32);
    assert_eq!(domain::SIZE, D::CUPTI_CB_DOMAIN_SIZE as u32);
    use sys::CUpti_driver_api_trace_cbid as Dr;
    assert_eq!(domain::CBID_COUNT[1], Dr::CUPTI_DRIVER_TRACE_CBID_SIZE as u32);
    assert_eq!(driver_cbid::LAUNCH_KERNEL, Dr::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel as u32);
    assert_eq!(driver_cbid::GRAPH_LAUNCH, Dr::CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch as u32);
    assert_eq!(driver_cbid::CTX_SYNCHRONIZE, Dr::CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize as u32);
    assert_eq!(driver_cbid::STREAM_SYNCHRONIZE, Dr::CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize as u32);
    assert_eq!(driver_cbid::EVENT_SYNCHRONIZE, Dr::CUPTI_DRIVER_TRACE_CBID_cuEventSynchronize as u32);
    assert_eq!(driver_cbid::STREAM_WAIT_EVENT, Dr::CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent as u32);
    assert_eq!(driver_cbid::MEMCPY_HTOD_V2, Dr::CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoD_v2 as u32);
    assert_eq!(driver_cbid::MEMCPY_HTOD_ASYNC_V2, Dr::CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2 as u32);
    assert_eq!(driver_cbid::MEMCPY_DTOH_V2, Dr::CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoH_v2 as u32);
    assert_eq!(driver_cbid::MEMCPY_DTOH_ASYNC_V2, Dr::CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2 as u32);
    assert_eq!(driver_cbid::MEMCPY_DTOD_V2, Dr::CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoD_v2 as u32);
    assert_eq!(driver_cbid::MEMCPY_DTOD_ASYNC_V2, Dr::CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoDAsync_v2 as u32);
    assert_eq!(driver_cbid::MEMCPY, Dr::CUPTI_DRIVER_TRACE_CBID_cuMemcpy as u32);
    assert_eq!(driver_cbid::MEMCPY_ASYNC, Dr::CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync as u32);
    assert_eq!(driver_cbid::MEMSET_D8_V2, Dr::CUPTI_DRIVER_TRACE_CBID_cuMemsetD8_v2 as u32);
    assert_eq!(driver_cbid::MEMSET_D8_ASYNC, Dr::CUPTI_DRIVER_TRACE_CBID_cuMemsetD8Async as u32);
    use sys::CUpti_runtime_api_trace_cbid as Rt;
    assert_eq!(domain::CBID_COUNT[2], Rt::CUPTI_RUNTIME_TRACE_CBID_SIZE as u32);
    assert_eq!(runtime_cbid::LAUNCH_KERNEL, Rt::CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000 as u32);
    assert_eq!(runtime_cbid::GRAPH_LAUNCH, Rt::CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000 as u32);
    assert_eq!(runtime_cbid::MEMCPY, Rt::CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020 as u32);
    assert_eq!(runtime_cbid::MEMCPY_ASYNC, Rt::CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020 as u32);
    assert_eq!(runtime_cbid::MEMSET, Rt::CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020 as u32);
    assert_eq!(runtime_cbid::MEMSET_ASYNC, Rt::CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020 as u32);
    assert_eq!(runtime_cbid::DEVICE_SYNCHRONIZE, Rt::CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020 as u32);
    assert_eq!(runtime_cbid::STREAM_SYNCHRONIZE, Rt::CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020 as u32);
    assert_eq!(runtime_cbid::EVENT_SYNCHRONIZE, Rt::CUPTI_RUNTIME_TRACE_CBID_cudaEventSynchronize_v3020 as u32);
    assert_eq!(runtime_cbid::STREAM_WAIT_EVENT, Rt::CUPTI_RUNTIME_TRACE_CBID_cudaStreamWaitEvent_v3020 as u32);
    use sys::CUpti_CallbackIdResource as Res;
    assert_eq!(domain::CBID_COUNT[3], Res::CUPTI_CBID_RESOURCE_SIZE as u32);
    assert_eq!(domain::CBID_COUNT[4], sys::CUpti_CallbackIdSync::CUPTI_CBID_SYNCHRONIZE_SIZE as u32);
    assert_eq!(domain::CBID_COUNT[5], sys::CUpti_nvtx_api_trace_cbid::CUPTI_CBID_NVTX_SIZE as u32);
    assert_eq!(domain::CBID_COUNT[6], sys::CUpti_CallbackIdState::CUPTI_CBID_STATE_SIZE as u32);
    use sys::CUpti_ActivityMemcpyKind as Mk;
    assert_eq!(memcpy_kind::HTOD, Mk::CUPTI_ACTIVITY_MEMCPY_KIND_HTOD as u8);
    assert_eq!(memcpy_kind::DTOH, Mk::CUPTI_ACTIVITY_MEMCPY_KIND_DTOH as u8);
    assert_eq!(memcpy_kind::DTOD, Mk::CUPTI_ACTIVITY_MEMCPY_KIND_DTOD as u8);
    assert_eq!(memcpy_kind::HTOH, Mk::CUPTI_ACTIVITY_MEMCPY_KIND_HTOH as u8);
    use sys::CUpti_ActivityMemoryKind as Mem;
    assert_eq!(memory_kind::PAGEABLE, Mem::CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE as u8);
    assert_eq!(memory_kind::PINNED, Mem::CUPTI_ACTIVITY_MEMORY_KIND_PINNED as u8);
    assert_eq!(memory_kind::DEVICE, Mem::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE as u8);
    use sys::CUpti_ActivitySynchronizationType as S;
    assert_eq!(sync_type::EVENT_SYNCHRONIZE, S::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_EVENT_SYNCHRONIZE as u32);
    assert_eq!(sync_type::STREAM_WAIT_EVENT, S::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT as u32);
    assert_eq!(sync_type::STREAM_SYNCHRONIZE, S::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE as u32);
    assert_eq!(sync_type::CONTEXT_SYNCHRONIZE, S::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE as u32);
    assert_eq!(u32::from(FLAG_ASYNC), sys::CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC as u32);
    assert_eq!(CHANNEL_COMPUTE, sys::CUpti_ChannelType::CUPTI_CHANNEL_TYPE_COMPUTE as u32);
    assert_eq!(CHANNEL_ASYNC_MEMCPY, sys::CUpti_ChannelType::CUPTI_CHANNEL_TYPE_ASYNC_MEMCPY as u32);
    assert_eq!(API_ENTER, sys::CUpti_ApiCallbackSite::CUPTI_API_ENTER as u32);
    assert_eq!(API_EXIT, sys::CUpti_ApiCallbackSite::CUPTI_API_EXIT as u32);
}
