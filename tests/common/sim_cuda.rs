//! A scenario's CUDA process on a simulated node: `gpuscope-sim-cuda` (sim/cupti) plays the
//! scenario's `[cuda]` workload with gpuscope's injection library loaded through
//! `CUDA_INJECTION64_PATH`, the simulated `libcupti.so` found first on `LD_LIBRARY_PATH`, and
//! the library reporting to an agent's CUPTI socket.
//!
//! The three artifacts belong to other packages: `cargo build --workspace` (the first step of
//! `scripts/test`) puts them next to the gpuscope binary.

use super::{Proc, bin};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The harness, the injection library and the simulated CUPTI.
pub const ARTIFACTS: [&str; 3] = ["gpuscope-sim-cuda", "libgpuscope_cupti_inject.so", "libcupti.so"];

/// A build artifact next to the gpuscope binary (or in its deps/, where `cargo test` leaves a
/// library it built only as a dependency).
pub fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(bin()).parent().unwrap();
    [dir.join(name), dir.join("deps").join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not built in {}: run cargo build --workspace first", dir.display()))
}

/// Profiling windows of the injection library: short and frequent, so that the two windows a
/// kernel-level rule needs arrive within seconds.
#[derive(Clone, Copy)]
pub struct Windows {
    pub window_ms: u64,
    pub period_ms: u64,
}

/// 300 ms every second.
pub const FAST: Windows = Windows { window_ms: 300, period_ms: 1000 };

/// A running simulated CUDA process (killed when dropped) and where its stderr goes.
pub struct CudaProcess {
    pub proc: Proc,
    pub pid: u32,
    pub log: PathBuf,
}

impl CudaProcess {
    /// What the harness and the injection library wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts the CUDA process of `scenario` (its `[cuda]` table) for `seconds`, reporting to the
/// agent socket `socket`; its stderr goes to a file in `dir`.
///
/// The overhead budget is the whole CPU: on a loaded test machine the library's budget
/// controller would otherwise stretch the period (as it should in production), and the test
/// would wait for windows instead of judging them.
pub fn start_cuda(scenario: &str, socket: &Path, seconds: f64, windows: Windows, dir: &Path) -> CudaProcess {
    let cupti = artifact("libcupti.so");
    let log = dir.join(format!("sim-cuda-{}.log", scenario.replace('/', "_")));
    let mut c = Command::new(artifact("gpuscope-sim-cuda"));
    c.args(["--scenario", scenario, "--seconds", &seconds.to_string()])
        .env("CUDA_INJECTION64_PATH", artifact("libgpuscope_cupti_inject.so"))
        .env("LD_LIBRARY_PATH", cupti.parent().unwrap())
        .env("GPUSCOPE_SIM_CUPTI_LIB", &cupti)
        .env("GPUSCOPE_CUPTI_SOCKET", socket)
        .env("GPUSCOPE_CUPTI_WINDOW_MS", windows.window_ms.to_string())
        .env("GPUSCOPE_CUPTI_PERIOD_MS", windows.period_ms.to_string())
        .env("GPUSCOPE_CUPTI_BUDGET", "1")
        .env_remove("GPUSCOPE_CUPTI_LOG")
        .env_remove("GPUSCOPE_SIM_CUPTI_SUBSCRIBED")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let proc = Proc(c.spawn().expect("start gpuscope-sim-cuda"));
    let pid = proc.0.id();
    CudaProcess { proc, pid, log }
}

/// Makes `to` a copy of the simulated process `from` in the /proc tree `proc` (its comm,
/// command line, owner and cgroup), so that the agent names the harness, which plays that
/// process, as that process. The /proc writer leaves a directory it did not write alone.
pub fn be_process(proc: &Path, from: u32, to: u32) {
    let (src, dst) = (proc.join(from.to_string()), proc.join(to.to_string()));
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["cgroup", "cmdline", "comm", "status"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let stat = std::fs::read_to_string(src.join("stat")).unwrap();
    std::fs::write(dst.join("stat"), stat.replacen(&from.to_string(), &to.to_string(), 1)).unwrap();
}
