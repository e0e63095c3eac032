//! The library's settings, read once from the profiled process's environment.
//!
//! A bad value never stops the host: it falls back to the default and yields one warning line
//! naming the variable, the value and the accepted range.

use std::path::PathBuf;
use std::time::Duration;

/// Window length variable (milliseconds).
pub const ENV_WINDOW_MS: &str = "GPUSCOPE_CUPTI_WINDOW_MS";
/// Period variable (milliseconds between window starts).
pub const ENV_PERIOD_MS: &str = "GPUSCOPE_CUPTI_PERIOD_MS";
/// Overhead budget variable (a fraction of one CPU).
pub const ENV_BUDGET: &str = "GPUSCOPE_CUPTI_BUDGET";
/// Agent socket variable.
pub const ENV_SOCKET: &str = "GPUSCOPE_CUPTI_SOCKET";
/// Diagnostics variable: `1` prints what the library does (or why it does nothing) on stderr.
pub const ENV_LOG: &str = "GPUSCOPE_CUPTI_LOG";

/// Default window length.
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(500);
/// Default period between window starts.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30);
/// Default budget: 1 % of one CPU.
pub const DEFAULT_BUDGET: f64 = 0.01;
/// Default agent socket (the agent's `[cupti] socket` default).
pub const DEFAULT_SOCKET: &str = "/run/gpuscope/cupti.sock";
/// Longest window, from the environment or an agent request.
pub const MAX_WINDOW: Duration = Duration::from_secs(60);
/// Shortest window.
pub const MIN_WINDOW: Duration = Duration::from_millis(1);
/// Longest period, also the cap of the budget controller's stretching.
pub const MAX_PERIOD: Duration = Duration::from_secs(600);

/// The library's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Length of a scheduled window.
    pub window: Duration,
    /// Time between scheduled window starts before budget stretching.
    pub period: Duration,
    /// Overhead budget, a fraction of one CPU over the period.
    pub budget: f64,
    /// The agent's Unix socket.
    pub socket: PathBuf,
    /// Whether diagnostics go to stderr.
    pub log: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: DEFAULT_WINDOW,
            period: DEFAULT_PERIOD,
            budget: DEFAULT_BUDGET,
            socket: PathBuf::from(DEFAULT_SOCKET),
            log: false,
        }
    }
}

fn millis(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    min: Duration,
    max: Duration,
    default: Duration,
    warnings: &mut Vec<String>,
) -> Duration {
    let Some(raw) = get(key) else { return default };
    match raw.trim().parse::<u64>() {
        Ok(ms) if (min..=max).contains(&Duration::from_millis(ms)) => Duration::from_millis(ms),
        _ => {
            warnings.push(format!(
                "{key}={raw:?} is not a whole number of milliseconds in {}..={}; using {}",
                min.as_millis(),
                max.as_millis(),
                default.as_millis()
            ));
            default
        }
    }
}

impl Config {
    /// Reads the settings through `get` (the environment in the library, a map in tests); the
    /// second value holds one warning line per rejected variable (without the library's prefix).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> (Config, Vec<String>) {
        let mut warnings = Vec::new();
        let window = millis(&get, ENV_WINDOW_MS, MIN_WINDOW, MAX_WINDOW, DEFAULT_WINDOW, &mut warnings);
        // A period shorter than its window would overlap windows.
        let period =
            millis(&get, ENV_PERIOD_MS, window.max(MIN_WINDOW), MAX_PERIOD, DEFAULT_PERIOD.max(window), &mut warnings);
        let budget = match get(ENV_BUDGET) {
            None => DEFAULT_BUDGET,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(b) if b > 0.0 && b <= 1.0 => b,
                _ => {
                    warnings.push(format!(
                        "{ENV_BUDGET}={raw:?} is not a fraction in (0, 1] (0.01 = 1 % of one CPU); using {DEFAULT_BUDGET}"
                    ));
                    DEFAULT_BUDGET
                }
            },
        };
        let socket = match get(ENV_SOCKET) {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => PathBuf::from(DEFAULT_SOCKET),
        };
        let log = get(ENV_LOG).is_some_and(|v| v.trim() == "1");
        (Config { window, period, budget, socket, log }, warnings)
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> (Config, Vec<String>) {
        Config::from_lookup(|key| std::env::var_os(key).map(|v| v.to_string_lossy().into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> (Config, Vec<String>) {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn no_variables_give_the_defaults() {
        let (config, warnings) = read(&[]);
        assert_eq!(config, Config::default());
        assert_eq!(config.window, Duration::from_millis(500));
        assert_eq!(config.period, Duration::from_secs(30));
        assert_eq!(config.socket, PathBuf::from("/run/gpuscope/cupti.sock"));
        assert!(warnings.is_empty());
    }

    #[test]
    fn valid_variables_are_taken() {
        let (config, warnings) = read(&[
            (ENV_WINDOW_MS, "200"),
            (ENV_PERIOD_MS, " 1000 "),
            (ENV_BUDGET, "0.05"),
            (ENV_SOCKET, "/tmp/x.sock"),
            (ENV_LOG, "1"),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config,
            Config {
                window: Duration::from_millis(200),
                period: Duration::from_secs(1),
                budget: 0.05,
                socket: PathBuf::from("/tmp/x.sock"),
                log: true,
            }
        );
    }

    #[test]
    fn invalid_variables_fall_back_with_one_warning_each() {
        let (config, warnings) =
            read(&[(ENV_WINDOW_MS, "half a second"), (ENV_PERIOD_MS, "0"), (ENV_BUDGET, "2"), (ENV_LOG, "yes")]);
        assert_eq!(config, Config::default());
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("GPUSCOPE_CUPTI_WINDOW_MS=\"half a second\""), "{}", warnings[0]);
        assert!(warnings[0].ends_with("using 500"), "{}", warnings[0]);
        assert!(warnings[1].contains("GPUSCOPE_CUPTI_PERIOD_MS=\"0\""), "{}", warnings[1]);
        assert!(warnings[2].contains("GPUSCOPE_CUPTI_BUDGET=\"2\""), "{}", warnings[2]);
        for w in &warnings {
            assert!(!w.contains('\n'), "one line: {w}");
        }
    }

    #[test]
    fn a_period_shorter_than_the_window_is_rejected() {
        let (config, warnings) = read(&[(ENV_WINDOW_MS, "2000"), (ENV_PERIOD_MS, "1000")]);
        assert_eq!(config.window, Duration::from_secs(2));
        assert_eq!(config.period, DEFAULT_PERIOD);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("2000..=600000"), "{}", warnings[0]);
    }

    #[test]
    fn a_window_over_a_minute_is_rejected() {
        let (config, warnings) = read(&[(ENV_WINDOW_MS, "60001")]);
        assert_eq!(config.window, DEFAULT_WINDOW);
        assert_eq!(warnings.len(), 1);
    }
}
