//! Scenario time and the environment that selects what a simulated process plays.
//!
//! Every process that plays a scenario (the NVML library inside the agent, `gpuscope sim run`,
//! a Python test) computes scenario time from the same start epoch, so they share one timeline.

use crate::engine::Simulation;
use crate::scenario::{Scenario, ScenarioError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Scenario file path or built-in name.
pub const ENV_SCENARIO: &str = "GPUSCOPE_SIM_SCENARIO";
/// Unix time (seconds, may be fractional) at which scenario time is 0.
pub const ENV_START: &str = "GPUSCOPE_SIM_START";
/// Scenario seconds per wall-clock second.
pub const ENV_SPEED: &str = "GPUSCOPE_SIM_SPEED";
/// Freeze scenario time at this many seconds (for exact-value tests).
pub const ENV_TIME: &str = "GPUSCOPE_SIM_TIME";
/// Which node of a multi-node job to play.
pub const ENV_NODE: &str = "GPUSCOPE_SIM_NODE";

/// A bad simulator environment variable.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The scenario variable is missing.
    #[error("{ENV_SCENARIO} is not set: name a built-in scenario or a scenario file")]
    NoScenario,
    /// A variable is not a number.
    #[error("{name}={value:?} is not a valid number")]
    BadNumber {
        /// Variable name.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The scenario failed to load.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// Current Unix time in seconds.
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Maps wall-clock time to scenario time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimClock {
    /// Unix time of scenario second 0.
    pub start_unix: f64,
    /// Scenario seconds per wall second.
    pub speed: f64,
    /// Frozen scenario time, if any.
    pub frozen: Option<f64>,
}

impl SimClock {
    /// A clock starting now at real speed.
    pub fn starting_now(speed: f64) -> SimClock {
        SimClock { start_unix: unix_now(), speed, frozen: None }
    }

    /// Scenario time now.
    pub fn now(&self) -> f64 {
        self.at_unix(unix_now())
    }

    /// Scenario time at Unix time `unix`.
    pub fn at_unix(&self, unix: f64) -> f64 {
        self.frozen.unwrap_or_else(|| ((unix - self.start_unix) * self.speed).max(0.0))
    }

    /// Unix time at which scenario time reaches `t` (now, when frozen).
    pub fn unix_at(&self, t: f64) -> f64 {
        if self.frozen.is_some() || self.speed <= 0.0 {
            return unix_now();
        }
        self.start_unix + t / self.speed
    }

    /// Reads the clock variables; the start defaults to now.
    pub fn from_env() -> Result<SimClock, EnvError> {
        let start = number(ENV_START)?.unwrap_or_else(unix_now);
        let speed = number(ENV_SPEED)?.unwrap_or(1.0);
        if speed <= 0.0 {
            return Err(EnvError::BadNumber { name: ENV_SPEED, value: speed.to_string() });
        }
        Ok(SimClock { start_unix: start, speed, frozen: number(ENV_TIME)? })
    }
}

fn number(name: &'static str) -> Result<Option<f64>, EnvError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or(EnvError::BadNumber { name, value: v }),
        _ => Ok(None),
    }
}

/// Loads the simulation and clock the environment selects.
pub fn from_env() -> Result<(Simulation, SimClock), EnvError> {
    let scenario = std::env::var(ENV_SCENARIO).map_err(|_| EnvError::NoScenario)?;
    let node = number(ENV_NODE)?.unwrap_or(0.0);
    if node < 0.0 || node.fract() != 0.0 {
        return Err(EnvError::BadNumber { name: ENV_NODE, value: node.to_string() });
    }
    let sim = Simulation::new(Scenario::load(&scenario)?, node as u32)?;
    Ok((sim, SimClock::from_env()?))
}
