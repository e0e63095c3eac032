//! `gpuscope top` costs, each next to a baseline measured in the same run:
//! - frame render time at 200×50 for the GPU and process screens of an 8-GPU, 64-process node
//!   (baseline: drawing the same characters as one plain paragraph, which skips computing them);
//! - heap held by one hour of history at 1 s (baseline: the same snapshots as compact JSON);
//! - recording size per node-hour at 1 s (baseline: the uncompressed records).
//!
//! `cargo run --release -p gpuscope-bench --bin tuibench [-- --frames N]`

use gpuscope_analysis::AnalysisConfig;
use gpuscope_sim::snapshot::{T0_MS, snapshot};
use gpuscope_sim::{Scenario, Simulation};
use gpuscope_tui::feed::LocalAnalysis;
use gpuscope_tui::recording::{Limits, Recorder};
use gpuscope_tui::state::View;
use gpuscope_tui::{App, Input, SourceKind, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::widgets::Paragraph;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts the bytes live on the heap.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const HOUR_S: u32 = 3600;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames: u32 = match std::env::args().skip_while(|a| a != "--frames").nth(1) {
        Some(n) => n.parse()?,
        None => 2000,
    };
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/bench-8gpu-64proc.toml");
    let sim = Simulation::new(Scenario::load(path)?, 0)?;

    // The rules' findings over the hour, computed first so the measurement below sees only
    // the UI's own memory.
    let mut analysis = LocalAnalysis::new(AnalysisConfig::default());
    let events: Vec<Vec<gpuscope_core::api::FindingEvent>> =
        (0..=HOUR_S).map(|t| analysis.ingest(Arc::new(snapshot(&sim, f64::from(t))))).collect();
    drop(analysis);
    let findings: Vec<_> = events.iter().flatten().cloned().collect();

    // Everything the heap gains while the hour goes into a fresh App is what the App holds.
    let before = LIVE.load(Ordering::Relaxed);
    let mut app = App::new(SourceKind::Local, Theme::dark());
    for (t, changes) in (0..=HOUR_S).zip(&events) {
        app.update(Input::Snapshot(Arc::new(snapshot(&sim, f64::from(t)))));
        for e in changes {
            app.update(Input::Finding(Box::new(e.clone())));
        }
    }
    // The blocks deflate on threads of their own: measure once they are done (and their threads,
    // holding a copy until they exit, are gone).
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    while !app.history.settle() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let held = LIVE.load(Ordering::Relaxed).saturating_sub(before);

    // The recording of the same hour, next to the uncompressed records.
    let dir = std::env::temp_dir().join(format!("gpuscope-tuibench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("hour.gsr");
    let mut recorder = Recorder::create(&file, &sim.hostname(), T0_MS, Limits { max_bytes: u64::MAX, keep: 0 })?;
    let mut json_bytes = 0usize;
    for i in 0..app.history.len() {
        let s = app.history.get(i).ok_or("history shrank")?;
        json_bytes += serde_json::to_vec(&*s)?.len() + 1;
        recorder.snapshot(&s)?;
    }
    for e in &findings {
        json_bytes += serde_json::to_vec(e)?.len() + 1;
        recorder.finding(e)?;
    }
    recorder.finish()?;
    let recorded = std::fs::metadata(&file)?.len();
    // Reading it back (what `top --replay` does first), next to parsing the same snapshots
    // from uncompressed JSON lines.
    let started = Instant::now();
    let back = gpuscope_tui::recording::read(&file)?;
    let read_s = started.elapsed().as_secs_f64();
    let lines: Vec<Vec<u8>> = (0..app.history.len())
        .filter_map(|i| app.history.get(i))
        .map(|s| serde_json::to_vec(&*s))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    for l in &lines {
        std::hint::black_box(serde_json::from_slice::<gpuscope_core::NodeSnapshot>(l)?);
    }
    let parse_s = started.elapsed().as_secs_f64();
    drop(lines);
    let _ = std::fs::remove_dir_all(&dir);

    let snap = app.history.latest().ok_or("no snapshot")?;
    println!(
        "node: {} GPUs, {} GPU processes, {} CPUs; {} snapshots in the history",
        snap.gpus.len(),
        snap.processes.len(),
        snap.host.as_ref().map_or(0, |h| h.cpus.len()),
        app.history.len()
    );
    println!();
    println!("memory, 1 h of history at 1 s");
    println!(
        "  heap held by the UI state  {:>8.1} MB ({} B per snapshot)",
        held as f64 / 1e6,
        held / app.history.len()
    );
    println!("  baseline: compact JSON     {:>8.1} MB", json_bytes as f64 / 1e6);
    println!("  ratio                      {:>8.2}x   (target: history <= 50 MB)", held as f64 / json_bytes as f64);
    println!();
    println!("recording, 1 node-hour at 1 s");
    println!(
        "  file                       {:>8.2} MB ({} B per snapshot)",
        recorded as f64 / 1e6,
        recorded / u64::from(HOUR_S + 1)
    );
    println!("  baseline: uncompressed     {:>8.2} MB", json_bytes as f64 / 1e6);
    println!("  ratio                      {:>8.3}x   (target: file <= 5 MB)", recorded as f64 / json_bytes as f64);
    println!(
        "  read back ({} snapshots)  {:>8.2} s    baseline: parsing the JSON lines {:.2} s   ratio {:.2}x",
        back.snapshots.len(),
        read_s,
        parse_s,
        read_s / parse_s
    );
    println!();
    println!("frame render at 200x50, {frames} frames each (window 1 min; mean per frame)");
    for view in [View::Gpus, View::Processes] {
        app.view = view;
        let mut term = Terminal::new(TestBackend::new(200, 50))?;
        let ui = time_frames(frames, || term.draw(|f| gpuscope_tui::draw::draw(f, &app)).map(|_| ()))?;
        let screen: Vec<String> =
            term.backend().buffer().content.chunks(200).map(|row| row.iter().map(|c| c.symbol()).collect()).collect();
        let text = screen.join("\n");
        let mut plain = Terminal::new(TestBackend::new(200, 50))?;
        let base = time_frames(frames, || {
            plain.draw(|f| f.render_widget(Paragraph::new(text.as_str()), f.area())).map(|_| ())
        })?;
        println!(
            "  {:<10} {:>8.1} us   baseline (same text, one paragraph) {:>8.1} us   ratio {:>5.2}x   (target <= 1000 us)",
            view.title(),
            ui,
            base,
            ui / base
        );
    }
    Ok(())
}

/// Mean microseconds per call of `f` over `n` calls (after 10 warm-up calls).
fn time_frames<E>(n: u32, mut f: impl FnMut() -> Result<(), E>) -> Result<f64, E> {
    for _ in 0..10 {
        f()?;
    }
    let start = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(n))
}
