//! `gpuscope sim …`: the simulator's command-line front-end.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gpuscope_sim::Simulation;
use gpuscope_sim::clock::{ENV_NODE, ENV_SCENARIO, ENV_SPEED, ENV_START, SimClock, unix_now};
use gpuscope_sim::procfs::{COUNTER_STEP_MS, TreeWriter};
use gpuscope_sim::scenario::{BUILTIN, Scenario};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// File name of the simulated NVML library as cargo builds it.
pub const NVML_SIM_LIB: &str = "libgpuscope_nvml_sim.so";
/// Environment variable that overrides where the simulated NVML library is.
pub const ENV_SIM_LIB: &str = "GPUSCOPE_SIM_NVML_LIB";

/// Simulator subcommands.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// List the built-in scenarios with the findings each should produce.
    List,
    /// Describe a scenario (built-in name or file); with --at, print every GPU's values then.
    Show {
        /// Built-in scenario name or path to a scenario file.
        scenario: String,
        /// Scenario second at which to print the GPU values.
        #[arg(long)]
        at: Option<f64>,
        /// Node of a multi-node job.
        #[arg(long, default_value_t = 0)]
        node: u32,
        /// With --at: print the values as JSON (every GPU, process and host signal).
        #[arg(long, requires = "at")]
        json: bool,
    },
    /// Print the shell exports that point NVML (and /proc, /sys) at the simulator.
    Env {
        /// Built-in scenario name or path to a scenario file.
        scenario: String,
        /// Node of a multi-node job.
        #[arg(long, default_value_t = 0)]
        node: u32,
        /// Scenario seconds per wall-clock second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Root of the simulated /proc + /sys tree (as written by `sim run --root`).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Path of the simulated NVML library (default: next to this executable).
        #[arg(long, env = ENV_SIM_LIB)]
        lib: Option<PathBuf>,
    },
    /// Keep a /proc + /sys tree under --root current with the scenario's host signals.
    Run {
        /// Built-in scenario name or path to a scenario file.
        #[arg(long)]
        scenario: String,
        /// Directory to write `proc/` and `sys/` under.
        #[arg(long)]
        root: PathBuf,
        /// Node of a multi-node job.
        #[arg(long, default_value_t = 0)]
        node: u32,
        /// Scenario seconds per wall-clock second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Unix time of scenario second 0 (default: now); share it with the NVML library.
        #[arg(long, env = ENV_START)]
        start: Option<f64>,
        /// Rewrite interval of the whole tree in milliseconds; the traffic counters are
        /// rewritten every 20 ms in between.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// Stop after this many wall-clock seconds (default: run until killed).
        #[arg(long)]
        duration: Option<f64>,
        /// Write the tree once, for this scenario second, and exit.
        #[arg(long)]
        once_at: Option<f64>,
    },
}

/// Runs a simulator subcommand.
pub fn run(cmd: SimCommand) -> Result<()> {
    match cmd {
        SimCommand::List => {
            println!("{:<26} {:>5} {:>4}  {:<30} EXPECTED FINDINGS", "SCENARIO", "NODES", "GPUS", "GPU MODEL");
            for (name, _) in BUILTIN {
                let s = Scenario::load(name)?;
                let models: Vec<&str> = s.gpus.iter().map(|g| g.model.as_str()).collect();
                let expect = if s.expect.is_empty() { "(none)".to_string() } else { s.expect.join(", ") };
                println!(
                    "{:<26} {:>5} {:>4}  {:<30} {}",
                    name,
                    s.node_count(),
                    s.gpu_count(),
                    models.join("+"),
                    expect
                );
            }
            Ok(())
        }
        SimCommand::Show { scenario, at: Some(t), node, json: true } => show_json(&scenario, t, node),
        SimCommand::Show { scenario, at, node, .. } => show(&scenario, at, node),
        SimCommand::Env { scenario, node, speed, root, lib } => env(&scenario, node, speed, root, lib),
        SimCommand::Run { scenario, root, node, speed, start, interval_ms, duration, once_at } => {
            if speed <= 0.0 {
                return Err(crate::config::UsageError(format!("--speed must be positive, not {speed}")).into());
            }
            let sim = Simulation::new(Scenario::load(&scenario)?, node)?;
            let clock = SimClock { start_unix: start.unwrap_or_else(unix_now), speed, frozen: once_at };
            let mut writer = TreeWriter::new(&root).with_context(|| format!("cannot create {}", root.display()))?;
            if let Some(t) = once_at {
                return writer.write(&sim, &clock, t).with_context(|| format!("cannot write under {}", root.display()));
            }
            let began = Instant::now();
            let interval = Duration::from_millis(interval_ms.max(10));
            writer
                .write(&sim, &clock, clock.now())
                .with_context(|| format!("cannot write under {}", root.display()))?;
            // The traffic counters move every 20 ms on a thread of their own; the whole tree
            // follows every interval.
            let counters = writer.counter_writer();
            let stop = AtomicBool::new(false);
            std::thread::scope(|s| {
                let ticker = s.spawn(|| -> std::io::Result<()> {
                    while !stop.load(Ordering::Relaxed) {
                        counters.write_counters(&sim, clock.now())?;
                        std::thread::sleep(Duration::from_millis(COUNTER_STEP_MS));
                    }
                    Ok(())
                });
                let outcome = loop {
                    if ticker.is_finished() || duration.is_some_and(|d| began.elapsed().as_secs_f64() >= d) {
                        break Ok(());
                    }
                    std::thread::sleep(interval);
                    if let Err(e) = writer.write(&sim, &clock, clock.now()) {
                        break Err(e);
                    }
                };
                stop.store(true, Ordering::Relaxed);
                let ticked = ticker.join().unwrap_or_else(|_| Err(std::io::Error::other("counter writer panicked")));
                outcome.and(ticked).with_context(|| format!("cannot write under {}", root.display()))
            })
        }
    }
}

fn show(name: &str, at: Option<f64>, node: u32) -> Result<()> {
    let s = Scenario::load(name)?;
    println!("scenario   {}", s.name);
    println!("about      {}", s.description.split_whitespace().collect::<Vec<_>>().join(" "));
    println!("expect     {}", if s.expect.is_empty() { "(no findings)".into() } else { s.expect.join(", ") });
    println!(
        "nodes      {}{}",
        s.node_count(),
        s.job.as_ref().map(|j| format!(" (job {})", j.name)).unwrap_or_default()
    );
    println!("host       {} CPUs, {} GiB, driver {}", s.node.cpus, s.node.memory_gib, s.node.driver_version);
    for g in &s.gpus {
        println!("gpus       {} × {}", g.count, g.model);
    }
    for n in &s.node.nics {
        println!("nic        {} {:?} {} Gb/s", n.name, n.kind, n.speed_gbps);
    }
    for d in &s.node.nvme {
        println!("nvme       {} {} MB/s read max", d.name, d.max_read_mb_s);
    }
    println!("processes  {}", s.processes.len());
    let mut start = 0;
    for p in &s.phases {
        println!("phase      {:>6}–{:<6} {}", format!("{start}s"), format!("{}s", start + p.duration_s), p.name);
        start += p.duration_s;
    }
    println!("events     {}", s.events.len());
    if let Some(t) = at {
        let sim = Simulation::new(s, node)?;
        println!("\nat t = {t}s (phase {:?}):", sim.phase_name(t));
        println!(
            "{:>3} {:>6} {:>6} {:>6} {:>6} {:>8} {:>6} {:>10} {:>8}",
            "GPU", "UTIL", "SM", "TENSOR", "DRAM", "POWER", "TEMP", "MEM USED", "REASONS"
        );
        for g in sim.gpus() {
            let Some(st) = sim.gpu(g.index, t) else {
                continue;
            };
            if st.lost {
                println!("{:>3} lost", g.index);
                continue;
            }
            println!(
                "{:>3} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>7.0}W {:>5.0}C {:>8.1}Gi {:>#8x}",
                g.index,
                st.util,
                st.sm_active,
                st.tensor,
                st.dram,
                st.power_w,
                st.temp_c,
                st.memory_used as f64 / (1u64 << 30) as f64,
                st.throttle
            );
        }
        let h = sim.host(t);
        let busy = h.core_busy.iter().sum::<f64>() / h.core_busy.len().max(1) as f64;
        println!("host cpu busy {busy:.2}");
    }
    Ok(())
}

/// Every value of the scenario at `t` as JSON: what NVML and /proc will report, before rounding.
fn show_json(name: &str, t: f64, node: u32) -> Result<()> {
    let sim = Simulation::new(Scenario::load(name)?, node)?;
    let gpus: Vec<serde_json::Value> = sim
        .gpus()
        .iter()
        .map(|g| {
            serde_json::json!({
                "index": g.index,
                "uuid": g.uuid,
                "name": g.preset.name,
                "serial": g.serial,
                "pci_bus_id": g.pci_bus_id,
                "state": sim.gpu(g.index, t),
                "processes": sim.gpu_processes(g.index, t),
            })
        })
        .collect();
    let out = serde_json::json!({
        "scenario": sim.scenario().name,
        "node": node,
        "hostname": sim.hostname(),
        "t": t,
        "phase": sim.phase_name(t),
        "gpus": gpus,
        "host": sim.host(t),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Where the simulated NVML library is: `--lib`, else next to this executable (cargo puts a
/// dependency's cdylib under `deps/`).
pub(crate) fn find_lib(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.is_file() {
            bail!("the simulated NVML library {} does not exist", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("cannot locate the gpuscope executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    // Cargo writes the library to deps/ whenever it builds gpuscope, and next to the executable
    // only when the library itself is built: the newest copy is the one that matches the binary
    // (a stale one next to it would play yesterday's scenarios).
    let newest =
        [dir.join(NVML_SIM_LIB), dir.join("deps").join(NVML_SIM_LIB), dir.join("../lib/gpuscope").join(NVML_SIM_LIB)]
            .into_iter()
            .filter_map(|c| Some((std::fs::metadata(&c).ok().filter(|m| m.is_file())?.modified().ok()?, c)))
            .max_by_key(|(t, _)| *t);
    if let Some((_, candidate)) = newest {
        return Ok(candidate.canonicalize().unwrap_or(candidate));
    }
    bail!(
        "cannot find {NVML_SIM_LIB} next to {} — build it with `cargo build --release -p gpuscope-sim-nvml` or pass --lib",
        exe.display()
    )
}

/// A directory holding `libnvidia-ml.so.1` → the simulator, for programs that load NVML by
/// its soname (NVIDIA's Python bindings, nvidia-smi-like tools).
fn soname_dir(lib: &Path) -> Result<PathBuf> {
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let dir = std::env::temp_dir().join(format!("gpuscope-sim-{user}")).join("lib");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let link = dir.join("libnvidia-ml.so.1");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(lib, &link).with_context(|| format!("cannot create {}", link.display()))?;
    Ok(dir)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn env(name: &str, node: u32, speed: f64, root: Option<PathBuf>, lib: Option<PathBuf>) -> Result<()> {
    if speed <= 0.0 {
        return Err(crate::config::UsageError(format!("--speed must be positive, not {speed}")).into());
    }
    // Validate now, so a typo fails here rather than inside the library later.
    let s = Scenario::load(name)?;
    Simulation::new(s, node)?;
    let scenario = if BUILTIN.iter().any(|(n, _)| *n == name) {
        name.to_string()
    } else {
        Path::new(name).canonicalize().map(|p| p.display().to_string()).unwrap_or_else(|_| name.to_string())
    };
    let lib = find_lib(lib)?;
    let dir = soname_dir(&lib)?;
    println!("export {ENV_SCENARIO}={}", shell_quote(&scenario));
    println!("export {ENV_NODE}={node}");
    println!("export {ENV_SPEED}={speed}");
    println!("export {ENV_START}={:.3}", unix_now());
    println!("export {ENV_SIM_LIB}={}", shell_quote(&lib.display().to_string()));
    println!("export GPUSCOPE_NVML_LIB={}", shell_quote(&lib.display().to_string()));
    println!(
        "export LD_LIBRARY_PATH={}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}",
        shell_quote(&dir.display().to_string())
    );
    if let Some(root) = root {
        let root = root.canonicalize().unwrap_or(root);
        println!("export GPUSCOPE_PROCFS_ROOT={}", shell_quote(&root.join("proc").display().to_string()));
        println!("export GPUSCOPE_PASSWD_FILE={}", shell_quote(&root.join("etc/passwd").display().to_string()));
        println!("export GPUSCOPE_SYSFS_ROOT={}", shell_quote(&root.join("sys").display().to_string()));
        println!("export GPUSCOPE_POD_LOGS_ROOT={}", shell_quote(&root.join("var/log/pods").display().to_string()));
    }
    Ok(())
}
