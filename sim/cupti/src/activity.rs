//! The activity API: which kinds are enabled, the client's buffers, and their delivery.
//!
//! As in the real CUPTI, records go into buffers the client hands out through its
//! buffer-requested callback and come back through its buffer-completed callback with the
//! number of valid bytes. A buffer is completed when the next record does not fit (or the
//! client's `maxNumRecords` is reached) — on the thread whose record filled it — or by
//! `cuptiActivityFlushAll`. A record for which the client hands out no buffer, or one too small
//! to hold it, is dropped and counted for `cuptiActivityGetNumDroppedRecords`.

use crate::records::{RECORD_ALIGNMENT, Record, kind};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// `CUpti_BuffersCallbackRequestFunc`.
pub type RequestFn = unsafe extern "C" fn(buffer: *mut *mut u8, size: *mut usize, max_num_records: *mut usize);
/// `CUpti_BuffersCallbackCompleteFunc`.
pub type CompleteFn = unsafe extern "C" fn(
    context: *mut std::ffi::c_void,
    stream_id: u32,
    buffer: *mut u8,
    size: usize,
    valid_size: usize,
);

struct Buffer {
    ptr: *mut u8,
    size: usize,
    used: usize,
    records: usize,
    max_records: usize,
    last_end_ns: u64,
}

// The buffer belongs to CUPTI between the request and the completion callbacks; only the
// library's lock-protected state touches it meanwhile.
unsafe impl Send for Buffer {}

#[derive(Default)]
struct Buffers {
    request: Option<RequestFn>,
    complete: Option<CompleteFn>,
    current: Option<Buffer>,
    completed: VecDeque<Buffer>,
    dropped: usize,
}

static ENABLED: [AtomicBool; kind::COUNT as usize] = [const { AtomicBool::new(false) }; kind::COUNT as usize];
static BUFFERS: Mutex<Buffers> =
    Mutex::new(Buffers { request: None, complete: None, current: None, completed: VecDeque::new(), dropped: 0 });
// Serializes writers: the buffer-requested callback runs outside the BUFFERS lock (it may call
// back into CUPTI) and only one writer may be waiting for a buffer.
static WRITER: Mutex<()> = Mutex::new(());
// Serializes deliveries so buffers reach the client in the order they were filled.
static DELIVERY: Mutex<()> = Mutex::new(());

thread_local! {
    static DELIVERING: Cell<bool> = const { Cell::new(false) };
}

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    // A client callback cannot unwind into us (extern "C"), so a poisoned lock only means a
    // panic of our own between two consistent states: carry on with the data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether activity `k` is enabled.
pub fn enabled(k: u32) -> bool {
    ENABLED.get(k as usize).is_some_and(|e| e.load(Ordering::Relaxed))
}

/// Enables or disables activity kind `k` (`cuptiActivityEnable` / `Disable`).
pub fn set_enabled(k: u32, on: bool) -> u32 {
    use crate::records::result::*;
    if k == 0 || k >= kind::COUNT {
        return INVALID_KIND;
    }
    // Serial and concurrent kernel tracing exclude each other, as in the real CUPTI.
    let other = match k {
        kind::KERNEL => Some(kind::CONCURRENT_KERNEL),
        kind::CONCURRENT_KERNEL => Some(kind::KERNEL),
        _ => None,
    };
    if on && other.is_some_and(enabled) {
        return NOT_COMPATIBLE;
    }
    ENABLED[k as usize].store(on, Ordering::Relaxed);
    SUCCESS
}

/// Registers the client's buffer callbacks.
pub fn register(request: RequestFn, complete: CompleteFn) {
    let mut b = lock(&BUFFERS);
    b.request = Some(request);
    b.complete = Some(complete);
}

/// Writes one record if its kind is enabled; returns whether it was written (not dropped).
pub fn write<R: Record>(record: &R) -> bool {
    if !enabled(record.kind()) {
        return false;
    }
    let size = size_of::<R>();
    let mut filled = false;
    let written = {
        let _writer = lock(&WRITER);
        let mut b = lock(&BUFFERS);
        loop {
            if let Some(cur) = b.current.as_mut() {
                if cur.used + size <= cur.size {
                    // SAFETY: the client handed out `size` bytes at `ptr`; `used + size` is within.
                    unsafe { std::ptr::write_unaligned(cur.ptr.add(cur.used).cast::<R>(), *record) };
                    cur.used += size.next_multiple_of(RECORD_ALIGNMENT);
                    cur.records += 1;
                    cur.last_end_ns = cur.last_end_ns.max(record.end_ns());
                    if cur.records == cur.max_records || cur.used >= cur.size {
                        let full = b.current.take();
                        b.completed.extend(full);
                        filled = true;
                    }
                    break true;
                }
                let full = b.current.take();
                b.completed.extend(full);
                filled = true;
                continue;
            }
            let Some(request) = b.request else {
                b.dropped += 1;
                break false;
            };
            drop(b);
            let (mut ptr, mut len, mut max) = (std::ptr::null_mut::<u8>(), 0usize, 0usize);
            // SAFETY: a registered client callback with valid out-pointers.
            unsafe { request(&mut ptr, &mut len, &mut max) };
            b = lock(&BUFFERS);
            if ptr.is_null() || len < size {
                b.dropped += 1;
                if !ptr.is_null() {
                    // Too small for any record: hand it straight back so the client can free it.
                    b.completed.push_back(Buffer {
                        ptr,
                        size: len,
                        used: 0,
                        records: 0,
                        max_records: 0,
                        last_end_ns: 0,
                    });
                    filled = true;
                }
                break false;
            }
            b.current = Some(Buffer { ptr, size: len, used: 0, records: 0, max_records: max, last_end_ns: 0 });
        }
    };
    if filled {
        deliver(Flush::CompletedOnly, 0);
    }
    written
}

/// Which buffers a delivery hands back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Only buffers already completed (full).
    CompletedOnly,
    /// Also the buffer being filled, when every record in it is complete at `now`.
    Default,
    /// Also the buffer being filled, whatever its records (`CUPTI_ACTIVITY_FLAG_FLUSH_FORCED`).
    Forced,
}

/// Hands completed buffers (and per `mode` the one being filled) to the client, in order.
/// `now_ns` is the CUPTI timestamp of the flush (used by [`Flush::Default`]).
pub fn deliver(mode: Flush, now_ns: u64) {
    // A flush from inside the completion callback would wait for itself.
    if DELIVERING.with(Cell::get) {
        return;
    }
    let _delivery = lock(&DELIVERY);
    let (buffers, complete) = {
        let mut b = lock(&BUFFERS);
        let take_current = match mode {
            Flush::CompletedOnly => false,
            Flush::Default => b.current.as_ref().is_some_and(|c| c.records > 0 && c.last_end_ns <= now_ns),
            Flush::Forced => b.current.as_ref().is_some_and(|c| c.records > 0),
        };
        if take_current {
            let cur = b.current.take();
            b.completed.extend(cur);
        }
        if b.completed.is_empty() {
            return;
        }
        let all: Vec<Buffer> = b.completed.drain(..).collect();
        (all, b.complete)
    };
    let Some(complete) = complete else { return };
    DELIVERING.with(|d| d.set(true));
    for buf in buffers {
        let valid = buf.used.min(buf.size);
        // SAFETY: the client's registered callback, given back the buffer it handed out.
        unsafe { complete(std::ptr::null_mut(), 0, buf.ptr, buf.size, valid) };
    }
    DELIVERING.with(|d| d.set(false));
}

/// Returns and resets the number of dropped records (`cuptiActivityGetNumDroppedRecords`).
pub fn take_dropped() -> usize {
    std::mem::take(&mut lock(&BUFFERS).dropped)
}

/// What `cuptiFinalize` does to the activity state: every buffer back to the client, every
/// kind disabled, the callbacks forgotten.
pub fn finalize(now_ns: u64) {
    for e in &ENABLED {
        e.store(false, Ordering::Relaxed);
    }
    deliver(Flush::Forced, now_ns);
    let _writer = lock(&WRITER);
    let mut b = lock(&BUFFERS);
    // An empty current buffer still belongs to the client.
    let leftover: Vec<Buffer> = b.current.take().into_iter().chain(b.completed.drain(..)).collect();
    let complete = b.complete;
    b.request = None;
    b.complete = None;
    b.dropped = 0;
    drop(b);
    if let Some(complete) = complete {
        for buf in leftover {
            // SAFETY: as in `deliver`.
            unsafe { complete(std::ptr::null_mut(), 0, buf.ptr, buf.size, buf.used.min(buf.size)) };
        }
    }
}
