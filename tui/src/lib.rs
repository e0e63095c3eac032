//! `gpuscope top`: the interactive terminal UI. `state` is what the UI knows, `update` turns
//! inputs (keys, mouse, snapshots, findings, time) into state changes, `draw` turns state into
//! a frame, and `run` is the one loop between them. `feed` brings inputs from their sources on
//! their own threads; `recording` is the flight recorder's file format.

pub mod delta;
pub mod draw;
pub mod feed;
pub mod fleet;
pub mod recording;
pub mod run;
pub mod state;
pub mod theme;
pub mod update;

pub use run::{TerminalGuard, TuiError, run};
pub use state::{App, SourceKind};
pub use theme::Theme;
pub use update::{Effect, Input};
