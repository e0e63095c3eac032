//! One module per subcommand.

pub mod agent;
pub mod collector;
pub mod dashboards;
pub mod demo;
pub mod install;
pub mod profile;
pub mod query;
pub mod record;
pub mod rules;
pub mod sim;
pub mod top;
