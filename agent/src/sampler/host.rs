//! Host signals from /proc and /sys under configurable roots: CPU, memory, network (Ethernet
//! and InfiniBand ports) and NVMe storage. Each is its own sampler, so one unreadable file
//! costs only its own signals.

use super::{Pass, SampleError, Sampler, rate, read};
use gpuscope_core::{CpuSample, DiskSample, HostSample, NicKind, NicSample, NodeSnapshot};
use procfs_core::{FromBufRead, FromBufReadSI, FromRead};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn host(snap: &mut NodeSnapshot) -> &mut HostSample {
    snap.host.get_or_insert_with(HostSample::default)
}

fn parse_err(path: &Path, e: impl std::fmt::Display) -> SampleError {
    SampleError::Parse { path: path.display().to_string(), message: e.to_string() }
}

/// A procfs-core parse error in words for the user: the crate calls a file it cannot parse (a
/// truncated or foreign /proc file) an internal bug and asks to report it, which misleads here.
fn proc_err(path: &Path, e: procfs_core::ProcError) -> SampleError {
    match e {
        procfs_core::ProcError::InternalError(_) => parse_err(path, "truncated or malformed"),
        e => parse_err(path, e),
    }
}

/// (busy, iowait, steal, total) ticks of one CPU line.
type Ticks = (u64, u64, u64, u64);

fn ticks(c: &procfs_core::CpuTime) -> Ticks {
    let iowait = c.iowait.unwrap_or(0);
    let steal = c.steal.unwrap_or(0);
    // Saturating: counters past u64 are no real kernel's, and must not panic the sampler.
    let total = [c.user, c.nice, c.system, c.idle, iowait, c.irq.unwrap_or(0), c.softirq.unwrap_or(0), steal]
        .into_iter()
        .fold(0u64, u64::saturating_add);
    (total.saturating_sub(c.idle).saturating_sub(iowait).saturating_sub(steal), iowait, steal, total)
}

/// `/proc/meminfo` as bytes by key. Parsed here rather than by procfs-core, whose unit
/// conversion overflows (a panic in debug builds) on values no kernel writes.
fn parse_meminfo(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let (key, rest) = l.split_once(':')?;
            let mut f = rest.split_whitespace();
            let n: u64 = f.next()?.parse().ok()?;
            let bytes = match f.next() {
                None => Some(n),
                Some("kB") => n.checked_mul(1024),
                Some(_) => None,
            }?;
            Some((key.trim(), bytes))
        })
        .collect()
}

fn fractions(prev: Ticks, now: Ticks) -> Option<(f64, f64, f64)> {
    let dt = now.3.checked_sub(prev.3)? as f64;
    if dt <= 0.0 {
        return None;
    }
    let f = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt;
    Some((f(prev.0, now.0), f(prev.1, now.1), f(prev.2, now.2)))
}

/// Seconds since boot from `<procfs_root>/uptime`; `None` when it cannot be read.
pub(super) fn read_uptime(procfs_root: &std::path::Path) -> Option<f64> {
    parse_uptime(&std::fs::read_to_string(procfs_root.join("uptime")).ok()?)
}

/// Seconds since boot: the first field of `/proc/uptime` ("SECONDS IDLE_SECONDS").
fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// CPU busy / iowait / steal per core and in total (`/proc/stat`), the load (`/proc/loadavg`)
/// and the uptime (`/proc/uptime`).
pub struct CpuSampler {
    root: PathBuf,
    prev: Option<(Ticks, Vec<Ticks>)>,
}

impl CpuSampler {
    /// Reads `<procfs_root>/stat`.
    pub fn new(procfs_root: PathBuf) -> CpuSampler {
        CpuSampler { root: procfs_root, prev: None }
    }
}

impl Sampler for CpuSampler {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn sample(&mut self, snap: &mut NodeSnapshot, _pass: &Pass) -> Result<(), SampleError> {
        let path = self.root.join("stat");
        let text = read(&path)?;
        let si = procfs_core::ExplicitSystemInfo {
            boot_time_secs: 0,
            ticks_per_second: 100,
            page_size: 4096,
            is_little_endian: true,
        };
        let ks = procfs_core::KernelStats::from_buf_read(text.as_bytes(), &si).map_err(|e| proc_err(&path, e))?;
        let total = ticks(&ks.total);
        let cores: Vec<Ticks> = ks.cpu_time.iter().map(ticks).collect();
        let h = host(snap);
        if let Some((pt, pc)) = &self.prev {
            if let Some((b, w, s)) = fractions(*pt, total) {
                h.cpu_busy_ratio = Some(b);
                h.cpu_iowait_ratio = Some(w);
                h.cpu_steal_ratio = Some(s);
            }
            h.cpus = cores
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let f = pc.get(i).and_then(|p| fractions(*p, *c));
                    CpuSample { cpu: i as u32, busy_ratio: f.map(|x| x.0), iowait_ratio: f.map(|x| x.1) }
                })
                .collect();
        } else {
            h.cpus = (0..cores.len()).map(|i| CpuSample { cpu: i as u32, ..CpuSample::default() }).collect();
        }
        self.prev = Some((total, cores));
        let lpath = self.root.join("loadavg");
        let load = procfs_core::LoadAverage::from_read(read(&lpath)?.as_bytes()).map_err(|e| proc_err(&lpath, e))?;
        let h = host(snap);
        h.load1 = Some(f64::from(load.one));
        h.load5 = Some(f64::from(load.five));
        h.load15 = Some(f64::from(load.fifteen));
        let upath = self.root.join("uptime");
        host(snap).uptime_seconds =
            Some(parse_uptime(&read(&upath)?).ok_or_else(|| parse_err(&upath, "not \"SECONDS IDLE\""))?);
        Ok(())
    }
}

/// Memory total and available (`/proc/meminfo`).
pub struct MemorySampler {
    root: PathBuf,
}

impl MemorySampler {
    /// Reads `<procfs_root>/meminfo`.
    pub fn new(procfs_root: PathBuf) -> MemorySampler {
        MemorySampler { root: procfs_root }
    }
}

impl Sampler for MemorySampler {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn sample(&mut self, snap: &mut NodeSnapshot, _pass: &Pass) -> Result<(), SampleError> {
        let path = self.root.join("meminfo");
        let text = read(&path)?;
        let m = parse_meminfo(&text);
        let total = *m.get("MemTotal").ok_or_else(|| parse_err(&path, "no MemTotal line"))?;
        let h = host(snap);
        h.memory_total_bytes = Some(total);
        h.memory_available_bytes = m.get("MemAvailable").copied();
        // SwapTotal 0 is a host without swap, a value; a missing line is unknown.
        h.swap_total_bytes = m.get("SwapTotal").copied();
        h.swap_used_bytes = m.get("SwapTotal").zip(m.get("SwapFree")).map(|(total, free)| total.saturating_sub(*free));
        Ok(())
    }
}

/// Network interfaces (`/proc/net/dev`, `/sys/class/net`) and InfiniBand ports
/// (`/sys/class/infiniband/*/ports/*`).
pub struct NetworkSampler {
    procfs_root: PathBuf,
    sysfs_root: PathBuf,
    prev: HashMap<String, (u64, u64, Instant)>,
    /// Link speed and kind per netdev, re-read on slow passes.
    links: HashMap<String, (Option<f64>, NicKind)>,
    /// InfiniBand ports, re-listed on slow passes.
    ib_ports: Vec<IbPort>,
}

/// An InfiniBand port and what its adapter model can do.
#[derive(Debug, Clone)]
struct IbPort {
    /// `device/port`, e.g. `mlx5_0/1`.
    name: String,
    /// `/sys/class/infiniband/<device>/ports/<port>`.
    dir: PathBuf,
    /// The adapter's fastest rate and widest link, when its model is known.
    max: Option<HcaMax>,
}

/// The fastest an InfiniBand adapter model trains: Gb/s and lanes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HcaMax {
    gbps: f64,
    width: u32,
}

/// The fastest InfiniBand rate of an adapter by its `hca_type` (the PCI device id the mlx5
/// driver writes, `MT4129`). Chip maxima from NVIDIA's adapter manuals; a card sold for a lower
/// rate (an HDR100 ConnectX-6, an NDR200 ConnectX-7) has the same id, so it reads as trained
/// below its maximum.
fn hca_max(hca_type: &str) -> Option<HcaMax> {
    let gbps = match hca_type.trim() {
        "MT4115" | "MT4119" | "MT4121" => 100.0, // ConnectX-4, ConnectX-5, ConnectX-5 Ex: EDR
        "MT4123" => 200.0,                       // ConnectX-6: HDR
        "MT4129" => 400.0,                       // ConnectX-7: NDR
        "MT4131" => 800.0,                       // ConnectX-8: XDR
        _ => return None,
    };
    Some(HcaMax { gbps, width: 4 })
}

/// An InfiniBand port's `rate` file, `400 Gb/sec (4X NDR)`: Gb/s and lanes.
fn parse_ib_rate(text: &str) -> (Option<f64>, Option<u32>) {
    let gbps =
        text.split_whitespace().next().and_then(|g| g.parse::<f64>().ok()).filter(|g| g.is_finite() && *g >= 0.0);
    let width = text
        .split_once('(')
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|w| w.strip_suffix('X').or_else(|| w.strip_suffix('x')))
        .and_then(|n| n.parse::<u32>().ok());
    (gbps, width)
}

/// An InfiniBand `state` or `phys_state` file, `4: ACTIVE`: the number.
fn parse_ib_state(text: &str) -> Option<u32> {
    text.split(':').next()?.trim().parse().ok()
}

impl NetworkSampler {
    /// Reads under the given roots.
    pub fn new(procfs_root: PathBuf, sysfs_root: PathBuf) -> NetworkSampler {
        NetworkSampler { procfs_root, sysfs_root, prev: HashMap::new(), links: HashMap::new(), ib_ports: Vec::new() }
    }

    fn list_ib_ports(&mut self) {
        let ib = self.sysfs_root.join("class/infiniband");
        let list = |dir: &Path| -> Vec<std::ffi::OsString> {
            let mut v: Vec<_> = std::fs::read_dir(dir)
                .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        self.ib_ports.clear();
        for hca in list(&ib) {
            let max = std::fs::read_to_string(ib.join(&hca).join("hca_type")).ok().and_then(|t| hca_max(&t));
            let ports_dir = ib.join(&hca).join("ports");
            for port in list(&ports_dir) {
                let name = format!("{}/{}", hca.to_string_lossy(), port.to_string_lossy());
                self.ib_ports.push(IbPort { name, dir: ports_dir.join(&port), max });
            }
        }
    }

    fn rates(&mut self, nic: &mut NicSample, now: Instant) {
        if let (Some(rx), Some(tx)) = (nic.rx_bytes_total, nic.tx_bytes_total) {
            let prev = self.prev.get(&nic.name).copied();
            nic.rx_bytes_per_second = rate(prev.map(|p| (p.0, p.2)), rx, now);
            nic.tx_bytes_per_second = rate(prev.map(|p| (p.1, p.2)), tx, now);
            self.prev.insert(nic.name.clone(), (rx, tx, now));
        }
    }
}

/// The InfiniBand logical port state that carries traffic.
const IB_ACTIVE: u32 = 4;

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Sampler for NetworkSampler {
    fn name(&self) -> &'static str {
        "network"
    }

    fn sample(&mut self, snap: &mut NodeSnapshot, pass: &Pass) -> Result<(), SampleError> {
        let path = self.procfs_root.join("net/dev");
        let devs = procfs_core::net::InterfaceDeviceStatus::from_buf_read(read(&path)?.as_bytes())
            .map_err(|e| proc_err(&path, e))?;
        // The counters' reading time: the pass started earlier (NVML first), and a rate over
        // the pass interval is off by that skew.
        let dev_read_at = Instant::now().max(pass.now);
        if pass.slow {
            self.links.clear();
            self.list_ib_ports();
        }
        let mut names: Vec<&String> = devs.0.keys().filter(|n| n.as_str() != "lo").collect();
        names.sort();
        let mut nics = Vec::new();
        for name in names {
            let d = &devs.0[name];
            let sysfs = &self.sysfs_root;
            let (speed, kind) = *self.links.entry(name.clone()).or_insert_with(|| {
                let class = sysfs.join("class/net").join(name);
                // speed is in Mb/s; -1 (or unreadable) when the link is down or virtual.
                let speed = std::fs::read_to_string(class.join("speed"))
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .filter(|s| *s > 0)
                    .map(|mbps| mbps as f64 * 1e6 / 8.0);
                let kind =
                    if read_u64(&class.join("type")) == Some(32) { NicKind::Infiniband } else { NicKind::Ethernet };
                (speed, kind)
            });
            let mut nic = NicSample {
                name: name.clone(),
                kind,
                speed_bytes_per_second: speed,
                rx_bytes_total: Some(d.recv_bytes),
                tx_bytes_total: Some(d.sent_bytes),
                rx_packets_total: Some(d.recv_packets),
                tx_packets_total: Some(d.sent_packets),
                rx_errors_total: Some(d.recv_errs),
                tx_errors_total: Some(d.sent_errs),
                rx_dropped_total: Some(d.recv_drop),
                ..NicSample::default()
            };
            // Link state changes between slow passes, so it is read every pass.
            let class = self.sysfs_root.join("class/net").join(name);
            nic.up = std::fs::read_to_string(class.join("operstate")).ok().and_then(|s| match s.trim() {
                "up" => Some(true),
                // "unknown" is what virtual devices without carrier handling report.
                "unknown" | "" => None,
                _ => Some(false),
            });
            nic.carrier_changes_total = read_u64(&class.join("carrier_changes"));
            self.rates(&mut nic, dev_read_at);
            nics.push(nic);
        }
        // InfiniBand ports carry RDMA traffic that never shows on a netdev.
        for port in self.ib_ports.clone() {
            let c = port.dir.join("counters");
            // Data counters count 4-byte words.
            let words = |f: &str| read_u64(&c.join(f)).and_then(|w| w.checked_mul(4));
            let rx = words("port_rcv_data");
            let tx = words("port_xmit_data");
            let read_at = Instant::now().max(pass.now);
            let (gbps, width) =
                std::fs::read_to_string(port.dir.join("rate")).map_or((None, None), |r| parse_ib_rate(&r));
            let ib_state = std::fs::read_to_string(port.dir.join("state")).ok().and_then(|s| parse_ib_state(&s));
            let mut nic = NicSample {
                name: port.name,
                kind: NicKind::Infiniband,
                speed_bytes_per_second: gbps.map(|g| g * 1e9 / 8.0),
                speed_max_bytes_per_second: port.max.map(|m| m.gbps * 1e9 / 8.0),
                link_width: width,
                link_width_max: port.max.map(|m| m.width),
                up: ib_state.map(|s| s == IB_ACTIVE),
                ib_state,
                ib_phys_state: std::fs::read_to_string(port.dir.join("phys_state"))
                    .ok()
                    .and_then(|s| parse_ib_state(&s)),
                rx_bytes_total: rx,
                tx_bytes_total: tx,
                rx_packets_total: read_u64(&c.join("port_rcv_packets")),
                tx_packets_total: read_u64(&c.join("port_xmit_packets")),
                rx_errors_total: read_u64(&c.join("port_rcv_errors")),
                tx_errors_total: read_u64(&c.join("port_xmit_discards")),
                symbol_errors_total: read_u64(&c.join("symbol_error")),
                link_error_recovery_total: read_u64(&c.join("link_error_recovery")),
                link_downed_total: read_u64(&c.join("link_downed")),
                link_integrity_errors_total: read_u64(&c.join("local_link_integrity_errors")),
                buffer_overrun_errors_total: read_u64(&c.join("excessive_buffer_overrun_errors")),
                ..NicSample::default()
            };
            self.rates(&mut nic, read_at);
            nics.push(nic);
        }
        host(snap).nics = nics;
        Ok(())
    }
}

/// NVMe block devices (`/proc/diskstats`, `/sys/class/nvme/*/model`).
pub struct StorageSampler {
    procfs_root: PathBuf,
    sysfs_root: PathBuf,
    prev: HashMap<String, (u64, u64, u64, Instant)>,
}

impl StorageSampler {
    /// Reads under the given roots.
    pub fn new(procfs_root: PathBuf, sysfs_root: PathBuf) -> StorageSampler {
        StorageSampler { procfs_root, sysfs_root, prev: HashMap::new() }
    }
}

/// `nvme0n1` is a namespace block device; `nvme0n1p1` is a partition, `nvme0c0n1` a path.
fn is_nvme_namespace(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("nvme") else {
        return false;
    };
    let Some((ctrl, ns)) = rest.split_once('n') else {
        return false;
    };
    !ctrl.is_empty()
        && ctrl.chars().all(|c| c.is_ascii_digit())
        && !ns.is_empty()
        && ns.chars().all(|c| c.is_ascii_digit())
}

impl Sampler for StorageSampler {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn sample(&mut self, snap: &mut NodeSnapshot, pass: &Pass) -> Result<(), SampleError> {
        let path = self.procfs_root.join("diskstats");
        let stats = procfs_core::DiskStats::from_buf_read(read(&path)?.as_bytes()).map_err(|e| proc_err(&path, e))?;
        let mut disks = Vec::new();
        for d in stats.0.iter().filter(|d| is_nvme_namespace(&d.name)) {
            let ctrl = d.name.rsplit_once('n').map_or(d.name.as_str(), |(c, _)| c);
            let model = std::fs::read_to_string(self.sysfs_root.join("class/nvme").join(ctrl).join("model"))
                .ok()
                .map(|m| m.trim().to_string());
            // Past u64 is no real disk: the counter restarts from 0, as a wrapped one would.
            let read_b = d.sectors_read.wrapping_mul(512);
            let write_b = d.sectors_written.wrapping_mul(512);
            let busy_ms = d.time_in_progress;
            let prev = self.prev.get(&d.name).copied();
            // Not clamped here: under an accelerated simulation the wall-time fraction exceeds 1;
            // the collector applies the physical limit after its time scale.
            let busy_rate = rate(prev.map(|p| (p.2, p.3)), busy_ms, pass.now).map(|ms| ms / 1000.0);
            disks.push(DiskSample {
                name: d.name.clone(),
                model,
                read_bytes_total: Some(read_b),
                write_bytes_total: Some(write_b),
                reads_total: Some(d.reads),
                writes_total: Some(d.writes),
                busy_seconds_total: Some(busy_ms as f64 / 1000.0),
                read_bytes_per_second: rate(prev.map(|p| (p.0, p.3)), read_b, pass.now),
                write_bytes_per_second: rate(prev.map(|p| (p.1, p.3)), write_b, pass.now),
                busy_ratio: busy_rate,
            });
            self.prev.insert(d.name.clone(), (read_b, write_b, busy_ms, pass.now));
        }
        host(snap).disks = disks;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_uptime;

    /// A /proc file cut short (read while written, or a foreign format) is an error in words, not
    /// the parser library's "please report this bug".
    #[test]
    fn a_truncated_proc_file_is_not_called_a_bug() {
        use procfs_core::FromBufReadSI;
        let path = std::path::Path::new("/proc/stat");
        let si = procfs_core::ExplicitSystemInfo {
            boot_time_secs: 0,
            ticks_per_second: 100,
            page_size: 4096,
            is_little_endian: true,
        };
        for text in ["cpu  1 2", "cpu", "intr 1\n"] {
            let Err(e) = procfs_core::KernelStats::from_buf_read(text.as_bytes(), &si) else { continue };
            let msg = super::proc_err(path, e).to_string();
            assert!(!msg.contains("report"), "{msg}");
            assert!(msg.contains("/proc/stat"), "{msg}");
        }
    }

    /// Found by the `procfs` fuzz target: a value past u64 in kB panicked procfs-core.
    #[test]
    fn meminfo_values_in_bytes_and_no_overflow() {
        let m = super::parse_meminfo("MemTotal:       2113472 kB\nMemAvailable:   1000 kB\nHugePages_Total:  4\n");
        assert_eq!(m.get("MemTotal"), Some(&(2113472 * 1024)));
        assert_eq!(m.get("MemAvailable"), Some(&(1000 * 1024)));
        assert_eq!(m.get("HugePages_Total"), Some(&4));
        let m = super::parse_meminfo("MemTotal: 18446744073709551615 kB\nMemFree: 1 MB\n");
        assert_eq!(m.get("MemTotal"), None);
        assert_eq!(m.get("MemFree"), None);
    }

    #[test]
    fn uptime_is_the_first_field() {
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350735.47));
        assert_eq!(parse_uptime(""), None);
        assert_eq!(parse_uptime("-1 0"), None);
        assert_eq!(parse_uptime("soon 0"), None);
    }

    #[test]
    fn infiniband_rate_state_and_adapter_maxima() {
        use super::{HcaMax, hca_max, parse_ib_rate, parse_ib_state};
        assert_eq!(parse_ib_rate("400 Gb/sec (4X NDR)\n"), (Some(400.0), Some(4)));
        assert_eq!(parse_ib_rate("200 Gb/sec (2X NDR)\n"), (Some(200.0), Some(2)));
        assert_eq!(parse_ib_rate("2.5 Gb/sec (1X SDR)\n"), (Some(2.5), Some(1)));
        assert_eq!(parse_ib_rate("100 Gb/sec\n"), (Some(100.0), None));
        assert_eq!(parse_ib_rate("fast"), (None, None));
        assert_eq!(parse_ib_state("4: ACTIVE\n"), Some(4));
        assert_eq!(parse_ib_state("5: LinkUp\n"), Some(5));
        assert_eq!(parse_ib_state("ACTIVE"), None);
        assert_eq!(hca_max("MT4129\n"), Some(HcaMax { gbps: 400.0, width: 4 }));
        assert_eq!(hca_max("MT4123"), Some(HcaMax { gbps: 200.0, width: 4 }));
        assert_eq!(hca_max("MT9999"), None);
    }

    use super::is_nvme_namespace;

    #[test]
    fn nvme_names() {
        assert!(is_nvme_namespace("nvme0n1"));
        assert!(is_nvme_namespace("nvme12n3"));
        assert!(!is_nvme_namespace("nvme0n1p1"));
        assert!(!is_nvme_namespace("nvme0c0n1"));
        assert!(!is_nvme_namespace("sda"));
    }
}
