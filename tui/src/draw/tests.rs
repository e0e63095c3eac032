//! View snapshots on deterministic scenario data: the simulator's snapshots (what the agent
//! would publish at each scenario second) with the rules run on them, drawn on a `TestBackend`.
//! Each test also asserts the facts the snapshot must show, so a careless snapshot update
//! cannot hide a regression.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::draw;
use crate::feed::{LocalAnalysis, replay_app};
use crate::recording::{Limits, Recorder, read};
use crate::state::{App, SourceKind, View};
use crate::theme::Theme;
use crate::update::Input;
use gpuscope_analysis::AnalysisConfig;
use gpuscope_sim::snapshot::{T0_MS, snapshot};
use gpuscope_sim::{Scenario, Simulation};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use std::sync::Arc;

/// `scenario` played from second 0 to `until_s`, one snapshot a second, rules run locally.
fn played(scenario: &str, until_s: u64) -> App {
    let sim = Simulation::new(Scenario::load(scenario).unwrap(), 0).unwrap();
    let mut analysis = LocalAnalysis::new(AnalysisConfig::default());
    let mut app = App::new(SourceKind::Local, Theme::plain());
    for t in 0..=until_s {
        let s = Arc::new(snapshot(&sim, t as f64));
        let events = analysis.ingest(s.clone());
        app.update(Input::Snapshot(s));
        for e in events {
            app.update(Input::Finding(Box::new(e)));
        }
    }
    app
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| draw(f, app)).unwrap();
    term.backend().to_string()
}

fn key(app: &mut App, c: KeyCode) {
    app.update(Input::Terminal(Event::Key(KeyEvent::new(c, KeyModifiers::NONE))));
}

#[test]
fn healthy_8x_h100_gpu_view() {
    let app = played("healthy-bf16-training", 120);
    let screen = render(&app, 200, 50);
    assert_eq!(app.shown().unwrap().gpus.len(), 8);
    assert!(screen.contains("0 crit 0 warn 0 info"), "a healthy node has no finding");
    assert!(screen.contains("no findings"));
    for i in 0..8 {
        assert!(screen.contains(&format!("│ {i}  H100 80GB HBM3")), "GPU {i} has its row");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn healthy_8x_h100_processes_sorted_and_filtered() {
    let mut app = played("healthy-bf16-training", 120);
    key(&mut app, KeyCode::Char('2'));
    let screen = render(&app, 200, 50);
    assert!(screen.contains("CLASS") && screen.contains(" training "), "the workload class is shown: {screen}");
    insta::assert_snapshot!("healthy_processes_by_gpu_memory", screen);
    app.sort_by(crate::state::ProcessColumn::Pid);
    for c in "/".chars().chain("1".chars()) {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let rows = app.process_rows();
    assert!(!rows.is_empty() && rows.iter().all(|r| r.pid.to_string().contains('1') || r.name.contains('1')));
    assert!(rows.windows(2).all(|w| w[0].pid < w[1].pid), "sorted by PID, ascending");
    insta::assert_snapshot!("healthy_processes_filtered_by_pid", render(&app, 200, 50));
}

#[test]
fn the_process_tree_shows_torchrun_over_its_ranks() {
    let mut app = played("dataloader-stall", 60);
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Char('t'));
    let screen = render(&app, 200, 50);
    let rows: Vec<&str> =
        screen.lines().filter(|l| l.starts_with("\"│   520")).map(|l| l.trim_end_matches([' ', '│', '"'])).collect();
    let want = [" torchrun", " ├─ python", " ├─ python", " ├─ python", " └─ python"];
    assert_eq!(rows.len(), want.len(), "{screen}");
    for (row, name) in rows.iter().zip(want) {
        assert!(row.ends_with(name), "{row:?} should end with {name:?}:\n{screen}");
    }
    assert!(rows[0].starts_with("\"│   52000"), "the launcher leads its tree");
    assert!(screen.contains("Processes (4) tree"), "the launcher is not counted as a GPU process: {screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn healthy_8x_h100_host_view() {
    let mut app = played("healthy-bf16-training", 120);
    app.view = View::Host;
    let screen = render(&app, 200, 50);
    assert!(screen.contains("CPU (224 cores: busy / iowait)"));
    assert!(screen.contains("mlx5_3/1       infiniband     11.0G/s"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn no_tensor_cores_shows_the_finding_its_evidence_and_advice() {
    let app = played("no-tensor-cores", 240);
    let screen = render(&app, 200, 50);
    assert!(screen.contains("no-tensor-cores"), "{screen}");
    assert!(screen.contains("evidence: fp32"), "{screen}");
    assert!(screen.contains("advice: Matrix math runs in FP32"), "{screen}");
    assert!(
        screen.contains("Expected gain: several times on matmul-heavy steps."),
        "the advice is wrapped, not cut: {screen}"
    );
    assert!(screen.contains("▶"), "the selected finding marks its GPU");
    insta::assert_snapshot!(screen);
    let mut app = app;
    app.view = View::Findings;
    let detail = render(&app, 200, 50);
    assert!(detail.contains("OBSERVED") && detail.contains("THRESHOLD"));
    insta::assert_snapshot!("no_tensor_cores_findings_view", detail);
}

#[test]
fn a_lost_gpu_is_shown_lost_not_idle() {
    let app = played("gpu-lost", 200);
    let screen = render(&app, 200, 50);
    let lost: Vec<&str> = screen.lines().filter(|l| l.contains("LOST")).collect();
    assert_eq!(lost.len(), 1, "{screen}");
    assert!(screen.contains("gpu-lost"), "the finding is on screen: {screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn an_a100_without_gpm_shows_profiling_ratios_as_unknown() {
    let app = played("row-remap", 60);
    let s = app.shown().unwrap();
    assert!(s.gpus.iter().all(|g| g.sm_active_ratio.is_none() && g.model.contains("A100")));
    let screen = render(&app, 200, 50);
    let row = screen.lines().find(|l| l.contains("│ 0  A100")).unwrap();
    // SM, gap, tensor, FP32, FP16, FP64, DRAM, and the memory clock (current and max, which
    // the simulator's snapshots do not carry): unknown, not 0%.
    assert_eq!(row.matches('—').count(), 9, "{row}");
    assert!(!row.contains(" 0% "), "{row}");
    insta::assert_snapshot!(screen);
}

#[test]
fn eight_gpus_fit_an_80x24_terminal() {
    let app = played("healthy-bf16-training", 120);
    let screen = render(&app, 80, 24);
    for i in 0..8 {
        assert!(screen.lines().any(|l| l.starts_with(&format!("\"│ {i}   "))), "GPU {i} on screen:\n{screen}");
    }
    insta::assert_snapshot!(screen);
    let mut app = app;
    for v in ['2', '3', '4', '5'] {
        key(&mut app, KeyCode::Char(v));
        insta::assert_snapshot!(format!("80x24_view_{v}"), render(&app, 80, 24));
    }
    key(&mut app, KeyCode::Char('?'));
    let help = render(&app, 80, 24);
    assert!(help.contains("Keys") && help.contains("quit"));
    insta::assert_snapshot!("80x24_help", help);
}

#[test]
fn a_replayed_recording_paused_where_its_finding_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-tensor-cores.gsr");
    let sim = Simulation::new(Scenario::load("no-tensor-cores").unwrap(), 0).unwrap();
    let mut analysis = LocalAnalysis::new(AnalysisConfig::default());
    let mut rec = Recorder::create(&path, &sim.hostname(), T0_MS, Limits::default()).unwrap();
    for t in 0..=300 {
        let s = Arc::new(snapshot(&sim, f64::from(t)));
        let events = analysis.ingest(s.clone());
        rec.snapshot(&s).unwrap();
        for e in &events {
            rec.finding(e).unwrap();
        }
    }
    rec.finish().unwrap();
    let mut app = replay_app("no-tensor-cores.gsr", read(&path).unwrap(), Theme::plain(), 1.0);
    app.size = (200, 50);
    // Play to the end, then jump back to where the selected finding opened.
    app.update(Input::Tick(std::time::Duration::from_secs(400)));
    key(&mut app, KeyCode::Char('g'));
    let opened = app.selected_finding().unwrap().opened_ms;
    assert_eq!(app.shown_ms(), Some(opened));
    assert!(!app.playback.as_ref().unwrap().playing);
    let screen = render(&app, 200, 50);
    assert!(screen.contains("REPLAY ❚❚"), "{screen}");
    assert!(screen.contains("open 0s"), "the finding has just opened at the cursor: {screen}");
    insta::assert_snapshot!(screen);
}

/// A finding of `rule` on `node`.
fn finding_on(node: &str, rule: &str, severity: gpuscope_core::Severity) -> gpuscope_core::api::FindingRecord {
    gpuscope_core::api::FindingRecord {
        finding: gpuscope_core::Finding {
            rule: rule.into(),
            severity,
            scope: gpuscope_core::FindingScope { node: Some(node.into()), gpus: vec![], job: None },
            since_ms: T0_MS,
            summary: format!("{rule} on {node}"),
            evidence: vec![],
            recommendation: String::new(),
            docs: None,
            action: None,
            cause: None,
        },
        opened_ms: T0_MS,
        closed_ms: None,
    }
}

#[test]
fn a_200_node_fleet_grouped_by_job_with_its_straggler() {
    use crate::fleet::{Fleet, FleetUpdate};
    use gpuscope_core::Severity;
    use gpuscope_core::api::NodeView;
    let sim = Simulation::new(Scenario::load("healthy-bf16-training").unwrap(), 0).unwrap();
    let name = |i: usize| format!("gpu-{i:03}");
    let nodes: Vec<NodeView> = (0..200)
        .map(|i| NodeView {
            node: name(i),
            job: (i < 192).then(|| format!("llm-{}", i / 64)),
            last_seen_ms: T0_MS,
            last_sample_ms: T0_MS,
            samples_total: 600,
            first_sample_ms: T0_MS - 600_000,
            max_gap_ms: 1000,
            out_of_order_total: 0,
            stale: i == 199,
            gpus: 8,
            // As a collector from before the node list carried them: filled from the details.
            sm_active_mean: None,
            power_watts: None,
        })
        .collect();
    let findings = vec![
        finding_on(&name(17), "straggler", Severity::Warning),
        finding_on(&name(42), "xid-error", Severity::Critical),
        finding_on(&name(42), "gpu-lost", Severity::Critical),
        finding_on(&name(90), "no-tensor-cores", Severity::Warning),
    ];
    // Newest snapshots of the first 20 nodes (the poller reads details a few nodes at a time).
    let latest: Vec<_> = (0..20)
        .map(|i| {
            let mut s = snapshot(&sim, 120.0);
            s.node.hostname = name(i);
            s
        })
        .collect();
    let mut app = App::new(SourceKind::Collector { url: "http://collector:9467".into() }, Theme::plain());
    app.fleet = Some(Fleet::default());
    app.view = View::Fleet;
    app.update(Input::Fleet(Box::new(FleetUpdate { nodes, findings, jobs: vec![], latest, at_ms: T0_MS })));
    let rows = app.fleet.as_ref().unwrap().rows();
    assert_eq!(rows.len(), 200);
    assert_eq!(rows[0].node, name(42), "the critical node leads its job");
    assert!(rows.iter().find(|r| r.node == name(17)).unwrap().straggler);
    assert_eq!(rows.iter().filter(|r| r.sm_active.is_some()).count(), 20, "unknown until read");
    let screen = render(&app, 200, 50);
    assert!(screen.contains("job llm-0 — 64 node(s)"), "{screen}");
    assert!(screen.contains("◀ straggler"));
    assert!(screen.contains("2 crit 2 warn 0 info"));
    insta::assert_snapshot!(screen);
    // A click on a column's header sorts by it, where the header is drawn.
    let header_y = screen.lines().position(|l| l.contains("SM ACTIVE")).unwrap();
    let header = screen.lines().nth(header_y).unwrap().trim_start_matches('"');
    for (title, sort) in [("SM ACTIVE", 1), ("POWER W", 2), ("CRIT", 3), ("INFO", 3), ("JOB", 0)] {
        let x = header[..header.find(title).unwrap()].chars().count() as u16;
        for dx in [0, title.len() as u16 - 1] {
            app.update(Input::Terminal(Event::Mouse(crossterm_mouse(x + dx, header_y as u16))));
            assert_eq!(app.fleet.as_ref().unwrap().sort, sort, "{title} at x {}", x + dx);
        }
    }
    app.fleet.as_mut().unwrap().sort = 0;
    app.message = None;
    // Filtered to the nodes without a job, the stale one is marked.
    for c in "/gpu-19".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("STALE"), "{screen}");
    insta::assert_snapshot!("fleet_filtered_80x24", screen);
}

#[test]
fn the_selected_findings_processes_are_marked() {
    let mut app = played("no-tensor-cores", 240);
    assert_eq!(app.selected_finding().unwrap().finding.scope.gpus, vec![0, 1, 2, 3]);
    app.view = View::Processes;
    // The one process runs on GPUs 0-3; the selection is elsewhere (no row is selected when the
    // cursor is past the list), so only the finding marks it.
    app.processes.selected = 99;
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();
    term.draw(|f| draw(f, &app)).unwrap();
    let cell = &term.backend().buffer()[(4, 3)];
    assert!(cell.modifier.contains(ratatui::style::Modifier::UNDERLINED), "{cell:?}");
    app.finding_selected = 99;
    term.draw(|f| draw(f, &app)).unwrap();
    assert!(!term.backend().buffer()[(4, 3)].modifier.contains(ratatui::style::Modifier::UNDERLINED));
}

fn crossterm_mouse(column: u16, row: u16) -> ratatui::crossterm::event::MouseEvent {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    MouseEvent { kind: MouseEventKind::Down(MouseButton::Left), column, row, modifiers: KeyModifiers::NONE }
}

/// The screen with its colours: each line as runs of `{fg/bg/modifiers}text`, for the themes'
/// snapshots (the plain text ones cannot show a colour).
fn render_styled(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| draw(f, app)).unwrap();
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut last = None;
        for x in 0..w {
            let c = &buf[(x, y)];
            let style = format!("{:?}/{:?}/{:?}", c.fg, c.bg, c.modifier);
            if last.as_ref() != Some(&style) {
                out.push_str(&format!("{{{style}}}"));
                last = Some(style);
            }
            out.push_str(c.symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_light_theme_uses_colours_readable_on_a_light_background() {
    use ratatui::style::Color;
    let mut app = played("no-tensor-cores", 240);
    app.theme = Theme::light();
    let mut term = Terminal::new(TestBackend::new(120, 36)).unwrap();
    for view in [View::Gpus, View::Processes, View::Host, View::Findings] {
        app.view = view;
        term.draw(|f| draw(f, &app)).unwrap();
        for c in term.backend().buffer().content() {
            if c.symbol().trim().is_empty() {
                continue;
            }
            // White, yellow and light grey text vanish on a light background.
            assert!(
                !matches!(
                    c.fg,
                    Color::White | Color::Yellow | Color::LightYellow | Color::LightCyan | Color::LightGreen
                ),
                "{view:?}: {:?} drawn in {:?}",
                c.symbol(),
                c.fg
            );
        }
    }
    app.view = View::Gpus;
    insta::assert_snapshot!(render_styled(&app, 120, 36));
}

/// Names as CUPTI reports them for a bf16 training step (cuBLAS on Hopper, FlashAttention,
/// PyTorch's elementwise kernels, NCCL), classified by the same table the library uses.
const KERNEL_NAMES: [&str; 4] = [
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas",
    "flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, cutlass::bfloat16_t>, false, true>",
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>>",
    "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)",
];

/// The profile the agent holds for rank 41001 after its twelfth window: 0.5 s of 30 s, 420 ms of
/// kernels split 60/20/10/10 over four classes; and one for 41077, a process whose latest window
/// ran no kernel (its median, gaps and launch rate are unknown).
fn kernel_profiles(at_ms: u64) -> Vec<gpuscope_core::KernelProfile> {
    use gpuscope_core::{KernelClassTime, KernelProfile, TopKernel};
    let timed = [(3000, 0.252), (1200, 0.084), (4800, 0.042), (130, 0.042)];
    let classes = KERNEL_NAMES
        .iter()
        .zip(timed)
        .map(|(n, (count, seconds))| KernelClassTime { class: gpuscope_cupti::classify(n), count, seconds })
        .collect();
    let top_kernels = KERNEL_NAMES
        .iter()
        .zip(timed)
        .map(|(n, (count, seconds))| TopKernel {
            name: n.to_string(),
            class: gpuscope_cupti::classify(n),
            count,
            seconds,
        })
        .collect();
    vec![
        KernelProfile {
            pid: 41077,
            name: "python".into(),
            gpus: vec![],
            windows_total: 1,
            window_seconds: 0.5,
            period_seconds: 30.0,
            window_end_unix_ms: at_ms - 2000,
            ..KernelProfile::default()
        },
        KernelProfile {
            pid: 41001,
            name: "python".into(),
            user: Some("trainer".into()),
            gpus: (0..8).collect(),
            windows_total: 12,
            window_seconds: 0.5,
            period_seconds: 30.0,
            window_end_unix_ms: at_ms - 1000,
            launches_per_second: Some(18_250.0),
            classes,
            kernel_seconds: 0.42,
            kernel_count: 9130,
            median_kernel_seconds: Some(16_384e-9),
            pageable_copies: 4,
            pageable_copy_bytes: 256 << 20,
            async_pageable_copies: 3,
            sync_seconds: 0.025,
            gpu_gap_max_seconds: Some(0.0031),
            gpu_gap_seconds: Some(0.012),
            graph_kernels: 0,
            overhead_seconds_total: 0.084,
            overhead_cpu_ratio: Some(0.0012),
            dropped_records_total: 0,
            summaries_dropped_total: 1,
            top_kernels,
            ..KernelProfile::default()
        },
    ]
}

/// The healthy training node with one more snapshot that carries kernel profiles.
fn profiled() -> App {
    let mut app = played("healthy-bf16-training", 120);
    let mut s = (*app.history.latest().unwrap().clone()).clone();
    s.timestamp_ms += 1000;
    s.kernel_profiles = kernel_profiles(s.timestamp_ms);
    app.update(Input::Snapshot(Arc::new(s)));
    app
}

#[test]
fn the_kernels_screen_shows_the_selected_processs_latest_window() {
    let mut app = profiled();
    key(&mut app, KeyCode::Char('5'));
    assert_eq!(app.view, View::Kernels);
    let screen = render(&app, 200, 50);
    let line = |needle: &str| -> String {
        screen
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{screen}"))
            .into()
    };
    assert!(screen.contains("Kernel profiles (2)"), "{screen}");
    // The list, by PID: 41001 first and selected, its values formatted; 41077's unknowns as —.
    let row = line("▶   41001");
    for v in ["0-7", "18K", "420.0ms", "16µs", "5%", "256M", "3.1ms", "sm90_xmma_gemm_bf16bf16"] {
        assert!(row.contains(v), "{v:?} in {row:?}");
    }
    assert_eq!(
        line("    41077").matches('—').count(),
        5,
        "GPUs, launch rate, median, gap and top kernel unknown, not 0"
    );
    // The detail of the window.
    assert!(screen.contains("python (41001): latest window ended 08:02:00, 12 windows"), "{screen}");
    assert!(screen.contains("launches/s 18K   kernels 9130 (420.0ms of kernel time)   median kernel 16µs"));
    assert!(screen.contains("sync 5% of the window (25.0ms)   largest GPU gap 3.1ms (12.0ms idle in all)"));
    assert!(screen.contains("pageable copies 4, 256M (3 async)"));
    assert!(screen.contains("profiler a 500.0ms window every 30.00s   overhead 84.0ms in all (0.12% of its CPU)"));
    assert!(screen.contains("dropped 0 records, 1 summaries"));
    // Time by class, largest first, with bars in proportion.
    let classes: Vec<String> = ["gemm/tensor/bf16", "attention/tensor/bf16", "elementwise", "collective/allreduce"]
        .iter()
        .map(|c| line(&format!("│{c:<24} ")))
        .collect();
    for (c, (share, time, n)) in classes.iter().zip([
        ("60%", "252.0ms", "3000"),
        ("20%", "84.0ms", "1200"),
        ("10%", "42.0ms", "4800"),
        ("10%", "42.0ms", "130"),
    ]) {
        assert!(c.contains(&format!(" {share} {time:>9} {n:>8}")), "{c}");
    }
    let bars: Vec<usize> = classes.iter().map(|c| c.matches('█').count()).collect();
    assert!(bars[0] == 3 * bars[1] && bars[1] == 2 * bars[2] && bars[2] == bars[3] && bars[3] > 0, "{bars:?}");
    // The top kernels, whole names where they fit.
    let gemm = line(&format!("│{} ", KERNEL_NAMES[0]));
    assert!(gemm.contains("gemm/tensor/bf16") && gemm.contains("3000   252.0ms   60%"), "{gemm}");
    assert!(line("ncclDevKernel_AllReduce_Sum_bf16_RING_LL").contains("collective/allreduce"));
    insta::assert_snapshot!("kernels_200x50", screen);
    // On 80 columns the names are cut to the room the numbers leave, and everything still fits.
    let narrow = render(&app, 80, 24);
    let gemm =
        narrow.lines().find(|l| l.contains("│sm90_xmma_gemm_bf16bf16_bf1… ")).unwrap_or_else(|| panic!("{narrow}"));
    assert!(gemm.contains("gemm/tensor/bf16") && gemm.contains("3000   252.0ms   60%"), "{gemm}");
    assert!(narrow.contains("│ncclDevKernel_AllReduce_Sum… collective/allreduce"), "{narrow}");
    assert!(narrow.contains("│overhead 84.0ms in all (0.12% of its CPU)   dropped 0 records, 1 summaries"), "{narrow}");
    insta::assert_snapshot!("kernels_80x24", narrow);

    // ↓ selects the other process: a window without kernels says so and shows no 0 for unknowns.
    key(&mut app, KeyCode::Down);
    assert_eq!(app.kernel_pid, Some(41077));
    let screen = render(&app, 200, 50);
    assert!(screen.contains("python (41077): latest window ended 08:01:59, 1 windows"), "{screen}");
    assert!(screen.contains("launches/s —   kernels 0 (0ns of kernel time)   median kernel —"), "{screen}");
    assert!(screen.contains("largest GPU gap — (— idle in all)"), "{screen}");
    assert_eq!(screen.matches("no kernel ran in the latest window").count(), 2, "classes and top kernels");
    insta::assert_snapshot!("kernels_empty_window", screen);
}

#[test]
fn the_process_detail_shows_its_kernel_profile_or_how_to_get_one() {
    let mut app = profiled();
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.process_detail, Some(41001));
    let screen = render(&app, 200, 50);
    assert!(
        screen.contains(
            "kernels  launches/s 18K   median kernel 16µs   sync 5%   top class gemm/tensor/bf16 60%   (5: kernels)"
        ),
        "{screen}"
    );
    // 5 from the detail opens the kernels screen on that process.
    app.kernel_pid = Some(41077);
    key(&mut app, KeyCode::Char('5'));
    assert_eq!((app.view, app.kernel_pid), (View::Kernels, Some(41001)));
    // Without profiles, the detail says how to get one.
    let mut app = played("healthy-bf16-training", 120);
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 200, 50);
    assert!(screen.contains(&format!("kernels  {}", super::kernels::NO_PROFILE)), "{screen}");
}

#[test]
fn without_kernel_profiles_the_kernels_screen_says_how_to_get_them() {
    let mut app = played("healthy-bf16-training", 120);
    key(&mut app, KeyCode::Char('5'));
    let screen = render(&app, 120, 30);
    assert!(screen.contains("Kernel profiles (0)"), "{screen}");
    assert!(screen.contains("no kernel profile — load the gpuscope injection library (docs/cupti.md)"), "{screen}");
    assert!(screen.contains(" 5 Kernels "), "the tab is on the first line: {screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn from_a_collector_the_kernels_screen_says_names_do_not_travel() {
    let mut app = profiled();
    let mut s = (*app.history.latest().unwrap().clone()).clone();
    s.timestamp_ms += 1000;
    // What the collector decodes from OTLP: the profile and its classes, no kernel names.
    for p in &mut s.kernel_profiles {
        p.top_kernels.clear();
    }
    app.update(Input::Snapshot(Arc::new(s)));
    app.source = SourceKind::Collector { url: "http://collector:9400".into() };
    key(&mut app, KeyCode::Char('5'));
    let screen = render(&app, 200, 50);
    assert!(
        screen.contains("kernel names do not travel over OTLP: gpuscope profile --pid 41001 on the node shows them"),
        "{screen}"
    );
    assert!(screen.contains("│gemm/tensor/bf16 "), "the classes still show: {screen}");
}
