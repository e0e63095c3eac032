//! `gpuscope install`: a hardened systemd service with a dedicated user and a default config.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The unit file, with `@BIN@` for the binary's path.
pub const UNIT: &str = include_str!("../../deploy/gpuscope.service");
/// The default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/agent.toml");

/// Install options.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Install under this root instead of / (packaging, tests); creates no user, starts nothing.
    #[arg(long)]
    pub prefix: Option<PathBuf>,
    /// Where the binary goes.
    #[arg(long, default_value = "/usr/local/bin/gpuscope")]
    pub bin: PathBuf,
    /// Write the files but do not enable or start the service.
    #[arg(long)]
    pub no_start: bool,
}

fn under(prefix: &Option<PathBuf>, p: &Path) -> PathBuf {
    match prefix {
        Some(root) => root.join(p.strip_prefix("/").unwrap_or(p)),
        None => p.to_path_buf(),
    }
}

fn write(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn run_cmd(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program).args(args).status().with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("{program} {} failed with {status}", args.join(" "));
    }
    Ok(())
}

/// Installs the agent.
pub fn run(a: &InstallArgs) -> Result<()> {
    let live = a.prefix.is_none();
    if live && !nix_is_root() {
        bail!("gpuscope install needs root (or --prefix DIR to stage the files)");
    }
    let exe = std::env::current_exe().context("cannot locate this executable")?;
    let bin = under(&a.prefix, &a.bin);
    if exe.canonicalize().ok() != bin.canonicalize().ok() {
        let bytes = std::fs::read(&exe).with_context(|| format!("cannot read {}", exe.display()))?;
        write(&bin, &bytes, 0o755)?;
    }
    let unit = UNIT.replace("@BIN@", &a.bin.display().to_string());
    write(&under(&a.prefix, Path::new("/etc/systemd/system/gpuscope.service")), unit.as_bytes(), 0o644)?;
    let cfg = under(&a.prefix, Path::new("/etc/gpuscope/agent.toml"));
    if cfg.exists() {
        println!("kept existing {}", cfg.display());
    } else {
        write(&cfg, DEFAULT_CONFIG.as_bytes(), 0o644)?;
    }
    if !live {
        return Ok(());
    }
    let exists = Command::new("id").arg("gpuscope").output().map(|o| o.status.success()).unwrap_or(false);
    if !exists {
        run_cmd(
            "useradd",
            &["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", "gpuscope"],
        )?;
        println!("created system user gpuscope");
    }
    run_cmd("systemctl", &["daemon-reload"])?;
    if !a.no_start {
        run_cmd("systemctl", &["enable", "--now", "gpuscope.service"])?;
        println!("gpuscope.service enabled and started; metrics on :9466/metrics");
    }
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
