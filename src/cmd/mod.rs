//! One module per subcommand.

pub mod agent;
pub mod install;
pub mod query;
pub mod rules;
pub mod sim;
