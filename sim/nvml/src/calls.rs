//! Counts of the NVML entry points the library answered, per entry point.
//!
//! On a real driver most NVML calls are an ioctl into the kernel module, so how many calls a
//! monitoring tool makes per second sets its cost there. With `GPUSCOPE_SIM_NVML_CALLS=<file>`
//! the library writes its counts to that file every `GPUSCOPE_SIM_NVML_CALLS_EVERY_MS`
//! milliseconds (default 1000) and when the process exits normally, so that a benchmark can read
//! calls per second of any tool (the agent, nvitop, all-smi) from the outside.
//!
//! The file is replaced atomically (written beside it, then renamed). Format, one item a line:
//! `# unix_time <seconds>`, `# total <calls>`, then `<entry point> <calls>` sorted by name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

static COUNTS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());
static TARGET: OnceLock<Option<PathBuf>> = OnceLock::new();
static START: Once = Once::new();

/// The file named by `GPUSCOPE_SIM_NVML_CALLS`, if any.
fn target() -> Option<&'static PathBuf> {
    TARGET
        .get_or_init(|| std::env::var_os("GPUSCOPE_SIM_NVML_CALLS").filter(|v| !v.is_empty()).map(PathBuf::from))
        .as_ref()
}

/// Records one call of `entry_point` (only when counting was asked for: no cost otherwise).
pub fn count(entry_point: &'static str) {
    if target().is_none() {
        return;
    }
    START.call_once(start_writer);
    *COUNTS.lock().unwrap_or_else(|e| e.into_inner()).entry(entry_point).or_insert(0) += 1;
}

/// The counts so far.
pub fn snapshot() -> BTreeMap<&'static str, u64> {
    COUNTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn start_writer() {
    let every = std::env::var("GPUSCOPE_SIM_NVML_CALLS_EVERY_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .unwrap_or(1000);
    let spawned = std::thread::Builder::new().name("nvml-sim-calls".into()).spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(every));
            write();
        }
    });
    if let Err(e) = spawned {
        eprintln!("gpuscope NVML simulator: cannot start the call-count writer: {e}");
    }
    // SAFETY: `write_at_exit` is a plain extern "C" fn with no arguments, as atexit requires.
    unsafe { libc::atexit(write_at_exit) };
}

extern "C" fn write_at_exit() {
    write();
}

/// Writes the counts to the target file; a failure is reported once and otherwise ignored
/// (counting must never disturb the tool being measured).
fn write() {
    let Some(path) = target() else { return };
    let counts = snapshot();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let total: u64 = counts.values().sum();
    let mut text = format!("# unix_time {now:.6}\n# total {total}\n");
    for (name, n) in &counts {
        text.push_str(&format!("{name} {n}\n"));
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        static REPORTED: Once = Once::new();
        REPORTED
            .call_once(|| eprintln!("gpuscope NVML simulator: cannot write call counts to {}: {e}", path.display()));
    }
}
