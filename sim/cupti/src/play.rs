//! Playing a `[cuda]` workload as the CUDA driver would: a deterministic schedule of API calls
//! on the host and of kernels, copies and memsets on the GPU, fired in real time.
//!
//! The schedule is a pure function of the workload and the launch rate. The host issues launch
//! `i` at its slot; a slot is `1/rate` minus the host time the syncs and pauses take per launch,
//! so that launches average exactly `rate` per second with them. Kernels are picked by smooth
//! weighted round-robin on their shares (exact proportions over every cycle). The GPU runs
//! kernels, copies and memsets in issue order, each starting at
//! `max(issue time + launch latency, end of the previous one)`. Synchronizations and pauses
//! follow the launch after which they are due, block the host for their duration, and start
//! at the host's time.

use crate::callbacks::{self, ApiCall, CONTEXT_ID};
use crate::records::*;
use crate::{activity, intern, timestamp_ns};
use gpuscope_sim::cuda::{CopyKind, CudaSpec, HostMemory, SyncKind};
use std::ffi::{CStr, c_void};
use std::time::{Duration, Instant};

/// One step of the schedule; times are ns since the play's origin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Kernel `kernel` launched at `host`, running `[start, end)`.
    Launch {
        /// Host time of the call.
        host: u64,
        /// Index into the workload's kernels.
        kernel: usize,
        /// GPU start.
        start: u64,
        /// GPU end.
        end: u64,
    },
    /// Copy `copy` issued at `host`, on the GPU over `[start, end)`.
    Copy {
        /// Host time of the call.
        host: u64,
        /// Index into the workload's copies.
        copy: usize,
        /// GPU start.
        start: u64,
        /// GPU end.
        end: u64,
    },
    /// Memset `memset` issued at `host`, on the GPU over `[start, end)`.
    Memset {
        /// Host time of the call.
        host: u64,
        /// Index into the workload's memsets.
        memset: usize,
        /// GPU start.
        start: u64,
        /// GPU end.
        end: u64,
    },
    /// Synchronization `sync`: the host waits over `[host, end)`.
    Sync {
        /// Host time the call starts.
        host: u64,
        /// Index into the workload's syncs.
        sync: usize,
        /// Host time the call returns.
        end: u64,
    },
    /// A pause of the host with no CUDA call over `[host, end)`.
    Idle {
        /// Host time the pause starts.
        host: u64,
        /// Host time it ends.
        end: u64,
    },
}

impl Step {
    /// Host time of the step, ns since the origin.
    pub fn host(&self) -> u64 {
        match *self {
            Step::Launch { host, .. }
            | Step::Copy { host, .. }
            | Step::Memset { host, .. }
            | Step::Sync { host, .. }
            | Step::Idle { host, .. } => host,
        }
    }
}

/// The deterministic schedule of a workload: `launches` launch slots and what follows them.
pub struct Schedule<'a> {
    spec: &'a CudaSpec,
    weights: Vec<f64>,
    credits: Vec<f64>,
    slot_ns: f64,
    latency_ns: f64,
    launches: u64,
    issued: u64,
    host: f64,
    gpu_free: f64,
    pending: std::collections::VecDeque<Step>,
}

impl<'a> Schedule<'a> {
    /// The schedule of `launches` launches of `spec` at `rate` launches per second (checked
    /// with [`CudaSpec::check_rate`]).
    pub fn new(spec: &'a CudaSpec, rate: f64, launches: u64) -> Result<Schedule<'a>, String> {
        spec.check_rate(rate)?;
        let total: f64 = spec.kernels.iter().map(|k| k.share).sum();
        let weights: Vec<f64> = spec.kernels.iter().map(|k| k.share / total).collect();
        Ok(Schedule {
            spec,
            credits: vec![0.0; weights.len()],
            weights,
            slot_ns: 1e9 / rate - spec.host_wait_us_per_launch() * 1e3,
            latency_ns: spec.launch_latency_us * 1e3,
            launches,
            issued: 0,
            host: 0.0,
            gpu_free: 0.0,
            pending: std::collections::VecDeque::new(),
        })
    }

    fn pick(&mut self) -> usize {
        let mut best = 0;
        for (i, w) in self.weights.iter().enumerate() {
            self.credits[i] += w;
            if self.credits[i] > self.credits[best] {
                best = i;
            }
        }
        self.credits[best] -= 1.0;
        best
    }

    fn on_gpu(&mut self, issue: f64, duration_us: f64) -> (u64, u64) {
        let start = (issue + self.latency_ns).max(self.gpu_free);
        let end = start + duration_us * 1e3;
        self.gpu_free = end;
        (start.round() as u64, end.round() as u64)
    }
}

impl Iterator for Schedule<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if let Some(s) = self.pending.pop_front() {
            return Some(s);
        }
        if self.issued == self.launches {
            return None;
        }
        let spec = self.spec;
        let kernel = self.pick();
        let host = self.host;
        let (start, end) = self.on_gpu(host, spec.kernels[kernel].duration_us);
        self.issued += 1;
        self.host += self.slot_ns;
        let n = self.issued;
        for (copy, c) in spec.copies.iter().enumerate() {
            if n.is_multiple_of(u64::from(c.every)) {
                let (start, end) = self.on_gpu(self.host, c.duration_us);
                self.pending.push_back(Step::Copy { host: self.host.round() as u64, copy, start, end });
            }
        }
        for (memset, m) in spec.memsets.iter().enumerate() {
            if n.is_multiple_of(u64::from(m.every)) {
                let (start, end) = self.on_gpu(self.host, m.duration_us);
                self.pending.push_back(Step::Memset { host: self.host.round() as u64, memset, start, end });
            }
        }
        for (sync, s) in spec.syncs.iter().enumerate() {
            if n.is_multiple_of(u64::from(s.every)) {
                let begin = self.host;
                self.host += s.duration_us * 1e3;
                self.pending.push_back(Step::Sync { host: begin.round() as u64, sync, end: self.host.round() as u64 });
            }
        }
        for i in &spec.idle {
            if n.is_multiple_of(u64::from(i.every)) {
                let begin = self.host;
                self.host += i.duration_us * 1e3;
                self.pending.push_back(Step::Idle { host: begin.round() as u64, end: self.host.round() as u64 });
            }
        }
        Some(Step::Launch { host: host.round() as u64, kernel, start, end })
    }
}

/// What one play did.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Played {
    /// CUPTI timestamp (CLOCK_REALTIME ns) of the schedule's origin.
    pub origin_ns: u64,
    /// Kernel launches.
    pub launches: u64,
    /// Copies.
    pub copies: u64,
    /// Memsets.
    pub memsets: u64,
    /// Synchronization calls.
    pub syncs: u64,
    /// Activity records written into client buffers.
    pub records: u64,
    /// Wall-clock time the play took, ns.
    pub wall_ns: u64,
}

fn c(s: &'static str) -> &'static CStr {
    intern(s)
}

fn sync_names(kind: SyncKind) -> (u32, &'static CStr, u32, &'static CStr, u32) {
    match kind {
        SyncKind::Device => (
            runtime_cbid::DEVICE_SYNCHRONIZE,
            c("cudaDeviceSynchronize_v3020"),
            driver_cbid::CTX_SYNCHRONIZE,
            c("cuCtxSynchronize"),
            sync_type::CONTEXT_SYNCHRONIZE,
        ),
        SyncKind::Stream => (
            runtime_cbid::STREAM_SYNCHRONIZE,
            c("cudaStreamSynchronize_v3020"),
            driver_cbid::STREAM_SYNCHRONIZE,
            c("cuStreamSynchronize"),
            sync_type::STREAM_SYNCHRONIZE,
        ),
        SyncKind::Event => (
            runtime_cbid::EVENT_SYNCHRONIZE,
            c("cudaEventSynchronize_v3020"),
            driver_cbid::EVENT_SYNCHRONIZE,
            c("cuEventSynchronize"),
            sync_type::EVENT_SYNCHRONIZE,
        ),
        SyncKind::StreamWaitEvent => (
            runtime_cbid::STREAM_WAIT_EVENT,
            c("cudaStreamWaitEvent_v3020"),
            driver_cbid::STREAM_WAIT_EVENT,
            c("cuStreamWaitEvent"),
            sync_type::STREAM_WAIT_EVENT,
        ),
    }
}

/// A runtime call wrapping the driver call it makes, as `libcudart` does.
fn runtime_then_driver<T>(
    runtime: (u32, &'static CStr),
    driver: (u32, &'static CStr),
    symbol: Option<&CStr>,
    params: *const c_void,
    body: impl FnOnce(u32, u32) -> T,
) -> T {
    let rt = callbacks::next_correlation();
    let dr = callbacks::next_correlation();
    let outer = ApiCall {
        domain: domain::RUNTIME_API,
        cbid: runtime.0,
        function: runtime.1,
        symbol,
        params: std::ptr::null(),
        correlation: rt,
    };
    callbacks::around(&outer, || {
        let inner =
            ApiCall { domain: domain::DRIVER_API, cbid: driver.0, function: driver.1, symbol, params, correlation: dr };
        callbacks::around(&inner, || body(rt, dr))
    })
}

/// Waits until `deadline`: sleeps while it is far, spins for the last stretch (a sleep overshoots
/// by tens of µs, more than the gap between launches at 20,000 per second).
fn pace(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > Duration::from_micros(300) {
            std::thread::sleep(left - Duration::from_micros(200));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Plays `launches` launches of `spec` at `rate` per second in real time against the library's
/// subscriber and activity buffers. Returns what it did.
pub fn play(spec: &CudaSpec, rate: f64, launches: u64) -> Result<Played, String> {
    let schedule = Schedule::new(spec, rate, launches)?;
    let device = spec.device;
    let names: Vec<&'static CStr> = spec.kernels.iter().map(|k| intern(&k.name)).collect();
    let t0 = Instant::now();
    let origin = timestamp_ns();
    let mut played = Played { origin_ns: origin, ..Played::default() };
    let mut grid_id: i64 = 0;
    for step in schedule {
        pace(t0 + Duration::from_nanos(step.host()));
        match step {
            Step::Launch { kernel, start, end, .. } => {
                let k = &spec.kernels[kernel];
                let name = names[kernel];
                let params = CuLaunchKernelParams {
                    f: std::ptr::null_mut(),
                    gridDimX: k.grid[0],
                    gridDimY: k.grid[1],
                    gridDimZ: k.grid[2],
                    blockDimX: k.block[0],
                    blockDimY: k.block[1],
                    blockDimZ: k.block[2],
                    sharedMemBytes: 0,
                    hStream: std::ptr::null_mut(),
                    kernelParams: std::ptr::null_mut(),
                    extra: std::ptr::null_mut(),
                };
                let (runtime, driver, symbol, params_ptr) = if k.graph {
                    (
                        (runtime_cbid::GRAPH_LAUNCH, c("cudaGraphLaunch_v10000")),
                        (driver_cbid::GRAPH_LAUNCH, c("cuGraphLaunch")),
                        None,
                        std::ptr::null(),
                    )
                } else {
                    (
                        (runtime_cbid::LAUNCH_KERNEL, c("cudaLaunchKernel_v7000")),
                        (driver_cbid::LAUNCH_KERNEL, c("cuLaunchKernel")),
                        Some(name),
                        std::ptr::addr_of!(params).cast::<c_void>(),
                    )
                };
                grid_id += 1;
                let written = runtime_then_driver(runtime, driver, symbol, params_ptr, |_, corr| {
                    let graph_id = if k.graph { kernel as u32 + 1 } else { 0 };
                    let record = ActivityKernel9 {
                        kind: if activity::enabled(kind::KERNEL) { kind::KERNEL } else { kind::CONCURRENT_KERNEL },
                        cacheConfig: 0,
                        sharedMemoryConfig: 0,
                        registersPerThread: 0,
                        partitionedGlobalCacheRequested: 0,
                        partitionedGlobalCacheExecuted: 0,
                        start: origin + start,
                        end: origin + end,
                        completed: origin + end,
                        deviceId: device,
                        contextId: CONTEXT_ID,
                        streamId: k.stream,
                        gridX: k.grid[0] as i32,
                        gridY: k.grid[1] as i32,
                        gridZ: k.grid[2] as i32,
                        blockX: k.block[0] as i32,
                        blockY: k.block[1] as i32,
                        blockZ: k.block[2] as i32,
                        staticSharedMemory: 0,
                        dynamicSharedMemory: 0,
                        localMemoryPerThread: 0,
                        localMemoryTotal: 0,
                        correlationId: corr,
                        gridId: grid_id,
                        name: name.as_ptr(),
                        reserved0: std::ptr::null_mut(),
                        queued: 0,
                        submitted: 0,
                        launchType: 0,
                        isSharedMemoryCarveoutRequested: 0,
                        sharedMemoryCarveoutRequested: 0,
                        padding: 0,
                        sharedMemoryExecuted: 0,
                        graphNodeId: if k.graph { u64::from(graph_id) << 32 | 1 } else { 0 },
                        shmemLimitConfig: 0,
                        graphId: graph_id,
                        pAccessPolicyWindow: std::ptr::null_mut(),
                        channelID: 0,
                        channelType: CHANNEL_COMPUTE,
                        clusterX: 0,
                        clusterY: 0,
                        clusterZ: 0,
                        clusterSchedulingPolicy: 0,
                        localMemoryTotal_v2: 0,
                        maxPotentialClusterSize: 0,
                        maxActiveClusters: 0,
                    };
                    activity::write(&record)
                });
                played.launches += 1;
                played.records += u64::from(written);
            }
            Step::Copy { copy, start, end, .. } => {
                let cp = &spec.copies[copy];
                let host = match cp.host {
                    Some(HostMemory::Pageable) => memory_kind::PAGEABLE,
                    _ => memory_kind::PINNED,
                };
                let (copy_kind, src, dst, drv, drv_async) = match cp.kind {
                    CopyKind::Htod => (
                        memcpy_kind::HTOD,
                        host,
                        memory_kind::DEVICE,
                        (driver_cbid::MEMCPY_HTOD_V2, "cuMemcpyHtoD_v2"),
                        (driver_cbid::MEMCPY_HTOD_ASYNC_V2, "cuMemcpyHtoDAsync_v2"),
                    ),
                    CopyKind::Dtoh => (
                        memcpy_kind::DTOH,
                        memory_kind::DEVICE,
                        host,
                        (driver_cbid::MEMCPY_DTOH_V2, "cuMemcpyDtoH_v2"),
                        (driver_cbid::MEMCPY_DTOH_ASYNC_V2, "cuMemcpyDtoHAsync_v2"),
                    ),
                    CopyKind::Dtod => (
                        memcpy_kind::DTOD,
                        memory_kind::DEVICE,
                        memory_kind::DEVICE,
                        (driver_cbid::MEMCPY_DTOD_V2, "cuMemcpyDtoD_v2"),
                        (driver_cbid::MEMCPY_DTOD_ASYNC_V2, "cuMemcpyDtoDAsync_v2"),
                    ),
                    CopyKind::Htoh => (
                        memcpy_kind::HTOH,
                        host,
                        host,
                        (driver_cbid::MEMCPY, "cuMemcpy"),
                        (driver_cbid::MEMCPY_ASYNC, "cuMemcpyAsync"),
                    ),
                };
                let (runtime, driver) = if cp.r#async {
                    ((runtime_cbid::MEMCPY_ASYNC, c("cudaMemcpyAsync_v3020")), (drv_async.0, c(drv_async.1)))
                } else {
                    ((runtime_cbid::MEMCPY, c("cudaMemcpy_v3020")), (drv.0, c(drv.1)))
                };
                let written = runtime_then_driver(runtime, driver, None, std::ptr::null(), |rt, corr| {
                    activity::write(&ActivityMemcpy6 {
                        kind: kind::MEMCPY,
                        copyKind: copy_kind,
                        srcKind: src,
                        dstKind: dst,
                        flags: if cp.r#async { FLAG_ASYNC } else { 0 },
                        bytes: cp.bytes,
                        start: origin + start,
                        end: origin + end,
                        deviceId: device,
                        contextId: CONTEXT_ID,
                        streamId: cp.stream,
                        correlationId: corr,
                        runtimeCorrelationId: rt,
                        pad: 0,
                        reserved0: std::ptr::null_mut(),
                        graphNodeId: 0,
                        graphId: 0,
                        channelID: 0,
                        channelType: CHANNEL_ASYNC_MEMCPY,
                        pad2: 0,
                        copyCount: 1,
                    })
                });
                played.copies += 1;
                played.records += u64::from(written);
            }
            Step::Memset { memset, start, end, .. } => {
                let m = &spec.memsets[memset];
                let (runtime, driver) = if m.r#async {
                    (
                        (runtime_cbid::MEMSET_ASYNC, c("cudaMemsetAsync_v3020")),
                        (driver_cbid::MEMSET_D8_ASYNC, c("cuMemsetD8Async")),
                    )
                } else {
                    ((runtime_cbid::MEMSET, c("cudaMemset_v3020")), (driver_cbid::MEMSET_D8_V2, c("cuMemsetD8_v2")))
                };
                let written = runtime_then_driver(runtime, driver, None, std::ptr::null(), |_, corr| {
                    activity::write(&ActivityMemset4 {
                        kind: kind::MEMSET,
                        value: u32::from(m.value),
                        bytes: m.bytes,
                        start: origin + start,
                        end: origin + end,
                        deviceId: device,
                        contextId: CONTEXT_ID,
                        streamId: m.stream,
                        correlationId: corr,
                        flags: if m.r#async { u16::from(FLAG_ASYNC) } else { 0 },
                        memoryKind: u16::from(memory_kind::DEVICE),
                        pad: 0,
                        reserved0: std::ptr::null_mut(),
                        graphNodeId: 0,
                        graphId: 0,
                        channelID: 0,
                        channelType: CHANNEL_COMPUTE,
                        pad2: 0,
                    })
                });
                played.memsets += 1;
                played.records += u64::from(written);
            }
            Step::Sync { sync, host, end } => {
                let s = &spec.syncs[sync];
                let (rt_cbid, rt_name, dr_cbid, dr_name, ty) = sync_names(s.kind);
                let written =
                    runtime_then_driver((rt_cbid, rt_name), (dr_cbid, dr_name), None, std::ptr::null(), |_, corr| {
                        // The call returns when the GPU is done: the host is blocked until `end`.
                        pace(t0 + Duration::from_nanos(end));
                        let (stream, event) = match s.kind {
                            SyncKind::Device => (SYNC_INVALID, SYNC_INVALID),
                            SyncKind::Stream => (s.stream, SYNC_INVALID),
                            SyncKind::Event => (SYNC_INVALID, 1),
                            SyncKind::StreamWaitEvent => (s.stream, 1),
                        };
                        activity::write(&ActivitySynchronization2 {
                            kind: kind::SYNCHRONIZATION,
                            type_: ty,
                            start: origin + host,
                            end: origin + end,
                            correlationId: corr,
                            contextId: CONTEXT_ID,
                            streamId: stream,
                            cudaEventId: event,
                            cudaEventSyncId: if event == SYNC_INVALID { u64::MAX } else { u64::from(event) },
                            returnValue: 0,
                            pad: 0,
                        })
                    });
                played.syncs += 1;
                played.records += u64::from(written);
            }
            Step::Idle { end, .. } => pace(t0 + Duration::from_nanos(end)),
        }
    }
    played.wall_ns = t0.elapsed().as_nanos() as u64;
    Ok(played)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use gpuscope_sim::Scenario;

    fn spec(cuda: &str) -> CudaSpec {
        let text = format!(
            "name = \"t\"\n[[gpus]]\nmodel = \"H100-SXM5-80GB\"\n[[processes]]\npid = 5\nname = \"p\"\ngpus = [0]\n\
             [[phases]]\nname = \"p\"\nduration_s = 1\n[cuda]\npid = 5\n{cuda}"
        );
        Scenario::from_toml(&text, "t.toml").unwrap_or_else(|e| panic!("{e}")).cuda.unwrap()
    }

    const MIX: &str = "launches_per_s = 4000\n\
        [[cuda.kernels]]\nname = \"a\"\nshare = 0.5\nduration_us = 100\n\
        [[cuda.kernels]]\nname = \"b\"\nshare = 0.3\nduration_us = 20\n\
        [[cuda.kernels]]\nname = \"c\"\nshare = 0.2\nduration_us = 5\n\
        [[cuda.syncs]]\nkind = \"device\"\nduration_us = 300\nevery = 8\n";

    #[test]
    fn kernels_are_picked_in_exact_proportions() {
        let s = spec(MIX);
        let mut counts = [0u32; 3];
        for step in Schedule::new(&s, 4000.0, 1000).unwrap() {
            if let Step::Launch { kernel, .. } = step {
                counts[kernel] += 1;
            }
        }
        assert_eq!(counts, [500, 300, 200]);
    }

    #[test]
    fn launches_average_the_rate_with_the_syncs_in_between() {
        let s = spec(MIX);
        let launches: Vec<u64> = Schedule::new(&s, 4000.0, 800)
            .unwrap()
            .filter_map(|st| if let Step::Launch { host, .. } = st { Some(host) } else { None })
            .collect();
        // A slot is 250 µs less the 37.5 µs of sync per launch: every 8 launches take 2 ms.
        for k in 0..100 {
            assert_eq!(launches[k * 8], k as u64 * 2_000_000);
        }
        assert_eq!(launches[1] - launches[0], 212_500);
    }

    #[test]
    fn the_gpu_runs_one_thing_at_a_time_after_its_launch() {
        let s = spec(&format!(
            "{MIX}[[cuda.copies]]\nkind = \"htod\"\nhost = \"pageable\"\nbytes = 1024\nduration_us = 40\nevery = 3\n\
             [[cuda.idle]]\nduration_us = 5000\nevery = 100\n"
        ));
        let mut gpu_free = 0;
        let mut big_gaps = 0;
        for step in Schedule::new(&s, 2000.0, 1000).unwrap() {
            let (host, start, end) = match step {
                Step::Launch { host, start, end, .. } | Step::Copy { host, start, end, .. } => (host, start, end),
                _ => continue,
            };
            assert!(start >= host + 4_000 && start >= gpu_free, "{step:?}");
            if start - gpu_free > 4_900_000 {
                big_gaps += 1;
            }
            gpu_free = end;
        }
        // The 5 ms pauses after launches 100, 200, …, 900 (the one after the last launch has no
        // kernel after it) leave the GPU idle for about as long (a copy issued just before a
        // pause shortens its gap by the copy's 40 µs); nothing else comes close.
        assert_eq!(big_gaps, 9);
    }

    #[test]
    fn a_rate_the_host_or_gpu_cannot_sustain_is_refused() {
        let s = spec(MIX);
        // Syncs take 37.5 µs per launch: at 30,000 launches/s a slot is 33 µs.
        assert!(Schedule::new(&s, 30_000.0, 1).err().unwrap().contains("host time"));
        // 60 µs of kernel per launch: at 20,000 launches/s that is 1.2 s per second.
        let fast = spec("launches_per_s = 1000\n[[cuda.kernels]]\nname = \"a\"\nshare = 1\nduration_us = 60\n");
        assert!(Schedule::new(&fast, 20_000.0, 1).err().unwrap().contains("busy 1.20 s"));
    }
}
