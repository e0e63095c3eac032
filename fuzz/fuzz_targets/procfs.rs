//! The host and process samplers on any /proc and /sys contents. The input is cut at 0xFF bytes
//! into the files below (in order), written into a scratch tree, and every sampler reads that tree
//! twice (so the rate paths run too). A sampler may fail with an error; it must not panic.
#![no_main]

use gpuscope_agent::sampler::host::{CpuSampler, MemorySampler, NetworkSampler, StorageSampler};
use gpuscope_agent::sampler::process::ProcessSampler;
use gpuscope_agent::sampler::{Pass, Sampler};
use gpuscope_core::{NodeSnapshot, ProcessSample};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The files an input fills, relative to the scratch root, in input order.
const FILES: &[&str] = &[
    "proc/stat",
    "proc/loadavg",
    "proc/uptime",
    "proc/meminfo",
    "proc/net/dev",
    "proc/diskstats",
    "sys/class/net/eth0/speed",
    "sys/class/net/eth0/type",
    "sys/class/infiniband/mlx5_0/ports/1/rate",
    "sys/class/infiniband/mlx5_0/ports/1/counters/port_rcv_data",
    "sys/class/infiniband/mlx5_0/ports/1/counters/port_xmit_data",
    "sys/class/infiniband/mlx5_0/ports/1/counters/port_rcv_errors",
    "sys/class/nvme/nvme0/model",
    "proc/4242/stat",
    "proc/4242/status",
    "proc/4242/cgroup",
    "proc/4242/cmdline",
    "proc/1/stat",
    "etc/passwd",
];

fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        // In memory where there is a tmpfs: each input writes every file.
        let base = Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()).unwrap_or_else(std::env::temp_dir);
        let r = base.join(format!("gpuscope-fuzz-procfs-{}", std::process::id()));
        for f in FILES {
            if let Some(dir) = r.join(f).parent() {
                std::fs::create_dir_all(dir).expect("scratch tree");
            }
        }
        std::fs::create_dir_all(r.join("pods")).expect("scratch tree");
        r
    })
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    let mut parts = data.split(|b| *b == 0xFF);
    for f in FILES {
        if std::fs::write(root.join(f), parts.next().unwrap_or_default()).is_err() {
            return;
        }
    }
    let (proc, sys) = (root.join("proc"), root.join("sys"));
    let mut samplers: Vec<Box<dyn Sampler>> = vec![
        Box::new(CpuSampler::new(proc.clone())),
        Box::new(MemorySampler::new(proc.clone())),
        Box::new(NetworkSampler::new(proc.clone(), sys.clone())),
        Box::new(StorageSampler::new(proc.clone(), sys)),
        Box::new(ProcessSampler::new(proc, root.join("pods"), root.join("etc/passwd"))),
    ];
    let start = Instant::now();
    for (i, at) in [start, start + Duration::from_secs(1)].into_iter().enumerate() {
        let pass = Pass { now: at, unix_ms: 1_700_000_000_000 + i as u64 * 1000, slow: true };
        let mut snap = NodeSnapshot::default();
        snap.processes = vec![ProcessSample { pid: 4242, gpu_index: 0, ..ProcessSample::default() }];
        for s in &mut samplers {
            let _ = s.sample(&mut snap, &pass);
        }
    }
});
