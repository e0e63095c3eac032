//! The agent's and the collector's configuration loaders on any TOML text: each either loads or
//! returns a usage error that names the file; neither panics. The loaders are the binary crate's
//! own `src/config` modules, compiled in here as they are (a binary crate cannot be a dependency).
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../src/config/mod.rs"]
mod config;

use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One file, rewritten for every input: the loaders read a path, as `--config` gives them.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("gpuscope-fuzz-config-{}.toml", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    // A key naming a device or /proc file (`token_file = "/dev/stdin"`) would make the loader read
    // the harness's own input streams: not what is being fuzzed.
    if data.windows(5).any(|w| w == b"/dev/" || w == b"/proc") {
        return;
    }
    let path = scratch();
    let Ok(mut f) = std::fs::File::create(path) else { return };
    if f.write_all(data).is_err() {
        return;
    }
    drop(f);
    let agent = config::AgentArgs { config: Some(path.clone()), ..Default::default() };
    let _ = config::AgentConfig::load(&agent);
    let collector = config::CollectorArgs { config: Some(path.clone()), ..Default::default() };
    let _ = config::CollectorSettings::load(&collector);
});
