//! `gpuscope top`: the interactive terminal UI on this node (sampled in-process by the agent's
//! engine, the rules run locally), on a collector's fleet (`--collector`), or on a recording
//! (`--replay`).

use crate::config::{AgentArgs, AgentConfig, UsageError};
use anyhow::{Context, Result, bail};
use gpuscope_analysis::AnalysisConfig;
use gpuscope_tui::feed::{self, LocalAnalysis};
use gpuscope_tui::{App, SourceKind, TerminalGuard, Theme};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::mpsc;

/// How the UI looks and what it may do; shared by `top` and `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct UiArgs {
    /// Colour theme.
    #[arg(long, default_value = "dark", value_parser = ["dark", "light"])]
    pub theme: String,
    /// No colours (also when NO_COLOR is set and not empty).
    #[arg(long)]
    pub no_color: bool,
    /// Never send signals to processes.
    #[arg(long)]
    pub readonly: bool,
}

impl UiArgs {
    /// The theme the flags and NO_COLOR ask for.
    pub fn theme(&self) -> Result<Theme> {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme::pick(&self.theme, !(self.no_color || no_color_env))
            .ok_or_else(|| UsageError(format!("--theme must be dark or light, not {}", self.theme)).into())
    }
}

/// `top` options.
#[derive(Debug, Clone, clap::Args)]
pub struct TopArgs {
    /// Wall seconds per workload second for the rules' periods (1 on a real node; a simulated
    /// node running at speed S needs 1/S).
    #[arg(long, value_name = "RATIO")]
    pub time_scale: Option<f64>,
    /// How to sample this node (the agent's settings: NVML library, /proc root, interval…).
    #[command(flatten)]
    pub config: AgentArgs,
    /// Fleet mode: the nodes a collector knows, from its API (http://host:9467).
    #[arg(long, value_name = "URL", conflicts_with = "replay")]
    pub collector: Option<String>,
    /// Bearer token sent to the collector's API (prefer --token-file: a command line is
    /// visible to every user in `ps`).
    #[arg(
        long,
        env = "GPUSCOPE_COLLECTOR_TOKEN",
        hide_env_values = true,
        requires = "collector",
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// File whose first line is the bearer token sent to the collector's API.
    #[arg(long, value_name = "FILE", env = "GPUSCOPE_COLLECTOR_TOKEN_FILE", requires = "collector")]
    pub token_file: Option<PathBuf>,
    /// CA certificate(s), PEM, that signed the collector's certificate: needed for an https://
    /// collector URL, as the agent's otlp_ca_file is for its push.
    #[arg(long, value_name = "FILE", env = "GPUSCOPE_COLLECTOR_CA_FILE", requires = "collector")]
    pub ca_file: Option<PathBuf>,
    /// Play a recording (from `gpuscope record`) instead of sampling this node.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Replay speed: recorded seconds per second (+ and - change it while playing).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Look and permissions of the UI.
    #[command(flatten)]
    pub ui: UiArgs,
}

/// Fails early, with advice, when there is no terminal to draw on.
pub fn need_terminal(alternative: &str) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(UsageError(format!("the interactive UI needs a terminal; {alternative}")));
    }
    Ok(())
}

/// Runs the UI until the user quits, then restores the terminal.
pub fn run_ui(
    mut app: App,
    inputs: mpsc::Receiver<gpuscope_tui::Input>,
    follow: Option<mpsc::Sender<Option<String>>>,
) -> Result<()> {
    let mut guard = TerminalGuard::enter()?;
    let result = gpuscope_tui::run(&mut guard.terminal, &mut app, &inputs, follow.as_ref());
    drop(guard);
    Ok(result?)
}

/// Runs `top`.
pub fn run(a: &TopArgs) -> Result<()> {
    let theme = a.ui.theme()?;
    if !(a.speed > 0.0 && a.speed <= 1000.0) {
        bail!(UsageError(format!("--speed must be in (0, 1000], not {}", a.speed)));
    }
    if let Some(url) = &a.collector {
        let token = match &a.token_file {
            Some(f) => Some(read_token(f)?),
            None => a.token.clone(),
        };
        if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            bail!(UsageError("--token is empty".into()));
        }
        // It goes into a request header: a line break would end the header early.
        if token.as_deref().is_some_and(|t| t.bytes().any(|b| b.is_ascii_control())) {
            bail!(UsageError("the token holds control characters".into()));
        }
        let client = gpuscope_tui::fleet::Client::new(url, token, a.ca_file.as_deref())
            .map_err(|e| UsageError(e.to_string()))?;
        need_terminal("for one answer use the collector's API (curl URL/api/v1/nodes)")?;
        let (tx, rx) = mpsc::channel();
        let (follow, followed) = mpsc::channel();
        gpuscope_tui::fleet::stream(client.clone(), tx.clone())?;
        gpuscope_tui::fleet::poll(client, std::time::Duration::from_secs(1), followed, tx.clone())?;
        feed::terminal_events(tx)?;
        let mut app = App::new(SourceKind::Collector { url: url.clone() }, theme);
        app.fleet = Some(gpuscope_tui::fleet::Fleet { url: url.clone(), ..Default::default() });
        app.view = gpuscope_tui::state::View::Fleet;
        // The processes on screen run on other machines.
        app.readonly = true;
        return run_ui(app, rx, Some(follow));
    }
    if let Some(file) = &a.replay {
        let rec = gpuscope_tui::recording::read(file)?;
        if rec.snapshots.is_empty() {
            bail!("{} holds no snapshot", file.display());
        }
        need_terminal("use `gpuscope top --replay` in a terminal")?;
        let app = feed::replay_app(&file.display().to_string(), rec, theme, a.speed);
        let (tx, rx) = mpsc::channel();
        feed::terminal_events(tx).context("cannot read the terminal")?;
        return run_ui(app, rx, None);
    }
    if a.time_scale.is_some_and(|s| !positive(s)) {
        bail!(UsageError("--time-scale must be positive".into()));
    }
    let cfg = AgentConfig::load(&a.config)?;
    need_terminal("for one reading use `gpuscope query`")?;
    // Log lines would tear the screen: silent unless GPUSCOPE_LOG asks (and stderr goes elsewhere).
    crate::logging::init("off");
    // With [cupti] on, the UI receives the injection libraries' summaries itself, as the agent
    // would. A running agent holding the socket keeps it: the UI then goes on without profiles.
    let (cupti, cupti_note) = if cfg.cupti.enabled {
        let opts = gpuscope_agent::cupti::ReceiverOptions::new(cfg.cupti.socket.clone(), cfg.procfs_root.clone());
        match gpuscope_agent::cupti::Receiver::start(opts) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(format!("no kernel profiles here: {e}"))),
        }
    } else {
        (None, None)
    };
    let engine = gpuscope_agent::Engine::start(gpuscope_agent::AgentOptions { cupti, ..cfg.agent_options() })
        .context("cannot start the sampling thread")?;
    let (tx, rx) = mpsc::channel();
    feed::snapshots(
        engine.subscribe(),
        Some(LocalAnalysis::new(AnalysisConfig { time_scale: a.time_scale, ..AnalysisConfig::default() })),
        None,
        tx.clone(),
    )?;
    feed::terminal_events(tx)?;
    let mut app = App::new(SourceKind::Local, theme);
    app.readonly = a.ui.readonly;
    app.speed = 1.0 / a.time_scale.unwrap_or(1.0);
    app.message = cupti_note;
    let result = run_ui(app, rx, None);
    engine.stop();
    result
}

/// A finite number above zero (NaN is not).
pub fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// The token in the first line of `file` (surrounding white space dropped).
fn read_token(file: &std::path::Path) -> Result<String> {
    let text =
        std::fs::read_to_string(file).map_err(|e| UsageError(format!("--token-file {}: {e}", file.display())))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        bail!(UsageError(format!("--token-file {}: the first line is empty", file.display())));
    }
    Ok(token)
}
