//! XID events: a dedicated thread blocks in `nvmlEventSetWait` and records every event, so no
//! event is lost between sampling passes (dcgm-exporter keeps only the last one).

use super::nvml::call;
use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::event::EventSet;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use gpuscope_core::XidEvent;

/// What the XID thread has seen since the agent started.
#[derive(Debug, Default)]
pub struct XidLog {
    /// Count per (GPU, code).
    pub counts: BTreeMap<(u32, u64), u64>,
    /// Last code per GPU.
    pub last: BTreeMap<u32, u64>,
    /// The most recent events (newest last), at most [`RECENT`].
    pub recent: VecDeque<XidEvent>,
}

/// How many recent events are kept.
pub const RECENT: usize = 256;

/// Handle of the XID thread.
#[derive(Debug, Clone)]
pub struct XidWatcher {
    log: Arc<Mutex<XidLog>>,
    stop: Arc<AtomicBool>,
}

impl XidWatcher {
    /// Registers the given GPU indices (lost GPUs cannot register) for XID events on `nvml`,
    /// here (so that the first pass sees every set-up call), and starts the thread that waits.
    pub fn start(nvml: &'static Nvml, gpus: Vec<u32>) -> XidWatcher {
        let log = Arc::new(Mutex::new(XidLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        if let Some(set) = register(nvml, &gpus) {
            let (l, s) = (log.clone(), stop.clone());
            let spawned = std::thread::Builder::new().name("gpuscope-xid".into()).spawn(move || watch(set, &l, &s));
            if let Err(e) = spawned {
                // The set was dropped (freed) with the closure.
                call("nvmlEventSetFree", ());
                tracing::warn!("cannot start the XID event thread: {e}");
            }
        }
        XidWatcher { log, stop }
    }

    /// A copy of the counts and last codes.
    pub fn counts(&self) -> (BTreeMap<(u32, u64), u64>, BTreeMap<u32, u64>) {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        (log.counts.clone(), log.last.clone())
    }

    /// The most recent events, oldest first.
    pub fn recent(&self) -> Vec<XidEvent> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).recent.iter().cloned().collect()
    }

    /// Asks the thread to stop (it notices within one wait timeout).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// An event set with every GPU that supports XID events registered, or `None`.
fn register(nvml: &'static Nvml, gpus: &[u32]) -> Option<EventSet<'static>> {
    let mut set = match call("nvmlEventSetCreate", nvml.create_event_set()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("XID events unavailable: cannot create an NVML event set: {e}");
            return None;
        }
    };
    let mut registered = 0;
    for &i in gpus {
        let Ok(device) = call("nvmlDeviceGetHandleByIndex_v2", nvml.device_by_index(i)) else {
            continue;
        };
        // A failed registration releases the set, so only register GPUs that support XIDs.
        match call("nvmlDeviceGetSupportedEventTypes", device.supported_event_types()) {
            Ok(t) if t.contains(EventTypes::CRITICAL_XID_ERROR) => {}
            _ => continue,
        }
        match call("nvmlDeviceRegisterEvents", device.register_events(EventTypes::CRITICAL_XID_ERROR, set)) {
            Ok(s) => {
                set = s;
                registered += 1;
            }
            Err(e) => {
                tracing::warn!("XID events unavailable: registering GPU {i} failed: {}", e.error);
                // nvml-wrapper frees the set on a failed registration.
                call("nvmlEventSetFree", ());
                return None;
            }
        }
    }
    if registered == 0 {
        call("nvmlEventSetFree", ());
        return None;
    }
    Some(set)
}

/// Waits for XID events until asked to stop.
fn watch(set: EventSet<'static>, log: &Mutex<XidLog>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        // Counted before the call: the wait blocks for up to a second.
        call("nvmlEventSetWait_v2", ());
        match set.wait(1000) {
            Ok(ev) => {
                let code = match ev.event_data {
                    Some(XidError::Value(c)) => c,
                    _ => 0,
                };
                let gpu = call("nvmlDeviceGetIndex", ev.device.index()).unwrap_or(u32::MAX);
                let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                tracing::warn!(gpu, xid = code, "XID event");
                let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                *l.counts.entry((gpu, code)).or_insert(0) += 1;
                l.last.insert(gpu, code);
                l.recent.push_back(XidEvent { unix_ms, gpu, code });
                while l.recent.len() > RECENT {
                    l.recent.pop_front();
                }
            }
            Err(NvmlError::Timeout) => {}
            Err(e) => {
                tracing::warn!("XID event wait failed: {e}");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    // `set` is dropped here, which frees it.
    call("nvmlEventSetFree", ());
}
