//! `decodebench N`: the collector's decoder (OTLP request → node snapshots through the
//! catalogue) run N times on one pre-decoded push of the 8×H100 bench node, nothing else. Run it
//! under `valgrind --tool=callgrind` at two values of N: the difference in instructions divided
//! by the difference in N is the decoder's cost per push, exactly, on any machine — the number to
//! compare between two builds where wall-clock timings are too noisy (bench/README.md).

use anyhow::{Context, Result};
use gpuscope_exporters::otlp::{Identity, encode};
use gpuscope_sim::{Scenario, Simulation};

fn main() -> Result<()> {
    let n: usize = match std::env::args().nth(1) {
        Some(v) => v.parse().with_context(|| format!("{v:?} is not a number of iterations"))?,
        None => 200,
    };
    let sim = Simulation::new(Scenario::load("healthy-bf16-training")?, 0)?;
    let snap = gpuscope_sim::snapshot::snapshot(&sim, 100.0);
    let req = encode(&[&snap], &Identity { instance: "bench".into(), start_unix_nano: 1 });
    let mut snapshots = 0;
    for _ in 0..n {
        snapshots += gpuscope_collector::decode::decode(&req).snapshots.len();
    }
    println!("{n} decodes, {snapshots} snapshots");
    Ok(())
}
