//! The sampling engine: one thread runs every sampler each interval (NVML calls block, so they
//! never run on the async runtime) and publishes the latest snapshot on a watch channel.

use crate::options::AgentOptions;
use crate::sampler::host::{CpuSampler, MemorySampler, NetworkSampler, StorageSampler};
use crate::sampler::nvml::NvmlSampler;
use crate::sampler::process::ProcessSampler;
use crate::sampler::{Pass, SampleError, Sampler};
use gpuscope_core::{AgentStats, NodeInfo, NodeSnapshot};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Failures of one sampler are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The host name from the kernel, when not configured.
pub fn system_hostname(procfs_root: &std::path::Path) -> String {
    std::fs::read_to_string(procfs_root.join("sys/kernel/hostname"))
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The message a panic carried (`panic!` gives a `&str` or a `String`).
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Every sampler, in the order a pass runs them (processes after NVML, which finds them, and
/// after the CUPTI profiles, which they name).
struct Samplers {
    list: Vec<Box<dyn Sampler>>,
    stats: AgentStats,
    last_logged: Vec<Option<Instant>>,
    suppressed: Vec<u64>,
    node: NodeInfo,
    last_slow: Option<Instant>,
    slow_interval: Duration,
}

impl Samplers {
    fn new(opts: &AgentOptions) -> Samplers {
        let mut list: Vec<Box<dyn Sampler>> = vec![
            Box::new(
                NvmlSampler::new(opts.nvml_lib.clone(), opts.slow_interval, opts.interval)
                    .with_sysfs_root(opts.sysfs_root.clone()),
            ),
            Box::new(ProcessSampler::new(
                opts.procfs_root.clone(),
                opts.pod_logs_root.clone(),
                opts.passwd_file.clone(),
            )),
            Box::new(CpuSampler::new(opts.procfs_root.clone())),
            Box::new(MemorySampler::new(opts.procfs_root.clone())),
            Box::new(NetworkSampler::new(opts.procfs_root.clone(), opts.sysfs_root.clone())),
            Box::new(StorageSampler::new(opts.procfs_root.clone(), opts.sysfs_root.clone())),
            Box::new(crate::sampler::filesystem::FilesystemSampler::new(opts.procfs_root.clone())),
        ];
        if let Some(receiver) = &opts.cupti {
            // Before the process sampler, which names the profiles.
            list.insert(1, Box::new(crate::cupti::CuptiSampler::new(receiver.clone())));
        }
        let hostname =
            if opts.hostname.is_empty() { system_hostname(&opts.procfs_root) } else { opts.hostname.clone() };
        let machine_id =
            std::fs::read_to_string("/etc/machine-id").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let n = list.len();
        Samplers {
            list,
            stats: AgentStats::default(),
            last_logged: vec![None; n],
            suppressed: vec![0; n],
            node: NodeInfo { hostname, machine_id, job: opts.job.clone(), labels: opts.labels.clone() },
            last_slow: None,
            slow_interval: opts.slow_interval,
        }
    }

    fn pass(&mut self) -> NodeSnapshot {
        let started = Instant::now();
        let slow = self.last_slow.is_none_or(|t| started.duration_since(t) >= self.slow_interval);
        if slow {
            self.last_slow = Some(started);
        }
        let pass = Pass { now: started, unix_ms: unix_ms(), slow };
        let mut snap = NodeSnapshot { node: self.node.clone(), timestamp_ms: pass.unix_ms, ..NodeSnapshot::default() };
        snap.agent.nvml_errors = std::mem::take(&mut self.stats.nvml_errors);
        for (i, s) in self.list.iter_mut().enumerate() {
            let entry = self.stats.samplers.entry(s.name().to_string()).or_default();
            // A bug in one sampler (a panic) costs its own signals for this pass, not the thread
            // that samples everything.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.sample(&mut snap, &pass)))
                .unwrap_or_else(|p| Err(SampleError::Panicked(panic_message(p.as_ref()))));
            match outcome {
                Ok(()) => {
                    entry.last_success_ms = Some(pass.unix_ms);
                    entry.last_error = None;
                }
                Err(e) => {
                    entry.errors_total += 1;
                    let msg = e.to_string();
                    // One line per failure kind at most once a minute: a broken sampler must
                    // not flood the journal at 10 Hz.
                    let due = self.last_logged[i].is_none_or(|t| started.duration_since(t) >= LOG_EVERY);
                    if due || entry.last_error.as_deref() != Some(msg.as_str()) {
                        let skipped = std::mem::take(&mut self.suppressed[i]);
                        tracing::warn!(sampler = s.name(), suppressed = skipped, "{msg}");
                        self.last_logged[i] = Some(started);
                    } else {
                        self.suppressed[i] += 1;
                    }
                    entry.last_error = Some(msg);
                }
            }
        }
        self.stats.nvml_errors = snap.agent.nvml_errors.clone();
        snap.agent.samplers = self.stats.samplers.clone();
        snap.agent.sample_duration_seconds = started.elapsed().as_secs_f64();
        snap
    }
}

/// A running sampling engine.
pub struct Engine {
    rx: watch::Receiver<Arc<NodeSnapshot>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts sampling on a dedicated thread; the first snapshot is published after one pass.
    pub fn start(opts: AgentOptions) -> std::io::Result<Engine> {
        let (tx, rx) = watch::channel(Arc::new(NodeSnapshot::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new().name("gpuscope-sampler".into()).spawn(move || {
            let mut samplers = Samplers::new(&opts);
            let mut next = Instant::now();
            while !s.load(Ordering::SeqCst) {
                let snap = samplers.pass();
                tx.send_replace(Arc::new(snap));
                next += opts.interval;
                let now = Instant::now();
                if next < now {
                    // A pass overran the interval: skip the missed ticks rather than burst.
                    next = now + opts.interval;
                }
                while !s.load(Ordering::SeqCst) {
                    let left = next.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::sleep(left.min(Duration::from_millis(100)));
                }
            }
        })?;
        Ok(Engine { rx, stop, thread: Some(thread) })
    }

    /// A receiver of the latest snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<NodeSnapshot>> {
        self.rx.clone()
    }

    /// Stops the sampling thread and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Two passes `gap` apart (rates, GPM ratios and CPU fractions need two readings); returns the second.
pub fn sample_once(opts: &AgentOptions, gap: Duration) -> NodeSnapshot {
    let mut samplers = Samplers::new(opts);
    let _ = samplers.pass();
    std::thread::sleep(gap);
    samplers.last_slow = None;
    samplers.pass()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Panics on its first pass only.
    struct Flaky(u32);

    impl Sampler for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }

        fn sample(&mut self, snap: &mut NodeSnapshot, _pass: &Pass) -> Result<(), SampleError> {
            self.0 += 1;
            if self.0 == 1 {
                panic!("boom on pass {}", self.0);
            }
            snap.host.get_or_insert_with(Default::default).load1 = Some(f64::from(self.0));
            Ok(())
        }
    }

    /// A panicking sampler is counted and named; the others run in the same pass, and it runs
    /// again in the next.
    #[test]
    fn a_panicking_sampler_costs_only_its_own_pass() {
        let dir = std::env::temp_dir().join(format!("gpuscope-engine-panic-{}", std::process::id()));
        let opts = AgentOptions {
            nvml_lib: Some(dir.join("no-such-libnvidia-ml.so")),
            procfs_root: dir.join("proc"),
            sysfs_root: dir.join("sys"),
            hostname: "n1".into(),
            ..AgentOptions::default()
        };
        let mut s = Samplers::new(&opts);
        s.list.insert(0, Box::new(Flaky(0)));
        s.last_logged.insert(0, None);
        s.suppressed.insert(0, 0);
        let first = s.pass();
        let flaky = &first.agent.samplers["flaky"];
        assert_eq!(flaky.errors_total, 1);
        assert_eq!(flaky.last_error.as_deref(), Some("sampler panicked: boom on pass 1"));
        // The NVML sampler after it still ran (and failed on its own, for a missing library).
        assert_eq!(first.agent.samplers["nvml"].errors_total, 1);
        let second = s.pass();
        assert_eq!(second.agent.samplers["flaky"].errors_total, 1);
        assert_eq!(second.agent.samplers["flaky"].last_error, None);
        assert_eq!(second.host.and_then(|h| h.load1), Some(2.0));
    }
}
