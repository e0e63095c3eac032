//! The agent's configuration (`deploy/agent.toml` documents every key): `GPUSCOPE_<KEY>`
//! variables and `--<key>` flags for every key, used by `agent` and `query`.

use super::{Blankable, Layers, Origin, Origins, Pairs, Sourced, UsageError};
use gpuscope_agent::AgentOptions;
use gpuscope_exporters::otlp::{Protocol, PushConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Which dcgm-exporter compatibility to serve (docs/dcgm-compat.md has the field table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    /// Only gpuscope's names.
    None,
    /// Also dcgm-exporter's names, types, units and labels as releases up to 4.8 serve them.
    Dcgm,
    /// Also dcgm-exporter 4.9's names (DCGM 4.7's, in base units) and labels.
    #[serde(rename = "dcgm-4.9")]
    #[value(name = "dcgm-4.9")]
    Dcgm4_9,
    /// Also dcgm-exporter 4.10's names: 4.9's with `_PER_SECOND` on the PCIe rates.
    #[serde(rename = "dcgm-4.10")]
    #[value(name = "dcgm-4.10")]
    Dcgm4_10,
}

impl Compat {
    /// The dcgm-exporter profile served, if any.
    pub fn dcgm_profile(self) -> Option<gpuscope_core::DcgmProfile> {
        use gpuscope_core::DcgmProfile;
        match self {
            Compat::None => None,
            Compat::Dcgm => Some(DcgmProfile::Legacy),
            Compat::Dcgm4_9 => Some(DcgmProfile::V4_9),
            Compat::Dcgm4_10 => Some(DcgmProfile::V4_10),
        }
    }
}

/// How much the agent logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Start-up and state changes.
    Info,
    /// Every sampler pass.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The level in tracing's filter syntax.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies (port 4318).
    #[serde(rename = "http/protobuf")]
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/gRPC (port 4317).
    #[serde(rename = "grpc")]
    Grpc,
}

/// A collector's base URL: `http://` or `https://`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OtlpEndpoint(String);

impl OtlpEndpoint {
    /// The plain-HTTP endpoint of a collector listening on `addr`.
    pub fn http(addr: SocketAddr) -> OtlpEndpoint {
        OtlpEndpoint(format!("http://{addr}"))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the collector is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

impl FromStr for OtlpEndpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("http://") || s.starts_with("https://") {
            Ok(OtlpEndpoint(s.to_string()))
        } else {
            Err(format!("{s:?} is not an http:// or https:// URL"))
        }
    }
}

impl fmt::Display for OtlpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a number or a boolean with the blanks around it (as environment files often leave).
fn trimmed<T: FromStr>(s: &str) -> Result<T, T::Err> {
    s.trim().parse()
}

/// Agent settings from one source (a file, or the environment and flags); `None` where unset.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct AgentLayer {
    /// Prometheus endpoint address [default: 0.0.0.0:9466].
    #[arg(long, env = "GPUSCOPE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Prometheus exporter-toolkit web configuration file (TLS, client certificates, bcrypt
    /// basic-auth users), as node_exporter's --web.config.file; re-read when it changes.
    #[arg(long = "web.config.file", alias = "web-config-file", env = "GPUSCOPE_WEB_CONFIG_FILE", value_name = "PATH")]
    pub web_config_file: Option<Blankable<PathBuf>>,
    /// Fast sampling interval in milliseconds, at least 100 [default: 1000].
    #[arg(long, env = "GPUSCOPE_INTERVAL_MS", value_parser = trimmed::<u64>, value_name = "MS")]
    pub interval_ms: Option<u64>,
    /// Slow sampling interval in milliseconds, at least interval_ms [default: 30000].
    #[arg(long, env = "GPUSCOPE_SLOW_INTERVAL_MS", value_parser = trimmed::<u64>, value_name = "MS")]
    pub slow_interval_ms: Option<u64>,
    /// NVML library to load ("" = libnvidia-ml.so.1 from the system).
    #[arg(long, env = "GPUSCOPE_NVML_LIB", value_name = "PATH")]
    pub nvml_lib: Option<Blankable<PathBuf>>,
    /// Root of the proc filesystem [default: /proc].
    #[arg(long, env = "GPUSCOPE_PROCFS_ROOT", value_name = "DIR")]
    pub procfs_root: Option<PathBuf>,
    /// Root of the sys filesystem [default: /sys].
    #[arg(long, env = "GPUSCOPE_SYSFS_ROOT", value_name = "DIR")]
    pub sysfs_root: Option<PathBuf>,
    /// The kubelet's pod log directory [default: /var/log/pods].
    #[arg(long, env = "GPUSCOPE_POD_LOGS_ROOT", value_name = "DIR")]
    pub pod_logs_root: Option<PathBuf>,
    /// The passwd file that names the users of processes (the host's, mounted into a
    /// containerised agent) [default: /etc/passwd].
    #[arg(long, env = "GPUSCOPE_PASSWD_FILE", value_name = "FILE")]
    pub passwd_file: Option<PathBuf>,
    /// Host name to report ("" = from the kernel).
    #[arg(long, env = "GPUSCOPE_HOSTNAME")]
    pub hostname: Option<Blankable<String>>,
    /// Job label ("" = none).
    #[arg(long, env = "GPUSCOPE_JOB")]
    pub job: Option<Blankable<String>>,
    /// Serve gpuscope's own metric names [default: true].
    #[arg(long, env = "GPUSCOPE_NATIVE_METRICS", value_parser = trimmed::<bool>, value_name = "BOOL")]
    pub native_metrics: Option<bool>,
    /// dcgm-exporter compatibility names [default: none].
    #[arg(long, env = "GPUSCOPE_COMPAT", value_enum)]
    pub compat: Option<Compat>,
    /// Log level [default: info].
    #[arg(long, env = "GPUSCOPE_LOG_LEVEL", value_enum)]
    pub log_level: Option<LogLevel>,
    /// Push OTLP to this collector URL, e.g. http://collector:4318 ("" = no push).
    #[arg(long, env = "GPUSCOPE_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<Blankable<OtlpEndpoint>>,
    /// OTLP transport [default: http/protobuf].
    #[arg(long, env = "GPUSCOPE_OTLP_PROTOCOL", value_enum)]
    pub otlp_protocol: Option<OtlpProtocol>,
    /// One OTLP point per series per this many milliseconds, at least interval_ms [default: 10000].
    #[arg(long, env = "GPUSCOPE_OTLP_INTERVAL_MS", value_parser = trimmed::<u64>, value_name = "MS")]
    pub otlp_interval_ms: Option<u64>,
    /// Directory for batches waiting for the collector ("" = in memory).
    #[arg(long, env = "GPUSCOPE_OTLP_SPILL_DIR", value_name = "DIR")]
    pub otlp_spill_dir: Option<Blankable<PathBuf>>,
    /// Bound of the spill queue in bytes [default: 268435456].
    #[arg(long, env = "GPUSCOPE_OTLP_SPILL_MAX_BYTES", value_parser = trimmed::<u64>, value_name = "BYTES")]
    pub otlp_spill_max_bytes: Option<u64>,
    /// PEM file of the CA that signed the collector's certificate (needed for https://).
    #[arg(long, env = "GPUSCOPE_OTLP_CA_FILE", value_name = "PATH")]
    pub otlp_ca_file: Option<Blankable<PathBuf>>,
    /// PEM certificate chain presented to a collector that requires client certificates (with otlp_client_key).
    #[arg(long, env = "GPUSCOPE_OTLP_CLIENT_CERT", value_name = "PATH")]
    pub otlp_client_cert: Option<Blankable<PathBuf>>,
    /// PEM private key of otlp_client_cert.
    #[arg(long, env = "GPUSCOPE_OTLP_CLIENT_KEY", value_name = "PATH")]
    pub otlp_client_key: Option<Blankable<PathBuf>>,
    /// Extra OTLP request header (repeatable; the variable takes k=v,k2=v2).
    #[arg(long = "otlp-header", env = "GPUSCOPE_OTLP_HEADERS", value_name = "KEY=VALUE", hide_env_values = true)]
    #[serde(default, deserialize_with = "super::table_of_pairs")]
    pub otlp_headers: Option<Vec<Pairs>>,
    /// Label added to every series (repeatable; the variable takes k=v,k2=v2).
    #[arg(long = "label", env = "GPUSCOPE_LABELS", value_name = "KEY=VALUE")]
    #[serde(default, deserialize_with = "super::table_of_pairs")]
    pub labels: Option<Vec<Pairs>>,
    /// Receive kernel-level profiles from gpuscope's CUPTI injection library ([cupti] enabled)
    /// [default: false].
    #[arg(long, env = "GPUSCOPE_CUPTI_ENABLED", value_parser = trimmed::<bool>, value_name = "BOOL")]
    #[serde(skip)]
    pub cupti_enabled: Option<bool>,
    /// The Unix socket the injection library connects to ([cupti] socket)
    /// [default: /run/gpuscope/cupti.sock].
    #[arg(long, env = "GPUSCOPE_CUPTI_SOCKET", value_name = "PATH")]
    #[serde(skip)]
    pub cupti_socket: Option<PathBuf>,
    /// The file's `[cupti]` table (flags and variables set its keys as `cupti_*`).
    #[arg(skip)]
    #[serde(default)]
    pub cupti: Option<CuptiLayer>,
}

/// The `[cupti]` table of the agent's file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CuptiLayer {
    /// Receive kernel-level profiles.
    pub enabled: Option<bool>,
    /// The socket's path.
    pub socket: Option<PathBuf>,
}

/// Kernel-level profiling: the agent's CUPTI receiver (`[cupti]` in the file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CuptiConfig {
    /// Listen for the injection library. Off by default: the socket is open to every local user.
    pub enabled: bool,
    /// Where.
    pub socket: PathBuf,
}

impl Default for CuptiConfig {
    fn default() -> Self {
        CuptiConfig { enabled: false, socket: gpuscope_agent::cupti::DEFAULT_SOCKET.into() }
    }
}

/// The agent's command line: a configuration file under `GPUSCOPE_*` variables under flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentArgs {
    /// Configuration file (TOML, like deploy/agent.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Every configuration key as a flag (and a GPUSCOPE_* variable).
    #[command(flatten)]
    pub settings: Sourced<AgentLayer>,
    /// Serve only the compatibility names (with --compat dcgm); the same as --native-metrics false.
    #[arg(long)]
    pub no_native: bool,
}

/// The agent's effective configuration (printed by `agent --check-config` in the file's format).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentConfig {
    /// Prometheus endpoint address.
    pub listen: SocketAddr,
    /// Web configuration file of the Prometheus endpoint.
    #[serde(serialize_with = "super::blank_if_none")]
    pub web_config_file: Option<PathBuf>,
    /// Fast sampling interval.
    #[serde(rename = "interval_ms", serialize_with = "super::as_millis")]
    pub interval: Duration,
    /// Slow sampling interval.
    #[serde(rename = "slow_interval_ms", serialize_with = "super::as_millis")]
    pub slow_interval: Duration,
    /// NVML library path (`None`: the system's).
    #[serde(serialize_with = "super::blank_if_none")]
    pub nvml_lib: Option<PathBuf>,
    /// proc root.
    pub procfs_root: PathBuf,
    /// sys root.
    pub sysfs_root: PathBuf,
    /// kubelet pod log directory.
    pub pod_logs_root: PathBuf,
    /// The passwd file that names process users.
    pub passwd_file: PathBuf,
    /// Host name (`None`: from the kernel).
    #[serde(serialize_with = "super::blank_if_none")]
    pub hostname: Option<String>,
    /// Job label.
    #[serde(serialize_with = "super::blank_if_none")]
    pub job: Option<String>,
    /// Serve native names.
    pub native_metrics: bool,
    /// dcgm-exporter compatibility.
    pub compat: Compat,
    /// Log level.
    pub log_level: LogLevel,
    /// OTLP push target (`None`: no push).
    #[serde(serialize_with = "super::blank_if_none")]
    pub otlp_endpoint: Option<OtlpEndpoint>,
    /// OTLP transport.
    pub otlp_protocol: OtlpProtocol,
    /// One OTLP point per series per this interval.
    #[serde(rename = "otlp_interval_ms", serialize_with = "super::as_millis")]
    pub otlp_interval: Duration,
    /// Where batches wait while the collector is unreachable (`None`: in memory).
    #[serde(serialize_with = "super::blank_if_none")]
    pub otlp_spill_dir: Option<PathBuf>,
    /// Bound of the spill queue, bytes.
    pub otlp_spill_max_bytes: u64,
    /// CA of the collector's certificate.
    #[serde(serialize_with = "super::blank_if_none")]
    pub otlp_ca_file: Option<PathBuf>,
    /// Client certificate chain for mTLS.
    #[serde(serialize_with = "super::blank_if_none")]
    pub otlp_client_cert: Option<PathBuf>,
    /// Its private key.
    #[serde(serialize_with = "super::blank_if_none")]
    pub otlp_client_key: Option<PathBuf>,
    /// Extra OTLP request headers (printed with their values hidden: they carry tokens).
    #[serde(serialize_with = "hidden_values")]
    pub otlp_headers: BTreeMap<String, String>,
    /// Labels on every series.
    pub labels: BTreeMap<String, String>,
    /// Kernel-level profiling (a table: last, after the plain keys).
    pub cupti: CuptiConfig,
}

fn hidden_values<S: serde::Serializer>(m: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(m.keys().map(|k| (k, "(hidden)")))
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 9466)),
            interval: Duration::from_millis(1000),
            slow_interval: Duration::from_millis(30_000),
            nvml_lib: None,
            procfs_root: "/proc".into(),
            sysfs_root: "/sys".into(),
            pod_logs_root: "/var/log/pods".into(),
            passwd_file: "/etc/passwd".into(),
            hostname: None,
            job: None,
            native_metrics: true,
            compat: Compat::None,
            log_level: LogLevel::Info,
            otlp_endpoint: None,
            otlp_protocol: OtlpProtocol::HttpProtobuf,
            otlp_interval: Duration::from_millis(10_000),
            otlp_spill_dir: None,
            otlp_spill_max_bytes: 256 << 20,
            otlp_ca_file: None,
            otlp_client_cert: None,
            otlp_client_key: None,
            web_config_file: None,
            otlp_headers: BTreeMap::new(),
            labels: BTreeMap::new(),
            cupti: CuptiConfig::default(),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl AgentConfig {
    /// Loads the file (if any) under the environment under the flags, and validates.
    pub fn load(args: &AgentArgs) -> Result<AgentConfig, UsageError> {
        let file = match &args.config {
            Some(path) => Some((path.clone(), super::read_file::<AgentLayer>(path)?)),
            None => None,
        };
        Self::resolve(file, &args.settings, args.no_native)
    }

    /// Merges the layers key by key (the one place that does) and validates the result.
    fn resolve(
        file: Option<(PathBuf, AgentLayer)>,
        cli: &Sourced<AgentLayer>,
        no_native: bool,
    ) -> Result<AgentConfig, UsageError> {
        let d = AgentConfig::default();
        // The file's [cupti] table sets the same keys as the cupti_* flags and variables.
        let file = file.map(|(path, mut layer)| {
            if let Some(t) = layer.cupti.take() {
                layer.cupti_enabled = t.enabled;
                layer.cupti_socket = t.socket;
            }
            (path, layer)
        });
        let mut l = Layers::new(file, cli);
        let mut cfg = AgentConfig {
            listen: l.get("listen", |s| &s.listen, d.listen),
            interval: Duration::from_millis(l.get("interval_ms", |s| &s.interval_ms, ms(d.interval))),
            slow_interval: Duration::from_millis(l.get(
                "slow_interval_ms",
                |s| &s.slow_interval_ms,
                ms(d.slow_interval),
            )),
            nvml_lib: l.get("nvml_lib", |s| &s.nvml_lib, Blankable(d.nvml_lib)).0,
            procfs_root: l.get("procfs_root", |s| &s.procfs_root, d.procfs_root),
            sysfs_root: l.get("sysfs_root", |s| &s.sysfs_root, d.sysfs_root),
            pod_logs_root: l.get("pod_logs_root", |s| &s.pod_logs_root, d.pod_logs_root),
            passwd_file: l.get("passwd_file", |s| &s.passwd_file, d.passwd_file),
            hostname: l.get("hostname", |s| &s.hostname, Blankable(d.hostname)).0,
            job: l.get("job", |s| &s.job, Blankable(d.job)).0,
            native_metrics: l.get("native_metrics", |s| &s.native_metrics, d.native_metrics),
            compat: l.get("compat", |s| &s.compat, d.compat),
            log_level: l.get("log_level", |s| &s.log_level, d.log_level),
            otlp_endpoint: l.get("otlp_endpoint", |s| &s.otlp_endpoint, Blankable(d.otlp_endpoint)).0,
            otlp_protocol: l.get("otlp_protocol", |s| &s.otlp_protocol, d.otlp_protocol),
            otlp_interval: Duration::from_millis(l.get(
                "otlp_interval_ms",
                |s| &s.otlp_interval_ms,
                ms(d.otlp_interval),
            )),
            otlp_spill_dir: l.get("otlp_spill_dir", |s| &s.otlp_spill_dir, Blankable(d.otlp_spill_dir)).0,
            otlp_spill_max_bytes: l.get("otlp_spill_max_bytes", |s| &s.otlp_spill_max_bytes, d.otlp_spill_max_bytes),
            otlp_ca_file: l.get("otlp_ca_file", |s| &s.otlp_ca_file, Blankable(d.otlp_ca_file)).0,
            otlp_client_cert: l.get("otlp_client_cert", |s| &s.otlp_client_cert, Blankable(d.otlp_client_cert)).0,
            otlp_client_key: l.get("otlp_client_key", |s| &s.otlp_client_key, Blankable(d.otlp_client_key)).0,
            web_config_file: l.get("web_config_file", |s| &s.web_config_file, Blankable(d.web_config_file)).0,
            otlp_headers: l.pairs("otlp_headers", |s| &s.otlp_headers),
            labels: l.pairs("labels", |s| &s.labels),
            cupti: CuptiConfig {
                enabled: l.get("cupti_enabled", |s| &s.cupti_enabled, d.cupti.enabled),
                socket: l.get("cupti_socket", |s| &s.cupti_socket, d.cupti.socket),
            },
        };
        if no_native {
            cfg.native_metrics = false;
            l.set_origin("native_metrics", Origin::Flag("--no-native".into()));
        }
        cfg.validate(l.origins())?;
        Ok(cfg)
    }

    fn validate(&self, at: &Origins) -> Result<(), UsageError> {
        if self.interval < Duration::from_millis(100) {
            return Err(at.error("interval_ms", format!("must be at least 100 (got {})", ms(self.interval))));
        }
        if self.slow_interval < self.interval {
            let (slow, fast) = (ms(self.slow_interval), ms(self.interval));
            return Err(at.error("slow_interval_ms", format!("must be at least interval_ms ({slow} < {fast})")));
        }
        if !self.native_metrics && self.compat == Compat::None {
            return Err(at.error("native_metrics", "false with compat = \"none\" would serve nothing"));
        }
        if self.otlp_endpoint.as_ref().is_some_and(OtlpEndpoint::is_https) && self.otlp_ca_file.is_none() {
            return Err(at.error(
                "otlp_endpoint",
                "an https:// endpoint needs otlp_ca_file, the CA that signed the collector's certificate",
            ));
        }
        if self.otlp_interval < self.interval {
            let (otlp, fast) = (ms(self.otlp_interval), ms(self.interval));
            return Err(at.error("otlp_interval_ms", format!("must be at least interval_ms ({otlp} < {fast})")));
        }
        // A header the transports cannot send would drop every batch, one by one, at run time.
        for (k, v) in &self.otlp_headers {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if k.is_empty() || !k.chars().all(token) {
                return Err(at.error("otlp_headers", format!("{k:?} is not an HTTP header name")));
            }
            if v.chars().any(|c| c.is_control() && c != '\t') {
                return Err(at.error(
                    "otlp_headers",
                    format!("the value of {k:?} holds a control character (CR, LF, …): it cannot be sent"),
                ));
            }
        }
        match (&self.otlp_client_cert, &self.otlp_client_key) {
            (Some(_), None) => {
                return Err(at.error("otlp_client_cert", "needs otlp_client_key, the certificate's private key"));
            }
            (None, Some(_)) => {
                return Err(at.error("otlp_client_key", "needs otlp_client_cert, the certificate it belongs to"));
            }
            _ => {}
        }
        // A relative path would depend on the agent's working directory, which the injection
        // library (in another process) cannot know.
        if self.cupti.enabled && !self.cupti.socket.is_absolute() {
            return Err(UsageError(format!(
                "{}: key `cupti.socket`: must be an absolute path (got {:?})",
                at.origin("cupti_socket"),
                self.cupti.socket.display().to_string()
            )));
        }
        for k in self.labels.keys() {
            let mut c = k.chars();
            let ok = c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                && c.all(|x| x.is_ascii_alphanumeric() || x == '_');
            if !ok || k.starts_with("__") {
                return Err(at.error("labels", format!("{k:?} is not a valid Prometheus label name")));
            }
        }
        Ok(())
    }

    /// The OTLP push settings, when an endpoint is configured.
    pub fn push_config(&self) -> Option<PushConfig> {
        self.otlp_endpoint.as_ref().map(|endpoint| PushConfig {
            endpoint: endpoint.as_str().to_string(),
            protocol: match self.otlp_protocol {
                OtlpProtocol::Grpc => Protocol::Grpc,
                OtlpProtocol::HttpProtobuf => Protocol::HttpProtobuf,
            },
            interval: self.otlp_interval,
            headers: self.otlp_headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            gzip: true,
            spill_dir: self.otlp_spill_dir.clone(),
            spill_max_bytes: self.otlp_spill_max_bytes,
            timeout: Duration::from_secs(10),
            ca_file: self.otlp_ca_file.clone(),
            client_cert: self.otlp_client_cert.clone().zip(self.otlp_client_key.clone()),
        })
    }

    /// The sampling engine's options.
    pub fn agent_options(&self) -> AgentOptions {
        AgentOptions {
            nvml_lib: self.nvml_lib.clone(),
            interval: self.interval,
            slow_interval: self.slow_interval,
            procfs_root: self.procfs_root.clone(),
            sysfs_root: self.sysfs_root.clone(),
            pod_logs_root: self.pod_logs_root.clone(),
            passwd_file: self.passwd_file.clone(),
            hostname: self.hostname.clone().unwrap_or_default(),
            job: self.job.clone(),
            labels: self.labels.clone(),
            cupti: None,
        }
    }

    /// The effective configuration in the file's format.
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
        args: AgentArgs,
    }

    fn from_file(text: &str) -> Result<AgentConfig, UsageError> {
        let layer: AgentLayer = toml::from_str(text).map_err(|e| UsageError(e.to_string()))?;
        AgentConfig::resolve(Some(("agent.toml".into(), layer)), &Sourced::default(), false)
    }

    #[test]
    fn the_shipped_default_config_parses_to_the_defaults() {
        assert_eq!(from_file(include_str!("../../deploy/agent.toml")).unwrap(), AgentConfig::default());
    }

    #[test]
    fn the_printed_configuration_reads_back_to_itself() {
        let cfg = AgentConfig {
            otlp_endpoint: Some("https://collector:4318".parse().unwrap()),
            otlp_ca_file: Some("/etc/ca.pem".into()),
            job: Some("train".into()),
            labels: [("team".to_string(), "ml".to_string())].into(),
            ..AgentConfig::default()
        };
        assert_eq!(from_file(&cfg.to_toml().unwrap()).unwrap(), cfg);
    }

    #[test]
    fn flags_win_over_the_file_and_maps_merge() {
        let cli = Cli::try_parse_from(["x", "--interval-ms", "2000", "--label", "b=2", "--label", "c=3,d=4"]).unwrap();
        let layer: AgentLayer =
            toml::from_str("interval_ms = 500\nslow_interval_ms = 60000\n[labels]\na = \"1\"\nb = \"x\"\n").unwrap();
        let cfg = AgentConfig::resolve(Some(("agent.toml".into(), layer)), &cli.args.settings, false).unwrap();
        assert_eq!((cfg.interval, cfg.slow_interval), (Duration::from_secs(2), Duration::from_secs(60)));
        let labels: Vec<_> = cfg.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(labels, ["a=1", "b=2", "c=3", "d=4"]);
    }

    #[test]
    fn a_mistake_names_the_flag_or_the_file_it_came_from() {
        let cli = Cli::try_parse_from(["x", "--interval-ms", "50"]).unwrap();
        let e = AgentConfig::resolve(None, &cli.args.settings, false).unwrap_err().to_string();
        assert_eq!(e, "flag --interval-ms: key `interval_ms`: must be at least 100 (got 50)");
        let e = from_file("otlp_endpoint = \"https://c:4318\"\n").unwrap_err().to_string();
        assert!(e.starts_with("config file agent.toml: key `otlp_endpoint`: an https://"), "{e}");
        let cli = Cli::try_parse_from(["x", "--no-native"]).unwrap();
        let e = AgentConfig::resolve(None, &cli.args.settings, cli.args.no_native).unwrap_err().to_string();
        assert!(e.starts_with("flag --no-native: key `native_metrics`"), "{e}");
    }

    #[test]
    fn the_cupti_table_and_its_flags() {
        let cfg = from_file("[cupti]\nenabled = true\nsocket = \"/run/x/cupti.sock\"\n").unwrap();
        assert_eq!(cfg.cupti, CuptiConfig { enabled: true, socket: "/run/x/cupti.sock".into() });
        assert_eq!(from_file(&cfg.to_toml().unwrap()).unwrap(), cfg, "printed as a [cupti] table");
        let cli = Cli::try_parse_from(["x", "--cupti-socket", "/tmp/c.sock"]).unwrap();
        let layer: AgentLayer = toml::from_str("[cupti]\nenabled = true\nsocket = \"/run/x.sock\"\n").unwrap();
        let cfg = AgentConfig::resolve(Some(("agent.toml".into(), layer)), &cli.args.settings, false).unwrap();
        assert_eq!(cfg.cupti, CuptiConfig { enabled: true, socket: "/tmp/c.sock".into() });
        let e = from_file("[cupti]\nenabled = true\nsocket = \"run/cupti.sock\"\n").unwrap_err().to_string();
        assert_eq!(e, "config file agent.toml: key `cupti.socket`: must be an absolute path (got \"run/cupti.sock\")");
        let e = from_file("[cupti]\nenable = true\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `enable`"), "{e}");
    }

    #[test]
    fn an_empty_string_clears_a_setting_of_the_file() {
        let cli = Cli::try_parse_from(["x", "--otlp-endpoint", ""]).unwrap();
        let layer: AgentLayer = toml::from_str("otlp_endpoint = \"http://c:4318\"\n").unwrap();
        let cfg = AgentConfig::resolve(Some(("agent.toml".into(), layer)), &cli.args.settings, false).unwrap();
        assert_eq!(cfg.otlp_endpoint, None);
        assert!(cfg.push_config().is_none());
    }
}
