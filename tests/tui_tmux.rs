//! The real binary's terminal UI driven in tmux (`send-keys`, `capture-pane`): the demo (local
//! sampling through the real agent and collector), and a recording made by `gpuscope record`
//! played back with `top --replay`. Each test ends by quitting and checking the terminal was
//! restored (normal screen, canonical mode). tmux is installed when missing; without it the
//! tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{bin, eventually, nvml_lib, unix_now};
use std::process::Command;

/// A private tmux server (its own socket) with one session, killed on drop.
struct Tmux {
    socket: String,
}

fn ensure_tmux() {
    if Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()) {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let run = |args: &[&str]| {
        let mut c = if root { Command::new(args[0]) } else { Command::new("sudo") };
        c.args(if root { &args[1..] } else { args });
        c.env("DEBIAN_FRONTEND", "noninteractive").status().is_ok_and(|s| s.success())
    };
    let _ = run(&["apt-get", "update", "-qq"]);
    assert!(run(&["apt-get", "install", "-y", "-qq", "tmux"]), "tmux is needed and could not be installed");
}

impl Tmux {
    /// Starts `command` (a shell line) in a 200×50 session. The line runs under `sh -c`, then
    /// reports how it exited and whether the terminal is back in canonical mode.
    fn start(name: &str, command: &str, w: u16, h: u16) -> Tmux {
        ensure_tmux();
        let socket = format!("gpuscope-test-{}-{name}", std::process::id());
        let line = format!("{command}; echo EXITED $?; stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; sleep 600");
        let st = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
            ])
            .arg(line)
            .env_remove("NO_COLOR")
            .status()
            .unwrap();
        assert!(st.success(), "tmux new-session failed");
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["-L", &self.socket, "capture-pane", "-p", "-t", "t"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let st = Command::new("tmux").args(["-L", &self.socket, "send-keys", "-t", "t", k]).status().unwrap();
            assert!(st.success());
        }
    }

    /// Waits (generously: the machine may be busy) until the screen contains `text`.
    fn wait_for(&self, text: &str) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            eventually(60, || {
                last = self.screen();
                last.contains(text).then(|| last.clone())
            })
        }));
        found.unwrap_or_else(|_| panic!("{text:?} never appeared; the screen:\n{last}"))
    }

    fn alternate_screen(&self) -> bool {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "display-message", "-p", "-t", "t", "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Quits with `q` and checks the exit status and the restored terminal.
    fn quit_and_check_restored(&self) {
        self.keys(&["q"]);
        let screen = self.wait_for("EXITED");
        assert!(screen.contains("EXITED 0"), "{screen}");
        let mode = eventually(10, || {
            let s = self.screen();
            s.lines().find(|l| l.trim() == "icanon" || l.trim() == "-icanon").map(|l| l.trim().to_string())
        });
        assert_eq!(mode, "icanon", "the terminal is left in raw mode");
        assert!(!self.alternate_screen(), "the alternate screen is still on");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

#[test]
fn demo_ui_switches_views_sorts_filters_helps_pauses_and_quits_cleanly() {
    let cmd = format!(
        "{} demo --scenario no-tensor-cores --speed 20 --metrics 127.0.0.1:0 --api 127.0.0.1:0 --no-color",
        bin()
    );
    let t = Tmux::start("demo", &cmd, 200, 50);
    t.wait_for("GPUs at");
    // The collector's finding reaches the screen with its advice.
    t.wait_for("advice: Matrix math runs in FP32");
    t.keys(&["2"]);
    t.wait_for("Processes (");
    t.keys(&["s"]);
    t.wait_for("sorted by SM%");
    t.keys(&["s"]);
    t.wait_for("sorted by CPU%");
    t.keys(&["/", "p", "y", "t", "h", "Enter"]);
    let s = t.wait_for("filter: pyt");
    assert!(s.contains("python"), "{s}");
    t.keys(&["/", "z", "z", "z", "Enter"]);
    t.wait_for("no process matches the filter");
    t.keys(&["?"]);
    t.wait_for("this help (any key closes it)");
    t.keys(&["Escape"]);
    eventually(30, || (!t.screen().contains("any key closes it")).then_some(()));
    t.keys(&["3"]);
    t.wait_for("CPU (64 cores");
    // The demo's profiled CUDA process (SIMT SGEMMs): the kernels tab shows its latest window.
    t.keys(&["5"]);
    let s = t.wait_for("Kernel profiles (1)");
    assert!(s.contains("gemm") && s.contains("simt"), "{s}");
    // The demo's profiled CUDA process (SIMT SGEMMs) opens fp32-gemm-kernels beside it; the
    // newest finding is listed, and selected, first: `g` goes to where the selected one opened.
    t.keys(&["1"]);
    t.wait_for("fp32-gemm-kernels");
    t.keys(&["Space"]);
    let s = t.wait_for("PAUSED");
    let selected = s
        .lines()
        .find_map(|l| l.split("▶ WARNING  ").nth(1)?.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(["no-tensor-cores", "fp32-gemm-kernels"].contains(&selected.as_str()), "{s}");
    t.keys(&["g"]);
    t.wait_for(&format!("paused where {selected} opened"));
    // Back to the oldest sample: the status line says how far behind the newest it is.
    t.keys(&["Left", "Left", "Left", "["]);
    let behind = eventually(60, || {
        let s = t.screen();
        let status = s.lines().rev().find(|l| l.contains("PAUSED"))?.to_string();
        (!status.contains("(-0s)")).then_some(status)
    });
    assert!(behind.contains("(-"), "{behind}");
    t.keys(&["End"]);
    t.wait_for(" LIVE ");
    t.quit_and_check_restored();
}

#[test]
fn a_recording_replays_with_seek_and_quits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let file = dir.path().join("node.gsr");
    let start = unix_now();
    let speed = "20";
    let mut writer = common::Proc(
        Command::new(bin())
            .args(["sim", "run", "--scenario", "no-tensor-cores", "--root", root.to_str().unwrap()])
            .args(["--start", &format!("{start:.6}"), "--interval-ms", "50", "--speed", speed])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually(10, || root.join("proc/stat").exists().then_some(()));
    let out = Command::new(bin())
        .args(["record", file.to_str().unwrap(), "--duration", "12", "--interval-ms", "200", "--time-scale", "0.05"])
        .env("GPUSCOPE_SIM_SCENARIO", "no-tensor-cores")
        .env("GPUSCOPE_SIM_START", format!("{start:.6}"))
        .env("GPUSCOPE_SIM_SPEED", speed)
        .env("GPUSCOPE_SIM_NODE", "0")
        .env("GPUSCOPE_NVML_LIB", nvml_lib())
        .env("GPUSCOPE_PROCFS_ROOT", root.join("proc"))
        .env("GPUSCOPE_SYSFS_ROOT", root.join("sys"))
        .env("GPUSCOPE_POD_LOGS_ROOT", root.join("var/log/pods"))
        .env_remove("GPUSCOPE_SIM_TIME")
        .output()
        .unwrap();
    let _ = writer.0.kill();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(" finding changes") && !stderr.contains(" 0 finding changes"), "{stderr}");

    let cmd = format!("{} top --replay {} --speed 4 --no-color", bin(), file.display());
    let t = Tmux::start("replay", &cmd, 200, 50);
    t.wait_for("REPLAY ▶ 4x");
    t.keys(&["Space"]);
    t.wait_for("REPLAY ❚❚");
    t.keys(&["End", "g"]);
    let s = t.wait_for("paused where no-tensor-cores opened");
    assert!(s.contains("open 0s"), "{s}");
    t.keys(&["+"]);
    t.wait_for("replay speed 8x");
    t.keys(&["Home"]);
    t.wait_for("[0s /");
    t.quit_and_check_restored();

    // A recording cut mid-record (a crash) still plays.
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.gsr");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let t = Tmux::start("cut", &format!("{} top --replay {} --no-color", bin(), cut.display()), 200, 50);
    t.wait_for("ends mid-record");
    t.quit_and_check_restored();
}

#[test]
fn top_refuses_a_file_that_is_not_a_recording() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gsr");
    std::fs::write(&bad, b"not a recording").unwrap();
    let out = Command::new(bin()).args(["top", "--replay", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("is not a gpuscope recording"), "{e}");
}

#[test]
fn fleet_mode_options_are_checked_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("token");
    std::fs::write(&empty, "\n").unwrap();
    let top = |args: &[&str]| {
        let out = Command::new(bin()).arg("top").args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for (args, says) in [
        (vec!["--collector", "https://127.0.0.1:1"], "needs --ca-file"),
        (vec!["--collector", "http://127.0.0.1:1", "--token-file", empty.to_str().unwrap()], "first line is empty"),
        (vec!["--collector", "http://127.0.0.1:1", "--token-file", "/nonexistent/token"], "/nonexistent/token"),
        (vec!["--collector", "http://127.0.0.1:1", "--token", "a\r\nX-Evil: 1"], "control characters"),
        (vec!["--collector", "https://127.0.0.1:1", "--ca-file", "/nonexistent/ca.pem"], "/nonexistent/ca.pem"),
    ] {
        let (code, e) = top(&args);
        assert_eq!(code, Some(2), "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
    }
}

#[test]
fn without_a_terminal_the_ui_commands_say_what_to_run_instead() {
    let out = Command::new(bin()).args(["demo", "--metrics", "127.0.0.1:0", "--api", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gpuscope demo --headless"));
    let out = Command::new(bin()).args(["top", "--nvml-lib", "/nonexistent/libnvidia-ml.so"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gpuscope query"));
}

#[test]
fn fleet_mode_lists_and_opens_nodes_and_survives_a_collector_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("collector.db");
    let db_s = db.to_str().unwrap().to_string();
    let c = common::collector(&["--store", &db_s], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"));
    let (grpc, http, api) = (c.grpc.clone(), c.http.clone(), c.api.clone());
    // GPU 3 falls off the bus 2 s from now: a critical finding that opens at once.
    let mut spec = common::NodeSpec::new("gpu-lost", common::Clock::Running { start: unix_now() - 118.0 });
    spec.extra_args = ["--otlp-endpoint", &format!("http://{http}"), "--otlp-interval-ms", "200"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let _node = common::start(spec);

    let t = Tmux::start("fleet", &format!("{} top --collector http://{api} --no-color", bin()), 200, 50);
    t.wait_for("lost-node-0");
    let s = t.wait_for("CRIT");
    assert!(s.contains("Nodes (1)"), "{s}");
    t.keys(&["Enter"]);
    t.wait_for("GPUs at");
    t.wait_for("LOST — fell off the bus");
    t.keys(&["0"]);
    t.wait_for("Nodes (1) by job");
    t.keys(&["s"]);
    t.wait_for("nodes sorted by SM active");
    t.keys(&["/", "n", "o", "p", "e", "Enter"]);
    t.wait_for("no node matches the filter");
    t.keys(&["/", "Escape"]);
    t.wait_for("lost-node-0");

    // The collector goes away: the UI says so and keeps the last data.
    drop(c);
    let s = t.wait_for("collector unreachable since");
    assert!(s.contains("lost-node-0") && s.contains("unknown"), "{s}");
    // Back on the same addresses: the UI reconnects by itself.
    let _c = common::collector(&["--store", &db_s], (&grpc, &http, &api));
    eventually(60, || {
        let s = t.screen();
        (!s.contains("unreachable") && s.contains("lost-node-0") && s.contains("CRIT")).then_some(())
    });
    t.quit_and_check_restored();
}

/// A file cargo builds next to the binary (or in its `deps/`).
fn built(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(bin()).parent().unwrap().to_path_buf();
    [dir.join(name), dir.join("deps").join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is built (cargo build --workspace)"))
}

#[test]
fn top_shows_the_kernel_profile_the_injection_library_sends_from_a_cuda_process() {
    // `top` on a simulated node with its own CUPTI receiver; the simulator's CUDA process loads
    // the real injection library over the simulated CUPTI and profiles itself every second.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("cupti.sock");
    let cmd = format!(
        "GPUSCOPE_SIM_SCENARIO=cuda-bf16-tensor GPUSCOPE_NVML_LIB={} GPUSCOPE_CUPTI_ENABLED=true \
         GPUSCOPE_CUPTI_SOCKET={} {} top --no-color",
        nvml_lib().display(),
        socket.display(),
        bin()
    );
    let t = Tmux::start("kernels", &cmd, 200, 50);
    t.wait_for("GPUs at");
    t.keys(&["5"]);
    t.wait_for("no kernel profile — load the gpuscope injection library");
    eventually(30, || socket.exists().then_some(()));
    let _cuda = common::Proc(
        Command::new(built("gpuscope-sim-cuda"))
            .args(["--scenario", "cuda-bf16-tensor", "--seconds", "60"])
            .env("CUDA_INJECTION64_PATH", built("libgpuscope_cupti_inject.so"))
            .env("GPUSCOPE_CUPTI_SOCKET", &socket)
            .env("GPUSCOPE_CUPTI_PERIOD_MS", "1000")
            .env("GPUSCOPE_CUPTI_WINDOW_MS", "300")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    t.wait_for("Kernel profiles (1)");
    // Named from /proc by its host PID; the scenario's kernels by class and by name.
    let s = t.wait_for("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64");
    assert!(s.contains("gpuscope-sim-cu ("), "{s}");
    for class in ["gemm/tensor/bf16", "attention/tensor/", "elementwise", "normalization"] {
        assert!(s.lines().any(|l| l.starts_with(&format!("│{class}"))), "{class} has a row:\n{s}");
    }
    // The period is the library's (the budget may stretch it on a busy machine): only its form.
    assert!(s.contains("profiler a ") && s.contains(" window every "), "{s}");
    t.quit_and_check_restored();
}
