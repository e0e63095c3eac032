//! The connection to the local agent: summaries out (GSCU frames), window requests in (GSCR
//! frames, `docs/cupti-protocol.md`). Only the worker thread uses it, so a slow or absent agent
//! never holds a CUDA thread: connecting fails fast on a Unix socket with no listener, writes
//! time out, and a summary that cannot be written is dropped and counted.

use std::io::{ErrorKind, Read};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gpuscope_cupti::WireError;
use gpuscope_cupti::wire::{HEADER_BYTES, REQUEST_FRAME_BYTES, REQUEST_MAGIC, decode_request};

/// Longest a summary write may block the worker.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an absent agent is looked for between windows.
const RECONNECT_EVERY: Duration = Duration::from_secs(5);

/// Writes all of `bytes` with `MSG_NOSIGNAL`: a plain write to a connection the agent closed
/// raises SIGPIPE, which kills a host process that does not ignore it (most C++ CUDA programs).
fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe the live slice `bytes`.
        let sent = unsafe { libc::send(stream.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
        match usize::try_from(sent) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n.min(bytes.len())..],
            Err(_) => {
                let e = std::io::Error::last_os_error();
                if e.kind() != ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// What waiting on the link gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    /// The wait ran out.
    Timeout,
    /// The agent asked for a window of this length.
    Request(Duration),
    /// The agent sent something that is not a valid request: the connection was closed.
    Refused(WireError),
}

/// The worker's connection to the agent.
#[derive(Debug)]
pub struct AgentLink {
    path: PathBuf,
    stream: Option<UnixStream>,
    pending: Vec<u8>,
    last_attempt: Option<Instant>,
    dropped_since_delivery: u64,
}

impl AgentLink {
    /// A link to the socket at `path` (not connected yet).
    pub fn new(path: PathBuf) -> Self {
        AgentLink {
            path,
            stream: None,
            pending: Vec::with_capacity(REQUEST_FRAME_BYTES),
            last_attempt: None,
            dropped_since_delivery: 0,
        }
    }

    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Summaries dropped since the last delivered one.
    pub fn dropped_since_delivery(&self) -> u64 {
        self.dropped_since_delivery
    }

    fn connect(&mut self) {
        self.last_attempt = Some(Instant::now());
        if let Ok(stream) = UnixStream::connect(&self.path)
            && stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_ok()
        {
            self.pending.clear();
            self.stream = Some(stream);
        }
    }

    /// Sends one summary frame, connecting first when needed; a frame that cannot be written
    /// (no agent, agent gone, write timed out) is dropped and counted.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        if self.stream.is_none() {
            self.connect();
        }
        let delivered = match self.stream.as_mut() {
            Some(stream) => send_all(stream, frame).is_ok(),
            None => false,
        };
        if delivered {
            self.dropped_since_delivery = 0;
        } else {
            // A partial write leaves the stream mid-frame: only a new connection is usable.
            self.stream = None;
            self.dropped_since_delivery = self.dropped_since_delivery.saturating_add(1);
        }
        delivered
    }

    /// Waits up to `timeout` for a window request. Without a connection it sleeps, looking for
    /// the agent every few seconds (so an agent started after the process can ask for a
    /// window before the next scheduled one).
    pub fn wait(&mut self, timeout: Duration) -> Waited {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Waited::Timeout;
            }
            let left = deadline - now;
            if self.stream.is_none() {
                if self.last_attempt.is_none_or(|t| t.elapsed() >= RECONNECT_EVERY) {
                    self.connect();
                }
                if self.stream.is_none() {
                    std::thread::sleep(left.min(RECONNECT_EVERY));
                    continue;
                }
            }
            if let Some(waited) = self.read_some(left) {
                return waited;
            }
        }
    }

    /// One read of at most the rest of a request frame; `Some` when a frame completed or was refused.
    fn read_some(&mut self, left: Duration) -> Option<Waited> {
        let stream = self.stream.as_mut()?;
        // A zero timeout means "block forever" to set_read_timeout.
        if stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).is_err() {
            self.stream = None;
            return None;
        }
        let mut buf = [0u8; REQUEST_FRAME_BYTES];
        let want = REQUEST_FRAME_BYTES - self.pending.len();
        match stream.read(&mut buf[..want]) {
            Ok(0) => {
                // The agent closed the connection.
                self.stream = None;
                None
            }
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                // A header that cannot start a request is refused without waiting for a payload
                // the peer may never send.
                let header_only = self.pending.len() >= HEADER_BYTES && self.pending.len() < REQUEST_FRAME_BYTES;
                if header_only && (self.pending[..4] != REQUEST_MAGIC || self.pending[8..12] != [8, 0, 0, 0]) {
                    let refused = decode_request(&self.pending[..HEADER_BYTES]).err();
                    self.pending.clear();
                    self.stream = None;
                    return refused.map(Waited::Refused);
                }
                if self.pending.len() < REQUEST_FRAME_BYTES {
                    return None;
                }
                let decoded = decode_request(&self.pending);
                self.pending.clear();
                match decoded {
                    Ok(window_ns) => Some(Waited::Request(Duration::from_nanos(window_ns))),
                    Err(e) => {
                        self.stream = None;
                        Some(Waited::Refused(e))
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => None,
            Err(_) => {
                self.stream = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    fn request(ns: u64) -> [u8; REQUEST_FRAME_BYTES] {
        gpuscope_cupti::wire::encode_request(ns).unwrap()
    }

    #[test]
    fn without_an_agent_summaries_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut link = AgentLink::new(dir.path().join("absent.sock"));
        assert!(!link.send(b"GSCU"));
        assert!(!link.send(b"GSCU"));
        assert_eq!(link.dropped_since_delivery(), 2);
        assert!(!link.is_connected());
    }

    #[test]
    fn frames_reach_the_agent_and_requests_come_back_split_or_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let mut link = AgentLink::new(path.clone());
        assert!(!link.send(b"lost"));
        let listener = UnixListener::bind(&path).unwrap();
        assert!(link.send(b"frame-1"), "reconnects at the next send");
        assert_eq!(link.dropped_since_delivery(), 0);
        let (mut agent, _) = listener.accept().unwrap();
        let mut got = [0u8; 7];
        agent.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"frame-1");

        let frame = request(250_000_000);
        agent.write_all(&frame[..5]).unwrap();
        assert_eq!(link.wait(Duration::from_millis(50)), Waited::Timeout, "half a frame is not a request");
        agent.write_all(&frame[5..]).unwrap();
        assert_eq!(link.wait(Duration::from_secs(30)), Waited::Request(Duration::from_millis(250)));

        // 5 ns: below the 1 ms a request may ask for.
        let mut bad = request(1_000_000);
        bad[12..].copy_from_slice(&5u64.to_le_bytes());
        agent.write_all(&bad).unwrap();
        assert_eq!(link.wait(Duration::from_secs(30)), Waited::Refused(WireError::RequestWindow { window_ns: 5 }));
        assert!(!link.is_connected(), "a bad frame closes the connection");
    }

    #[test]
    fn a_summary_header_from_the_agent_is_refused_without_waiting_for_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut link = AgentLink::new(path);
        assert!(link.send(b"x"));
        let (mut agent, _) = listener.accept().unwrap();
        // A GSCU header announcing a long payload that never comes.
        let mut header = [0u8; 12];
        header[..4].copy_from_slice(b"GSCU");
        header[4] = 1;
        header[8] = 200;
        agent.write_all(&header).unwrap();
        assert_eq!(link.wait(Duration::from_secs(30)), Waited::Refused(WireError::BadRequestMagic { found: *b"GSCU" }));
        assert!(!link.is_connected());
    }

    #[test]
    fn sending_to_a_closed_connection_does_not_raise_sigpipe() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut link = AgentLink::new(path);
        assert!(link.send(b"x"));
        drop(listener.accept().unwrap());
        // No listener either: the sends after the first failure cannot reconnect.
        drop(listener);
        // A C host keeps SIGPIPE's default action (terminate); the test harness ignores it.
        // SAFETY: restores the previous disposition below; no handler is installed.
        let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let mut delivered = true;
        for _ in 0..10 {
            delivered &= link.send(&[0u8; 4096]);
        }
        // SAFETY: as above.
        unsafe { libc::signal(libc::SIGPIPE, previous) };
        assert!(!delivered, "the peer is gone");
        assert!(link.dropped_since_delivery() >= 9, "{}", link.dropped_since_delivery());
    }

    #[test]
    fn garbage_from_the_agent_never_yields_a_bad_window() {
        // Deterministic pseudo-random byte streams, some starting with a valid-looking header:
        // every outcome is a timeout, a refusal (connection closed) or a window in range.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        for case in 0..200 {
            let mut link = AgentLink::new(path.clone());
            assert!(link.send(b"x"));
            let (mut agent, _) = listener.accept().unwrap();
            let len = (next() % 48) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if case % 2 == 0 && len >= 12 {
                bytes[..12].copy_from_slice(&request(1_000_000)[..12]);
            }
            agent.write_all(&bytes).unwrap();
            match link.wait(Duration::from_millis(20)) {
                Waited::Timeout => assert!(bytes.len() < REQUEST_FRAME_BYTES, "{bytes:02x?}"),
                Waited::Request(window) => {
                    assert!((Duration::from_millis(1)..=Duration::from_secs(60)).contains(&window), "{bytes:02x?}")
                }
                Waited::Refused(_) => assert!(!link.is_connected()),
            }
        }
    }

    #[test]
    fn an_agent_that_goes_away_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut link = AgentLink::new(path);
        assert!(link.send(b"x"));
        let (agent, _) = listener.accept().unwrap();
        drop(agent);
        drop(listener);
        assert_eq!(link.wait(Duration::from_millis(200)), Waited::Timeout);
        assert!(!link.is_connected());
    }
}
