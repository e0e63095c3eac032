//! Launch counting: what runs on every kernel launch, so it does as little as possible — one
//! relaxed atomic add per callback, and a clock pair on one callback in [`SAMPLE_EVERY`] to
//! measure the callback's own cost (extrapolated to all callbacks).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One callback in this many is timed.
pub const SAMPLE_EVERY: u64 = 64;

/// Counters shared by the callback threads and the worker.
#[derive(Debug)]
pub struct LaunchCounter {
    callbacks: AtomicU64,
    launches: AtomicU64,
    sampled: AtomicU64,
    sampled_ns: AtomicU64,
    // What a timing itself adds (one clock read), subtracted from each timed callback.
    clock_ns: AtomicU64,
}

/// A reading of the counters; differences of two readings give a span's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterReading {
    /// Callbacks run (launch enter and exit sites, and any other).
    pub callbacks: u64,
    /// Launches counted (enter sites).
    pub launches: u64,
    /// Callbacks timed.
    pub sampled: u64,
    /// Their summed duration, ns.
    pub sampled_ns: u64,
}

impl CounterReading {
    /// The figures of the span from `earlier` to `self`.
    pub fn since(&self, earlier: &CounterReading) -> CounterReading {
        CounterReading {
            callbacks: self.callbacks.wrapping_sub(earlier.callbacks),
            launches: self.launches.wrapping_sub(earlier.launches),
            sampled: self.sampled.wrapping_sub(earlier.sampled),
            sampled_ns: self.sampled_ns.wrapping_sub(earlier.sampled_ns),
        }
    }

    /// Time in callbacks over the span, ns: the timed callbacks' mean × all callbacks.
    pub fn estimated_cost_ns(&self) -> u64 {
        if self.sampled == 0 {
            return 0;
        }
        let cost = u128::from(self.sampled_ns) * u128::from(self.callbacks) / u128::from(self.sampled);
        u64::try_from(cost).unwrap_or(u64::MAX)
    }
}

impl LaunchCounter {
    /// Zeroed counters.
    pub const fn new() -> Self {
        LaunchCounter {
            callbacks: AtomicU64::new(0),
            launches: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
            sampled_ns: AtomicU64::new(0),
            clock_ns: AtomicU64::new(0),
        }
    }

    /// Measures what one clock read costs on this machine (the fastest of a few hundred
    /// back-to-back reads), so timed callbacks report their body, not the timing. Without it
    /// the library's reported cost is several times the real one.
    pub fn calibrate(&self) {
        let fastest = (0..256)
            .map(|_| {
                let t = Instant::now();
                u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
            })
            .min()
            .unwrap_or(0);
        self.clock_ns.store(fastest, Ordering::Relaxed);
    }

    /// Runs one callback's work `body` (which says whether it counted a launch), timing it when
    /// this callback is a sampled one.
    #[inline]
    pub fn run(&self, body: impl FnOnce() -> bool) {
        let n = self.callbacks.fetch_add(1, Ordering::Relaxed);
        if !n.is_multiple_of(SAMPLE_EVERY) {
            if body() {
                self.launches.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let start = Instant::now();
        if body() {
            self.launches.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(start.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_sub(self.clock_ns.load(Ordering::Relaxed));
        self.sampled_ns.fetch_add(ns, Ordering::Relaxed);
        self.sampled.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn read(&self) -> CounterReading {
        CounterReading {
            callbacks: self.callbacks.load(Ordering::Relaxed),
            launches: self.launches.load(Ordering::Relaxed),
            sampled: self.sampled.load(Ordering::Relaxed),
            sampled_ns: self.sampled_ns.load(Ordering::Relaxed),
        }
    }
}

impl Default for LaunchCounter {
    fn default() -> Self {
        LaunchCounter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_are_counted_and_one_in_n_callbacks_is_timed() {
        let counter = LaunchCounter::new();
        let before = counter.read();
        for i in 0..1_000u64 {
            counter.run(|| i % 2 == 0);
        }
        let span = counter.read().since(&before);
        assert_eq!((span.callbacks, span.launches), (1_000, 500));
        assert_eq!(span.sampled, 1_000u64.div_ceil(SAMPLE_EVERY));
    }

    #[test]
    fn the_cost_is_extrapolated_from_the_timed_callbacks() {
        let span = CounterReading { callbacks: 6_400, launches: 3_200, sampled: 100, sampled_ns: 5_000 };
        assert_eq!(span.estimated_cost_ns(), 320_000);
        assert_eq!(CounterReading { sampled: 0, ..span }.estimated_cost_ns(), 0);
    }

    #[test]
    fn readings_subtract_across_a_wrap() {
        let earlier = CounterReading { callbacks: u64::MAX, launches: u64::MAX - 1, sampled: 0, sampled_ns: 0 };
        let later = CounterReading { callbacks: 9, launches: 4, sampled: 1, sampled_ns: 7 };
        assert_eq!(later.since(&earlier), CounterReading { callbacks: 10, launches: 6, sampled: 1, sampled_ns: 7 });
    }
}
