//! Typed, layered configuration. Each section (`agent`, `collector`) is one struct of optional
//! settings that serde reads from a TOML file and clap reads from `GPUSCOPE_*` environment
//! variables and flags; [`Layers`] merges them, file ← environment ← flags, and remembers where
//! each value came from, so that every mistake names the key and its file, variable or flag.

pub mod agent;
pub mod collector;

pub use agent::{AgentArgs, AgentConfig};
pub use collector::{CollectorArgs, CollectorSettings};

use clap::parser::ValueSource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// A configuration mistake: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Nobody set it.
    Default,
    /// A configuration file.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// A command-line flag, as typed (`--interval-ms`).
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("defaults"),
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(name) => write!(f, "environment {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Settings clap parsed from flags and the environment, with the origin of each one that was set.
#[derive(Debug, Clone, Default)]
pub struct Sourced<T> {
    /// The settings.
    pub values: T,
    /// Origin by key (clap's argument id, which is the field's name).
    origins: BTreeMap<String, Origin>,
}

impl<T: clap::Args> Sourced<T> {
    fn record(&mut self, m: &clap::ArgMatches) {
        // The section's own arguments, for their environment names and flags.
        let cmd = T::augment_args(clap::Command::new("settings"));
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            let origin = match m.value_source(id) {
                Some(ValueSource::EnvVariable) => {
                    Origin::Env(arg.get_env().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default())
                }
                Some(ValueSource::CommandLine) => Origin::Flag(format!("--{}", arg.get_long().unwrap_or(id))),
                _ => continue,
            };
            self.origins.insert(id.to_string(), origin);
        }
    }
}

impl<T: clap::FromArgMatches + clap::Args> clap::FromArgMatches for Sourced<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut s = Sourced { values: T::from_arg_matches(m)?, origins: BTreeMap::new() };
        s.record(m);
        Ok(s)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.values.update_from_arg_matches(m)?;
        self.record(m);
        Ok(())
    }
}

impl<T: clap::Args> clap::Args for Sourced<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        T::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        T::augment_args_for_update(cmd)
    }

    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

/// The file, environment and flag layers of one section, merged key by key.
pub struct Layers<'a, T> {
    file: Option<(PathBuf, T)>,
    cli: &'a Sourced<T>,
    origins: Origins,
}

impl<'a, T> Layers<'a, T> {
    /// The layers: the file's settings (if a file was given) under clap's.
    pub fn new(file: Option<(PathBuf, T)>, cli: &'a Sourced<T>) -> Self {
        Layers { file, cli, origins: Origins::default() }
    }

    /// `key`'s value from the flags or the environment, else from the file, else `default`.
    pub fn get<V: Clone>(&mut self, key: &'static str, field: impl Fn(&T) -> &Option<V>, default: V) -> V {
        self.optional(key, field).unwrap_or(default)
    }

    /// `key`'s value from the flags or the environment, else from the file, else `None`.
    pub fn optional<V: Clone>(&mut self, key: &'static str, field: impl Fn(&T) -> &Option<V>) -> Option<V> {
        if let Some(v) = field(&self.cli.values) {
            let origin = self.cli.origins.get(key).cloned().unwrap_or(Origin::Default);
            self.origins.0.insert(key, origin);
            return Some(v.clone());
        }
        let (path, file) = self.file.as_ref()?;
        let v = field(file).clone()?;
        self.origins.0.insert(key, Origin::File(path.clone()));
        Some(v)
    }

    /// A map: the file's entries, then the environment's or the flags' (a later key wins).
    pub fn pairs(&mut self, key: &'static str, field: impl Fn(&T) -> &Option<Vec<Pairs>>) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        if let Some((path, file)) = &self.file
            && let Some(lists) = field(file)
        {
            map.extend(lists.iter().flat_map(|p| p.0.iter().cloned()));
            self.origins.0.insert(key, Origin::File(path.clone()));
        }
        if let Some(lists) = field(&self.cli.values) {
            map.extend(lists.iter().flat_map(|p| p.0.iter().cloned()));
            self.origins.0.insert(key, self.cli.origins.get(key).cloned().unwrap_or(Origin::Default));
        }
        map
    }

    /// Records that `key` was set by `origin` outside the layers (an alias flag like `--no-native`).
    pub fn set_origin(&mut self, key: &'static str, origin: Origin) {
        self.origins.0.insert(key, origin);
    }

    /// Where each key's value came from.
    pub fn origins(&self) -> &Origins {
        &self.origins
    }
}

/// Where each merged key's value came from.
#[derive(Debug, Default)]
pub struct Origins(BTreeMap<&'static str, Origin>);

impl Origins {
    /// Where `key`'s value came from.
    pub fn origin(&self, key: &str) -> &Origin {
        self.0.get(key).unwrap_or(&Origin::Default)
    }

    /// A mistake in `key`, named with the file, variable or flag it came from.
    pub fn error(&self, key: &str, msg: impl fmt::Display) -> UsageError {
        UsageError(format!("{}: key `{key}`: {msg}", self.origin(key)))
    }
}

/// Reads one section from a TOML file; a mistake names the file, the line and the key.
pub fn read_file<T: DeserializeOwned>(path: &Path) -> Result<T, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| UsageError(file_error(path, &text, &e)))
}

fn file_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim_end();
    let Some(span) = e.span() else { return format!("config file {}: {msg}", path.display()) };
    let at = span.start.min(text.len());
    let line = text[..at].matches('\n').count() + 1;
    match key_at(text, at) {
        Some(key) => format!("config file {}, line {line}: key `{key}`: {msg}", path.display()),
        None => format!("config file {}, line {line}: {msg}", path.display()),
    }
}

/// The dotted key on the line holding byte `at` of a TOML text (`labels.team`), if any.
fn key_at(text: &str, at: usize) -> Option<String> {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    let unquote = |s: &str| s.trim().trim_matches('"').trim_matches('\'').to_string();
    let header = |l: &str| l.trim_start_matches('[').split(']').next().map(unquote);
    if line.starts_with('[') {
        return header(line);
    }
    let key = unquote(line.split_once('=')?.0);
    let table = text[..start].lines().rev().map(str::trim).find(|l| l.starts_with('[')).and_then(header);
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key,
    })
}

/// A value where an empty string means "none" (`nvml_lib = ""` in the shipped files).
#[derive(Debug, Clone, PartialEq)]
pub struct Blankable<T>(pub Option<T>);

impl<T: FromStr> FromStr for Blankable<T>
where
    T::Err: fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            Ok(Blankable(None))
        } else {
            s.parse().map(|v| Blankable(Some(v))).map_err(|e| format!("{e}"))
        }
    }
}

impl<'de, T: FromStr> Deserialize<'de> for Blankable<T>
where
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// `key=value` pairs: a TOML table in a file, `k=v,k2=v2` in the environment, a repeatable flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs(pub Vec<(String, String)>);

impl FromStr for Pairs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not key=value"))?;
                Ok((k.trim().to_string(), v.trim().to_string()))
            })
            .collect::<Result<_, String>>()
            .map(Pairs)
    }
}

/// Reads a TOML table of strings as one list of pairs (serde `deserialize_with`).
pub fn table_of_pairs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Pairs>>, D::Error> {
    let table = BTreeMap::<String, String>::deserialize(d)?;
    Ok(Some(vec![Pairs(table.into_iter().collect())]))
}

/// Writes `None` as `""`, as the shipped files spell "none" (serde `serialize_with`).
pub fn blank_if_none<S: Serializer, T: Serialize>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.serialize(s),
        None => s.serialize_str(""),
    }
}

/// Writes a duration as whole milliseconds (serde `serialize_with`).
pub fn as_millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes a duration as seconds (serde `serialize_with`).
pub fn as_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Makes clap's "invalid value" errors name the environment variable when the value came from
/// one: clap reports the flag, which the user may never have typed.
pub fn name_the_variable(e: clap::Error, cli: &clap::Command) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(e.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue) {
        return e;
    }
    let Some(ContextValue::String(invalid)) = e.get(ContextKind::InvalidArg) else { return e };
    let Some(long) = invalid.split_whitespace().next().and_then(|f| f.strip_prefix("--")) else { return e };
    let argv: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let Some(sub) = argv.get(1).and_then(|name| cli.find_subcommand(name)) else { return e };
    let Some(arg) = sub.get_arguments().find(|a| a.get_long() == Some(long)) else { return e };
    let Some(env) = arg.get_env() else { return e };
    let Some(value) = std::env::var_os(env) else { return e };
    let flag = format!("--{long}");
    if argv.iter().any(|a| *a == flag || a.starts_with(&format!("{flag}="))) {
        return e;
    }
    let why = match std::error::Error::source(&e) {
        Some(inner) => inner.to_string(),
        None => {
            let names: Vec<String> = arg.get_possible_values().iter().map(|v| v.get_name().to_string()).collect();
            format!("not one of {}", names.join(", "))
        }
    };
    clap::Error::raw(e.kind(), format!("environment {}={:?}: {why}\n", env.to_string_lossy(), value.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_of_a_toml_error_is_found_with_its_table() {
        let text = "listen = \"x\"\n[labels]\nteam = 1\n";
        assert_eq!(key_at(text, 3).as_deref(), Some("listen"));
        assert_eq!(key_at(text, text.find("team").unwrap_or(0) + 7).as_deref(), Some("labels.team"));
        assert_eq!(key_at(text, text.find("[labels]").unwrap_or(0)).as_deref(), Some("labels"));
    }

    #[test]
    fn pairs_skip_empty_items_and_refuse_a_missing_equals_sign() {
        let p: Pairs = "a = b, ,c=d=e,".parse().unwrap_or(Pairs(Vec::new()));
        assert_eq!(p.0, vec![("a".into(), "b".into()), ("c".into(), "d=e".into())]);
        assert_eq!("a=b,oops".parse::<Pairs>().err().as_deref(), Some("\"oops\" is not key=value"));
    }

    #[test]
    fn an_empty_string_is_none() {
        assert_eq!("".parse::<Blankable<PathBuf>>(), Ok(Blankable(None)));
        assert_eq!("/x".parse::<Blankable<PathBuf>>(), Ok(Blankable(Some("/x".into()))));
    }
}
