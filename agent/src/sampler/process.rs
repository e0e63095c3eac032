//! GPU processes: name, user, CPU time, RSS, container / pod attribution and workload class
//! from /proc.
//!
//! NVML reports host PIDs; reading them under the host's proc root (mounted into the agent's
//! container, with `hostPID`) attributes them correctly even when the agent is containerised.

use super::{Pass, SampleError, Sampler};
use crate::cgroup;
use gpuscope_core::NodeSnapshot;
use std::collections::HashMap;
use std::path::PathBuf;

/// Kernel clock ticks per second on Linux.
const USER_HZ: f64 = 100.0;
const PAGE_SIZE: u64 = 4096;

/// What does not change while a process lives: read once per process (and on slow passes).
#[derive(Clone, Default)]
struct Identity {
    start_ticks: u64,
    user: Option<String>,
    container: Option<String>,
    pod_uid: Option<String>,
    workload: gpuscope_core::WorkloadClass,
    /// The parent PID the parent's name was read for (a process is re-parented when its
    /// parent exits).
    ppid: u32,
    parent_name: Option<String>,
}

/// The fields of `/proc/<pid>/stat` the agent needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFields {
    /// User + system CPU ticks.
    pub cpu_ticks: u64,
    /// Start time in ticks after boot (tells a reused PID apart).
    pub start_ticks: u64,
    /// Resident pages.
    pub rss_pages: u64,
    /// Parent PID.
    pub ppid: u32,
}

/// Parses `/proc/<pid>/stat` into (comm, fields). The comm may hold spaces and parentheses, so
/// the fields start after the *last* `)`.
pub fn parse_stat(text: &str) -> Option<(&str, StatFields)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?;
    // Fields after the comm start at field 3 (state); ppid is 4, utime 14, stime 15, starttime
    // 22, rss 24.
    let mut f = text.get(close + 1..)?.split_ascii_whitespace();
    let ppid: u32 = f.nth(1)?.parse().ok()?;
    let utime: u64 = f.nth(9)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    let start_ticks: u64 = f.nth(6)?.parse().ok()?;
    let rss_pages: u64 = f.nth(1)?.parse().ok()?;
    // A sum past u64 is no real process: malformed, like a missing field.
    Some((comm, StatFields { cpu_ticks: utime.checked_add(stime)?, start_ticks, rss_pages, ppid }))
}

/// The name of process `ppid` under `procfs_root`; none for PID 0 (a process with no parent:
/// init, kernel threads). Init itself is named (`systemd`, a container's init).
fn parent_name(procfs_root: &std::path::Path, ppid: u32) -> Option<String> {
    if ppid == 0 {
        return None;
    }
    let text = std::fs::read_to_string(procfs_root.join(ppid.to_string()).join("stat")).ok()?;
    parse_stat(&text).map(|(comm, _)| comm.to_string())
}

/// Enriches the processes the NVML sampler found.
pub struct ProcessSampler {
    procfs_root: PathBuf,
    pod_logs_root: PathBuf,
    passwd_file: PathBuf,
    users: HashMap<u32, String>,
    pods: HashMap<String, (String, String)>,
    identities: HashMap<u32, Identity>,
}

impl ProcessSampler {
    /// A sampler reading `<procfs_root>/<pid>/…`.
    pub fn new(procfs_root: PathBuf, pod_logs_root: PathBuf, passwd_file: PathBuf) -> ProcessSampler {
        ProcessSampler {
            procfs_root,
            pod_logs_root,
            passwd_file,
            users: HashMap::new(),
            pods: HashMap::new(),
            identities: HashMap::new(),
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

    fn identity(&self, dir: &std::path::Path, comm: &str, f: StatFields) -> Identity {
        let mut id = Identity {
            start_ticks: f.start_ticks,
            ppid: f.ppid,
            parent_name: parent_name(&self.procfs_root, f.ppid),
            ..Identity::default()
        };
        // The command line is read here only to classify the workload; it is never exported
        // (it can hold secrets). The classifier reads the first 64 arguments: 64 KiB is plenty.
        let mut args = Vec::new();
        if let Ok(f) = std::fs::File::open(dir.join("cmdline")) {
            use std::io::Read;
            let _ = f.take(64 * 1024).read_to_end(&mut args);
        }
        let argv: Vec<String> = args
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        id.workload = gpuscope_core::workload::classify(comm, &argv).class;
        if let Ok(status) = std::fs::read_to_string(dir.join("status"))
            && let Some(uid) = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u32>().ok())
        {
            id.user = Some(self.users.get(&uid).cloned().unwrap_or_else(|| uid.to_string()));
        }
        if let Ok(cg) = std::fs::read_to_string(dir.join("cgroup")) {
            let a = cgroup::attribute(&cg);
            id.container = a.container;
            id.pod_uid = a.pod_uid;
        }
        id
    }
}

impl ProcessSampler {
    /// Names the CUPTI profiles the receiver put into the snapshot, as GPU processes are named:
    /// comm, user, container and pod from /proc (cached per process like theirs), GPUs from
    /// the GPU processes NVML listed; and the library's overhead as a share of the process's
    /// CPU time. A profiled process NVML does not list (yet) is still named from /proc.
    fn describe_profiles(
        &mut self,
        snap: &mut NodeSnapshot,
        read_now: &mut HashMap<u32, Option<(String, StatFields)>>,
    ) {
        for prof in &mut snap.kernel_profiles {
            let dir = self.procfs_root.join(prof.pid.to_string());
            let stat = read_now
                .entry(prof.pid)
                .or_insert_with(|| {
                    let text = std::fs::read_to_string(dir.join("stat")).ok()?;
                    parse_stat(&text).map(|(comm, f)| (comm.to_string(), f))
                })
                .clone();
            let mut gpus: Vec<u32> = snap.processes.iter().filter(|p| p.pid == prof.pid).map(|p| p.gpu_index).collect();
            gpus.sort_unstable();
            gpus.dedup();
            prof.gpus = gpus;
            // Gone between its last window and now: it keeps its numbers, unnamed.
            let Some((comm, f)) = stat else { continue };
            if self.identities.get(&prof.pid).is_none_or(|id| id.start_ticks != f.start_ticks) {
                let id = self.identity(&dir, &comm, f);
                self.identities.insert(prof.pid, id);
            }
            prof.name = comm;
            let cpu_seconds = f.cpu_ticks as f64 / USER_HZ;
            prof.overhead_cpu_ratio = (cpu_seconds > 0.0).then(|| prof.overhead_seconds_total / cpu_seconds);
            if let Some(id) = self.identities.get(&prof.pid) {
                prof.user = id.user.clone();
                prof.container = id.container.clone();
                if let Some(uid) = &id.pod_uid {
                    if let Some((ns, name)) = self.pods.get(uid) {
                        prof.namespace = Some(ns.clone());
                        prof.pod = Some(name.clone());
                    }
                    prof.pod_uid = Some(uid.clone());
                }
            }
        }
    }
}

impl Sampler for ProcessSampler {
    fn name(&self) -> &'static str {
        "processes"
    }

    fn sample(&mut self, snap: &mut NodeSnapshot, pass: &Pass) -> Result<(), SampleError> {
        if pass.slow || (self.users.is_empty() && self.pods.is_empty()) {
            self.refresh_names();
            // Attribution is re-read on slow passes (a process can move between cgroups).
            self.identities.clear();
        }
        // Elapsed time as `ps` computes it: the host's uptime less the process's start after
        // boot, both from /proc (no wall clock, so a host whose clock steps still agrees).
        let uptime = super::host::read_uptime(&self.procfs_root);
        // A process on eight GPUs is listed eight times: read its files once.
        let mut read_now: HashMap<u32, Option<(String, StatFields)>> = HashMap::new();
        let mut failures = 0;
        for p in &mut snap.processes {
            let dir = self.procfs_root.join(p.pid.to_string());
            let stat = read_now
                .entry(p.pid)
                .or_insert_with(|| {
                    // A process can exit between NVML's answer and this read: not an error.
                    let text = std::fs::read_to_string(dir.join("stat")).ok()?;
                    parse_stat(&text).map(|(comm, f)| (comm.to_string(), f))
                })
                .clone();
            let Some((comm, f)) = stat else {
                failures += 1;
                continue;
            };
            // comm is the process name; command lines stay private (they can hold secrets).
            p.name = comm;
            p.cpu_seconds_total = Some(f.cpu_ticks as f64 / USER_HZ);
            p.running_seconds = uptime.map(|up| (up - f.start_ticks as f64 / USER_HZ).max(0.0));
            p.rss_bytes = f.rss_pages.checked_mul(PAGE_SIZE);
            let fresh = self.identities.get(&p.pid).is_none_or(|id| id.start_ticks != f.start_ticks);
            if fresh {
                let id = self.identity(&dir, &p.name, f);
                self.identities.insert(p.pid, id);
            } else if let Some(id) = self.identities.get_mut(&p.pid)
                && id.ppid != f.ppid
            {
                // Re-parented (its launcher exited): name the new parent.
                id.ppid = f.ppid;
                id.parent_name = parent_name(&self.procfs_root, f.ppid);
            }
            p.ppid = (f.ppid != 0).then_some(f.ppid);
            if let Some(id) = self.identities.get(&p.pid) {
                p.parent_name = id.parent_name.clone();
                p.user = id.user.clone();
                p.container = id.container.clone();
                p.workload = Some(id.workload);
                if let Some(uid) = &id.pod_uid {
                    if let Some((ns, name)) = self.pods.get(uid) {
                        p.namespace = Some(ns.clone());
                        p.pod = Some(name.clone());
                    }
                    p.pod_uid = Some(uid.clone());
                }
            }
        }
        self.describe_profiles(snap, &mut read_now);
        self.identities.retain(|pid, _| read_now.contains_key(pid));
        if failures > 0 && failures == snap.processes.len() {
            return Err(SampleError::Parse {
                path: self.procfs_root.display().to_string(),
                message: format!("none of the {failures} GPU processes could be read"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_tricky_comm() {
        let line = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 2 0 1500 250 0 0 20 0 12 0 360000 \
                    8000000 2048 18446744073709551615 1 2 3 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0";
        let (comm, f) = parse_stat(line).expect("parses");
        assert_eq!(comm, "my (odd) proc");
        assert_eq!(f, StatFields { cpu_ticks: 1750, start_ticks: 360000, rss_pages: 2048, ppid: 1 });
        assert!(parse_stat("garbage").is_none());
        let huge = line.replace(" 1500 250 ", " 18446744073709551615 1 ");
        assert!(parse_stat(&huge).is_none(), "utime + stime past u64 is malformed");
    }
}
