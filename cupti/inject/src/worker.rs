//! The worker thread: runs the window schedule, reads the records, sends the summaries, and
//! stretches the period to keep within the budget. It is the only thread that blocks, sleeps
//! or touches the socket; CUDA threads only run the callbacks.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gpuscope_cupti::{Aggregator, AggregatorConfig, WindowMeta};

use crate::budget::{BudgetController, CycleCost, window_cost_ns};
use crate::config::{Config, MAX_PERIOD};
use crate::counter::CounterReading;
use crate::cupti::{
    LAUNCHES, Shared, describe, flush_all, for_each_record, set_window_kinds, take_global_dropped_records,
};
use crate::link::{AgentLink, Waited};
use crate::pool::Completed;
use crate::records;
use crate::say;

/// The first window opens this long after CUDA starts (or one period, when shorter): late
/// enough to see the steady state of most jobs, early enough to see short ones.
const FIRST_WINDOW_AFTER: Duration = Duration::from_secs(5);
/// How often filled buffers are read during a window (so the pool does not run dry).
const DRAIN_EVERY: Duration = Duration::from_millis(100);

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer; the clocks used here exist on every Linux.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(ns).unwrap_or(0)
}

/// The worker's state.
pub struct Worker {
    config: Config,
    shared: &'static Shared,
    agg: Aggregator,
    link: AgentLink,
    controller: BudgetController,
    period: Duration,
    completed: Vec<Completed>,
    // Counters at the end of the last summary's window: the next summary counts from there.
    last_reading: CounterReading,
    last_window_end: Instant,
    warned_kinds: bool,
}

impl Worker {
    /// A worker for `config`, with the callbacks' shared state.
    pub fn new(config: Config, shared: &'static Shared) -> Self {
        let controller = BudgetController::new(config.budget, config.period, MAX_PERIOD);
        Worker {
            link: AgentLink::new(config.socket.clone()),
            period: config.period,
            config,
            shared,
            agg: Aggregator::new(AggregatorConfig::default()),
            controller,
            completed: Vec::with_capacity(crate::POOL_BUFFERS),
            last_reading: LAUNCHES.read(),
            last_window_end: Instant::now(),
            warned_kinds: false,
        }
    }

    fn log(&self, line: &str) {
        if self.config.log {
            say(line);
        }
    }

    /// Runs the schedule forever.
    pub fn run(mut self) {
        let mut next_start = Instant::now() + FIRST_WINDOW_AFTER.min(self.period);
        loop {
            let idle_from = Instant::now();
            let idle_cpu_from = process_cpu_ns();
            let requested = self.wait_until(next_start);
            let idle_ns = ns(idle_from.elapsed());
            let idle_cpu_ns = process_cpu_ns().saturating_sub(idle_cpu_from);
            let started = Instant::now();
            let cost = self.window(requested.unwrap_or(self.config.window), idle_ns, idle_cpu_ns);
            self.period = Duration::from_nanos(self.controller.period_ns(&cost));
            // An on-demand window leaves the schedule as it was, unless it ran past it.
            let now = Instant::now();
            if requested.is_none() || next_start <= now {
                next_start = (started + self.period).max(now);
            }
        }
    }

    /// Waits for the next window's start or an agent's request (its length).
    fn wait_until(&mut self, start: Instant) -> Option<Duration> {
        loop {
            let now = Instant::now();
            if now >= start {
                return None;
            }
            match self.link.wait(start - now) {
                Waited::Timeout => {}
                Waited::Request(window) => {
                    self.log(&format!("agent asked for a window of {} ms", window.as_millis()));
                    return Some(window);
                }
                Waited::Refused(e) => self.log(&format!("closed the agent connection: bad window request ({e})")),
            }
        }
    }

    /// Runs one window of `length`, sends its summary; what the cycle cost.
    fn window(&mut self, length: Duration, idle_ns: u64, idle_cpu_ns: u64) -> CycleCost {
        let start = Instant::now();
        let cpu_start = process_cpu_ns();
        let thread_start = thread_cpu_ns();
        let start_reading = LAUNCHES.read();
        let idle = start_reading.since(&self.last_reading);
        let unix_start = unix_ns();
        let refused = set_window_kinds(true);
        if !refused.is_empty() && !self.warned_kinds {
            self.warned_kinds = true;
            let kinds: Vec<String> = refused.iter().map(|(k, r)| format!("{k:?}: {}", describe(*r))).collect();
            self.log(&format!("CUPTI refused activity kinds: {}", kinds.join(", ")));
        }
        // A request that arrives during the window extends it to the requested length from
        // the request: the next summary, which the agent takes as the answer, covers it.
        let mut end_at = start + length;
        loop {
            let now = Instant::now();
            if now >= end_at {
                break;
            }
            match self.link.wait((end_at - now).min(DRAIN_EVERY)) {
                Waited::Timeout => {}
                Waited::Request(window) => {
                    self.log(&format!(
                        "agent asked for a window of {} ms: this window is extended",
                        window.as_millis()
                    ));
                    end_at = end_at.max(Instant::now() + window);
                }
                Waited::Refused(e) => self.log(&format!("closed the agent connection: bad window request ({e})")),
            }
            self.drain();
        }
        set_window_kinds(false);
        let end = Instant::now();
        let unix_end = unix_ns();
        let end_reading = LAUNCHES.read();
        if let Err(e) = flush_all() {
            self.log(&format!("cuptiActivityFlushAll: {}", describe(e)));
        }
        self.drain();

        let in_window = end_reading.since(&start_reading);
        let since_summary = end_reading.since(&self.last_reading);
        self.agg.launches(idle.launches, false);
        self.agg.launches(in_window.launches, true);
        self.agg.callback_overhead(since_summary.callbacks, since_summary.estimated_cost_ns());
        let dropped = self.shared.dropped_records.swap(0, std::sync::atomic::Ordering::Relaxed);
        self.agg.dropped_records(dropped.saturating_add(take_global_dropped_records()));
        let meta = WindowMeta {
            pid: std::process::id(),
            window_start_unix_ns: unix_start,
            window_end_unix_ns: unix_end,
            period_ns: ns(self.period),
            launch_span_ns: ns(end.duration_since(self.last_window_end)),
            summaries_dropped: self.link.dropped_since_delivery(),
        };
        self.last_reading = end_reading;
        self.last_window_end = end;
        let summary = self.agg.finish_window(&meta);
        match gpuscope_cupti::encode(&summary) {
            Ok(frame) => {
                if !self.link.send(&frame) {
                    self.log(&format!("no agent at {}: summary dropped", self.config.socket.display()));
                }
            }
            Err(e) => self.log(&format!("summary not encodable, dropped: {e}")),
        }

        let own = thread_cpu_ns().saturating_sub(thread_start).saturating_add(in_window.estimated_cost_ns());
        let span_ns = ns(start.elapsed());
        let window_cost =
            window_cost_ns(own, span_ns, process_cpu_ns().saturating_sub(cpu_start), idle_cpu_ns, idle_ns);
        CycleCost { idle_ns, idle_cost_ns: idle.estimated_cost_ns(), window_cost_ns: window_cost }
    }

    /// Reads every filled buffer into the aggregator and returns it to the pool.
    fn drain(&mut self) {
        // Taken out and put back so the vector keeps its capacity (no allocation per drain).
        let mut completed = std::mem::take(&mut self.completed);
        self.shared.pool.drain_completed(&mut completed);
        for c in completed.drain(..) {
            let buffer = self.shared.pool.buffer(c.index);
            let agg = &mut self.agg;
            // SAFETY: CUPTI completed this buffer with `valid_bytes` of records; the callback
            // only reads inside the bytes left after each record.
            unsafe {
                for_each_record(buffer, c.valid_bytes, |record, left| {
                    records::feed(agg, record, left);
                })
            };
            self.shared.pool.give_back(c.index);
        }
        self.completed = completed;
    }
}
