//! Mounted filesystems: size, free and available space per mount point (`statvfs`), for the data
//! set and checkpoint volumes, read on slow passes. The mount table is `<procfs_root>/1/mounts` (init's: the host's
//! mounts when the agent runs in a container given the host's /proc), and a mount point is looked
//! up under the parent of the procfs root (`/` for `/proc`, `/host` for `/host/proc`), as
//! node_exporter's `--path.rootfs` does.

use super::{Pass, SampleError, Sampler, read};
use gpuscope_core::{FsSample, HostSample, NodeSnapshot};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// At most this many mounts are read: a host with thousands (one per container) costs no more.
pub const MAX_MOUNTS: usize = 64;
/// A `statvfs` that has not answered after this (a dead NFS server) is given up for the pass, and
/// its mount skipped until that call returns.
pub const STAT_TIMEOUT: Duration = Duration::from_secs(1);

/// Filesystem types that hold no data of their own (node_exporter's default exclusions).
const PSEUDO: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// One line of a mount table.
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    device: String,
    mountpoint: String,
    fstype: String,
}

/// A mount point under a kernel or container-runtime tree (node_exporter's default exclusions,
/// with the kubelet's pod volumes).
fn ignored_mountpoint(m: &str) -> bool {
    ["/dev", "/proc", "/sys"].iter().any(|p| m == *p || m.starts_with(&format!("{p}/")))
        || ["/run/credentials/", "/var/lib/docker/", "/var/lib/containers/storage/", "/var/lib/kubelet/pods/"]
            .iter()
            .any(|p| m.starts_with(p))
}

/// The kernel escapes space, tab, newline and backslash in mount table fields as `\ooo`.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The real filesystems of a mount table, each mount point once, at most [`MAX_MOUNTS`].
fn parse_mounts(text: &str) -> Vec<Mount> {
    let mut seen = HashSet::new();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (device, mountpoint, fstype) = (f.next()?, unescape(f.next()?), f.next()?);
            (!PSEUDO.contains(&fstype) && !ignored_mountpoint(&mountpoint)).then(|| Mount {
                device: unescape(device),
                mountpoint,
                fstype: fstype.to_string(),
            })
        })
        .filter(|m| seen.insert(m.mountpoint.clone()))
        .take(MAX_MOUNTS)
        .collect()
}

/// (size, free, available) bytes of the filesystem holding `path`.
#[allow(clippy::unnecessary_cast)] // the statvfs field types differ between platforms
fn statvfs(path: &Path) -> Option<(u64, u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a NUL-terminated path and `st` is writable memory of the type statvfs fills.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `st` (and it was zeroed before).
    let st = unsafe { st.assume_init() };
    let unit = st.f_frsize as u64;
    Some((
        (st.f_blocks as u64).checked_mul(unit)?,
        (st.f_bfree as u64).checked_mul(unit)?,
        (st.f_bavail as u64).checked_mul(unit)?,
    ))
}

/// Size, free and available space of every real mounted filesystem.
pub struct FilesystemSampler {
    procfs_root: PathBuf,
    rootfs: PathBuf,
    mounts: Vec<Mount>,
    /// The last reading, published again between slow passes.
    last: Vec<FsSample>,
    /// Mount points whose `statvfs` has not returned yet; skipped until it does.
    stuck: Arc<Mutex<HashSet<String>>>,
}

impl FilesystemSampler {
    /// Reads `<procfs_root>/1/mounts` and stats mount points under the procfs root's parent.
    pub fn new(procfs_root: PathBuf) -> FilesystemSampler {
        let rootfs = procfs_root.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        FilesystemSampler { procfs_root, rootfs, mounts: Vec::new(), last: Vec::new(), stuck: Arc::default() }
    }
}

impl Sampler for FilesystemSampler {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn sample(&mut self, snap: &mut NodeSnapshot, pass: &Pass) -> Result<(), SampleError> {
        // Filesystems fill over minutes: they are read on slow passes (30 s by default), and the
        // reading is published again in between.
        if !pass.slow && !self.mounts.is_empty() {
            snap.host.get_or_insert_with(HostSample::default).filesystems = self.last.clone();
            return Ok(());
        }
        self.mounts = parse_mounts(&read(&self.procfs_root.join("1/mounts"))?);
        let todo: Vec<Mount> = {
            let stuck = self.stuck.lock().unwrap_or_else(|e| e.into_inner());
            self.mounts.iter().filter(|m| !stuck.contains(&m.mountpoint)).cloned().collect()
        };
        // One thread stats them in turn, so that a hung network filesystem holds that thread,
        // never the sampling pass.
        let (tx, rx) = mpsc::channel();
        let (rootfs, stuck) = (self.rootfs.clone(), self.stuck.clone());
        let points: Vec<String> = todo.iter().map(|m| m.mountpoint.clone()).collect();
        let spawned = std::thread::Builder::new().name("gpuscope-statvfs".into()).spawn(move || {
            for m in points {
                stuck.lock().unwrap_or_else(|e| e.into_inner()).insert(m.clone());
                let r = statvfs(&rootfs.join(m.trim_start_matches('/')));
                stuck.lock().unwrap_or_else(|e| e.into_inner()).remove(&m);
                if tx.send((m, r)).is_err() {
                    return;
                }
            }
        });
        if let Err(e) = spawned {
            return Err(SampleError::Parse { path: "statvfs".into(), message: format!("cannot start a thread: {e}") });
        }
        let deadline = Instant::now() + STAT_TIMEOUT;
        let mut out = Vec::new();
        while let Ok((m, r)) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            // An unreadable mount (gone, no permission) has no series: absent, not zero.
            if let (Some((size, free, avail)), Some(mount)) = (r, todo.iter().find(|t| t.mountpoint == m)) {
                out.push(FsSample {
                    mountpoint: m,
                    device: mount.device.clone(),
                    fstype: mount.fstype.clone(),
                    size_bytes: Some(size),
                    free_bytes: Some(free),
                    avail_bytes: Some(avail),
                });
            }
        }
        self.last = out.clone();
        snap.host.get_or_insert_with(HostSample::default).filesystems = out;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_filesystems_only_each_once_with_escapes_undone() {
        let text = "/dev/nvme0n1p2 / ext4 rw,relatime 0 0\n\
                    proc /proc proc rw 0 0\n\
                    sysfs /sys sysfs rw 0 0\n\
                    cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n\
                    tmpfs /dev/shm tmpfs rw 0 0\n\
                    overlay /var/lib/docker/overlay2/ab/merged overlay rw 0 0\n\
                    tmpfs /var/lib/kubelet/pods/u/volumes/x tmpfs rw 0 0\n\
                    10.0.0.5:/datasets /mnt/data\\040sets nfs4 rw 0 0\n\
                    /dev/md0 /checkpoints xfs rw 0 0\n\
                    /dev/md0 /checkpoints xfs rw 0 0\n\
                    truncated\n";
        let m = parse_mounts(text);
        let points: Vec<&str> = m.iter().map(|m| m.mountpoint.as_str()).collect();
        assert_eq!(points, ["/", "/mnt/data sets", "/checkpoints"]);
        assert_eq!(m[1].fstype, "nfs4");
        assert_eq!(m[1].device, "10.0.0.5:/datasets");
    }

    #[test]
    fn a_host_with_thousands_of_mounts_costs_at_most_the_limit() {
        let text: String = (0..5000).map(|i| format!("/dev/sd{i} /m{i} ext4 rw 0 0\n")).collect();
        assert_eq!(parse_mounts(&text).len(), MAX_MOUNTS);
    }

    #[test]
    fn statvfs_of_the_root_is_consistent_and_of_a_missing_path_absent() {
        let (size, free, avail) = statvfs(Path::new("/")).expect("statvfs /");
        assert!(size >= free && free >= avail, "{size} {free} {avail}");
        assert_eq!(statvfs(Path::new("/no/such/mount/point")), None);
    }

    #[test]
    fn unescape_leaves_other_backslashes() {
        assert_eq!(unescape("a\\040b\\011c\\134d"), "a b\tc\\d");
        assert_eq!(unescape("a\\9b\\04"), "a\\9b\\04");
    }
}
