//! Writes a /proc + /sys tree that looks exactly like the kernel's, from a simulation.
//!
//! The agent reads host signals under a configurable root (as node_exporter's `--path.procfs`),
//! so pointing it at `<root>/proc` and `<root>/sys` runs the same parsers as on a real host.
//! Files are replaced atomically (write + rename): a reader never sees a half-written file.

use crate::clock::SimClock;
use crate::engine::{HostState, Simulation};
use crate::scenario::{CgroupDriver, CgroupVersion, NicKindSpec, PortState, ProcessSpec, QosClass, Runtime};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// Kernel clock ticks per second (`USER_HZ`), fixed at 100 on Linux.
pub const USER_HZ: f64 = 100.0;
/// The node was booted this long before scenario second 0.
pub const UPTIME_AT_START_S: f64 = 3600.0;
const PAGE: u64 = 4096;
const SECTOR: f64 = 512.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The InfiniBand adapter whose top rate is `speed_gbps`: its `hca_type` (the PCI device id as
/// the mlx5 driver names it) and a firmware version of its family (ConnectX-5 16.x, ConnectX-6
/// 20.x, ConnectX-7 28.x, ConnectX-8 40.x); `None` for a speed no ConnectX tops out at.
pub fn adapter(speed_gbps: f64) -> Option<(&'static str, &'static str)> {
    match speed_gbps.round() as u64 {
        800 => Some(("MT4131", "40.44.1036")),
        400 => Some(("MT4129", "28.39.1002")),
        200 => Some(("MT4123", "20.39.1002")),
        100 => Some(("MT4119", "16.35.2000")),
        _ => None,
    }
}

/// An IBTA PortCounters error counter: 16 or 8 bits wide, it stops at its maximum.
pub fn saturated(n: f64, max: u64) -> u64 {
    (n.max(0.0).floor() as u64).min(max)
}

/// How often writers rewrite the traffic counters between whole-tree writes, milliseconds.
pub const COUNTER_STEP_MS: u64 = 20;

/// Keeps a tree under a root directory current.
#[derive(Debug)]
pub struct TreeWriter {
    root: PathBuf,
    written_pids: HashSet<u32>,
    /// Extension of the temporary files: writers sharing a root must not share them.
    tmp_ext: &'static str,
    /// Another writer keeps the traffic counters (see [`TreeWriter::counter_writer`]).
    counters_elsewhere: bool,
}

impl TreeWriter {
    /// A writer for `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> io::Result<TreeWriter> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(TreeWriter { root, written_pids: HashSet::new(), tmp_ext: "gpuscope-tmp", counters_elsewhere: false })
    }

    /// A writer of this tree's traffic counters alone, for a thread of its own that calls
    /// [`TreeWriter::write_counters`] every [`COUNTER_STEP_MS`]: a whole-tree write takes long
    /// enough on a busy machine (hundreds of files) that counters rewritten only with it move in
    /// uneven steps, and a reader's rate over half a second is off by tens of percent. From now
    /// on this writer leaves the counters to the new one (which would otherwise see them go back
    /// when a slow whole-tree write lands after a newer counter write).
    pub fn counter_writer(&mut self) -> TreeWriter {
        self.counters_elsewhere = true;
        TreeWriter {
            root: self.root.clone(),
            written_pids: HashSet::new(),
            tmp_ext: "gpuscope-counters-tmp",
            counters_elsewhere: false,
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes every file for scenario time `t`; process directories of exited processes go away.
    pub fn write(&mut self, sim: &Simulation, clock: &SimClock, t: f64) -> io::Result<()> {
        let host = sim.host(t);
        let btime = (clock.start_unix - UPTIME_AT_START_S).floor().max(0.0) as u64;
        let procs = sim.processes(t);
        self.put("proc/meminfo", &meminfo(&host))?;
        self.put("etc/passwd", &passwd(sim))?;
        self.put("proc/sys/kernel/hostname", &format!("{}\n", sim.hostname()))?;

        self.put("proc/loadavg", &loadavg(&host, procs.iter().map(|p| p.pid).max().unwrap_or(1)))?;
        self.put("proc/uptime", &format!("{:.2} {:.2}\n", UPTIME_AT_START_S + t, (UPTIME_AT_START_S + t) * 0.9))?;
        if !self.counters_elsewhere {
            self.put("proc/net/dev", &net_dev(&host))?;
        }
        self.put("proc/diskstats", &diskstats(&host))?;
        self.put("proc/1/mounts", &mounts(sim))?;
        // The mount points exist under the root, which stands for the host's / (an agent stats
        // them there): their sizes are those of the filesystem holding the tree.
        for m in REAL_MOUNTS {
            std::fs::create_dir_all(self.root.join(m.trim_start_matches('/')))?;
        }
        let (snmp, netstat) = ip_counters(&host);
        self.put("proc/net/snmp", &snmp)?;
        self.put("proc/net/netstat", &netstat)?;
        self.put("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")?;
        for nic in &host.nics {
            self.write_nic(sim, nic)?;
        }
        // Each GPU's PCI device: its NUMA node and nearest CPUs, as the NVML library answers.
        let gpus = sim.gpus().len();
        for g in sim.gpus() {
            let base = format!("sys/bus/pci/devices/{}", crate::topology::sysfs_pci_name(&g.pci_bus_id));
            let node = crate::topology::numa_node(g.index, gpus);
            let cpus = crate::topology::node_cpus(node, gpus, sim.scenario().node.cpus);
            self.put(&format!("{base}/numa_node"), &format!("{node}\n"))?;
            self.put(&format!("{base}/local_cpulist"), &format!("{}\n", crate::topology::cpu_list(&cpus)))?;
        }
        for (i, d) in host.disks.iter().enumerate() {
            // nvme0n1 → controller nvme0.
            let ctrl = match d.name.rfind('n') {
                Some(i) if i > 0 => &d.name[..i],
                _ => d.name.as_str(),
            };
            let base = format!("sys/class/nvme/{ctrl}");
            self.put(&format!("{base}/model"), &format!("{:<40}\n", d.model))?;
            self.put(&format!("{base}/serial"), &format!("S64GNE0R{:06}\n", 100_000 + i))?;
            self.put(&format!("{base}/firmware_rev"), "GDC5602Q\n")?;
            self.put(&format!("{base}/transport"), "pcie\n")?;
            self.put(&format!("{base}/state"), "live\n")?;
            self.put(&format!("{base}/{}/size", d.name), "7501476528\n")?;
        }
        let cpus = sim.scenario().node.cpus;
        let mut alive = HashSet::new();
        for (i, p) in procs.iter().enumerate() {
            alive.insert(p.pid);
            self.write_process(sim, p, i as u32, t, cpus)?;
        }
        for gone in self.written_pids.difference(&alive) {
            let dir = self.root.join(format!("proc/{gone}"));
            if dir.exists() {
                std::fs::remove_dir_all(dir)?;
            }
        }
        self.written_pids = alive;
        // Last: once proc/stat exists, the whole tree of the first pass does.
        self.put("proc/stat", &proc_stat(&host, t, btime, procs.len()))?;
        Ok(())
    }

    fn put(&self, rel: &str, content: &str) -> io::Result<()> {
        self.put_bytes(rel, content.as_bytes())
    }

    fn put_bytes(&self, rel: &str, content: &[u8]) -> io::Result<()> {
        let path = self.root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(self.tmp_ext);
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, &path)
    }

    fn write_nic(&self, sim: &Simulation, nic: &crate::engine::NicState) -> io::Result<()> {
        let base = format!("sys/class/net/{}", nic.name);
        let active = nic.state == PortState::Active;
        // An Ethernet netdev reports -1 with no link; an IPoIB one the port's trained rate.
        let mbps = if active { ((nic.rate_gbps * 1000.0).round() as i64).to_string() } else { "-1".into() };
        self.put(&format!("{base}/speed"), &format!("{mbps}\n"))?;
        self.put(&format!("{base}/operstate"), if active { "up\n" } else { "down\n" })?;
        self.put(&format!("{base}/carrier"), if active { "1\n" } else { "0\n" })?;
        // Up at boot (one change), then a down and an up per link-down event.
        let changes = 1 + 2 * nic.link_downed.floor() as u64 + u64::from(!active);
        self.put(&format!("{base}/carrier_changes"), &format!("{changes}\n"))?;
        self.put(&format!("{base}/mtu"), if nic.kind == NicKindSpec::Infiniband { "4092\n" } else { "9000\n" })?;
        self.put(&format!("{base}/type"), if nic.kind == NicKindSpec::Infiniband { "32\n" } else { "1\n" })?;
        if let Some((dev, port)) = &nic.ib {
            let dbase = format!("sys/class/infiniband/{dev}");
            let pbase = format!("{dbase}/ports/{port}");
            let gbps = nic.rate_gbps.round() as u64;
            let per_lane = nic.rate_gbps / f64::from(nic.width.max(1));
            let generation = match per_lane.round() as u64 {
                200 => " XDR",
                100 => " NDR",
                50 => " HDR",
                25 => " EDR",
                14 => " FDR",
                10 => " QDR",
                _ => "",
            };
            self.put(&format!("{pbase}/rate"), &format!("{gbps} Gb/sec ({}X{generation})\n", nic.width))?;
            self.put(&format!("{pbase}/state"), &format!("{}\n", nic.state.sysfs_state()))?;
            self.put(&format!("{pbase}/phys_state"), &format!("{}\n", nic.state.sysfs_phys_state()))?;
            self.put(&format!("{pbase}/link_layer"), "InfiniBand\n")?;
            if !self.counters_elsewhere {
                self.write_ib_traffic(&pbase, nic)?;
            }
            // The error counters are the IBTA PortCounters ones, 16 or 8 bits wide, and stop at
            // their maximum rather than wrap.
            let sat = |n: f64, max: u64| saturated(n, max).to_string() + "\n";
            let c = format!("{pbase}/counters");
            self.put(&format!("{c}/symbol_error"), &sat(nic.symbol_errors, 0xffff))?;
            self.put(&format!("{c}/link_error_recovery"), &sat(nic.link_error_recovery, 0xff))?;
            self.put(&format!("{c}/link_downed"), &sat(nic.link_downed, 0xff))?;
            self.put(&format!("{c}/port_rcv_errors"), &sat(nic.rcv_errors, 0xffff))?;
            for zero in [
                "port_xmit_discards",
                "local_link_integrity_errors",
                "excessive_buffer_overrun_errors",
                "port_rcv_remote_physical_errors",
                "port_rcv_switch_relay_errors",
                "port_xmit_constraint_errors",
                "port_rcv_constraint_errors",
                "VL15_dropped",
                "port_xmit_wait",
            ] {
                self.put(&format!("{c}/{zero}"), "0\n")?;
            }
            self.put(&format!("{dbase}/node_desc"), &format!("{} {dev}\n", sim.hostname()))?;
            if let Some((hca, fw)) = adapter(nic.speed_gbps) {
                self.put(&format!("{dbase}/hca_type"), &format!("{hca}\n"))?;
                self.put(&format!("{dbase}/fw_ver"), &format!("{fw}\n"))?;
                self.put(&format!("{dbase}/board_id"), "SIM_0000000001\n")?;
            }
        }
        Ok(())
    }

    /// An InfiniBand port's data and packet counters.
    fn write_ib_traffic(&self, pbase: &str, nic: &crate::engine::NicState) -> io::Result<()> {
        // Data counters count 4-byte words (the IBTA "octets divided by 4").
        let words = |b: f64| ((b / 4.0).floor() as u64).to_string() + "\n";
        let pkts = |b: f64| ((b / 4096.0).floor() as u64).to_string() + "\n";
        let c = format!("{pbase}/counters");
        self.put(&format!("{c}/port_rcv_data"), &words(nic.rx_bytes))?;
        self.put(&format!("{c}/port_xmit_data"), &words(nic.tx_bytes))?;
        self.put(&format!("{c}/port_rcv_packets"), &pkts(nic.rx_bytes))?;
        self.put(&format!("{c}/port_xmit_packets"), &pkts(nic.tx_bytes))
    }

    /// Rewrites only the traffic counters (`proc/net/dev` and the InfiniBand ports' data and
    /// packet counters) for scenario time `t`. A kernel's counters move continuously; a reader
    /// that takes a rate over half a second from files rewritten every 100 ms or more is off by
    /// up to a rewrite interval on each end. Call [`TreeWriter::write`] first: this writes into
    /// its tree.
    pub fn write_counters(&self, sim: &Simulation, t: f64) -> io::Result<()> {
        let host = sim.host(t);
        self.put("proc/net/dev", &net_dev(&host))?;
        for nic in &host.nics {
            if let Some((dev, port)) = &nic.ib {
                self.write_ib_traffic(&format!("sys/class/infiniband/{dev}/ports/{port}"), nic)?;
            }
        }
        Ok(())
    }

    fn write_process(&self, sim: &Simulation, p: &ProcessSpec, ordinal: u32, t: f64, cpus: u32) -> io::Result<()> {
        let base = format!("proc/{}", p.pid);
        let comm: String = p.name.chars().take(15).collect();
        let cpu_s = (p.cpu_cores * (t - p.start_s)).max(0.0);
        let utime = (cpu_s * 0.9 * USER_HZ).floor() as u64;
        let stime = (cpu_s * 0.1 * USER_HZ).floor() as u64;
        let rss_pages = (p.rss_gib * GIB) as u64 / PAGE;
        let vsize = (p.rss_gib * GIB * 4.0) as u64;
        let start_ticks = ((UPTIME_AT_START_S + p.start_s) * USER_HZ) as u64;
        let threads = 8 + (p.cpu_cores.ceil() as u64) * 2;
        let state = if p.cpu_cores >= 0.5 { 'R' } else { 'S' };
        let stat = format!(
            "{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 4194560 {minflt} 0 {majflt} 0 {utime} {stime} 0 0 20 0 {threads} 0 \
             {start_ticks} {vsize} {rss_pages} 18446744073709551615 94000000000000 94000000002000 140720000000000 0 0 0 0 \
             16781312 1073760770 0 0 0 17 {cpu} 0 0 0 0 0 94000000010000 94000000011000 94000010000000 140720000001000 \
             140720000001100 140720000001100 140720000002000 0\n",
            pid = p.pid,
            ppid = p.ppid,
            minflt = 100_000 + rss_pages / 4,
            majflt = 200,
            cpu = ordinal % cpus.max(1),
        );
        self.put(&format!("{base}/stat"), &stat)?;
        self.put(&format!("{base}/comm"), &format!("{comm}\n"))?;
        let mut cmdline = Vec::new();
        let args: Vec<String> = if p.cmdline.is_empty() { vec![p.name.clone()] } else { p.cmdline.clone() };
        for a in args {
            cmdline.extend_from_slice(a.as_bytes());
            cmdline.push(0);
        }
        self.put_bytes(&format!("{base}/cmdline"), &cmdline)?;
        let ns_pid = if p.container.is_some() { format!("\t{}", 1 + ordinal) } else { String::new() };
        let rss_kb = rss_pages * PAGE / 1024;
        let status = format!(
            "Name:\t{comm}\nUmask:\t0022\nState:\t{state_long}\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{ppid}\nTracerPid:\t0\n\
             Uid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\nFDSize:\t256\nGroups:\t{uid} \n\
             NStgid:\t{pid}{ns}\nNSpid:\t{pid}{ns}\nNSpgid:\t{pid}{ns}\nNSsid:\t{pid}{ns}\nKthread:\t0\n\
             VmPeak:\t{vm_kb:>8} kB\nVmSize:\t{vm_kb:>8} kB\nVmLck:\t       0 kB\nVmPin:\t       0 kB\n\
             VmHWM:\t{rss_kb:>8} kB\nVmRSS:\t{rss_kb:>8} kB\nRssAnon:\t{anon_kb:>8} kB\nRssFile:\t{file_kb:>8} kB\n\
             RssShmem:\t       0 kB\nVmData:\t{data_kb:>8} kB\nVmStk:\t     132 kB\nVmExe:\t    2836 kB\nVmLib:\t  215024 kB\n\
             VmPTE:\t    4096 kB\nVmSwap:\t       0 kB\nHugetlbPages:\t       0 kB\nCoreDumping:\t0\nTHP_enabled:\t1\n\
             untag_mask:\t0xffffffffffffffff\nThreads:\t{threads}\nSigQ:\t0/1031362\nSigPnd:\t0000000000000000\n\
             ShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000001001000\nSigCgt:\t0000000180004a02\n\
             CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n\
             CapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n\
             Speculation_Store_Bypass:\tthread vulnerable\nSpeculationIndirectBranch:\tconditional enabled\n\
             Cpus_allowed:\tffffffff\nCpus_allowed_list:\t0-{last_cpu}\nMems_allowed:\t00000000,00000003\n\
             Mems_allowed_list:\t0-1\nvoluntary_ctxt_switches:\t{vcs}\nnonvoluntary_ctxt_switches:\t{nvcs}\n",
            comm = comm,
            state_long = if state == 'R' { "R (running)" } else { "S (sleeping)" },
            pid = p.pid,
            ppid = p.ppid,
            uid = p.uid,
            ns = ns_pid,
            vm_kb = vsize / 1024,
            rss_kb = rss_kb,
            anon_kb = rss_kb * 9 / 10,
            file_kb = rss_kb - rss_kb * 9 / 10,
            data_kb = vsize / 1024 / 2,
            threads = threads,
            last_cpu = cpus.saturating_sub(1),
            vcs = 1000 + utime / 10,
            nvcs = 100 + utime / 100,
        );
        self.put(&format!("{base}/status"), &status)?;
        let node = &sim.scenario().node;
        self.put(&format!("{base}/cgroup"), &cgroup_file(p, node.cgroup, node.cgroup_driver))?;
        if let Some(pod) = &p.pod {
            // The kubelet's log directory names the pod: <namespace>_<name>_<uid>.
            let dir = self.root.join(format!("var/log/pods/{}_{}_{}/{}", pod.namespace, pod.name, pod.uid, comm));
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }
}

/// `/etc/passwd` with the scenario's users (and root), so process users are named as the
/// scenario says rather than by the machine the simulator runs on.
fn passwd(sim: &Simulation) -> String {
    let mut users: std::collections::BTreeMap<u32, &str> = std::collections::BTreeMap::new();
    users.insert(0, "root");
    for p in &sim.scenario().processes {
        users.entry(p.uid).or_insert(p.user.as_str());
    }
    users
        .into_iter()
        .map(|(uid, name)| {
            let home = if uid == 0 { "/root".to_string() } else { format!("/home/{name}") };
            format!("{name}:x:{uid}:{uid}:{name}:{home}:/bin/bash\n")
        })
        .collect()
}

/// The cgroup path of a process as the kubelet / runtime lays it out.
pub fn cgroup_path(p: &ProcessSpec, driver: CgroupDriver) -> String {
    match (&p.container, &p.pod, driver) {
        (Some(c), Some(pod), CgroupDriver::Systemd) => {
            let uid = pod.uid.replace('-', "_");
            let scope = match c.runtime {
                Runtime::Containerd => format!("cri-containerd-{}.scope", c.id),
                Runtime::Crio => format!("crio-{}.scope", c.id),
                Runtime::Docker => format!("docker-{}.scope", c.id),
            };
            match pod.qos {
                QosClass::Guaranteed => format!("/kubepods.slice/kubepods-pod{uid}.slice/{scope}"),
                QosClass::Burstable => {
                    format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/{scope}")
                }
                QosClass::Besteffort => {
                    format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid}.slice/{scope}")
                }
            }
        }
        (Some(c), Some(pod), CgroupDriver::Cgroupfs) => match pod.qos {
            QosClass::Guaranteed => format!("/kubepods/pod{}/{}", pod.uid, c.id),
            QosClass::Burstable => format!("/kubepods/burstable/pod{}/{}", pod.uid, c.id),
            QosClass::Besteffort => format!("/kubepods/besteffort/pod{}/{}", pod.uid, c.id),
        },
        (Some(c), None, CgroupDriver::Systemd) => match c.runtime {
            Runtime::Docker => format!("/system.slice/docker-{}.scope", c.id),
            Runtime::Crio => format!("/machine.slice/crio-{}.scope", c.id),
            Runtime::Containerd => format!("/system.slice/containerd.service/default/{}", c.id),
        },
        (Some(c), None, CgroupDriver::Cgroupfs) => match c.runtime {
            Runtime::Docker => format!("/docker/{}", c.id),
            Runtime::Crio => format!("/crio/{}", c.id),
            Runtime::Containerd => format!("/default/{}", c.id),
        },
        (None, _, _) => format!("/user.slice/user-{}.slice/session-1.scope", p.uid),
    }
}

/// The content of `/proc/<pid>/cgroup`.
pub fn cgroup_file(p: &ProcessSpec, version: CgroupVersion, driver: CgroupDriver) -> String {
    let path = cgroup_path(p, driver);
    match version {
        CgroupVersion::V2 => format!("0::{path}\n"),
        CgroupVersion::V1 => {
            let controllers = [
                "misc",
                "rdma",
                "pids",
                "hugetlb",
                "net_prio",
                "perf_event",
                "net_cls",
                "freezer",
                "devices",
                "memory",
                "blkio",
                "cpuacct",
                "cpu",
                "cpuset",
            ];
            let mut s = String::new();
            for (i, c) in controllers.iter().enumerate() {
                let n = controllers.len() + 1 - i;
                let c = match *c {
                    "net_prio" => "net_cls,net_prio",
                    "cpuacct" => "cpu,cpuacct",
                    other => other,
                };
                if c == "net_cls" || c == "cpu" {
                    continue;
                }
                let _ = writeln!(s, "{n}:{c}:{path}");
            }
            let _ = writeln!(s, "1:name=systemd:{path}");
            let _ = writeln!(s, "0::/");
            s
        }
    }
}

fn jiffies(s: f64) -> u64 {
    (s * USER_HZ).floor().max(0.0) as u64
}

fn proc_stat(h: &HostState, t: f64, btime: u64, nprocs: usize) -> String {
    let elapsed = UPTIME_AT_START_S + t;
    let rows: Vec<[u64; 10]> = (0..h.core_busy.len())
        .map(|c| {
            // A core was idle for the hour before the scenario started.
            let busy = h.core_busy_s[c];
            let total = jiffies(elapsed);
            let user = jiffies(busy * 0.85);
            let system = jiffies(busy * 0.12);
            let softirq = jiffies(busy * 0.03);
            let iowait = jiffies(h.core_iowait_s[c]);
            let steal = jiffies(h.core_steal_s[c]);
            let idle = total.saturating_sub(user + system + softirq + iowait + steal);
            [user, 0, system, idle, iowait, 0, softirq, steal, 0, 0]
        })
        .collect();
    let mut sum = [0u64; 10];
    for r in &rows {
        for (s, v) in sum.iter_mut().zip(r) {
            *s += v;
        }
    }
    let fmt = |r: &[u64; 10]| r.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
    let mut s = format!("cpu  {}\n", fmt(&sum));
    for (c, r) in rows.iter().enumerate() {
        let _ = writeln!(s, "cpu{c} {}", fmt(r));
    }
    let ticks = jiffies(elapsed);
    let _ = writeln!(s, "intr {} 0 0 0", ticks * 50);
    let _ = writeln!(s, "ctxt {}", ticks * 120);
    let _ = writeln!(s, "btime {btime}");
    let _ = writeln!(s, "processes {}", 5000 + nprocs);
    let running: f64 = h.core_busy.iter().sum();
    let _ = writeln!(s, "procs_running {}", (running.round() as u64).max(1));
    let blocked: f64 = h.core_iowait.iter().sum();
    let _ = writeln!(s, "procs_blocked {}", blocked.round() as u64);
    let _ = writeln!(s, "softirq {} 0 0 0 0 0 0 0 0 0 0", ticks * 10);
    s
}

fn meminfo(h: &HostState) -> String {
    let kb = |b: u64| b / 1024;
    let total = kb(h.memory_total);
    let used = kb(h.memory_used).min(total);
    let cached = (total - used) / 4;
    let buffers = 262_144.min(total / 64);
    let free = total - used - cached - buffers;
    let available = free + cached * 9 / 10 + buffers;
    let rows: [(&str, u64); 27] = [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", available),
        ("Buffers", buffers),
        ("Cached", cached),
        ("SwapCached", 0),
        ("Active", used * 6 / 10 + cached / 2),
        ("Inactive", used * 4 / 10 + cached / 2),
        ("Active(anon)", used * 6 / 10),
        ("Inactive(anon)", used * 4 / 10),
        ("Active(file)", cached / 2),
        ("Inactive(file)", cached - cached / 2),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", kb(h.swap_total)),
        ("SwapFree", kb(h.swap_total.saturating_sub(h.swap_used))),
        ("Dirty", 128),
        ("Writeback", 0),
        ("AnonPages", used),
        ("Mapped", cached / 8),
        ("Shmem", 2048),
        ("Slab", total / 200),
        ("SReclaimable", total / 400),
        ("SUnreclaim", total / 400),
        ("KernelStack", 32_768),
        ("PageTables", used / 500),
        ("CommitLimit", total / 2),
    ];
    let mut s = String::new();
    for (k, v) in rows {
        let _ = writeln!(s, "{:<16}{:>8} kB", format!("{k}:"), v);
    }
    for (k, v) in [
        ("Committed_AS", used + used / 4),
        ("VmallocTotal", 34_359_738_367),
        ("VmallocUsed", 300_000),
        ("VmallocChunk", 0),
        ("Percpu", 120_000),
        ("HardwareCorrupted", 0),
        ("AnonHugePages", used / 4),
        ("ShmemHugePages", 0),
        ("ShmemPmdMapped", 0),
        ("FileHugePages", 0),
        ("FilePmdMapped", 0),
    ] {
        let _ = writeln!(s, "{:<16}{:>8} kB", format!("{k}:"), v);
    }
    for k in ["HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp"] {
        let _ = writeln!(s, "{:<16}{:>8}", format!("{k}:"), 0);
    }
    let _ = writeln!(s, "{:<16}{:>8} kB", "Hugepagesize:", 2048);
    let _ = writeln!(s, "{:<16}{:>8} kB", "Hugetlb:", 0);
    let _ = writeln!(s, "{:<16}{:>8} kB", "DirectMap4k:", 1_048_576);
    let _ = writeln!(s, "{:<16}{:>8} kB", "DirectMap2M:", total / 2);
    let _ = writeln!(s, "{:<16}{:>8} kB", "DirectMap1G:", total / 2);
    s
}

fn loadavg(h: &HostState, last_pid: u32) -> String {
    let load: f64 = h.core_busy.iter().sum::<f64>() + h.core_iowait.iter().sum::<f64>();
    let running = (load.round() as u64).max(1);
    format!("{load:.2} {load:.2} {load:.2} {running}/1024 {last_pid}\n")
}

fn net_dev(h: &HostState) -> String {
    let mut s = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    let line = |name: &str, rx: u64, rxp: u64, tx: u64, txp: u64| {
        format!(
            "{name:>6}: {rx:>12} {rxp:>9}    0    0    0     0          0         0 {tx:>12} {txp:>9}    0    0    0     0       0          0\n"
        )
    };
    s.push_str(&line("lo", 1_048_576, 8192, 1_048_576, 8192));
    for nic in &h.nics {
        // RDMA traffic bypasses the IPoIB netdev: it only shows in the port counters.
        let (rx, tx) = if nic.kind == NicKindSpec::Infiniband { (0.0, 0.0) } else { (nic.rx_bytes, nic.tx_bytes) };
        let (rx, tx) = (rx.floor() as u64, tx.floor() as u64);
        s.push_str(&line(&nic.name, rx, rx / 1500, tx, tx / 1500));
    }
    s
}

/// `/proc/net/snmp` and `/proc/net/netstat`: header and value lines per protocol, as the kernel
/// writes them (Linux 6.x fields; netstat's TcpExt list is the kernel's first forty fields and
/// TCPSynRetrans). The IP and TCP traffic is the Ethernet interfaces' (RDMA bypasses the stack),
/// one segment per 1500 bytes.
fn ip_counters(h: &HostState) -> (String, String) {
    let (mut rx, mut tx) = (1_048_576u64, 1_048_576u64);
    for nic in h.nics.iter().filter(|n| n.kind == NicKindSpec::Ethernet) {
        rx = rx.saturating_add(nic.rx_bytes.floor() as u64);
        tx = tx.saturating_add(nic.tx_bytes.floor() as u64);
    }
    let (rxp, txp) = (rx / 1500, tx / 1500);
    let table = |out: &mut String, proto: &str, fields: &[(&str, i64)]| {
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        let values: Vec<String> = fields.iter().map(|(_, v)| v.to_string()).collect();
        let _ = writeln!(out, "{proto}: {}", names.join(" "));
        let _ = writeln!(out, "{proto}: {}", values.join(" "));
    };
    let (rxp_i, txp_i) = (i64::try_from(rxp).unwrap_or(i64::MAX), i64::try_from(txp).unwrap_or(i64::MAX));
    let mut snmp = String::new();
    table(
        &mut snmp,
        "Ip",
        &[
            ("Forwarding", 2),
            ("DefaultTTL", 64),
            ("InReceives", rxp_i),
            ("InHdrErrors", 0),
            ("InAddrErrors", 0),
            ("ForwDatagrams", 0),
            ("InUnknownProtos", 0),
            ("InDiscards", 0),
            ("InDelivers", rxp_i),
            ("OutRequests", txp_i),
            ("OutDiscards", 0),
            ("OutNoRoutes", 0),
            ("ReasmTimeout", 0),
            ("ReasmReqds", 0),
            ("ReasmOKs", 0),
            ("ReasmFails", 0),
            ("FragOKs", 0),
            ("FragFails", 0),
            ("FragCreates", 0),
            ("OutTransmits", txp_i),
        ],
    );
    let icmp = [
        "InMsgs",
        "InErrors",
        "InCsumErrors",
        "InDestUnreachs",
        "InTimeExcds",
        "InParmProbs",
        "InSrcQuenchs",
        "InRedirects",
        "InEchos",
        "InEchoReps",
        "InTimestamps",
        "InTimestampReps",
        "InAddrMasks",
        "InAddrMaskReps",
        "OutMsgs",
        "OutErrors",
        "OutRateLimitGlobal",
        "OutRateLimitHost",
        "OutDestUnreachs",
        "OutTimeExcds",
        "OutParmProbs",
        "OutSrcQuenchs",
        "OutRedirects",
        "OutEchos",
        "OutEchoReps",
        "OutTimestamps",
        "OutTimestampReps",
        "OutAddrMasks",
        "OutAddrMaskReps",
    ];
    table(&mut snmp, "Icmp", &icmp.iter().map(|n| (*n, 0)).collect::<Vec<_>>());
    table(&mut snmp, "IcmpMsg", &[("InType3", 0), ("OutType3", 0)]);
    table(
        &mut snmp,
        "Tcp",
        &[
            ("RtoAlgorithm", 1),
            ("RtoMin", 200),
            ("RtoMax", 120_000),
            ("MaxConn", -1),
            ("ActiveOpens", 120),
            ("PassiveOpens", 48),
            ("AttemptFails", 0),
            ("EstabResets", 0),
            ("CurrEstab", 24),
            ("InSegs", rxp_i),
            ("OutSegs", txp_i),
            ("RetransSegs", 0),
            ("InErrs", 0),
            ("OutRsts", 0),
            ("InCsumErrors", 0),
        ],
    );
    let udp = [
        "InDatagrams",
        "NoPorts",
        "InErrors",
        "OutDatagrams",
        "RcvbufErrors",
        "SndbufErrors",
        "InCsumErrors",
        "IgnoredMulti",
        "MemErrors",
    ];
    table(&mut snmp, "Udp", &udp.iter().map(|n| (*n, 0)).collect::<Vec<_>>());
    table(&mut snmp, "UdpLite", &udp.iter().map(|n| (*n, 0)).collect::<Vec<_>>());
    let tcp_ext = [
        "SyncookiesSent",
        "SyncookiesRecv",
        "SyncookiesFailed",
        "EmbryonicRsts",
        "PruneCalled",
        "RcvPruned",
        "OfoPruned",
        "OutOfWindowIcmps",
        "LockDroppedIcmps",
        "ArpFilter",
        "TW",
        "TWRecycled",
        "TWKilled",
        "PAWSActive",
        "PAWSEstab",
        "DelayedACKs",
        "DelayedACKLocked",
        "DelayedACKLost",
        "ListenOverflows",
        "ListenDrops",
        "TCPHPHits",
        "TCPPureAcks",
        "TCPHPAcks",
        "TCPRenoRecovery",
        "TCPSackRecovery",
        "TCPSACKReneging",
        "TCPSACKReorder",
        "TCPRenoReorder",
        "TCPTSReorder",
        "TCPFullUndo",
        "TCPPartialUndo",
        "TCPDSACKUndo",
        "TCPLossUndo",
        "TCPLostRetransmit",
        "TCPRenoFailures",
        "TCPSackFailures",
        "TCPLossFailures",
        "TCPFastRetrans",
        "TCPSlowStartRetrans",
        "TCPTimeouts",
        "TCPSynRetrans",
    ];
    let mut netstat = String::new();
    table(&mut netstat, "TcpExt", &tcp_ext.iter().map(|n| (*n, 0)).collect::<Vec<_>>());
    let (rx_i, tx_i) = (i64::try_from(rx).unwrap_or(i64::MAX), i64::try_from(tx).unwrap_or(i64::MAX));
    table(
        &mut netstat,
        "IpExt",
        &[
            ("InNoRoutes", 0),
            ("InTruncatedPkts", 0),
            ("InMcastPkts", 0),
            ("OutMcastPkts", 0),
            ("InBcastPkts", 0),
            ("OutBcastPkts", 0),
            ("InOctets", rx_i),
            ("OutOctets", tx_i),
            ("InMcastOctets", 0),
            ("OutMcastOctets", 0),
            ("InBcastOctets", 0),
            ("OutBcastOctets", 0),
            ("InCsumErrors", 0),
            ("InNoECTPkts", rxp_i),
            ("InECT1Pkts", 0),
            ("InECT0Pkts", 0),
            ("InCEPkts", 0),
            ("ReasmOverlaps", 0),
        ],
    );
    (snmp, netstat)
}

/// The real filesystems of the simulated node's mount table: the root and a data volume.
pub const REAL_MOUNTS: &[&str] = &["/", "/data"];

/// `/proc/1/mounts`: the root on the first NVMe namespace (or a SCSI disk), `/data` on the
/// second (or the first), and the kernel's and a container runtime's pseudo filesystems, which a
/// reader leaves out.
fn mounts(sim: &Simulation) -> String {
    let nvme: Vec<&str> = sim.scenario().node.nvme.iter().map(|d| d.name.as_str()).collect();
    let root = nvme.first().map_or("/dev/sda2".to_string(), |n| format!("/dev/{n}p2"));
    let data = match nvme.as_slice() {
        [_, second, ..] => format!("/dev/{second}"),
        [first] => format!("/dev/{first}p3"),
        [] => "/dev/sdb1".to_string(),
    };
    format!(
        "{root} / ext4 rw,relatime 0 0
         proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
         sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
         devtmpfs /dev devtmpfs rw,nosuid,size=4096k,mode=755 0 0
         tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0
         cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
         {data} /data xfs rw,noatime 0 0
         overlay /var/lib/containerd/io.containerd.runtime.v2.task/k8s.io/3f1c2a9b/rootfs overlay rw,relatime 0 0
"
    )
}

fn diskstats(h: &HostState) -> String {
    let mut s = String::new();
    for (i, d) in h.disks.iter().enumerate() {
        // Large sequential requests, as a data loader issues them.
        let reads = (d.read_bytes / 131_072.0).floor() as u64;
        let writes = (d.written_bytes / 131_072.0).floor() as u64;
        let sectors_r = (d.read_bytes / SECTOR).floor() as u64;
        let sectors_w = (d.written_bytes / SECTOR).floor() as u64;
        let busy_ms = (d.busy_seconds * 1000.0).floor() as u64;
        let in_flight = (d.busy * 4.0).round() as u64;
        let _ = writeln!(
            s,
            "{:>4} {:>7} {} {} 0 {} {} {} 0 {} {} {} {} {} 0 0 0 0 {} {}",
            259,
            i * 2,
            d.name,
            reads,
            sectors_r,
            reads / 10,
            writes,
            sectors_w,
            writes / 8,
            in_flight,
            busy_ms,
            busy_ms * 2,
            writes / 100,
            writes / 1000
        );
    }
    s
}
