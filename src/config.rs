//! The agent's configuration: a TOML file, overridden by `GPUSCOPE_*` environment variables,
//! overridden by flags. Every mistake names the key and where it came from.

use gpuscope_agent::AgentOptions;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration mistake: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Which dcgm-exporter compatibility to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    /// Only gpuscope's names.
    None,
    /// Also dcgm-exporter's names, types, units and labels.
    Dcgm,
}

/// The agent's configuration (documented in `deploy/agent.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Prometheus endpoint address.
    pub listen: String,
    /// Fast sampling interval, ms.
    pub interval_ms: u64,
    /// Slow sampling interval, ms.
    pub slow_interval_ms: u64,
    /// NVML library path ("" = system).
    pub nvml_lib: String,
    /// proc root.
    pub procfs_root: PathBuf,
    /// sys root.
    pub sysfs_root: PathBuf,
    /// kubelet pod log directory.
    pub pod_logs_root: PathBuf,
    /// Host name ("" = from the kernel).
    pub hostname: String,
    /// Job label ("" = none).
    pub job: String,
    /// Serve native names.
    pub native_metrics: bool,
    /// dcgm-exporter compatibility.
    pub compat: Compat,
    /// Log level.
    pub log_level: String,
    /// Labels on every series.
    pub labels: BTreeMap<String, String>,
    /// OTLP push: collector URL ("" = no push), e.g. http://collector:4318.
    pub otlp_endpoint: String,
    /// OTLP transport: "http/protobuf" or "grpc".
    pub otlp_protocol: String,
    /// One OTLP point per series per this interval, ms (>= interval_ms).
    pub otlp_interval_ms: u64,
    /// Extra OTLP request headers, e.g. authorization = "Bearer …".
    pub otlp_headers: BTreeMap<String, String>,
    /// Where batches wait while the collector is unreachable ("" = in memory).
    pub otlp_spill_dir: String,
    /// Bound of the spill queue, bytes.
    pub otlp_spill_max_bytes: u64,
    /// PEM file of the CA that signed the collector's certificate ("" = none; needed for https).
    pub otlp_ca_file: String,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            listen: "0.0.0.0:9466".into(),
            interval_ms: 1000,
            slow_interval_ms: 30_000,
            nvml_lib: String::new(),
            procfs_root: "/proc".into(),
            sysfs_root: "/sys".into(),
            pod_logs_root: "/var/log/pods".into(),
            hostname: String::new(),
            job: String::new(),
            native_metrics: true,
            compat: Compat::None,
            log_level: "info".into(),
            labels: BTreeMap::new(),
            otlp_endpoint: String::new(),
            otlp_protocol: "http/protobuf".into(),
            otlp_interval_ms: 10_000,
            otlp_headers: BTreeMap::new(),
            otlp_spill_dir: String::new(),
            otlp_spill_max_bytes: 256 << 20,
            otlp_ca_file: String::new(),
        }
    }
}

/// Flags that override the file and the environment (shared by `agent` and `query`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Configuration file (TOML).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Prometheus endpoint address, e.g. 127.0.0.1:9466.
    #[arg(long)]
    pub listen: Option<String>,
    /// Fast sampling interval in milliseconds (>= 100).
    #[arg(long)]
    pub interval_ms: Option<u64>,
    /// Slow sampling interval in milliseconds.
    #[arg(long)]
    pub slow_interval_ms: Option<u64>,
    /// NVML library to load.
    #[arg(long)]
    pub nvml_lib: Option<String>,
    /// Root of the proc filesystem.
    #[arg(long)]
    pub procfs_root: Option<PathBuf>,
    /// Root of the sys filesystem.
    #[arg(long)]
    pub sysfs_root: Option<PathBuf>,
    /// Host name to report.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Job label.
    #[arg(long)]
    pub job: Option<String>,
    /// dcgm-exporter compatibility names.
    #[arg(long, value_enum)]
    pub compat: Option<Compat>,
    /// Serve only the compatibility names (with --compat dcgm).
    #[arg(long)]
    pub no_native: bool,
    /// Push OTLP to this collector URL.
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// OTLP transport: http/protobuf or grpc.
    #[arg(long)]
    pub otlp_protocol: Option<String>,
    /// OTLP push interval in milliseconds.
    #[arg(long)]
    pub otlp_interval_ms: Option<u64>,
    /// Directory for batches waiting for the collector.
    #[arg(long)]
    pub otlp_spill_dir: Option<String>,
}

fn env_var(key: &str) -> Option<(String, String)> {
    let name = format!("GPUSCOPE_{}", key.to_ascii_uppercase());
    std::env::var(&name).ok().map(|v| (name, v))
}

fn parse_env<T: std::str::FromStr>(name: &str, v: &str, what: &str) -> Result<T, UsageError> {
    v.trim().parse().map_err(|_| UsageError(format!("environment {name}={v:?}: not {what}")))
}

impl AgentConfig {
    /// Loads the file (if any), then the environment, then the flags, and validates.
    pub fn load(o: &Overrides) -> Result<AgentConfig, UsageError> {
        let (mut cfg, origin) = match &o.config {
            Some(path) => (Self::from_file(path)?, format!("config file {}", path.display())),
            None => (AgentConfig::default(), "defaults".to_string()),
        };
        cfg.apply_env()?;
        if let Some(v) = &o.listen {
            cfg.listen = v.clone();
        }
        if let Some(v) = o.interval_ms {
            cfg.interval_ms = v;
        }
        if let Some(v) = o.slow_interval_ms {
            cfg.slow_interval_ms = v;
        }
        if let Some(v) = &o.nvml_lib {
            cfg.nvml_lib = v.clone();
        }
        if let Some(v) = &o.procfs_root {
            cfg.procfs_root = v.clone();
        }
        if let Some(v) = &o.sysfs_root {
            cfg.sysfs_root = v.clone();
        }
        if let Some(v) = &o.hostname {
            cfg.hostname = v.clone();
        }
        if let Some(v) = &o.job {
            cfg.job = v.clone();
        }
        if let Some(v) = o.compat {
            cfg.compat = v;
        }
        if o.no_native {
            cfg.native_metrics = false;
        }
        if let Some(v) = &o.otlp_endpoint {
            cfg.otlp_endpoint = v.clone();
        }
        if let Some(v) = &o.otlp_protocol {
            cfg.otlp_protocol = v.clone();
        }
        if let Some(v) = o.otlp_interval_ms {
            cfg.otlp_interval_ms = v;
        }
        if let Some(v) = &o.otlp_spill_dir {
            cfg.otlp_spill_dir = v.clone();
        }
        cfg.validate(&origin)?;
        Ok(cfg)
    }

    /// Parses a configuration file; unknown keys and wrong types name the key and the file.
    pub fn from_file(path: &Path) -> Result<AgentConfig, UsageError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| UsageError(format!("config file {}: {}", path.display(), e.to_string().trim_end())))
    }

    fn apply_env(&mut self) -> Result<(), UsageError> {
        if let Some((_, v)) = env_var("listen") {
            self.listen = v;
        }
        if let Some((n, v)) = env_var("interval_ms") {
            self.interval_ms = parse_env(&n, &v, "a whole number of milliseconds")?;
        }
        if let Some((n, v)) = env_var("slow_interval_ms") {
            self.slow_interval_ms = parse_env(&n, &v, "a whole number of milliseconds")?;
        }
        if let Some((_, v)) = env_var("nvml_lib") {
            self.nvml_lib = v;
        }
        if let Some((_, v)) = env_var("procfs_root") {
            self.procfs_root = v.into();
        }
        if let Some((_, v)) = env_var("sysfs_root") {
            self.sysfs_root = v.into();
        }
        if let Some((_, v)) = env_var("pod_logs_root") {
            self.pod_logs_root = v.into();
        }
        if let Some((_, v)) = env_var("hostname") {
            self.hostname = v;
        }
        if let Some((_, v)) = env_var("job") {
            self.job = v;
        }
        if let Some((n, v)) = env_var("native_metrics") {
            self.native_metrics = parse_env(&n, &v, "true or false")?;
        }
        if let Some((n, v)) = env_var("compat") {
            self.compat = match v.trim() {
                "none" => Compat::None,
                "dcgm" => Compat::Dcgm,
                _ => {
                    return Err(UsageError(format!("environment {n}={v:?}: not one of none, dcgm")));
                }
            };
        }
        if let Some((_, v)) = env_var("otlp_endpoint") {
            self.otlp_endpoint = v;
        }
        if let Some((_, v)) = env_var("otlp_protocol") {
            self.otlp_protocol = v;
        }
        if let Some((n, v)) = env_var("otlp_interval_ms") {
            self.otlp_interval_ms = parse_env(&n, &v, "a whole number of milliseconds")?;
        }
        if let Some((_, v)) = env_var("otlp_spill_dir") {
            self.otlp_spill_dir = v;
        }
        if let Some((_, v)) = env_var("otlp_ca_file") {
            self.otlp_ca_file = v;
        }
        if let Some((n, v)) = env_var("otlp_headers") {
            for pair in v.split(',').filter(|p| !p.trim().is_empty()) {
                let (k, val) = pair
                    .split_once('=')
                    .ok_or_else(|| UsageError(format!("environment {n}: {pair:?} is not key=value")))?;
                self.otlp_headers.insert(k.trim().to_string(), val.trim().to_string());
            }
        }
        if let Some((_, v)) = env_var("log_level") {
            self.log_level = v;
        }
        if let Some((n, v)) = env_var("labels") {
            for pair in v.split(',').filter(|p| !p.trim().is_empty()) {
                let (k, val) = pair
                    .split_once('=')
                    .ok_or_else(|| UsageError(format!("environment {n}: {pair:?} is not key=value")))?;
                self.labels.insert(k.trim().to_string(), val.trim().to_string());
            }
        }
        Ok(())
    }

    fn validate(&self, origin: &str) -> Result<(), UsageError> {
        let bad = |key: &str, msg: String| Err(UsageError(format!("{origin}: key `{key}`: {msg}")));
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad("listen", format!("{:?} is not an address like 0.0.0.0:9466", self.listen));
        }
        if self.interval_ms < 100 {
            return bad("interval_ms", format!("must be at least 100 (got {})", self.interval_ms));
        }
        if self.slow_interval_ms < self.interval_ms {
            return bad(
                "slow_interval_ms",
                format!("must be at least interval_ms ({} < {})", self.slow_interval_ms, self.interval_ms),
            );
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log_level.as_str()) {
            return bad("log_level", format!("{:?} is not one of error, warn, info, debug, trace", self.log_level));
        }
        if !self.native_metrics && self.compat == Compat::None {
            return bad("native_metrics", "false with compat = \"none\" would serve nothing".into());
        }
        if !["http/protobuf", "grpc"].contains(&self.otlp_protocol.as_str()) {
            return bad("otlp_protocol", format!("{:?} is not one of http/protobuf, grpc", self.otlp_protocol));
        }
        if !(self.otlp_endpoint.is_empty()
            || self.otlp_endpoint.starts_with("http://")
            || self.otlp_endpoint.starts_with("https://"))
        {
            return bad("otlp_endpoint", format!("{:?} is not an http:// or https:// URL", self.otlp_endpoint));
        }
        if self.otlp_endpoint.starts_with("https://") && self.otlp_ca_file.is_empty() {
            return bad(
                "otlp_ca_file",
                "an https:// endpoint needs the CA that signed the collector's certificate".into(),
            );
        }
        if self.otlp_interval_ms < self.interval_ms {
            return bad(
                "otlp_interval_ms",
                format!("must be at least interval_ms ({} < {})", self.otlp_interval_ms, self.interval_ms),
            );
        }
        for k in self.labels.keys() {
            let mut c = k.chars();
            let ok = c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                && c.all(|x| x.is_ascii_alphanumeric() || x == '_');
            if !ok || k.starts_with("__") {
                return bad("labels", format!("{k:?} is not a valid Prometheus label name"));
            }
        }
        Ok(())
    }

    /// The listen address (validated).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.parse().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 9466)))
    }

    /// The OTLP push settings, when an endpoint is configured.
    pub fn push_config(&self) -> Option<gpuscope_exporters::otlp::PushConfig> {
        use gpuscope_exporters::otlp::{Protocol, PushConfig};
        (!self.otlp_endpoint.is_empty()).then(|| PushConfig {
            endpoint: self.otlp_endpoint.clone(),
            protocol: if self.otlp_protocol == "grpc" { Protocol::Grpc } else { Protocol::HttpProtobuf },
            interval: Duration::from_millis(self.otlp_interval_ms),
            headers: self.otlp_headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            gzip: true,
            spill_dir: (!self.otlp_spill_dir.is_empty()).then(|| PathBuf::from(&self.otlp_spill_dir)),
            spill_max_bytes: self.otlp_spill_max_bytes,
            timeout: Duration::from_secs(10),
            ca_file: (!self.otlp_ca_file.is_empty()).then(|| PathBuf::from(&self.otlp_ca_file)),
        })
    }

    /// The sampling engine's options.
    pub fn agent_options(&self) -> AgentOptions {
        AgentOptions {
            nvml_lib: (!self.nvml_lib.is_empty()).then(|| PathBuf::from(&self.nvml_lib)),
            interval: Duration::from_millis(self.interval_ms),
            slow_interval: Duration::from_millis(self.slow_interval_ms),
            procfs_root: self.procfs_root.clone(),
            sysfs_root: self.sysfs_root.clone(),
            pod_logs_root: self.pod_logs_root.clone(),
            passwd_file: PathBuf::from("/etc/passwd"),
            hostname: self.hostname.clone(),
            job: (!self.job.is_empty()).then(|| self.job.clone()),
            labels: self.labels.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_default_config_parses_to_the_defaults() {
        let cfg: AgentConfig = toml::from_str(include_str!("../deploy/agent.toml")).expect("deploy/agent.toml");
        let d = AgentConfig::default();
        assert_eq!((cfg.listen, cfg.interval_ms, cfg.slow_interval_ms), (d.listen, d.interval_ms, d.slow_interval_ms));
        assert_eq!(cfg.compat, Compat::None);
        assert!(cfg.native_metrics);
    }
}
