//! The demo's profiled CUDA process: `gpuscope-sim-cuda` (sim/cupti) plays a `[cuda]` workload
//! with gpuscope's CUPTI injection library loaded through `CUDA_INJECTION64_PATH` over the
//! simulated `libcupti.so`, reporting to the demo agent's CUPTI socket, so that the demo shows
//! kernel profiles and kernel-level findings without a GPU.
//!
//! The three programs are other packages of the workspace: `cargo build --workspace` (release or
//! not) puts them next to the gpuscope binary, where the demo looks. `cargo run -- demo` alone
//! builds only gpuscope and what it links; without them the demo says so and goes on.

use anyhow::{Context, Result};
use gpuscope_sim::Scenario;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The harness, the injection library and the simulated CUPTI, as cargo names their files.
const HARNESS: &str = "gpuscope-sim-cuda";
const INJECTION: &str = "libgpuscope_cupti_inject.so";
const CUPTI: &str = "libcupti.so";

/// The workload played on a scenario without a `[cuda]` table: SIMT SGEMMs, which the
/// kernel-level rule `fp32-gemm-kernels` names.
pub const DEFAULT_WORKLOAD: &str = "cuda-fp32-sgemm";

/// Windows of 500 ms every 2 s: the two windows a kernel-level rule needs come within seconds.
const WINDOW_MS: &str = "500";
const PERIOD_MS: &str = "2000";

/// The running CUDA process; killed when dropped.
pub struct ProfiledProcess {
    child: Child,
    /// The scenario whose `[cuda]` workload it plays.
    pub workload: String,
    /// The kernel-level findings that workload opens (its `[cuda] expect`).
    pub expect: Vec<String>,
}

impl ProfiledProcess {
    /// Its PID, which the agent's profiles and findings name.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ProfiledProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The three programs next to `exe` (or in its `deps/`, where cargo leaves a library built as
/// a dependency), or the names of those missing.
fn find(exe: &Path) -> Result<[PathBuf; 3], Vec<&'static str>> {
    let dir = exe.parent().unwrap_or(Path::new("."));
    let found =
        [HARNESS, INJECTION, CUPTI].map(|n| [dir.join(n), dir.join("deps").join(n)].into_iter().find(|p| p.is_file()));
    match found {
        [Some(h), Some(i), Some(c)] => Ok([h, i, c]),
        _ => Err([HARNESS, INJECTION, CUPTI]
            .into_iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(n, _)| n)
            .collect()),
    }
}

/// Starts the CUDA process: the scenario's own `[cuda]` workload (named in /proc as the
/// scenario's process it plays), else [`DEFAULT_WORKLOAD`] (named as what it is: its own /proc
/// entry). `Ok(Err(reason))` when the programs are not built.
pub fn start(
    scenario: &Scenario,
    scenario_arg: &str,
    proc_root: &Path,
    socket: &Path,
) -> Result<Result<ProfiledProcess, String>> {
    let exe = std::env::current_exe().context("cannot locate the gpuscope executable")?;
    let [harness, injection, cupti] = match find(&exe) {
        Ok(paths) => paths,
        Err(missing) => {
            let dir = exe.parent().unwrap_or(Path::new(".")).display().to_string();
            return Ok(Err(format!(
                "{} not in {dir}; `cargo build --release --workspace` builds them",
                missing.join(", ")
            )));
        }
    };
    let (workload, expect) = match &scenario.cuda {
        Some(c) => (scenario_arg, c.expect.clone()),
        None => (DEFAULT_WORKLOAD, Scenario::load(DEFAULT_WORKLOAD)?.cuda.map(|c| c.expect).unwrap_or_default()),
    };
    let lib_dir = cupti.parent().unwrap_or(Path::new("."));
    let ld_path = match std::env::var_os("LD_LIBRARY_PATH") {
        Some(old) if !old.is_empty() => {
            let mut v = lib_dir.as_os_str().to_owned();
            v.push(":");
            v.push(old);
            v
        }
        _ => lib_dir.as_os_str().to_owned(),
    };
    let mut cmd = Command::new(&harness);
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
    unsafe {
        cmd.pre_exec(|| {
            // A day of launches: should the demo be killed outright, its CUDA process goes too.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        // The demo ends it.
        .args(["--scenario", workload, "--seconds", "86400"])
        .env("CUDA_INJECTION64_PATH", &injection)
        .env("GPUSCOPE_SIM_CUPTI_LIB", &cupti)
        .env("LD_LIBRARY_PATH", ld_path)
        .env("GPUSCOPE_CUPTI_SOCKET", socket)
        .env("GPUSCOPE_CUPTI_WINDOW_MS", WINDOW_MS)
        .env("GPUSCOPE_CUPTI_PERIOD_MS", PERIOD_MS)
        // The whole CPU: the budget controller would stretch the period on a busy laptop
        // (as it should on a real node), and the demo would show its windows late.
        .env("GPUSCOPE_CUPTI_BUDGET", "1")
        .env_remove("GPUSCOPE_SIM_CUPTI_SUBSCRIBED")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // Its messages would tear the terminal UI's screen.
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", harness.display()))?;
    let process = ProfiledProcess { child, workload: workload.to_string(), expect };
    let pid = process.pid();
    let from = match &scenario.cuda {
        Some(c) => proc_root.join(c.pid.to_string()),
        None => PathBuf::from(format!("/proc/{pid}")),
    };
    // The agent names a profiled process from /proc; the demo's /proc is the simulated one.
    if let Err(e) = copy_process(&from, &proc_root.join(pid.to_string()), pid) {
        tracing::warn!("the profiled process stays unnamed: {e}");
    }
    Ok(Ok(process))
}

/// Copies a process's identity files to `to` in the simulated /proc, its PID in `stat` made `pid`.
fn copy_process(from: &Path, to: &Path, pid: u32) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for f in ["cgroup", "cmdline", "comm", "status"] {
        std::fs::copy(from.join(f), to.join(f)).with_context(|| format!("cannot copy {}", from.join(f).display()))?;
    }
    let stat =
        std::fs::read_to_string(from.join("stat")).with_context(|| format!("cannot read {}/stat", from.display()))?;
    // "PID (comm) state …": the PID is the first field.
    let rest = stat.split_once(' ').map_or("", |(_, r)| r);
    std::fs::write(to.join("stat"), format!("{pid} {rest}"))
        .with_context(|| format!("cannot write {}/stat", to.display()))?;
    Ok(())
}
