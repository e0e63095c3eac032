//! The CUPTI receiver: the Unix stream socket that gpuscope's injection library connects to from
//! every profiled CUDA process (`docs/cupti-protocol.md`). One thread accepts; each connection
//! has a thread that reads `GSCU` window summaries with [`gpuscope_cupti::read_frame`]. The
//! latest profile of each process (by host PID, from the socket's peer credentials) is kept,
//! bounded, and the sampling pass copies the profiles into the snapshot ([`CuptiSampler`]); the
//! process sampler then names them (comm, user, container, pod, GPUs).
//!
//! Everything a peer sends is untrusted: frames are size-limited before they are read, a frame
//! that has started must complete within a deadline, connections are capped, and a bad frame
//! costs only its own connection.

use crate::sampler::process::parse_stat;
use crate::sampler::{Pass, SampleError, Sampler};
use gpuscope_core::api::{KernelProfiler, ProfileRefusal};
use gpuscope_core::{CuptiStats, KernelProfile, NodeSnapshot};
use gpuscope_cupti::wire::{self, ReadError, WireError};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the agent listens unless configured otherwise (and where the library connects unless
/// `GPUSCOPE_CUPTI_SOCKET` says otherwise).
pub const DEFAULT_SOCKET: &str = "/run/gpuscope/cupti.sock";
/// Most connections served at once; one more is accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Most processes whose profile is kept; a new one evicts the one silent for longest.
pub const MAX_PROFILES: usize = 1024;
/// A frame whose first byte has arrived must be complete within this long.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Most window requests waiting for an answer from one process.
const MAX_WAITERS_PER_PID: usize = 16;
/// A waiter older than the longest window a request can ask for (60 s) and this much is dropped.
const WAITER_GRACE: Duration = Duration::from_secs(10);
/// A profile is kept this many periods after its last window.
const EXPIRY_PERIODS: u32 = 3;
/// The shortest expiry: a library that reports a zero period still keeps its profile this long.
const MIN_EXPIRY: Duration = Duration::from_secs(1);
/// Refused connections are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// The reasons a frame is rejected, as the `reason` label counts them (all exported from 0).
pub const REJECT_REASONS: &[&str] =
    &["bad_magic", "unsupported_version", "oversize", "truncated", "malformed", "timeout", "io"];

/// The receiver's settings.
#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    /// The socket's path.
    pub socket: PathBuf,
    /// Root of the proc filesystem (tells a process that is gone from one that is quiet).
    pub procfs_root: PathBuf,
    /// Most connections at once.
    pub max_connections: usize,
    /// Most profiles kept.
    pub max_profiles: usize,
    /// Deadline of one frame once its first byte arrived.
    pub frame_timeout: Duration,
}

impl ReceiverOptions {
    /// The defaults for a socket at `socket`.
    pub fn new(socket: PathBuf, procfs_root: PathBuf) -> ReceiverOptions {
        ReceiverOptions {
            socket,
            procfs_root,
            max_connections: MAX_CONNECTIONS,
            max_profiles: MAX_PROFILES,
            frame_timeout: FRAME_TIMEOUT,
        }
    }
}

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The socket's directory could not be created.
    #[error("cannot create the CUPTI socket's directory {dir}: {source}")]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Something that is not a socket sits at the path.
    #[error("{path} exists and is not a socket: remove it or set another [cupti] socket")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A live process listens on the path.
    #[error("another process already listens on {path} (is a gpuscope agent already running?)")]
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// A socket file nobody listens on could not be removed.
    #[error("cannot remove the stale socket {path}: {source}")]
    RemoveStale {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Binding failed.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The socket's mode could not be set.
    #[error("cannot make {path} writable by every user (mode 0666): {source}")]
    Chmod {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The accepting thread could not start.
    #[error("cannot start the CUPTI receiver thread: {0}")]
    Thread(std::io::Error),
}

/// The `reason` label of a rejected frame.
pub fn reject_reason(e: &ReadError) -> &'static str {
    use std::io::ErrorKind;
    match e {
        ReadError::Io(io) => match io.kind() {
            ErrorKind::UnexpectedEof => "truncated",
            ErrorKind::WouldBlock | ErrorKind::TimedOut => "timeout",
            _ => "io",
        },
        ReadError::Wire(w) => match w {
            WireError::BadMagic { .. } => "bad_magic",
            WireError::UnsupportedVersion { .. } => "unsupported_version",
            WireError::Oversize { .. } => "oversize",
            WireError::Truncated { .. } => "truncated",
            _ => "malformed",
        },
    }
}

/// The profile of one process and what decides when it is dropped.
struct Entry {
    profile: KernelProfile,
    last_window: Instant,
    expire_after: Duration,
    /// When the process started (ticks after boot), telling a reused PID apart.
    start_ticks: Option<u64>,
}

/// One open connection.
struct Conn {
    pid: u32,
    /// A handle of the same socket for window requests and for shutting it down on stop.
    stream: UnixStream,
}

/// A window request waiting for its summary.
struct Waiter {
    /// The summary of a window that started at or after this (Unix ns) answers it.
    after_unix_ns: u64,
    created: Instant,
    reply: Box<dyn FnOnce(KernelProfile) + Send>,
}

#[derive(Default)]
struct State {
    profiles: HashMap<u32, Entry>,
    conns: HashMap<u64, Conn>,
    waiters: HashMap<u32, Vec<Waiter>>,
    next_conn: u64,
    last_refusal_log: Option<Instant>,
    refusals_unlogged: u64,
}

struct Shared {
    opts: ReceiverOptions,
    state: Mutex<State>,
    connections_total: AtomicU64,
    connections_refused_total: AtomicU64,
    frames_received_total: AtomicU64,
    profiles_evicted_total: AtomicU64,
    frames_rejected: Mutex<BTreeMap<&'static str, u64>>,
    stop: AtomicBool,
}

/// A poisoned lock only means another thread panicked while holding it; the data is still
/// consistent enough to serve (every update is a single assignment or insertion).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// When process `pid` started (ticks after boot); `None` when it is gone.
fn start_ticks(procfs_root: &Path, pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(procfs_root.join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&text).map(|(_, f)| f.start_ticks)
}

/// The host PID of the peer of a Unix socket, from the kernel (`SO_PEERCRED`).
fn peer_pid(stream: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a live, properly sized ucred,
    // and the descriptor belongs to `stream`, which outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0 && cred.pid > 0).then_some(cred.pid as u32)
}

impl Shared {
    fn reject(&self, pid: u32, e: &ReadError) {
        let reason = reject_reason(e);
        *lock(&self.frames_rejected).entry(reason).or_insert(0) += 1;
        tracing::warn!(pid, reason, "CUPTI summary rejected, connection closed: {e}");
    }

    fn record(&self, pid: u32, summary: &gpuscope_cupti::WindowSummary) {
        self.frames_received_total.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut st = lock(&self.state);
        if !st.profiles.contains_key(&pid) && st.profiles.len() >= self.opts.max_profiles {
            // Full: the process silent for longest makes room.
            let oldest = st.profiles.iter().min_by_key(|(_, e)| e.last_window).map(|(p, _)| *p);
            if let Some(old) = oldest {
                st.profiles.remove(&old);
                self.profiles_evicted_total.fetch_add(1, Ordering::Relaxed);
            }
        }
        let procfs_root = &self.opts.procfs_root;
        let entry = st.profiles.entry(pid).or_insert_with(|| Entry {
            profile: KernelProfile { pid, ..KernelProfile::default() },
            last_window: now,
            expire_after: MIN_EXPIRY,
            start_ticks: start_ticks(procfs_root, pid),
        });
        entry.profile.record(summary);
        entry.last_window = now;
        let period = Duration::from_nanos(summary.period_ns.max(summary.window_ns()));
        entry.expire_after = period.saturating_mul(EXPIRY_PERIODS).max(MIN_EXPIRY);
        let answer = entry.profile.clone();
        let Some(waiters) = st.waiters.remove(&pid) else { return };
        let (due, waiting): (Vec<Waiter>, Vec<Waiter>) =
            waiters.into_iter().partition(|w| summary.window_start_unix_ns >= w.after_unix_ns);
        if !waiting.is_empty() {
            st.waiters.insert(pid, waiting);
        }
        drop(st);
        for w in due {
            (w.reply)(answer.clone());
        }
    }

    /// Forgets a closed connection; waiters of a process with no connection left are dropped
    /// (their requests fail at once instead of timing out).
    fn disconnect(&self, id: u64, pid: u32) {
        let mut st = lock(&self.state);
        st.conns.remove(&id);
        if !st.conns.values().any(|c| c.pid == pid) {
            st.waiters.remove(&pid);
        }
    }

    /// Reads frames until the peer closes, a frame is bad, or the receiver stops.
    fn serve(&self, id: u64, pid: u32, stream: UnixStream) {
        loop {
            // Between windows the library may stay quiet for as long as its period: no deadline
            // until a frame starts.
            if stream.set_read_timeout(None).is_err() {
                break;
            }
            let mut first = [0u8; 1];
            match (&stream).read(&mut first) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
            let mut reader =
                first.chain(Deadline { stream: &stream, deadline: Instant::now() + self.opts.frame_timeout });
            match wire::read_frame(&mut reader) {
                Ok(summary) => self.record(pid, &summary),
                Err(e) => {
                    if !self.stop.load(Ordering::SeqCst) {
                        self.reject(pid, &e);
                    }
                    break;
                }
            }
        }
        self.disconnect(id, pid);
    }

    fn accept(self: &Arc<Self>, listener: &UnixListener) {
        for conn in listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let stream = match conn {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors and the like: wait and go on accepting.
                    tracing::warn!("CUPTI socket: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            self.connections_total.fetch_add(1, Ordering::Relaxed);
            let mut st = lock(&self.state);
            if st.conns.len() >= self.opts.max_connections {
                drop(stream);
                self.connections_refused_total.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if st.last_refusal_log.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
                    let suppressed = std::mem::take(&mut st.refusals_unlogged);
                    tracing::warn!(
                        suppressed,
                        "CUPTI socket: {} connections open, the limit: a new one was closed",
                        self.opts.max_connections
                    );
                    st.last_refusal_log = Some(now);
                } else {
                    st.refusals_unlogged += 1;
                }
                continue;
            }
            let Some(pid) = peer_pid(&stream) else {
                tracing::warn!("CUPTI socket: a peer without credentials (SO_PEERCRED failed), closed");
                continue;
            };
            // A PID the kernel reused for a new process starts a new profile.
            let started = start_ticks(&self.opts.procfs_root, pid);
            if st.profiles.get(&pid).is_some_and(|e| e.start_ticks != started) {
                st.profiles.remove(&pid);
            }
            let Ok(handle) = stream.try_clone() else { continue };
            let id = st.next_conn;
            st.next_conn += 1;
            st.conns.insert(id, Conn { pid, stream: handle });
            drop(st);
            let shared = self.clone();
            // Small stacks: a connection thread only decodes frames (no recursion, no big locals).
            let spawned = std::thread::Builder::new()
                .name("gpuscope-cupti-conn".into())
                .stack_size(256 * 1024)
                .spawn(move || shared.serve(id, pid, stream));
            if let Err(e) = spawned {
                tracing::warn!(pid, "CUPTI socket: cannot start a connection thread: {e}");
                lock(&self.state).conns.remove(&id);
            }
        }
    }
}

/// Reads from a stream, failing with `TimedOut` once `deadline` has passed: the whole frame
/// shares one deadline, so a peer that trickles bytes cannot hold a connection thread.
struct Deadline<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the frame did not complete in time"));
        }
        self.stream.set_read_timeout(Some(left))?;
        (&*self.stream).read(buf)
    }
}

/// The running receiver. Dropping it stops it.
pub struct Receiver {
    shared: Arc<Shared>,
    accepting: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("socket", &self.shared.opts.socket).finish_non_exhaustive()
    }
}

/// Binds the socket: creates its directory, removes a stale socket file nobody listens on, and
/// opens it to every user.
fn bind(path: &Path) -> Result<UnixListener, ReceiverError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ReceiverError::CreateDir { dir: dir.to_path_buf(), source })?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ReceiverError::NotASocket { path: path.to_path_buf() });
        }
        // Left by an agent that died: remove it, but never take a socket from a live listener.
        if UnixStream::connect(path).is_ok() {
            return Err(ReceiverError::InUse { path: path.to_path_buf() });
        }
        std::fs::remove_file(path).map_err(|source| ReceiverError::RemoveStale { path: path.to_path_buf(), source })?;
    }
    let listener =
        UnixListener::bind(path).map_err(|source| ReceiverError::Bind { path: path.to_path_buf(), source })?;
    // 0666: profiled processes run as any user, often in containers with their own uids, and
    // must be able to connect. A peer can only report on itself: the agent attributes what it
    // sends by the PID the kernel gives for the connection, never by what it claims.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|source| ReceiverError::Chmod { path: path.to_path_buf(), source })?;
    Ok(listener)
}

impl Receiver {
    /// Binds the socket and starts accepting.
    pub fn start(opts: ReceiverOptions) -> Result<Arc<Receiver>, ReceiverError> {
        let listener = bind(&opts.socket)?;
        let frames_rejected = REJECT_REASONS.iter().map(|r| (*r, 0)).collect();
        let shared = Arc::new(Shared {
            opts,
            state: Mutex::new(State::default()),
            connections_total: AtomicU64::new(0),
            connections_refused_total: AtomicU64::new(0),
            frames_received_total: AtomicU64::new(0),
            profiles_evicted_total: AtomicU64::new(0),
            frames_rejected: Mutex::new(frames_rejected),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accepting = std::thread::Builder::new()
            .name("gpuscope-cupti".into())
            .spawn(move || s.accept(&listener))
            .map_err(ReceiverError::Thread)?;
        tracing::info!("receiving CUPTI summaries on {}", shared.opts.socket.display());
        Ok(Arc::new(Receiver { shared, accepting: Mutex::new(Some(accepting)) }))
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.shared.opts.socket
    }

    /// The current profiles, by PID; profiles past their expiry are dropped first: 3 periods
    /// after the last window, or once the process's connection closed and the process is gone.
    pub fn profiles(&self) -> Vec<KernelProfile> {
        let now = Instant::now();
        let mut st = lock(&self.shared.state);
        let State { profiles, conns, waiters, .. } = &mut *st;
        let root = &self.shared.opts.procfs_root;
        let connected_pids: std::collections::HashSet<u32> = conns.values().map(|c| c.pid).collect();
        profiles.retain(|pid, e| {
            let fresh = now.duration_since(e.last_window) <= e.expire_after;
            let connected = connected_pids.contains(pid);
            fresh && (connected || (e.start_ticks.is_some() && start_ticks(root, *pid) == e.start_ticks))
        });
        let stale = Duration::from_nanos(wire::MAX_REQUEST_WINDOW_NS) + WAITER_GRACE;
        waiters.retain(|_, ws| {
            ws.retain(|w| now.duration_since(w.created) <= stale);
            !ws.is_empty()
        });
        let mut out: Vec<KernelProfile> = profiles.values().map(|e| e.profile.clone()).collect();
        out.sort_by_key(|p| p.pid);
        out
    }

    /// The receiver's counters.
    pub fn stats(&self) -> CuptiStats {
        let connections = lock(&self.shared.state).conns.len() as u64;
        let s = &self.shared;
        CuptiStats {
            connections,
            connections_total: s.connections_total.load(Ordering::Relaxed),
            connections_refused_total: s.connections_refused_total.load(Ordering::Relaxed),
            frames_received_total: s.frames_received_total.load(Ordering::Relaxed),
            frames_rejected_total: lock(&s.frames_rejected).iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            profiles_evicted_total: s.profiles_evicted_total.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting, closes every connection and removes the socket file.
    pub fn stop(&self) {
        if self.shared.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        for c in lock(&self.shared.state).conns.values() {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        // Wakes the accepting thread, which sees the flag.
        let _ = UnixStream::connect(&self.shared.opts.socket);
        if let Some(t) = lock(&self.accepting).take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.shared.opts.socket);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

impl KernelProfiler for Receiver {
    fn request_window(
        &self,
        pid: u32,
        window: Duration,
        reply: Box<dyn FnOnce(KernelProfile) + Send>,
    ) -> Result<(), ProfileRefusal> {
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let frame = wire::encode_request(window_ns).map_err(|e| ProfileRefusal::Invalid { message: e.to_string() })?;
        let mut st = lock(&self.shared.state);
        // The newest connection of the process: an older one may be a library that is leaving.
        let Some(conn) = st.conns.iter().filter(|(_, c)| c.pid == pid).max_by_key(|(id, _)| **id).map(|(_, c)| c)
        else {
            return Err(ProfileRefusal::NotConnected { pid });
        };
        if st.waiters.get(&pid).is_some_and(|w| w.len() >= MAX_WAITERS_PER_PID) {
            return Err(ProfileRefusal::Busy { pid });
        }
        let after_unix_ns = unix_ns();
        let mut stream = &conn.stream;
        // The library reads its socket in its own thread: 20 bytes never wait long, unless the
        // peer stopped reading, which must not hold the agent.
        let sent = stream
            .set_write_timeout(Some(Duration::from_secs(1)))
            .and_then(|()| stream.write_all(&frame))
            .map_err(|e| ProfileRefusal::Failed { pid, message: e.to_string() });
        sent?;
        st.waiters.entry(pid).or_default().push(Waiter { after_unix_ns, created: Instant::now(), reply });
        Ok(())
    }
}

/// Copies the receiver's profiles into the snapshot; the process sampler, which runs next,
/// names them.
pub struct CuptiSampler {
    receiver: Arc<Receiver>,
}

impl CuptiSampler {
    /// A sampler reading `receiver`.
    pub fn new(receiver: Arc<Receiver>) -> CuptiSampler {
        CuptiSampler { receiver }
    }
}

impl Sampler for CuptiSampler {
    fn name(&self) -> &'static str {
        "cupti"
    }

    fn sample(&mut self, snap: &mut NodeSnapshot, _pass: &Pass) -> Result<(), SampleError> {
        snap.kernel_profiles = self.receiver.profiles();
        snap.agent.cupti = Some(self.receiver.stats());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use super::*;
    use gpuscope_cupti::WindowSummary;

    fn receiver(dir: &Path) -> Arc<Receiver> {
        let mut opts = ReceiverOptions::new(dir.join("run/gpuscope/cupti.sock"), "/proc".into());
        opts.frame_timeout = Duration::from_millis(300);
        Receiver::start(opts).unwrap()
    }

    fn summary(start_ns: u64) -> WindowSummary {
        let mut s = WindowSummary::empty(1, start_ns, start_ns + 500_000_000, 5_000_000_000);
        s.launches = 100;
        s.launch_span_ns = 1_000_000_000;
        s
    }

    /// Waits (bounded) until `f` holds: the receiver works on its own threads.
    fn eventually(what: &str, f: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_socket_is_created_open_to_everyone_and_removed_on_stop() {
        let dir = tempfile::tempdir().unwrap();
        let r = receiver(dir.path());
        let meta = std::fs::metadata(r.socket()).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o666);
        // A second receiver on the same path finds it in use and leaves it alone.
        let err = Receiver::start(ReceiverOptions::new(r.socket().to_path_buf(), "/proc".into())).unwrap_err();
        assert!(matches!(err, ReceiverError::InUse { .. }), "{err}");
        let path = r.socket().to_path_buf();
        r.stop();
        assert!(!path.exists());
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cupti.sock");
        // A socket file whose listener is gone, as a killed agent leaves it.
        drop(UnixListener::bind(&path).unwrap());
        let r = Receiver::start(ReceiverOptions::new(path.clone(), "/proc".into())).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        r.stop();
        std::fs::write(&path, "not a socket").unwrap();
        let err = Receiver::start(ReceiverOptions::new(path.clone(), "/proc".into())).unwrap_err();
        assert!(matches!(err, ReceiverError::NotASocket { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    }

    #[test]
    fn a_summary_becomes_the_profile_of_the_connecting_pid() {
        let dir = tempfile::tempdir().unwrap();
        let r = receiver(dir.path());
        let mut c = UnixStream::connect(r.socket()).unwrap();
        // The summary's own pid (the process's namespace) is not what attributes it.
        let mut s = summary(1_000);
        s.pid = 7;
        c.write_all(&wire::encode(&s).unwrap()).unwrap();
        eventually("a profile", || !r.profiles().is_empty());
        let p = r.profiles();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].pid, std::process::id());
        assert_eq!(p[0].windows_total, 1);
        assert_eq!(p[0].launches_per_second, Some(100.0));
        assert_eq!(r.stats().frames_received_total, 1);
        assert_eq!(r.stats().connections, 1);
    }

    #[test]
    fn a_bad_frame_closes_only_its_connection_and_is_counted_by_reason() {
        let dir = tempfile::tempdir().unwrap();
        let r = receiver(dir.path());
        let cases: [(&str, Vec<u8>); 4] = [
            ("bad_magic", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
            ("oversize", {
                let mut f = wire::encode(&summary(1)).unwrap();
                f[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
                f
            }),
            ("malformed", {
                let mut f = wire::encode(&summary(1)).unwrap();
                f.push(0);
                let len = (f.len() - wire::HEADER_BYTES) as u32;
                f[8..12].copy_from_slice(&len.to_le_bytes());
                f
            }),
            ("timeout", wire::encode(&summary(1)).unwrap()[..30].to_vec()),
        ];
        for (reason, bytes) in cases {
            let mut c = UnixStream::connect(r.socket()).unwrap();
            c.write_all(&bytes).unwrap();
            let mut rest = Vec::new();
            // The agent closes the connection: the read ends (EOF or reset), it does not hang.
            let _ = c.read_to_end(&mut rest);
            assert_eq!(r.stats().frames_rejected_total[reason], 1, "{reason}");
        }
        // A payload cut short by the peer closing.
        let mut c = UnixStream::connect(r.socket()).unwrap();
        c.write_all(&wire::encode(&summary(1)).unwrap()[..40]).unwrap();
        drop(c);
        eventually("truncated", || r.stats().frames_rejected_total["truncated"] == 1);
        // The receiver still serves the next good client.
        let mut c = UnixStream::connect(r.socket()).unwrap();
        c.write_all(&wire::encode(&summary(1)).unwrap()).unwrap();
        eventually("a profile", || r.profiles().len() == 1);
        assert_eq!(r.stats().frames_received_total, 1);
    }

    #[test]
    fn connections_over_the_limit_are_closed_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ReceiverOptions::new(dir.path().join("cupti.sock"), "/proc".into());
        opts.max_connections = 2;
        let r = Receiver::start(opts).unwrap();
        let _a = UnixStream::connect(r.socket()).unwrap();
        let _b = UnixStream::connect(r.socket()).unwrap();
        eventually("two connections", || r.stats().connections == 2);
        let mut c = UnixStream::connect(r.socket()).unwrap();
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).unwrap_or(0), 0, "closed at once");
        assert_eq!(r.stats().connections_refused_total, 1);
        assert_eq!(r.stats().connections, 2);
        drop(_a);
        eventually("one slot free", || r.stats().connections == 1);
        let _d = UnixStream::connect(r.socket()).unwrap();
        eventually("served again", || r.stats().connections == 2);
        assert_eq!(r.stats().connections_refused_total, 1);
    }

    #[test]
    fn a_window_request_reaches_the_library_and_the_next_window_answers_it() {
        let dir = tempfile::tempdir().unwrap();
        let r = receiver(dir.path());
        assert_eq!(
            r.request_window(std::process::id(), Duration::from_millis(200), Box::new(|_| {})),
            Err(ProfileRefusal::NotConnected { pid: std::process::id() })
        );
        let mut c = UnixStream::connect(r.socket()).unwrap();
        eventually("the connection", || r.stats().connections == 1);
        let (tx, rx) = std::sync::mpsc::channel();
        let reply = Box::new(move |p: KernelProfile| {
            let _ = tx.send(p);
        });
        r.request_window(std::process::id(), Duration::from_millis(200), reply).unwrap();
        assert_eq!(wire::read_request(&mut c).unwrap(), 200_000_000);
        // A window that started before the request does not answer it.
        c.write_all(&wire::encode(&summary(1_000)).unwrap()).unwrap();
        let mut requested = summary(unix_ns());
        requested.window_end_unix_ns = requested.window_start_unix_ns + 200_000_000;
        requested.launches = 42;
        c.write_all(&wire::encode(&requested).unwrap()).unwrap();
        let answer = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(answer.windows_total, 2);
        assert_eq!(answer.window_seconds, 0.2);
        assert_eq!(answer.launches_per_second, Some(42.0));
        assert!(rx.try_recv().is_err(), "answered once");
        assert!(matches!(
            r.request_window(1, Duration::from_secs(61), Box::new(|_| {})),
            Err(ProfileRefusal::Invalid { .. })
        ));
    }

    /// A /proc with processes `pids` in it, all alive.
    fn fake_proc(dir: &Path, pids: &[u32]) -> PathBuf {
        let root = dir.join("proc");
        for pid in pids {
            let d = root.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            let stat = format!(
                "{pid} (python) S 1 {pid} {pid} 0 -1 4194560 100 0 2 0 1500 250 0 0 20 0 12 0 360000 8000000 2048 0"
            );
            std::fs::write(d.join("stat"), stat).unwrap();
        }
        root
    }

    #[test]
    fn the_profile_limit_evicts_the_process_silent_for_longest() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ReceiverOptions::new(dir.path().join("cupti.sock"), fake_proc(dir.path(), &[11, 12, 13]));
        opts.max_profiles = 2;
        let r = Receiver::start(opts).unwrap();
        for pid in [11, 12, 13] {
            r.shared.record(pid, &summary(1));
            std::thread::sleep(Duration::from_millis(2));
        }
        let pids: Vec<u32> = r.profiles().iter().map(|p| p.pid).collect();
        assert_eq!(pids, [12, 13]);
        assert_eq!(r.stats().profiles_evicted_total, 1);
        // A process already known takes no one's place.
        r.shared.record(12, &summary(2));
        assert_eq!(r.profiles().len(), 2);
        assert_eq!(r.stats().profiles_evicted_total, 1);
    }

    #[test]
    fn a_profile_expires_three_periods_after_its_last_window_or_when_its_process_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let root = fake_proc(dir.path(), &[21, 22]);
        let r = Receiver::start(ReceiverOptions::new(dir.path().join("cupti.sock"), root.clone())).unwrap();
        // Period 100 ms, window 10 ms: three periods are less than the 1 s floor.
        let mut short = WindowSummary::empty(1, 0, 10_000_000, 100_000_000);
        short.launches = 1;
        r.shared.record(21, &short);
        // Period 1 h: kept while the process lives.
        let mut long = summary(1);
        long.period_ns = 3_600_000_000_000;
        r.shared.record(22, &long);
        eventually("pid 21 to expire", || r.profiles().iter().all(|p| p.pid != 21));
        assert_eq!(r.profiles().iter().map(|p| p.pid).collect::<Vec<_>>(), [22]);
        // Not connected, and now gone from /proc: dropped at once.
        std::fs::remove_dir_all(root.join("22")).unwrap();
        assert!(r.profiles().is_empty());
    }
}
