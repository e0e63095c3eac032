//! GPU processes: name, user, CPU time, RSS and container / pod attribution from /proc.
//!
//! NVML reports host PIDs; reading them under the host's proc root (mounted into the agent's
//! container, with `hostPID`) attributes them correctly even when the agent is containerised.

use super::{Pass, SampleError, Sampler};
use crate::cgroup;
use gpuscope_core::NodeSnapshot;
use procfs_core::FromRead;
use std::collections::HashMap;
use std::path::PathBuf;

/// Kernel clock ticks per second on Linux.
const USER_HZ: f64 = 100.0;
const PAGE_SIZE: u64 = 4096;

/// Enriches the processes the NVML sampler found.
pub struct ProcessSampler {
    procfs_root: PathBuf,
    pod_logs_root: PathBuf,
    passwd_file: PathBuf,
    users: HashMap<u32, String>,
    pods: HashMap<String, (String, String)>,
}

impl ProcessSampler {
    /// A sampler reading `<procfs_root>/<pid>/…`.
    pub fn new(
        procfs_root: PathBuf,
        pod_logs_root: PathBuf,
        passwd_file: PathBuf,
    ) -> ProcessSampler {
        ProcessSampler {
            procfs_root,
            pod_logs_root,
            passwd_file,
            users: HashMap::new(),
            pods: HashMap::new(),
        }
    }

    fn refresh_names(&mut self) {
        self.users = std::fs::read_to_string(&self.passwd_file)
            .map(|s| {
                s.lines()
                    .filter_map(|l| {
                        let mut f = l.split(':');
                        let name = f.next()?;
                        let uid = f.nth(1)?.parse().ok()?;
                        Some((uid, name.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // /var/log/pods/<namespace>_<name>_<uid>
        self.pods = std::fs::read_dir(&self.pod_logs_root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        let mut parts = n.rsplitn(2, '_');
                        let uid = parts.next()?.to_string();
                        let (ns, name) = parts.next()?.split_once('_')?;
                        Some((uid, (ns.to_string(), name.to_string())))
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
}

impl Sampler for ProcessSampler {
    fn name(&self) -> &'static str {
        "processes"
    }

    fn sample(&mut self, snap: &mut NodeSnapshot, pass: &Pass) -> Result<(), SampleError> {
        if pass.slow || (self.users.is_empty() && self.pods.is_empty()) {
            self.refresh_names();
        }
        let mut failures = 0;
        for p in &mut snap.processes {
            let dir = self.procfs_root.join(p.pid.to_string());
            // A process can exit between NVML's answer and this read: not an error.
            let Ok(stat) = std::fs::read(dir.join("stat")) else {
                failures += 1;
                continue;
            };
            match procfs_core::process::Stat::from_read(stat.as_slice()) {
                Ok(s) => {
                    // comm is the process name; command lines stay private (they can hold secrets).
                    p.name = s.comm.clone();
                    p.cpu_seconds_total = Some((s.utime + s.stime) as f64 / USER_HZ);
                    p.rss_bytes = Some(s.rss * PAGE_SIZE);
                }
                Err(_) => failures += 1,
            }
            if let Ok(status) = std::fs::read_to_string(dir.join("status"))
                && let Some(uid) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u32>().ok())
            {
                p.user = Some(
                    self.users
                        .get(&uid)
                        .cloned()
                        .unwrap_or_else(|| uid.to_string()),
                );
            }
            if let Ok(cg) = std::fs::read_to_string(dir.join("cgroup")) {
                let a = cgroup::attribute(&cg);
                p.container = a.container;
                if let Some(uid) = a.pod_uid {
                    if let Some((ns, name)) = self.pods.get(&uid) {
                        p.namespace = Some(ns.clone());
                        p.pod = Some(name.clone());
                    }
                    p.pod_uid = Some(uid);
                }
            }
        }
        if failures > 0 && failures == snap.processes.len() {
            return Err(SampleError::Parse {
                path: self.procfs_root.display().to_string(),
                message: format!("none of the {failures} GPU processes could be read"),
            });
        }
        Ok(())
    }
}
