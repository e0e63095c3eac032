//! The bounded pool of activity buffers CUPTI fills.
//!
//! A fixed number of fixed-size buffers, allocated once: the library's heap for records cannot
//! grow whatever the launch rate. CUPTI asks for a buffer from its own threads; when every
//! buffer is out (being filled or waiting to be processed) the pool hands out none and CUPTI
//! drops records and counts them, which the summary reports. Handing out and completing are
//! lock-free or O(1) under a lock, so a CUDA thread that triggers a request never waits long.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most buffers in a pool (one bit each in the free mask).
pub const MAX_BUFFERS: usize = 64;
/// Alignment of every buffer (CUPTI requires 8).
pub const ALIGN: usize = 8;

/// A filled buffer waiting to be read: its index and how many bytes CUPTI wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// Buffer index in the pool.
    pub index: usize,
    /// Valid bytes.
    pub valid_bytes: usize,
}

/// A fixed set of equal buffers.
#[derive(Debug)]
pub struct BufferPool {
    base: NonNull<u8>,
    layout: Layout,
    buffer_bytes: usize,
    count: usize,
    // Bit i set: buffer i is free.
    free: AtomicU64,
    // Never holds more than `count` entries: each buffer is completed once before it returns.
    completed: Mutex<Vec<Completed>>,
    refused: AtomicU64,
}

// SAFETY: the pool hands out disjoint buffers through atomics and a mutex; the raw base pointer
// is only offset, never dereferenced by the pool itself.
unsafe impl Send for BufferPool {}
// SAFETY: as above.
unsafe impl Sync for BufferPool {}

impl BufferPool {
    /// A pool of `count` (1..=[`MAX_BUFFERS`]) buffers of `buffer_bytes` (rounded up to
    /// [`ALIGN`]) each; `None` when the sizes are out of range or the allocation fails.
    pub fn new(count: usize, buffer_bytes: usize) -> Option<BufferPool> {
        if count == 0 || count > MAX_BUFFERS || buffer_bytes == 0 {
            return None;
        }
        let buffer_bytes = buffer_bytes.checked_next_multiple_of(ALIGN)?;
        let layout = Layout::from_size_align(buffer_bytes.checked_mul(count)?, ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        let free = if count == MAX_BUFFERS { u64::MAX } else { (1u64 << count) - 1 };
        Some(BufferPool {
            base,
            layout,
            buffer_bytes,
            count,
            free: AtomicU64::new(free),
            completed: Mutex::new(Vec::with_capacity(count)),
            refused: AtomicU64::new(0),
        })
    }

    /// Size of each buffer.
    pub fn buffer_bytes(&self) -> usize {
        self.buffer_bytes
    }

    /// Takes a free buffer (its start and size), or `None` when all are out.
    pub fn take(&self) -> Option<(*mut u8, usize)> {
        let mut free = self.free.load(Ordering::Acquire);
        loop {
            if free == 0 {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            let index = free.trailing_zeros() as usize;
            match self.free.compare_exchange_weak(free, free & !(1 << index), Ordering::AcqRel, Ordering::Acquire) {
                // SAFETY: index < count, so the offset stays inside the allocation.
                Ok(_) => {
                    return Some((unsafe { self.base.as_ptr().add(index * self.buffer_bytes) }, self.buffer_bytes));
                }
                Err(now) => free = now,
            }
        }
    }

    /// The index of the buffer that starts at `ptr`, if it is one of this pool's.
    fn index_of(&self, ptr: *const u8) -> Option<usize> {
        let offset = (ptr as usize).checked_sub(self.base.as_ptr() as usize)?;
        (offset % self.buffer_bytes == 0 && offset / self.buffer_bytes < self.count)
            .then_some(offset / self.buffer_bytes)
    }

    /// Queues a buffer CUPTI filled; false when `ptr` is not one of this pool's buffers or
    /// was not taken (then nothing is queued).
    pub fn complete(&self, ptr: *const u8, valid_bytes: usize) -> bool {
        let Some(index) = self.index_of(ptr) else { return false };
        if self.free.load(Ordering::Acquire) & (1 << index) != 0 {
            return false;
        }
        let mut completed = self.completed.lock().unwrap_or_else(|e| e.into_inner());
        if completed.iter().any(|c| c.index == index) {
            return false;
        }
        completed.push(Completed { index, valid_bytes: valid_bytes.min(self.buffer_bytes) });
        true
    }

    /// Moves the queued buffers into `out` (in completion order).
    pub fn drain_completed(&self, out: &mut Vec<Completed>) {
        let mut completed = self.completed.lock().unwrap_or_else(|e| e.into_inner());
        out.append(&mut completed);
    }

    /// The start of buffer `index` (which must be below the pool's count).
    pub fn buffer(&self, index: usize) -> *mut u8 {
        let index = index.min(self.count - 1);
        // SAFETY: index < count, so the offset stays inside the allocation.
        unsafe { self.base.as_ptr().add(index * self.buffer_bytes) }
    }

    /// Returns a read buffer to the pool.
    pub fn give_back(&self, index: usize) {
        if index < self.count {
            self.free.fetch_or(1 << index, Ordering::AcqRel);
        }
    }

    /// Requests refused because every buffer was out, since the pool was made.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Buffers free now.
    pub fn free_count(&self) -> usize {
        self.free.load(Ordering::Acquire).count_ones() as usize
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.base.as_ptr(), self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_handed_out_until_none_is_left_then_refused() {
        let pool = BufferPool::new(3, 1000).unwrap();
        assert_eq!(pool.buffer_bytes(), 1000);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        let c = pool.take().unwrap();
        assert_eq!(a.1, 1000);
        assert_eq!(a.0 as usize % ALIGN, 0);
        let mut starts = [a.0 as usize, b.0 as usize, c.0 as usize];
        starts.sort_unstable();
        assert_eq!((starts[1] - starts[0], starts[2] - starts[1]), (1000, 1000), "disjoint");
        assert_eq!(pool.take(), None);
        assert_eq!(pool.refused(), 1);
        assert_eq!(pool.free_count(), 0);
    }

    #[test]
    fn completed_buffers_are_queued_read_and_given_back() {
        let pool = BufferPool::new(2, 64).unwrap();
        let (a, _) = pool.take().unwrap();
        let (b, _) = pool.take().unwrap();
        assert!(pool.complete(b, 40));
        assert!(pool.complete(a, 4096), "valid bytes are capped at the buffer size");
        assert!(!pool.complete(a, 8), "a buffer is queued once");
        let mut out = Vec::new();
        pool.drain_completed(&mut out);
        assert_eq!(
            out.iter().map(|c| (pool.buffer(c.index), c.valid_bytes)).collect::<Vec<_>>(),
            vec![(b, 40), (a, 64)]
        );
        for c in &out {
            pool.give_back(c.index);
        }
        assert_eq!(pool.free_count(), 2);
        assert!(pool.take().is_some());
    }

    #[test]
    fn foreign_and_free_buffers_are_not_queued() {
        let pool = BufferPool::new(2, 64).unwrap();
        let mut elsewhere = [0u64; 8];
        assert!(!pool.complete(elsewhere.as_mut_ptr().cast(), 8));
        assert!(!pool.complete(pool.buffer(0), 8), "not taken");
        let (a, _) = pool.take().unwrap();
        // SAFETY: inside the taken buffer.
        assert!(!pool.complete(unsafe { a.add(8) }, 8), "not a buffer start");
    }

    #[test]
    fn sizes_out_of_range_make_no_pool() {
        assert!(BufferPool::new(0, 64).is_none());
        assert!(BufferPool::new(65, 64).is_none());
        assert!(BufferPool::new(1, 0).is_none());
        assert!(BufferPool::new(64, 8).is_some());
    }
}
