//! The window-summary wire format (version 1): one length-prefixed frame per summary on the
//! injection library's Unix socket to the agent. `docs/cupti-protocol.md` is the reference;
//! this module is its only implementation, used by both ends.
//!
//! Frame: a 12-byte header — magic `GSCU`, version `u16`, reserved `u16` (0), payload length
//! `u32` — then the payload. Every integer is little-endian. The decoder trusts nothing: every
//! count and length is checked against a limit before anything is allocated, enum codes must be
//! known, lists must be in canonical order, and the payload must be consumed exactly.

use thiserror::Error;

use crate::classify::{CollectiveKind, KernelClass, KernelKind, MathPipe, Precision};
use crate::summary::{
    ClassStats, DeviceGaps, HISTOGRAM_BUCKETS, KernelStats, MemcpyKind, MemcpyStats, MemoryKind, SyncKind, SyncStats,
    TimeStats, TransferStats, WindowSummary,
};

/// The four bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"GSCU";
/// The protocol version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Header length in bytes.
pub const HEADER_BYTES: usize = 12;
/// Largest payload accepted (and written).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Longest kernel name, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 1024;
/// Most top kernels in one summary.
pub const MAX_TOP_KERNELS: usize = 64;
/// Most kernel-class entries (bounds every distinct class the classifier can produce).
pub const MAX_CLASSES: usize = 512;
/// Most memcpy entries (bounds every direction × source × destination × async combination).
pub const MAX_MEMCPY_ENTRIES: usize = 1024;
/// Most synchronization entries (one per [`SyncKind`]).
pub const MAX_SYNC_ENTRIES: usize = 4;
/// Most devices with gap statistics.
pub const MAX_DEVICES: usize = 64;

/// Why a summary could not be encoded or a frame could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header or the payload length promised.
    #[error("truncated cupti summary: needed {needed} more bytes reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes missing.
        needed: usize,
    },
    /// The frame does not start with [`MAGIC`]: the peer is not a gpuscope injection library.
    #[error("not a gpuscope cupti summary: magic {found:02x?}, expected {MAGIC:02x?} (\"GSCU\")")]
    BadMagic {
        /// The first four bytes received.
        found: [u8; 4],
    },
    /// A version this build does not read: the injection library and the agent differ.
    #[error(
        "cupti summary version {found} is not supported (this build reads version {VERSION}); use an injection library from the same gpuscope release as the agent"
    )]
    UnsupportedVersion {
        /// The version received.
        found: u16,
    },
    /// The reserved header field is not 0.
    #[error("cupti summary header: reserved field is {found}, must be 0")]
    ReservedNotZero {
        /// The value received.
        found: u16,
    },
    /// The payload is longer than [`MAX_PAYLOAD_BYTES`].
    #[error("cupti summary payload of {len} bytes exceeds the limit of {max} bytes")]
    Oversize {
        /// Declared or encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list is longer than its limit.
    #[error("cupti summary has {count} {what}, more than the limit of {max}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// Its length.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A kernel name longer than [`MAX_NAME_BYTES`].
    #[error("cupti summary kernel name of {len} bytes exceeds the limit of {max} bytes")]
    NameTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A kernel name that is not UTF-8.
    #[error("cupti summary kernel name is not valid UTF-8")]
    NameNotUtf8,
    /// An enum code this version does not define.
    #[error("cupti summary: unknown {what} code {code}")]
    UnknownCode {
        /// Which enum.
        what: &'static str,
        /// The code received.
        code: u8,
    },
    /// A list not in strictly ascending order (duplicates included): the format is canonical.
    #[error("cupti summary: {what} entries are not in strictly ascending order")]
    NotCanonical {
        /// Which list.
        what: &'static str,
    },
    /// The window ends before it starts.
    #[error("cupti summary window ends ({end} ns) before it starts ({start} ns)")]
    InvalidWindow {
        /// Start, Unix ns.
        start: u64,
        /// End, Unix ns.
        end: u64,
    },
    /// Bytes left after the last field.
    #[error("cupti summary has {count} unexpected bytes after the last field")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A window request that does not start with [`REQUEST_MAGIC`].
    #[error("not a gpuscope cupti window request: magic {found:02x?}, expected {REQUEST_MAGIC:02x?} (\"GSCR\")")]
    BadRequestMagic {
        /// The first four bytes received.
        found: [u8; 4],
    },
    /// A window request whose length is not [`REQUEST_PAYLOAD_BYTES`] (or the frame's size).
    #[error("cupti window request has a {len}-byte payload, expected {REQUEST_PAYLOAD_BYTES}")]
    RequestLength {
        /// The payload length found.
        len: usize,
    },
    /// A requested window length outside [`MIN_REQUEST_WINDOW_NS`]..=[`MAX_REQUEST_WINDOW_NS`].
    #[error(
        "cupti window request of {window_ns} ns is outside {MIN_REQUEST_WINDOW_NS}..={MAX_REQUEST_WINDOW_NS} ns (1 ms to 60 s)"
    )]
    RequestWindow {
        /// The length asked for, in ns.
        window_ns: u64,
    },
}

/// The four bytes a window request (agent → library) starts with.
pub const REQUEST_MAGIC: [u8; 4] = *b"GSCR";
/// Payload length of a window request: the window length, `u64` ns.
pub const REQUEST_PAYLOAD_BYTES: usize = 8;
/// A whole window request frame.
pub const REQUEST_FRAME_BYTES: usize = HEADER_BYTES + REQUEST_PAYLOAD_BYTES;
/// Shortest window a request may ask for (1 ms).
pub const MIN_REQUEST_WINDOW_NS: u64 = 1_000_000;
/// Longest window a request may ask for (60 s).
pub const MAX_REQUEST_WINDOW_NS: u64 = 60_000_000_000;

fn check_request_window(window_ns: u64) -> Result<u64, WireError> {
    if (MIN_REQUEST_WINDOW_NS..=MAX_REQUEST_WINDOW_NS).contains(&window_ns) {
        Ok(window_ns)
    } else {
        Err(WireError::RequestWindow { window_ns })
    }
}

/// Encodes a window request: the agent asks the library to open one window of `window_ns`.
pub fn encode_request(window_ns: u64) -> Result<[u8; REQUEST_FRAME_BYTES], WireError> {
    check_request_window(window_ns)?;
    let mut frame = [0u8; REQUEST_FRAME_BYTES];
    frame[..4].copy_from_slice(&REQUEST_MAGIC);
    frame[4..6].copy_from_slice(&VERSION.to_le_bytes());
    frame[8..12].copy_from_slice(&(REQUEST_PAYLOAD_BYTES as u32).to_le_bytes());
    frame[12..].copy_from_slice(&window_ns.to_le_bytes());
    Ok(frame)
}

/// Decodes a whole window request frame into the window length asked for, in ns.
pub fn decode_request(frame: &[u8]) -> Result<u64, WireError> {
    let header: &[u8; HEADER_BYTES] = frame
        .get(..HEADER_BYTES)
        .and_then(|h| h.try_into().ok())
        .ok_or(WireError::Truncated { field: "header", needed: HEADER_BYTES - frame.len().min(HEADER_BYTES) })?;
    let found = [header[0], header[1], header[2], header[3]];
    if found != REQUEST_MAGIC {
        return Err(WireError::BadRequestMagic { found });
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    if version != VERSION {
        return Err(WireError::UnsupportedVersion { found: version });
    }
    let reserved = u16::from_le_bytes([header[6], header[7]]);
    if reserved != 0 {
        return Err(WireError::ReservedNotZero { found: reserved });
    }
    let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if len != REQUEST_PAYLOAD_BYTES {
        return Err(WireError::RequestLength { len });
    }
    let payload = &frame[HEADER_BYTES..];
    if payload.len() < REQUEST_PAYLOAD_BYTES {
        return Err(WireError::Truncated { field: "requested window", needed: REQUEST_PAYLOAD_BYTES - payload.len() });
    }
    if payload.len() > REQUEST_PAYLOAD_BYTES {
        return Err(WireError::TrailingBytes { count: payload.len() - REQUEST_PAYLOAD_BYTES });
    }
    let mut ns = [0u8; 8];
    ns.copy_from_slice(payload);
    check_request_window(u64::from_le_bytes(ns))
}

/// Reads exactly one window request from a blocking stream (the library's side of the socket).
/// After an error the caller drops the connection.
pub fn read_request(reader: &mut impl std::io::Read) -> Result<u64, ReadError> {
    let mut frame = [0u8; REQUEST_FRAME_BYTES];
    reader.read_exact(&mut frame[..HEADER_BYTES])?;
    // Check the header before waiting for a payload that a foreign peer may never send.
    let len = u32::from_le_bytes([frame[8], frame[9], frame[10], frame[11]]) as usize;
    if frame[..4] != REQUEST_MAGIC || len != REQUEST_PAYLOAD_BYTES {
        return Err(decode_request(&frame[..HEADER_BYTES]).err().unwrap_or(WireError::RequestLength { len }).into());
    }
    reader.read_exact(&mut frame[HEADER_BYTES..])?;
    Ok(decode_request(&frame)?)
}

/// The parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload length in bytes (already checked against [`MAX_PAYLOAD_BYTES`]).
    pub payload_len: usize,
}

impl Header {
    /// Parses and checks a frame header: magic, version, reserved field, payload limit. A
    /// stream reader reads [`HEADER_BYTES`], calls this, then reads `payload_len` bytes.
    pub fn parse(bytes: &[u8; HEADER_BYTES]) -> Result<Header, WireError> {
        let found = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if found != MAGIC {
            return Err(WireError::BadMagic { found });
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(WireError::UnsupportedVersion { found: version });
        }
        let reserved = u16::from_le_bytes([bytes[6], bytes[7]]);
        if reserved != 0 {
            return Err(WireError::ReservedNotZero { found: reserved });
        }
        let payload_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        if payload_len > MAX_PAYLOAD_BYTES {
            return Err(WireError::Oversize { len: payload_len, max: MAX_PAYLOAD_BYTES });
        }
        Ok(Header { payload_len })
    }
}

// Enum codes: part of the format, never renumbered (docs/cupti-protocol.md lists them).

fn kind_code(kind: KernelKind) -> (u8, u8) {
    match kind {
        KernelKind::Gemm => (0, 0),
        KernelKind::Conv => (1, 0),
        KernelKind::Attention => (2, 0),
        KernelKind::Elementwise => (3, 0),
        KernelKind::Reduction => (4, 0),
        KernelKind::Normalization => (5, 0),
        KernelKind::Collective(op) => (6, collective_code(op)),
        KernelKind::Memcpy => (7, 0),
        KernelKind::Memset => (8, 0),
        KernelKind::Other => (9, 0),
    }
}

fn collective_code(op: CollectiveKind) -> u8 {
    match op {
        CollectiveKind::AllReduce => 0,
        CollectiveKind::AllGather => 1,
        CollectiveKind::ReduceScatter => 2,
        CollectiveKind::Broadcast => 3,
        CollectiveKind::Reduce => 4,
        CollectiveKind::SendRecv => 5,
        CollectiveKind::AllToAll => 6,
        CollectiveKind::Other => 7,
    }
}

fn kind_from(code: u8, op: u8) -> Result<KernelKind, WireError> {
    let kind = match code {
        0 => KernelKind::Gemm,
        1 => KernelKind::Conv,
        2 => KernelKind::Attention,
        3 => KernelKind::Elementwise,
        4 => KernelKind::Reduction,
        5 => KernelKind::Normalization,
        6 => {
            return Ok(KernelKind::Collective(match op {
                0 => CollectiveKind::AllReduce,
                1 => CollectiveKind::AllGather,
                2 => CollectiveKind::ReduceScatter,
                3 => CollectiveKind::Broadcast,
                4 => CollectiveKind::Reduce,
                5 => CollectiveKind::SendRecv,
                6 => CollectiveKind::AllToAll,
                7 => CollectiveKind::Other,
                code => return Err(WireError::UnknownCode { what: "collective", code }),
            }));
        }
        7 => KernelKind::Memcpy,
        8 => KernelKind::Memset,
        9 => KernelKind::Other,
        code => return Err(WireError::UnknownCode { what: "kernel kind", code }),
    };
    // Only collectives carry an operation; anything else there is a malformed frame.
    if op != 0 {
        return Err(WireError::UnknownCode { what: "collective (on a non-collective kind)", code: op });
    }
    Ok(kind)
}

fn pipe_code(pipe: MathPipe) -> u8 {
    match pipe {
        MathPipe::TensorCore => 0,
        MathPipe::Simt => 1,
        MathPipe::Unknown => 2,
    }
}

fn pipe_from(code: u8) -> Result<MathPipe, WireError> {
    Ok(match code {
        0 => MathPipe::TensorCore,
        1 => MathPipe::Simt,
        2 => MathPipe::Unknown,
        code => return Err(WireError::UnknownCode { what: "math pipe", code }),
    })
}

fn precision_code(precision: Precision) -> u8 {
    match precision {
        Precision::Fp64 => 0,
        Precision::Fp32 => 1,
        Precision::Tf32 => 2,
        Precision::Fp16 => 3,
        Precision::Bf16 => 4,
        Precision::Fp8 => 5,
        Precision::Fp4 => 6,
        Precision::Int8 => 7,
        Precision::Unknown => 8,
    }
}

fn precision_from(code: u8) -> Result<Precision, WireError> {
    Ok(match code {
        0 => Precision::Fp64,
        1 => Precision::Fp32,
        2 => Precision::Tf32,
        3 => Precision::Fp16,
        4 => Precision::Bf16,
        5 => Precision::Fp8,
        6 => Precision::Fp4,
        7 => Precision::Int8,
        8 => Precision::Unknown,
        code => return Err(WireError::UnknownCode { what: "precision", code }),
    })
}

fn memcpy_kind_code(kind: MemcpyKind) -> u8 {
    match kind {
        MemcpyKind::HostToDevice => 0,
        MemcpyKind::DeviceToHost => 1,
        MemcpyKind::DeviceToDevice => 2,
        MemcpyKind::HostToHost => 3,
        MemcpyKind::PeerToPeer => 4,
        MemcpyKind::Unknown => 5,
    }
}

fn memcpy_kind_from(code: u8) -> Result<MemcpyKind, WireError> {
    Ok(match code {
        0 => MemcpyKind::HostToDevice,
        1 => MemcpyKind::DeviceToHost,
        2 => MemcpyKind::DeviceToDevice,
        3 => MemcpyKind::HostToHost,
        4 => MemcpyKind::PeerToPeer,
        5 => MemcpyKind::Unknown,
        code => return Err(WireError::UnknownCode { what: "memcpy kind", code }),
    })
}

fn memory_kind_code(kind: MemoryKind) -> u8 {
    match kind {
        MemoryKind::Pageable => 0,
        MemoryKind::Pinned => 1,
        MemoryKind::Device => 2,
        MemoryKind::Array => 3,
        MemoryKind::Managed => 4,
        MemoryKind::DeviceStatic => 5,
        MemoryKind::ManagedStatic => 6,
        MemoryKind::Unknown => 7,
    }
}

fn memory_kind_from(code: u8) -> Result<MemoryKind, WireError> {
    Ok(match code {
        0 => MemoryKind::Pageable,
        1 => MemoryKind::Pinned,
        2 => MemoryKind::Device,
        3 => MemoryKind::Array,
        4 => MemoryKind::Managed,
        5 => MemoryKind::DeviceStatic,
        6 => MemoryKind::ManagedStatic,
        7 => MemoryKind::Unknown,
        code => return Err(WireError::UnknownCode { what: "memory kind", code }),
    })
}

fn sync_kind_code(kind: SyncKind) -> u8 {
    match kind {
        SyncKind::Device => 0,
        SyncKind::Stream => 1,
        SyncKind::Event => 2,
        SyncKind::StreamWaitEvent => 3,
    }
}

fn sync_kind_from(code: u8) -> Result<SyncKind, WireError> {
    Ok(match code {
        0 => SyncKind::Device,
        1 => SyncKind::Stream,
        2 => SyncKind::Event,
        3 => SyncKind::StreamWaitEvent,
        code => return Err(WireError::UnknownCode { what: "sync kind", code }),
    })
}

fn class_key(class: &KernelClass) -> (u8, u8, u8, u8) {
    let (kind, op) = kind_code(class.kind);
    (kind, op, pipe_code(class.pipe), precision_code(class.precision))
}

fn memcpy_key(m: &MemcpyStats) -> (u8, u8, u8, bool) {
    (memcpy_kind_code(m.kind), memory_kind_code(m.src), memory_kind_code(m.dst), m.is_async)
}

fn strictly_ascending<T, K: Ord>(items: &[T], key: impl Fn(&T) -> K, what: &'static str) -> Result<(), WireError> {
    if items.windows(2).all(|pair| key(&pair[0]) < key(&pair[1])) {
        Ok(())
    } else {
        Err(WireError::NotCanonical { what })
    }
}

fn check_count(what: &'static str, count: usize, max: usize) -> Result<(), WireError> {
    if count > max { Err(WireError::TooMany { what, count, max }) } else { Ok(()) }
}

/// Checks what both ends require of a summary: window order, list limits, name lengths,
/// canonical order of the keyed lists.
pub fn validate(summary: &WindowSummary) -> Result<(), WireError> {
    if summary.window_end_unix_ns < summary.window_start_unix_ns {
        return Err(WireError::InvalidWindow { start: summary.window_start_unix_ns, end: summary.window_end_unix_ns });
    }
    check_count("kernel classes", summary.classes.len(), MAX_CLASSES)?;
    check_count("top kernels", summary.top_kernels.len(), MAX_TOP_KERNELS)?;
    check_count("memcpy entries", summary.memcpy.len(), MAX_MEMCPY_ENTRIES)?;
    check_count("sync entries", summary.sync.len(), MAX_SYNC_ENTRIES)?;
    check_count("devices", summary.gpu_gaps.len(), MAX_DEVICES)?;
    for kernel in &summary.top_kernels {
        if kernel.name.len() > MAX_NAME_BYTES {
            return Err(WireError::NameTooLong { len: kernel.name.len(), max: MAX_NAME_BYTES });
        }
    }
    // Order by the codes on the wire, not by Rust's enum order, so the format owns its order.
    strictly_ascending(&summary.classes, |c| class_key(&c.class), "kernel class")?;
    strictly_ascending(&summary.memcpy, memcpy_key, "memcpy")?;
    strictly_ascending(&summary.sync, |s| sync_kind_code(s.kind), "sync")?;
    strictly_ascending(&summary.gpu_gaps, |g| g.device, "device gaps")?;
    Ok(())
}

struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    // Every list length was checked against a limit far below u16::MAX by `validate`.
    fn len(&mut self, n: usize) {
        self.u16(n as u16);
    }
    fn class(&mut self, class: &KernelClass) {
        let (kind, op, pipe, precision) = class_key(class);
        self.bytes.extend_from_slice(&[kind, op, pipe, precision]);
    }
    fn time(&mut self, t: &TimeStats) {
        self.u64(t.count);
        self.u64(t.total_ns);
    }
    fn transfer(&mut self, t: &TransferStats) {
        self.u64(t.count);
        self.u64(t.bytes);
        self.u64(t.total_ns);
    }
}

/// Encodes a summary as one frame (header + payload).
pub fn encode(summary: &WindowSummary) -> Result<Vec<u8>, WireError> {
    validate(summary)?;
    let mut w = Writer { bytes: Vec::with_capacity(4096) };
    w.bytes.extend_from_slice(&MAGIC);
    w.u16(VERSION);
    w.u16(0);
    w.u32(0); // payload length, patched below
    w.u32(summary.pid);
    w.u64(summary.window_start_unix_ns);
    w.u64(summary.window_end_unix_ns);
    w.u64(summary.period_ns);
    w.u64(summary.launches);
    w.u64(summary.launch_span_ns);
    w.u64(summary.launches_in_window);
    w.len(summary.classes.len());
    for c in &summary.classes {
        w.class(&c.class);
        w.time(&c.time);
    }
    w.len(summary.top_kernels.len());
    for k in &summary.top_kernels {
        w.len(k.name.len());
        w.bytes.extend_from_slice(k.name.as_bytes());
        w.class(&k.class);
        w.u64(k.count);
        w.u64(k.total_ns);
        w.u64(k.max_ns);
        for d in k.grid.iter().chain(&k.block) {
            w.u32(*d);
        }
    }
    w.time(&summary.other_kernels);
    w.time(&summary.folded_kernels);
    w.time(&summary.graph_kernels);
    w.len(summary.memcpy.len());
    for m in &summary.memcpy {
        let (kind, src, dst, is_async) = memcpy_key(m);
        w.u8(kind);
        w.u8(src);
        w.u8(dst);
        w.u8(u8::from(is_async));
        w.transfer(&m.transfer);
    }
    w.transfer(&summary.memset);
    w.len(summary.sync.len());
    for s in &summary.sync {
        w.u8(sync_kind_code(s.kind));
        w.time(&s.time);
    }
    w.len(summary.gpu_gaps.len());
    for g in &summary.gpu_gaps {
        w.u32(g.device);
        w.u64(g.busy_ns);
        w.u64(g.idle_ns);
        w.u64(g.gap_count);
        w.u64(g.max_gap_ns);
        w.u64(g.intervals_dropped);
    }
    for bucket in &summary.duration_histogram {
        w.u64(*bucket);
    }
    w.u64(summary.dropped_records);
    w.u64(summary.invalid_records);
    w.u64(summary.callback_overhead_ns);
    w.u64(summary.callback_count);
    w.u64(summary.summaries_dropped);
    let payload_len = w.bytes.len() - HEADER_BYTES;
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(WireError::Oversize { len: payload_len, max: MAX_PAYLOAD_BYTES });
    }
    w.bytes[8..12].copy_from_slice(&(payload_len as u32).to_le_bytes());
    Ok(w.bytes)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        if self.bytes.len() < n {
            return Err(WireError::Truncated { field, needed: n - self.bytes.len() });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    fn count(&mut self, what: &'static str, max: usize) -> Result<usize, WireError> {
        let count = self.u16(what)? as usize;
        check_count(what, count, max)?;
        Ok(count)
    }
    fn class(&mut self) -> Result<KernelClass, WireError> {
        let kind = self.u8("kernel kind")?;
        let op = self.u8("collective")?;
        let pipe = pipe_from(self.u8("math pipe")?)?;
        let precision = precision_from(self.u8("precision")?)?;
        Ok(KernelClass { kind: kind_from(kind, op)?, pipe, precision })
    }
    fn time(&mut self, field: &'static str) -> Result<TimeStats, WireError> {
        Ok(TimeStats { count: self.u64(field)?, total_ns: self.u64(field)? })
    }
    fn transfer(&mut self, field: &'static str) -> Result<TransferStats, WireError> {
        Ok(TransferStats { count: self.u64(field)?, bytes: self.u64(field)?, total_ns: self.u64(field)? })
    }
}

/// Why a frame could not be read from a stream.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The stream failed or ended (`UnexpectedEof` inside a frame: the peer went away mid-frame).
    #[error("reading a cupti summary: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a valid frame.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Reads exactly one frame from a blocking stream (a Unix socket): the header first, checked
/// before the payload is read, so an oversize or foreign frame costs no allocation. After an
/// error the stream's position inside the frame is unknown: the caller drops the connection.
pub fn read_frame(reader: &mut impl std::io::Read) -> Result<WindowSummary, ReadError> {
    let mut header = [0u8; HEADER_BYTES];
    reader.read_exact(&mut header)?;
    let header = Header::parse(&header)?;
    let mut payload = vec![0u8; header.payload_len];
    reader.read_exact(&mut payload)?;
    Ok(decode_payload(&payload)?)
}

/// Decodes one whole frame (header + payload, nothing after it).
pub fn decode(frame: &[u8]) -> Result<WindowSummary, WireError> {
    let header_bytes: &[u8; HEADER_BYTES] = frame
        .get(..HEADER_BYTES)
        .and_then(|h| h.try_into().ok())
        .ok_or(WireError::Truncated { field: "header", needed: HEADER_BYTES - frame.len().min(HEADER_BYTES) })?;
    let header = Header::parse(header_bytes)?;
    let payload = &frame[HEADER_BYTES..];
    if payload.len() < header.payload_len {
        return Err(WireError::Truncated { field: "payload", needed: header.payload_len - payload.len() });
    }
    if payload.len() > header.payload_len {
        return Err(WireError::TrailingBytes { count: payload.len() - header.payload_len });
    }
    decode_payload(payload)
}

/// Decodes a payload whose header was checked with [`Header::parse`].
pub fn decode_payload(payload: &[u8]) -> Result<WindowSummary, WireError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(WireError::Oversize { len: payload.len(), max: MAX_PAYLOAD_BYTES });
    }
    let mut r = Reader { bytes: payload };
    let pid = r.u32("pid")?;
    let window_start_unix_ns = r.u64("window start")?;
    let window_end_unix_ns = r.u64("window end")?;
    let period_ns = r.u64("period")?;
    let mut s = WindowSummary::empty(pid, window_start_unix_ns, window_end_unix_ns, period_ns);
    s.launches = r.u64("launches")?;
    s.launch_span_ns = r.u64("launch span")?;
    s.launches_in_window = r.u64("launches in window")?;
    let classes = r.count("kernel classes", MAX_CLASSES)?;
    s.classes.reserve_exact(classes);
    for _ in 0..classes {
        let class = r.class()?;
        s.classes.push(ClassStats { class, time: r.time("class time")? });
    }
    let top = r.count("top kernels", MAX_TOP_KERNELS)?;
    s.top_kernels.reserve_exact(top);
    for _ in 0..top {
        let len = r.u16("kernel name length")? as usize;
        if len > MAX_NAME_BYTES {
            return Err(WireError::NameTooLong { len, max: MAX_NAME_BYTES });
        }
        let name = std::str::from_utf8(r.take(len, "kernel name")?).map_err(|_| WireError::NameNotUtf8)?.to_string();
        let class = r.class()?;
        let count = r.u64("kernel count")?;
        let total_ns = r.u64("kernel total")?;
        let max_ns = r.u64("kernel max")?;
        let mut dims = [0u32; 6];
        for d in &mut dims {
            *d = r.u32("kernel grid/block")?;
        }
        s.top_kernels.push(KernelStats {
            name,
            class,
            count,
            total_ns,
            max_ns,
            grid: [dims[0], dims[1], dims[2]],
            block: [dims[3], dims[4], dims[5]],
        });
    }
    s.other_kernels = r.time("other kernels")?;
    s.folded_kernels = r.time("folded kernels")?;
    s.graph_kernels = r.time("graph kernels")?;
    let memcpy = r.count("memcpy entries", MAX_MEMCPY_ENTRIES)?;
    s.memcpy.reserve_exact(memcpy);
    for _ in 0..memcpy {
        let kind = memcpy_kind_from(r.u8("memcpy kind")?)?;
        let src = memory_kind_from(r.u8("memcpy source kind")?)?;
        let dst = memory_kind_from(r.u8("memcpy destination kind")?)?;
        let is_async = match r.u8("memcpy async flag")? {
            0 => false,
            1 => true,
            code => return Err(WireError::UnknownCode { what: "memcpy async flag", code }),
        };
        s.memcpy.push(MemcpyStats { kind, src, dst, is_async, transfer: r.transfer("memcpy")? });
    }
    s.memset = r.transfer("memset")?;
    let sync = r.count("sync entries", MAX_SYNC_ENTRIES)?;
    for _ in 0..sync {
        let kind = sync_kind_from(r.u8("sync kind")?)?;
        s.sync.push(SyncStats { kind, time: r.time("sync")? });
    }
    let devices = r.count("devices", MAX_DEVICES)?;
    s.gpu_gaps.reserve_exact(devices);
    for _ in 0..devices {
        s.gpu_gaps.push(DeviceGaps {
            device: r.u32("gap device")?,
            busy_ns: r.u64("gap busy")?,
            idle_ns: r.u64("gap idle")?,
            gap_count: r.u64("gap count")?,
            max_gap_ns: r.u64("gap max")?,
            intervals_dropped: r.u64("gap intervals dropped")?,
        });
    }
    for bucket in 0..HISTOGRAM_BUCKETS {
        s.duration_histogram[bucket] = r.u64("duration histogram")?;
    }
    s.dropped_records = r.u64("dropped records")?;
    s.invalid_records = r.u64("invalid records")?;
    s.callback_overhead_ns = r.u64("callback overhead")?;
    s.callback_count = r.u64("callback count")?;
    s.summaries_dropped = r.u64("summaries dropped")?;
    if !r.bytes.is_empty() {
        return Err(WireError::TrailingBytes { count: r.bytes.len() });
    }
    validate(&s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    /// Offset of the first kernel-class entry in a frame: header, pid, six u64 fields, count.
    const FIRST_CLASS: usize = HEADER_BYTES + 4 + 6 * 8 + 2;

    fn sample() -> WindowSummary {
        let mut s = WindowSummary::empty(4242, 1_764_700_000_000_000_000, 1_764_700_000_500_000_000, 30_000_000_000);
        s.launches = 600_123;
        s.launch_span_ns = 30_000_000_000;
        s.launches_in_window = 10_001;
        s.classes = vec![
            ClassStats {
                class: classify("ampere_sgemm_128x64_tn"),
                time: TimeStats { count: 29, total_ns: 9_000_000 },
            },
            ClassStats {
                class: classify("ncclDevKernel_AllReduce_Sum_bf16_RING_LL"),
                time: TimeStats { count: 3, total_ns: 700_000 },
            },
        ];
        s.classes.sort_by_key(|c| c.class);
        s.top_kernels = vec![KernelStats {
            name: "ampere_sgemm_128x64_tn — ünïcode".to_string(),
            class: classify("ampere_sgemm_128x64_tn"),
            count: 29,
            total_ns: 9_000_000,
            max_ns: 400_000,
            grid: [86, 3, 3],
            block: [256, 1, 1],
        }];
        s.other_kernels = TimeStats { count: 5, total_ns: 12_345 };
        s.folded_kernels = TimeStats { count: 1, total_ns: 99 };
        s.graph_kernels = TimeStats { count: 7, total_ns: 77_777 };
        s.memcpy = vec![
            MemcpyStats {
                kind: MemcpyKind::HostToDevice,
                src: MemoryKind::Pageable,
                dst: MemoryKind::Device,
                is_async: true,
                transfer: TransferStats { count: 4, bytes: 4 << 20, total_ns: 1_000_000 },
            },
            MemcpyStats {
                kind: MemcpyKind::DeviceToHost,
                src: MemoryKind::Device,
                dst: MemoryKind::Pinned,
                is_async: false,
                transfer: TransferStats { count: 1, bytes: 4, total_ns: 2_000 },
            },
        ];
        s.memset = TransferStats { count: 2, bytes: 1024, total_ns: 3_000 };
        s.sync = vec![
            SyncStats { kind: SyncKind::Device, time: TimeStats { count: 1, total_ns: 50_000 } },
            SyncStats { kind: SyncKind::Stream, time: TimeStats { count: 10, total_ns: 40_000_000 } },
        ];
        s.gpu_gaps = vec![
            DeviceGaps {
                device: 0,
                busy_ns: 9_700_000,
                idle_ns: 600_000,
                gap_count: 31,
                max_gap_ns: 90_000,
                intervals_dropped: 0,
            },
            DeviceGaps { device: 3, busy_ns: 1, idle_ns: 0, gap_count: 0, max_gap_ns: 0, intervals_dropped: 12 },
        ];
        for (i, bucket) in s.duration_histogram.iter_mut().enumerate() {
            *bucket = (i as u64) * 1000 + 1;
        }
        s.dropped_records = 17;
        s.invalid_records = 2;
        s.callback_overhead_ns = 123_456_789;
        s.callback_count = 600_123;
        s.summaries_dropped = 3;
        s
    }

    #[test]
    fn a_window_request_is_a_gscr_header_and_a_u64() {
        let frame = encode_request(500_000_000).unwrap();
        assert_eq!(&frame[..4], b"GSCR");
        assert_eq!(&frame[4..12], &[1, 0, 0, 0, 8, 0, 0, 0]);
        assert_eq!(&frame[12..], &500_000_000u64.to_le_bytes());
        assert_eq!(decode_request(&frame).unwrap(), 500_000_000);
        for ns in [MIN_REQUEST_WINDOW_NS, MAX_REQUEST_WINDOW_NS] {
            assert_eq!(decode_request(&encode_request(ns).unwrap()).unwrap(), ns);
        }
    }

    #[test]
    fn a_window_request_out_of_range_is_refused_at_both_ends() {
        for ns in [0, MIN_REQUEST_WINDOW_NS - 1, MAX_REQUEST_WINDOW_NS + 1, u64::MAX] {
            assert_eq!(encode_request(ns).unwrap_err(), WireError::RequestWindow { window_ns: ns });
            let mut frame = encode_request(MIN_REQUEST_WINDOW_NS).unwrap();
            frame[12..].copy_from_slice(&ns.to_le_bytes());
            let err = decode_request(&frame).unwrap_err();
            assert_eq!(err, WireError::RequestWindow { window_ns: ns });
            assert!(err.to_string().contains("1 ms to 60 s"), "{err}");
        }
    }

    #[test]
    fn a_malformed_window_request_is_rejected_by_name() {
        let frame = encode_request(1_000_000_000).unwrap();
        let summary = encode(&WindowSummary::empty(1, 0, 0, 0)).unwrap();
        assert_eq!(decode_request(&summary).unwrap_err(), WireError::BadRequestMagic { found: *b"GSCU" });
        let mut bad = frame;
        bad[4] = 2;
        assert_eq!(decode_request(&bad).unwrap_err(), WireError::UnsupportedVersion { found: 2 });
        let mut bad = frame;
        bad[7] = 1;
        assert_eq!(decode_request(&bad).unwrap_err(), WireError::ReservedNotZero { found: 256 });
        let mut bad = frame;
        bad[8] = 9;
        assert_eq!(decode_request(&bad).unwrap_err(), WireError::RequestLength { len: 9 });
        for len in 0..frame.len() {
            assert!(matches!(decode_request(&frame[..len]), Err(WireError::Truncated { .. })), "{len} bytes");
        }
        let mut long = frame.to_vec();
        long.push(0);
        assert_eq!(decode_request(&long).unwrap_err(), WireError::TrailingBytes { count: 1 });
    }

    #[test]
    fn window_requests_travel_over_a_real_unix_socket() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let (mut agent, mut library) = UnixStream::pair().unwrap();
        agent.write_all(&encode_request(2_000_000).unwrap()).unwrap();
        agent.write_all(&encode_request(60_000_000_000).unwrap()).unwrap();
        agent.write_all(b"GSCU\x01\x00\x00\x00\xff\xff\xff\xff").unwrap();
        drop(agent);
        assert_eq!(read_request(&mut library).unwrap(), 2_000_000);
        assert_eq!(read_request(&mut library).unwrap(), 60_000_000_000);
        let err = read_request(&mut library).unwrap_err();
        assert!(matches!(err, ReadError::Wire(WireError::BadRequestMagic { .. })), "{err}");
    }

    #[test]
    fn a_summary_survives_a_round_trip_exactly() {
        let summary = sample();
        let frame = encode(&summary).unwrap();
        let decoded = decode(&frame).unwrap();
        assert_eq!(decoded, summary);
        assert_eq!(encode(&decoded).unwrap(), frame, "the encoding is canonical");
    }

    #[test]
    fn an_empty_summary_survives_a_round_trip() {
        let summary = WindowSummary::empty(1, 5, 5, 0);
        assert_eq!(decode(&encode(&summary).unwrap()).unwrap(), summary);
    }

    #[test]
    fn the_header_is_magic_version_reserved_length() {
        let frame = encode(&WindowSummary::empty(7, 0, 0, 0)).unwrap();
        assert_eq!(&frame[..4], b"GSCU");
        assert_eq!(&frame[4..8], &[1, 0, 0, 0]);
        let len = u32::from_le_bytes([frame[8], frame[9], frame[10], frame[11]]) as usize;
        assert_eq!(len, frame.len() - HEADER_BYTES);
        // An empty summary: pid + 6 u64 + 5 list counts + 3 time pairs + memset + histogram + 5 counters.
        assert_eq!(len, 4 + 6 * 8 + 5 * 2 + 3 * 16 + 24 + HISTOGRAM_BUCKETS * 8 + 5 * 8);
        assert_eq!(&frame[12..16], &7u32.to_le_bytes());
    }

    #[test]
    fn wrong_magic_is_rejected_by_name() {
        let mut frame = encode(&sample()).unwrap();
        frame[..4].copy_from_slice(b"HTTP");
        let err = decode(&frame).unwrap_err();
        assert_eq!(err, WireError::BadMagic { found: *b"HTTP" });
        assert!(err.to_string().contains("not a gpuscope cupti summary"), "{err}");
    }

    #[test]
    fn another_version_is_rejected_with_a_hint() {
        let mut frame = encode(&sample()).unwrap();
        frame[4..6].copy_from_slice(&2u16.to_le_bytes());
        let err = decode(&frame).unwrap_err();
        assert_eq!(err, WireError::UnsupportedVersion { found: 2 });
        assert!(err.to_string().contains("same gpuscope release"), "{err}");
    }

    #[test]
    fn a_reserved_field_that_is_not_zero_is_rejected() {
        let mut frame = encode(&sample()).unwrap();
        frame[6] = 1;
        assert_eq!(decode(&frame).unwrap_err(), WireError::ReservedNotZero { found: 1 });
    }

    #[test]
    fn an_oversize_length_is_rejected_before_reading_the_payload() {
        let mut header = [0u8; HEADER_BYTES];
        header[..4].copy_from_slice(&MAGIC);
        header[4..6].copy_from_slice(&VERSION.to_le_bytes());
        header[8..12].copy_from_slice(&(MAX_PAYLOAD_BYTES as u32 + 1).to_le_bytes());
        assert_eq!(
            Header::parse(&header).unwrap_err(),
            WireError::Oversize { len: MAX_PAYLOAD_BYTES + 1, max: MAX_PAYLOAD_BYTES }
        );
        header[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&header), Err(WireError::Oversize { .. })));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let frame = encode(&sample()).unwrap();
        for len in 0..frame.len() {
            let err = decode(&frame[..len]).unwrap_err();
            assert!(matches!(err, WireError::Truncated { .. }), "prefix of {len} bytes: {err:?}");
        }
        // The same with the header's length field telling the truth about the cut payload.
        for cut in 1..frame.len() - HEADER_BYTES {
            let mut short = frame[..frame.len() - cut].to_vec();
            let len = (short.len() - HEADER_BYTES) as u32;
            short[8..12].copy_from_slice(&len.to_le_bytes());
            let err = decode(&short).unwrap_err();
            assert!(matches!(err, WireError::Truncated { .. }), "payload cut by {cut}: {err:?}");
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut frame = encode(&sample()).unwrap();
        frame.push(0);
        assert_eq!(decode(&frame).unwrap_err(), WireError::TrailingBytes { count: 1 });
        let len = (frame.len() - HEADER_BYTES) as u32;
        frame[8..12].copy_from_slice(&len.to_le_bytes());
        assert_eq!(decode(&frame).unwrap_err(), WireError::TrailingBytes { count: 1 });
    }

    #[test]
    fn unknown_enum_codes_are_rejected() {
        let frame = encode(&sample()).unwrap();
        let cases: [(usize, u8, &str); 4] = [
            (FIRST_CLASS, 10, "kernel kind"),
            (FIRST_CLASS + 1, 1, "collective (on a non-collective kind)"),
            (FIRST_CLASS + 2, 3, "math pipe"),
            (FIRST_CLASS + 3, 9, "precision"),
        ];
        for (offset, code, what) in cases {
            let mut bad = frame.clone();
            bad[offset] = code;
            assert_eq!(decode(&bad).unwrap_err(), WireError::UnknownCode { what, code }, "offset {offset}");
        }
    }

    #[test]
    fn lists_out_of_order_or_duplicated_are_rejected() {
        let mut summary = sample();
        summary.sync.reverse();
        assert_eq!(encode(&summary).unwrap_err(), WireError::NotCanonical { what: "sync" });
        let mut summary = sample();
        summary.gpu_gaps[1].device = 0;
        assert_eq!(encode(&summary).unwrap_err(), WireError::NotCanonical { what: "device gaps" });
        // A frame built by hand the same way is rejected by the decoder too.
        let mut frame = encode(&sample()).unwrap();
        let first = FIRST_CLASS;
        let second = FIRST_CLASS + 4 + 16;
        let (a, b) = (frame[first..first + 20].to_vec(), frame[second..second + 20].to_vec());
        frame[first..first + 20].copy_from_slice(&b);
        frame[second..second + 20].copy_from_slice(&a);
        assert_eq!(decode(&frame).unwrap_err(), WireError::NotCanonical { what: "kernel class" });
    }

    #[test]
    fn counts_over_the_limits_are_rejected_before_allocating() {
        let mut frame = encode(&WindowSummary::empty(1, 0, 0, 0)).unwrap();
        let count_at = FIRST_CLASS - 2;
        frame[count_at..count_at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(
            decode(&frame).unwrap_err(),
            WireError::TooMany { what: "kernel classes", count: u16::MAX as usize, max: MAX_CLASSES }
        );
        let mut summary = sample();
        summary.top_kernels = vec![summary.top_kernels[0].clone(); MAX_TOP_KERNELS + 1];
        assert_eq!(
            encode(&summary).unwrap_err(),
            WireError::TooMany { what: "top kernels", count: MAX_TOP_KERNELS + 1, max: MAX_TOP_KERNELS }
        );
    }

    #[test]
    fn kernel_names_are_bounded_and_utf8() {
        let mut summary = sample();
        summary.top_kernels[0].name = "k".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(
            encode(&summary).unwrap_err(),
            WireError::NameTooLong { len: MAX_NAME_BYTES + 1, max: MAX_NAME_BYTES }
        );
        summary.top_kernels[0].name = "k".repeat(MAX_NAME_BYTES);
        assert_eq!(decode(&encode(&summary).unwrap()).unwrap(), summary);

        let mut summary = sample();
        summary.top_kernels[0].name = "abc".to_string();
        let frame = encode(&summary).unwrap();
        let name_at = frame.windows(3).position(|w| w == b"abc").unwrap();
        let mut bad = frame.clone();
        bad[name_at] = 0xff;
        assert_eq!(decode(&bad).unwrap_err(), WireError::NameNotUtf8);
        let mut long = frame;
        long[name_at - 2..name_at].copy_from_slice(&(MAX_NAME_BYTES as u16 + 1).to_le_bytes());
        assert_eq!(decode(&long).unwrap_err(), WireError::NameTooLong { len: MAX_NAME_BYTES + 1, max: MAX_NAME_BYTES });
    }

    #[test]
    fn a_window_ending_before_it_starts_is_rejected() {
        let summary = WindowSummary::empty(1, 10, 9, 0);
        assert_eq!(encode(&summary).unwrap_err(), WireError::InvalidWindow { start: 10, end: 9 });
        let mut frame = encode(&WindowSummary::empty(1, 10, 10, 0)).unwrap();
        frame[HEADER_BYTES + 12..HEADER_BYTES + 20].copy_from_slice(&9u64.to_le_bytes());
        assert_eq!(decode(&frame).unwrap_err(), WireError::InvalidWindow { start: 10, end: 9 });
    }

    #[test]
    fn a_bad_async_flag_is_rejected() {
        let mut summary = WindowSummary::empty(1, 0, 0, 0);
        summary.memcpy = vec![MemcpyStats {
            kind: MemcpyKind::HostToDevice,
            src: MemoryKind::Pageable,
            dst: MemoryKind::Device,
            is_async: true,
            transfer: TransferStats { count: 1, bytes: 1, total_ns: 1 },
        }];
        let mut frame = encode(&summary).unwrap();
        // pid, six u64, three empty list counts, three time pairs, memcpy count, then kind/src/dst/async.
        let async_at = HEADER_BYTES + 4 + 6 * 8 + 2 * 2 + 3 * 16 + 2 + 3;
        assert_eq!(frame[async_at], 1);
        frame[async_at] = 2;
        assert_eq!(decode(&frame).unwrap_err(), WireError::UnknownCode { what: "memcpy async flag", code: 2 });
    }

    #[test]
    fn any_single_byte_change_is_rejected_or_round_trips_to_the_same_bytes() {
        let frame = encode(&sample()).unwrap();
        for at in 0..frame.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut changed = frame.clone();
                changed[at] = value;
                if let Ok(summary) = decode(&changed) {
                    assert_eq!(encode(&summary).unwrap(), changed, "byte {at} set to {value:#x}");
                }
            }
        }
    }

    #[test]
    fn rust_enum_order_matches_wire_code_order() {
        // The aggregator emits classes in `KernelClass` order (a BTreeMap); the wire wants code
        // order. Both must agree for every class the classifier can produce.
        use crate::classify::{CollectiveKind, KernelKind, MathPipe, Precision};
        let kinds = [
            KernelKind::Gemm,
            KernelKind::Conv,
            KernelKind::Attention,
            KernelKind::Elementwise,
            KernelKind::Reduction,
            KernelKind::Normalization,
            KernelKind::Collective(CollectiveKind::AllReduce),
            KernelKind::Collective(CollectiveKind::AllGather),
            KernelKind::Collective(CollectiveKind::ReduceScatter),
            KernelKind::Collective(CollectiveKind::Broadcast),
            KernelKind::Collective(CollectiveKind::Reduce),
            KernelKind::Collective(CollectiveKind::SendRecv),
            KernelKind::Collective(CollectiveKind::AllToAll),
            KernelKind::Collective(CollectiveKind::Other),
            KernelKind::Memcpy,
            KernelKind::Memset,
            KernelKind::Other,
        ];
        let pipes = [MathPipe::TensorCore, MathPipe::Simt, MathPipe::Unknown];
        let precisions = [
            Precision::Fp64,
            Precision::Fp32,
            Precision::Tf32,
            Precision::Fp16,
            Precision::Bf16,
            Precision::Fp8,
            Precision::Fp4,
            Precision::Int8,
            Precision::Unknown,
        ];
        let mut classes = Vec::new();
        for kind in kinds {
            for pipe in pipes {
                for precision in precisions {
                    classes.push(KernelClass { kind, pipe, precision });
                }
            }
        }
        assert!(classes.len() <= MAX_CLASSES);
        let mut by_rust = classes.clone();
        by_rust.sort();
        let mut by_code = classes;
        by_code.sort_by_key(class_key);
        assert_eq!(by_rust, by_code);
        let syncs = [SyncKind::StreamWaitEvent, SyncKind::Event, SyncKind::Stream, SyncKind::Device];
        let mut by_rust = syncs;
        by_rust.sort();
        let mut by_code = syncs;
        by_code.sort_by_key(|k| sync_kind_code(*k));
        assert_eq!(by_rust, by_code);
    }

    #[test]
    fn frames_travel_over_a_real_unix_socket_one_after_another() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let (mut library, mut agent) = UnixStream::pair().unwrap();
        let first = sample();
        let second = WindowSummary { pid: 7, ..WindowSummary::empty(7, 1, 2, 3) };
        library.write_all(&encode(&first).unwrap()).unwrap();
        library.write_all(&encode(&second).unwrap()).unwrap();
        drop(library);
        assert_eq!(read_frame(&mut agent).unwrap(), first);
        assert_eq!(read_frame(&mut agent).unwrap(), second);
        let end = read_frame(&mut agent).unwrap_err();
        assert!(matches!(&end, ReadError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof), "{end}");
    }

    #[test]
    fn a_stream_reader_stops_at_the_header_of_a_bad_frame() {
        let mut frame = encode(&sample()).unwrap();
        frame[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut reader = std::io::Cursor::new(frame);
        let err = read_frame(&mut reader).unwrap_err();
        assert!(matches!(err, ReadError::Wire(WireError::Oversize { .. })), "{err}");
        assert_eq!(reader.position(), HEADER_BYTES as u64, "the payload was not read");
        let frame = encode(&sample()).unwrap();
        let cut = &frame[..frame.len() - 1];
        let err = read_frame(&mut std::io::Cursor::new(cut)).unwrap_err();
        assert!(matches!(&err, ReadError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof), "{err}");
    }

    #[test]
    fn the_worst_case_payload_fits_the_payload_limit() {
        let fixed = 4 + 6 * 8 + 5 * 2 + 3 * 16 + 24 + HISTOGRAM_BUCKETS * 8 + 5 * 8;
        let classes = MAX_CLASSES * (4 + 16);
        let top = MAX_TOP_KERNELS * (2 + MAX_NAME_BYTES + 4 + 24 + 24);
        let memcpy = MAX_MEMCPY_ENTRIES * (4 + 24);
        let sync = MAX_SYNC_ENTRIES * (1 + 16);
        let gaps = MAX_DEVICES * (4 + 5 * 8);
        let worst = fixed + classes + top + memcpy + sync + gaps;
        assert_eq!(worst, 111_218, "docs/cupti-protocol.md says about 110 KiB");
        assert!(worst <= MAX_PAYLOAD_BYTES);
    }

    #[test]
    fn the_largest_summary_the_limits_allow_fits_the_payload_limit() {
        let mut summary = sample();
        summary.top_kernels = (0..MAX_TOP_KERNELS)
            .map(|i| KernelStats { name: format!("{i:0>1024}"), ..summary.top_kernels[0].clone() })
            .collect();
        summary.gpu_gaps = (0..MAX_DEVICES as u32).map(|device| DeviceGaps { device, ..summary.gpu_gaps[0] }).collect();
        summary.sync = [SyncKind::Device, SyncKind::Stream, SyncKind::Event, SyncKind::StreamWaitEvent]
            .map(|kind| SyncStats { kind, time: TimeStats::default() })
            .to_vec();
        let frame = encode(&summary).unwrap();
        assert!(frame.len() - HEADER_BYTES <= MAX_PAYLOAD_BYTES);
        assert_eq!(decode(&frame).unwrap(), summary);
    }
}
