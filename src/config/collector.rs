//! The collector's configuration (`deploy/collector.toml` documents every key):
//! `GPUSCOPE_COLLECTOR_<KEY>` variables and `--<key>` flags for every key, and the rules'
//! settings as an `[analysis]` section (or a separate `--analysis-config` file).

use super::{Blankable, Layers, Origins, Sourced, UsageError};
use gpuscope_analysis::AnalysisConfig;
use gpuscope_collector::CollectorConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Collector settings from one source (a file, or the environment and flags); `None` where unset.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct CollectorLayer {
    /// OTLP/gRPC listen address [default: 0.0.0.0:4317].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_GRPC", value_name = "ADDR")]
    pub grpc: Option<SocketAddr>,
    /// OTLP/HTTP listen address [default: 0.0.0.0:4318].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_HTTP", value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Findings API and metrics listen address [default: 0.0.0.0:9467].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_API", value_name = "ADDR")]
    pub api: Option<SocketAddr>,
    /// Largest OTLP request accepted, bytes (larger ones get 413) [default: 16777216].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Batches waiting for analysis before pushes are answered "busy" (503) [default: 1024].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_QUEUE_BATCHES", value_name = "BATCHES")]
    pub queue_batches: Option<usize>,
    /// Closed findings kept in memory; older ones are read back from the store [default: 10000].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_CLOSED_FINDINGS_KEPT", value_name = "FINDINGS")]
    pub closed_findings_kept: Option<usize>,
    /// Flag a node that has not reported for this many seconds [default: 60].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_STALE_AFTER_S", value_name = "SECONDS")]
    pub stale_after_s: Option<f64>,
    /// Connections each listener holds at once; more are closed as they arrive [default: 4096].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_MAX_CONNECTIONS", value_name = "CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Close a connection whose request head takes longer than this to arrive [default: 10].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_HEADER_READ_TIMEOUT_S", value_name = "SECONDS")]
    pub header_read_timeout_s: Option<f64>,
    /// Answer 408 / DEADLINE_EXCEEDED to a request whose body takes longer than this [default: 30].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_BODY_READ_TIMEOUT_S", value_name = "SECONDS")]
    pub body_read_timeout_s: Option<f64>,
    /// Close a connection with no request for this long [default: 60].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_IDLE_TIMEOUT_S", value_name = "SECONDS")]
    pub idle_timeout_s: Option<f64>,
    /// Pushes a second one client address may make, in bursts of twice that; more get 429 /
    /// RESOURCE_EXHAUSTED and are retried [default: 50].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_MAX_PUSHES_PER_CLIENT_PER_S", value_name = "PUSHES")]
    pub max_pushes_per_client_per_s: Option<f64>,
    /// Drop samples timestamped more than this ahead of the receive time [default: 60].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_MAX_CLOCK_SKEW_S", value_name = "SECONDS")]
    pub max_clock_skew_s: Option<f64>,
    /// Nodes held in memory; samples of more are refused and counted [default: 20000].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_MAX_NODES", value_name = "NODES")]
    pub max_nodes: Option<usize>,
    /// Drop a node silent this long from memory; its history stays in the store [default: 86400].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_EVICT_AFTER_S", value_name = "SECONDS")]
    pub evict_after_s: Option<f64>,
    /// GPUs kept per node sample (the highest indexes beyond it are dropped) [default: 64].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_MAX_GPUS_PER_NODE", value_name = "GPUS")]
    pub max_gpus_per_node: Option<usize>,
    /// GPU processes kept per node sample [default: 1024].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_MAX_PROCESSES_PER_NODE", value_name = "PROCESSES")]
    pub max_processes_per_node: Option<usize>,
    /// SQLite database for findings history and node inventory, kept across restarts ("" = memory only).
    #[arg(long, env = "GPUSCOPE_COLLECTOR_STORE", value_name = "PATH")]
    pub store: Option<Blankable<PathBuf>>,
    /// Require this bearer token on OTLP pushes and, without api_token, on the API ("" = no
    /// authentication). Visible to `ps` as a flag: prefer token_file.
    #[arg(long, env = "GPUSCOPE_COLLECTOR_TOKEN", hide_env_values = true)]
    pub token: Option<Blankable<String>>,
    /// Read the bearer token (see token) from this file.
    #[arg(long, env = "GPUSCOPE_COLLECTOR_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<Blankable<PathBuf>>,
    /// Require this bearer token on the API instead of token ("" = the same as token).
    #[arg(long, env = "GPUSCOPE_COLLECTOR_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<Blankable<String>>,
    /// Read the API's bearer token (see api_token) from this file.
    #[arg(long, env = "GPUSCOPE_COLLECTOR_API_TOKEN_FILE", value_name = "PATH")]
    pub api_token_file: Option<Blankable<PathBuf>>,
    /// Serve OTLP and the API over TLS: PEM certificate chain (with tls_key).
    #[arg(long, env = "GPUSCOPE_COLLECTOR_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<Blankable<PathBuf>>,
    /// Serve OTLP and the API over TLS: PEM private key (with tls_cert).
    #[arg(long, env = "GPUSCOPE_COLLECTOR_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<Blankable<PathBuf>>,
    /// With TLS, require client certificates signed by this PEM CA on every listener (mTLS).
    #[arg(long, env = "GPUSCOPE_COLLECTOR_TLS_CLIENT_CA", value_name = "PATH")]
    pub tls_client_ca: Option<Blankable<PathBuf>>,
    /// Rule thresholds and timing from this TOML file (eval_span_s, time_scale, [rules.<id>]) instead of [analysis].
    #[arg(long, env = "GPUSCOPE_COLLECTOR_ANALYSIS_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub analysis_config: Option<PathBuf>,
    /// Wall seconds per workload second (1/speed for a simulator running faster than real time).
    #[arg(long, env = "GPUSCOPE_COLLECTOR_TIME_SCALE", value_name = "RATIO")]
    #[serde(skip)]
    pub time_scale: Option<f64>,
    /// The rules' settings (the file's [analysis] section).
    #[arg(skip)]
    pub analysis: Option<AnalysisConfig>,
}

/// The collector's command line: a configuration file under variables under flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CollectorArgs {
    /// Configuration file (TOML, like deploy/collector.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Every configuration key as a flag (and a GPUSCOPE_COLLECTOR_* variable).
    #[command(flatten)]
    pub settings: Sourced<CollectorLayer>,
    /// Load and check the configuration, print the effective one and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// The collector's effective configuration (printed by `collector --check-config`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectorSettings {
    /// OTLP/gRPC address.
    pub grpc: SocketAddr,
    /// OTLP/HTTP address.
    pub http: SocketAddr,
    /// Findings API address.
    pub api: SocketAddr,
    /// Largest request, bytes.
    pub max_body_bytes: usize,
    /// Batches queued before answering "busy".
    pub queue_batches: usize,
    /// Closed findings kept in memory.
    pub closed_findings_kept: usize,
    /// A node silent this long is stale.
    #[serde(rename = "stale_after_s", serialize_with = "super::as_secs")]
    pub stale_after: Duration,
    /// Connections per listener.
    pub max_connections: usize,
    /// Time for a request head to arrive.
    #[serde(rename = "header_read_timeout_s", serialize_with = "super::as_secs")]
    pub header_read_timeout: Duration,
    /// Time for a request body to arrive.
    #[serde(rename = "body_read_timeout_s", serialize_with = "super::as_secs")]
    pub body_read_timeout: Duration,
    /// Time a connection may sit without a request.
    #[serde(rename = "idle_timeout_s", serialize_with = "super::as_secs")]
    pub idle_timeout: Duration,
    /// Pushes a second per client address.
    pub max_pushes_per_client_per_s: f64,
    /// How far ahead of the receive time a sample may be.
    #[serde(rename = "max_clock_skew_s", serialize_with = "super::as_secs")]
    pub max_clock_skew: Duration,
    /// Nodes held in memory.
    pub max_nodes: usize,
    /// Silence after which a node leaves memory.
    #[serde(rename = "evict_after_s", serialize_with = "super::as_secs")]
    pub evict_after: Duration,
    /// GPUs kept per node sample.
    pub max_gpus_per_node: usize,
    /// GPU processes kept per node sample.
    pub max_processes_per_node: usize,
    /// Findings database (`None`: memory only).
    #[serde(serialize_with = "super::blank_if_none")]
    pub store: Option<PathBuf>,
    /// Bearer token pushes (and the API, without an API token) must present (printed hidden).
    #[serde(serialize_with = "hidden")]
    pub token: Option<String>,
    /// File holding `token`.
    #[serde(serialize_with = "super::blank_if_none")]
    pub token_file: Option<PathBuf>,
    /// Bearer token the API must be given instead of `token` (printed hidden).
    #[serde(serialize_with = "hidden")]
    pub api_token: Option<String>,
    /// File holding `api_token`.
    #[serde(serialize_with = "super::blank_if_none")]
    pub api_token_file: Option<PathBuf>,
    /// The tokens read from the files, pushes' then the API's.
    #[serde(skip)]
    pub file_tokens: (Option<String>, Option<String>),
    /// TLS certificate chain.
    #[serde(serialize_with = "super::blank_if_none")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key.
    #[serde(serialize_with = "super::blank_if_none")]
    pub tls_key: Option<PathBuf>,
    /// CA of the clients' certificates (mTLS).
    #[serde(serialize_with = "super::blank_if_none")]
    pub tls_client_ca: Option<PathBuf>,
    /// The rules' settings (opaque here; printed as where they came from).
    #[serde(skip)]
    pub analysis: AnalysisConfig,
}

/// The token in `file` (one line; surrounding white space ignored) when `file` is set; an error
/// naming the key when the token is also set directly, or the file is unreadable or empty.
fn read_token(
    at: &Origins,
    (key, direct): (&str, &Option<String>),
    (file_key, file): (&str, &Option<PathBuf>),
) -> Result<Option<String>, UsageError> {
    let Some(path) = file else { return Ok(None) };
    if direct.is_some() {
        return Err(at.error(file_key, format!("set {key} or {file_key}, not both")));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| at.error(file_key, format!("cannot read {}: {e}", path.display())))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(at.error(file_key, format!("{} is empty: an empty token would admit anyone", path.display())));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(at.error(file_key, format!("{} holds more than one token (white space inside)", path.display())));
    }
    Ok(Some(token.to_string()))
}

fn hidden<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if v.is_some() { "(hidden)" } else { "" })
}

impl Default for CollectorSettings {
    fn default() -> Self {
        let c = CollectorConfig::default();
        CollectorSettings {
            grpc: c.grpc,
            http: c.http,
            api: c.api,
            max_body_bytes: c.max_body,
            queue_batches: c.queue,
            closed_findings_kept: c.closed_findings_kept,
            stale_after: Duration::from_millis(c.stale_after_ms),
            max_connections: c.limits.max_connections,
            header_read_timeout: c.limits.header_read_timeout,
            body_read_timeout: c.limits.body_read_timeout,
            idle_timeout: c.limits.idle_timeout,
            max_clock_skew: Duration::from_millis(c.max_clock_skew_ms),
            max_pushes_per_client_per_s: c.max_pushes_per_client_per_s,
            max_nodes: c.nodes.max_nodes,
            evict_after: Duration::from_millis(c.nodes.evict_after_ms),
            max_gpus_per_node: c.max_gpus_per_node,
            max_processes_per_node: c.max_processes_per_node,
            store: c.store,
            token: c.token,
            token_file: None,
            api_token: c.api_token,
            api_token_file: None,
            file_tokens: (None, None),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            analysis: c.analysis,
        }
    }
}

/// The effective configuration and where its analysis settings came from.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub settings: CollectorSettings,
    /// Where `[analysis]` came from, for `--check-config`.
    pub analysis_from: String,
    /// What to warn about once logging is on.
    pub warnings: Vec<String>,
}

impl CollectorSettings {
    /// Loads the file (if any) under the environment under the flags, and validates.
    pub fn load(args: &CollectorArgs) -> Result<Loaded, UsageError> {
        let file = match &args.config {
            Some(path) => Some((path.clone(), super::read_file::<CollectorLayer>(path)?)),
            None => None,
        };
        Self::resolve(file, &args.settings)
    }

    /// Merges the layers key by key and validates the result.
    fn resolve(file: Option<(PathBuf, CollectorLayer)>, cli: &Sourced<CollectorLayer>) -> Result<Loaded, UsageError> {
        let d = CollectorSettings::default();
        let file_has_analysis = file.as_ref().is_some_and(|(_, f)| f.analysis.is_some());
        let mut l = Layers::new(file.clone(), cli);
        let analysis_file = l.optional("analysis_config", |s| &s.analysis_config);
        let (mut analysis, mut analysis_from) = match (&analysis_file, &file) {
            (Some(p), _) => (super::read_file::<AnalysisConfig>(p)?, format!("analysis config file {}", p.display())),
            (None, Some((path, f))) if file_has_analysis => {
                (f.analysis.clone().unwrap_or_default(), format!("[analysis] of config file {}", path.display()))
            }
            _ => (d.analysis.clone(), "defaults".to_string()),
        };
        let time_scale = l.optional("time_scale", |s| &s.time_scale);
        if let Some(s) = time_scale {
            analysis.time_scale = Some(s);
            analysis_from.push_str(&format!(", time_scale {s} from {}", l.origins().origin("time_scale")));
        }
        let stale_after_s = l.get("stale_after_s", |s| &s.stale_after_s, d.stale_after.as_secs_f64());
        let mut seconds = |key: &'static str, field: fn(&CollectorLayer) -> &Option<f64>, default: Duration| {
            let v = l.get(key, field, default.as_secs_f64());
            match Duration::try_from_secs_f64(v) {
                Ok(d) if v > 0.0 => Ok(d),
                _ => Err(l.origins().error(key, format!("must be a positive number of seconds, not {v}"))),
            }
        };
        let header_read_timeout =
            seconds("header_read_timeout_s", |s| &s.header_read_timeout_s, d.header_read_timeout)?;
        let body_read_timeout = seconds("body_read_timeout_s", |s| &s.body_read_timeout_s, d.body_read_timeout)?;
        let idle_timeout = seconds("idle_timeout_s", |s| &s.idle_timeout_s, d.idle_timeout)?;
        let max_clock_skew = seconds("max_clock_skew_s", |s| &s.max_clock_skew_s, d.max_clock_skew)?;
        let evict_after = seconds("evict_after_s", |s| &s.evict_after_s, d.evict_after)?;
        let settings = CollectorSettings {
            grpc: l.get("grpc", |s| &s.grpc, d.grpc),
            http: l.get("http", |s| &s.http, d.http),
            api: l.get("api", |s| &s.api, d.api),
            max_body_bytes: l.get("max_body_bytes", |s| &s.max_body_bytes, d.max_body_bytes),
            queue_batches: l.get("queue_batches", |s| &s.queue_batches, d.queue_batches),
            closed_findings_kept: l.get("closed_findings_kept", |s| &s.closed_findings_kept, d.closed_findings_kept),
            stale_after: Duration::try_from_secs_f64(stale_after_s).unwrap_or_default(),
            max_connections: l.get("max_connections", |s| &s.max_connections, d.max_connections),
            header_read_timeout,
            body_read_timeout,
            idle_timeout,
            max_clock_skew,
            max_pushes_per_client_per_s: l.get(
                "max_pushes_per_client_per_s",
                |s| &s.max_pushes_per_client_per_s,
                d.max_pushes_per_client_per_s,
            ),
            max_nodes: l.get("max_nodes", |s| &s.max_nodes, d.max_nodes),
            evict_after,
            max_gpus_per_node: l.get("max_gpus_per_node", |s| &s.max_gpus_per_node, d.max_gpus_per_node),
            max_processes_per_node: l.get(
                "max_processes_per_node",
                |s| &s.max_processes_per_node,
                d.max_processes_per_node,
            ),
            store: l.get("store", |s| &s.store, Blankable(d.store)).0,
            token: l.get("token", |s| &s.token, Blankable(d.token)).0,
            token_file: l.get("token_file", |s| &s.token_file, Blankable(None)).0,
            api_token: l.get("api_token", |s| &s.api_token, Blankable(d.api_token)).0,
            api_token_file: l.get("api_token_file", |s| &s.api_token_file, Blankable(None)).0,
            file_tokens: (None, None),
            tls_cert: l.get("tls_cert", |s| &s.tls_cert, Blankable(d.tls_cert)).0,
            tls_key: l.get("tls_key", |s| &s.tls_key, Blankable(d.tls_key)).0,
            tls_client_ca: l.get("tls_client_ca", |s| &s.tls_client_ca, Blankable(d.tls_client_ca)).0,
            analysis,
        };
        let at = l.origins();
        if let Some(s) = time_scale
            && !(s.is_finite() && s > 0.0)
        {
            return Err(at.error("time_scale", format!("must be positive, not {s}")));
        }
        if !(stale_after_s.is_finite() && stale_after_s > 0.0) {
            return Err(at.error("stale_after_s", format!("must be a positive number of seconds, not {stale_after_s}")));
        }
        settings.validate(at)?;
        let mut settings = settings;
        settings.file_tokens = (
            read_token(at, ("token", &settings.token), ("token_file", &settings.token_file))?,
            read_token(at, ("api_token", &settings.api_token), ("api_token_file", &settings.api_token_file))?,
        );
        let warnings = ["token", "api_token"]
            .into_iter()
            .filter(|key| matches!(at.origin(key), super::Origin::Flag(_)))
            .map(|key| {
                let flag = key.replace('_', "-");
                format!("--{flag} is visible to every user of this host (ps): prefer --{flag}-file")
            })
            .collect();
        Ok(Loaded { settings, analysis_from, warnings })
    }

    fn validate(&self, at: &Origins) -> Result<(), UsageError> {
        if self.max_body_bytes == 0 {
            return Err(at.error("max_body_bytes", "must be at least 1"));
        }
        if self.queue_batches == 0 {
            return Err(at.error("queue_batches", "must be at least 1"));
        }
        let rate = self.max_pushes_per_client_per_s;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(at.error("max_pushes_per_client_per_s", format!("must be a positive number, not {rate}")));
        }
        for (key, v) in [
            ("max_connections", self.max_connections),
            ("max_nodes", self.max_nodes),
            ("max_gpus_per_node", self.max_gpus_per_node),
            ("max_processes_per_node", self.max_processes_per_node),
        ] {
            if v == 0 {
                return Err(at.error(key, "must be at least 1"));
            }
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err(at.error("tls_client_ca", "needs tls_cert and tls_key: client certificates are a TLS feature"));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err(at.error("tls_cert", "needs tls_key, the certificate's private key")),
            (None, Some(_)) => Err(at.error("tls_key", "needs tls_cert, the certificate chain it belongs to")),
            _ => Ok(()),
        }
    }

    /// The push token: the key's or the file's.
    pub fn push_token(&self) -> Option<String> {
        self.token.clone().or_else(|| self.file_tokens.0.clone())
    }

    /// The API's own token: the key's or the file's.
    pub fn api_only_token(&self) -> Option<String> {
        self.api_token.clone().or_else(|| self.file_tokens.1.clone())
    }

    /// The collector crate's configuration.
    // The update stays for settings the collector crate adds later: they keep their defaults.
    #[allow(clippy::needless_update)]
    pub fn collector_config(&self) -> CollectorConfig {
        CollectorConfig {
            grpc: self.grpc,
            http: self.http,
            api: self.api,
            max_body: self.max_body_bytes,
            queue: self.queue_batches,
            closed_findings_kept: self.closed_findings_kept,
            stale_after_ms: u64::try_from(self.stale_after.as_millis()).unwrap_or(u64::MAX),
            analysis: self.analysis.clone(),
            store: self.store.clone(),
            token: self.push_token(),
            api_token: self.api_only_token(),
            tls: self.tls_cert.clone().zip(self.tls_key.clone()),
            tls_client_ca: self.tls_client_ca.clone(),
            limits: gpuscope_collector::ConnLimits {
                max_connections: self.max_connections,
                header_read_timeout: self.header_read_timeout,
                body_read_timeout: self.body_read_timeout,
                idle_timeout: self.idle_timeout,
            },
            nodes: gpuscope_collector::NodeLimits {
                max_nodes: self.max_nodes,
                evict_after_ms: u64::try_from(self.evict_after.as_millis()).unwrap_or(u64::MAX),
            },
            max_clock_skew_ms: u64::try_from(self.max_clock_skew.as_millis()).unwrap_or(u64::MAX),
            max_pushes_per_client_per_s: self.max_pushes_per_client_per_s,
            max_gpus_per_node: self.max_gpus_per_node,
            max_processes_per_node: self.max_processes_per_node,
            ..CollectorConfig::default()
        }
    }

    /// The effective configuration in the file's format (the analysis settings as a comment).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CollectorArgs,
    }

    fn resolve(text: &str, argv: &[&str]) -> Result<CollectorSettings, UsageError> {
        let layer: CollectorLayer = toml::from_str(text).map_err(|e| UsageError(e.to_string()))?;
        let cli = Cli::try_parse_from(std::iter::once("x").chain(argv.iter().copied())).unwrap();
        CollectorSettings::resolve(Some(("collector.toml".into(), layer)), &cli.args.settings).map(|l| l.settings)
    }

    #[test]
    fn the_shipped_default_config_parses_to_the_defaults() {
        assert_eq!(resolve(include_str!("../../deploy/collector.toml"), &[]).unwrap(), CollectorSettings::default());
    }

    #[test]
    fn the_printed_configuration_reads_back_to_itself() {
        let cfg = CollectorSettings {
            api: "127.0.0.1:9999".parse().unwrap(),
            stale_after: Duration::from_millis(2500),
            store: Some("/var/lib/gpuscope/findings.db".into()),
            ..CollectorSettings::default()
        };
        assert_eq!(resolve(&cfg.to_toml().unwrap(), &[]).unwrap(), cfg);
    }

    #[test]
    fn the_closed_findings_bound_reaches_the_collector_from_the_file_and_the_flag() {
        let from_file = resolve("closed_findings_kept = 500\n", &[]).unwrap();
        assert_eq!(from_file.collector_config().closed_findings_kept, 500);
        let from_flag = resolve("closed_findings_kept = 500\n", &["--closed-findings-kept", "20"]).unwrap();
        assert_eq!(from_flag.collector_config().closed_findings_kept, 20);
    }

    #[test]
    fn the_time_scale_flag_applies_over_the_analysis_section() {
        let cfg = resolve("[analysis]\ntime_scale = 0.5\n", &["--time-scale", "0.1", "--queue-batches", "8"]).unwrap();
        assert_eq!(cfg.analysis.time_scale, Some(0.1));
        assert_eq!(cfg.queue_batches, 8);
        let cfg = resolve("[analysis]\ntime_scale = 0.5\n", &[]).unwrap();
        assert_eq!(cfg.analysis.time_scale, Some(0.5));
    }

    #[test]
    fn mistakes_name_the_key_and_where_it_came_from() {
        let e = resolve("", &["--time-scale=-1"]).unwrap_err().to_string();
        assert_eq!(e, "flag --time-scale: key `time_scale`: must be positive, not -1");
        let e = resolve("tls_cert = \"/etc/cert.pem\"\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("config file collector.toml: key `tls_cert`: needs tls_key"), "{e}");
        let cfg = resolve("tls_cert = \"/etc/cert.pem\"\n", &["--tls-key", "/etc/key.pem"]).unwrap();
        assert!(cfg.collector_config().tls.is_some());
    }
}
