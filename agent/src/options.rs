//! What the sampling engine needs to know: where NVML and /proc are, and how often to sample.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Sampling options (the agent's configuration minus the endpoints).
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// NVML library to load; `None` loads `libnvidia-ml.so.1` from the system.
    pub nvml_lib: Option<PathBuf>,
    /// Fast signals (utilization, power, clocks, processes, host) every this long.
    pub interval: Duration,
    /// Slow signals (ECC, retired pages, row remapping, NVLink errors, pod names) every this long;
    /// also how often a missing driver is retried.
    pub slow_interval: Duration,
    /// Root of the proc filesystem to read (`/proc`, or `/host/proc` in a container).
    pub procfs_root: PathBuf,
    /// Root of the sys filesystem to read.
    pub sysfs_root: PathBuf,
    /// The kubelet's pod log directory, whose entries name pods (`<ns>_<name>_<uid>`).
    pub pod_logs_root: PathBuf,
    /// The passwd file that maps uids to user names.
    pub passwd_file: PathBuf,
    /// Host name to report.
    pub hostname: String,
    /// Job this node works for, if known.
    pub job: Option<String>,
    /// Extra node labels.
    pub labels: BTreeMap<String, String>,
    /// The running CUPTI receiver whose profiles each pass copies into the snapshot; `None`
    /// when kernel-level profiling is off.
    pub cupti: Option<std::sync::Arc<crate::cupti::Receiver>>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            nvml_lib: None,
            interval: Duration::from_secs(1),
            slow_interval: Duration::from_secs(30),
            procfs_root: PathBuf::from("/proc"),
            sysfs_root: PathBuf::from("/sys"),
            pod_logs_root: PathBuf::from("/var/log/pods"),
            passwd_file: PathBuf::from("/etc/passwd"),
            hostname: String::new(),
            job: None,
            labels: BTreeMap::new(),
            cupti: None,
        }
    }
}
