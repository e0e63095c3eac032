//! `gpuscope profile --pid PID`: one kernel-level profiling window of a CUDA process, on request.
//! The local agent holds the connection to the process's injection library: this command asks
//! it (`POST /api/v1/profile`), the agent sends the library a window request and answers with
//! the process's profile from that window, printed as a table or as JSON.

use crate::config::{AgentArgs, AgentConfig};
use anyhow::{Context, Result, bail};
use gpuscope_core::KernelProfile;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// `gpuscope profile` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ProfileArgs {
    /// Host PID of the CUDA process; it must run with gpuscope's injection library
    /// (CUDA_INJECTION64_PATH) and be connected to this node's agent.
    #[arg(long)]
    pub pid: u32,
    /// Length of the window: 500ms, 2s, 1.5s (1 ms to 60 s).
    #[arg(long, default_value = "500ms", value_parser = parse_window, value_name = "DURATION")]
    pub duration: Duration,
    /// Print the profile as JSON (the `kernel_profiles[]` entry of docs/query-json.md).
    #[arg(long)]
    pub json: bool,
    /// Credentials for an agent whose web configuration requires basic authentication.
    #[arg(long, env = "GPUSCOPE_BASIC_AUTH", value_name = "USER:PASSWORD", hide_env_values = true)]
    pub basic_auth: Option<String>,
    /// The agent's configuration (its `listen` address is where it is asked).
    #[command(flatten)]
    pub config: AgentArgs,
}

/// Parses `500ms`, `2s`, `1.5s`, within the range a window request allows.
pub fn parse_window(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!("{s:?} has no unit: write 500ms or 2s"));
    };
    let v: f64 = number.trim().parse().map_err(|_| format!("{s:?} is not a duration like 500ms or 2s"))?;
    let d = Duration::try_from_secs_f64(v * scale).map_err(|_| format!("{s:?} is not a duration"))?;
    if !(Duration::from_millis(1)..=Duration::from_secs(60)).contains(&d) {
        return Err(format!("{s:?} is outside 1ms..60s"));
    }
    Ok(d)
}

/// Where a client on this host reaches an agent listening on `listen` (an unspecified
/// address means every interface: ask over loopback).
pub fn local_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port()),
        _ => listen,
    }
}

/// Standard base64 (RFC 4648) of `bytes`, for a basic-auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One plain-HTTP request to the agent's endpoint: (status, body). The endpoint answers with a
/// length and closes (`Connection: close`), so the body is what follows the head.
pub fn agent_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    basic_auth: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("cannot reach the agent at {addr} (is `gpuscope agent` running there?)"))?;
    s.set_read_timeout(Some(timeout)).context("cannot set a read timeout")?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n");
    if let Some(auth) = basic_auth {
        let _ = write!(req, "Authorization: Basic {}\r\n", base64(auth.as_bytes()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).with_context(|| format!("cannot send the request to {addr}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).with_context(|| format!("no complete answer from the agent at {addr}"))?;
    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("the agent at {addr} answered something that is not HTTP (is it served over TLS? then use curl)");
    };
    let head = String::from_utf8_lossy(&buf[..split]);
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("the agent at {addr} answered without an HTTP status"))?;
    Ok((status, String::from_utf8_lossy(&buf[split + 4..]).into_owned()))
}

/// Asks the agent for one window and prints the profile.
pub fn run(a: &ProfileArgs) -> Result<()> {
    let cfg = AgentConfig::load(&a.config)?;
    let addr = local_addr(cfg.listen);
    let ms = a.duration.as_millis().max(1);
    let path = format!("/api/v1/profile?pid={}&duration_ms={ms}", a.pid);
    // The agent waits the window and a few seconds more for the summary; so does this.
    let (status, body) =
        agent_request(addr, "POST", &path, a.basic_auth.as_deref(), a.duration + Duration::from_secs(15))?;
    if status != 200 {
        bail!("the agent at {addr} answered {status}: {}", body.trim());
    }
    let profile: KernelProfile = serde_json::from_str(&body)
        .with_context(|| format!("the agent at {addr} answered a profile that does not parse"))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&profile)?);
    } else {
        print!("{}", table(&profile));
    }
    Ok(())
}

fn ms(seconds: f64) -> String {
    format!("{:.3}", seconds * 1e3)
}

fn share(part: f64, whole: f64) -> String {
    if whole > 0.0 { format!("{:.1}%", part / whole * 100.0) } else { "-".into() }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// The human table: who, the window, top kernels, kernel classes, copies, syncs and gaps.
pub fn table(p: &KernelProfile) -> String {
    let mut out = String::new();
    let place = match (&p.namespace, &p.pod, &p.container) {
        (Some(ns), Some(pod), _) => format!("  pod {ns}/{pod}"),
        (_, _, Some(c)) => format!("  container {}", c.chars().take(12).collect::<String>()),
        _ => String::new(),
    };
    let gpus: Vec<String> = p.gpus.iter().map(u32::to_string).collect();
    let gpus = if gpus.is_empty() { "-".to_string() } else { gpus.join(",") };
    let name = if p.name.is_empty() { "?" } else { p.name.as_str() };
    let _ = writeln!(out, "pid {} {name}  user {}{place}  GPUs {gpus}", p.pid, p.user.as_deref().unwrap_or("-"));
    let _ = writeln!(
        out,
        "window {} ms (period {:.1} s, {} windows so far)  kernels {}  kernel time {} ms  median {}  launches/s {}",
        ms(p.window_seconds),
        p.period_seconds,
        p.windows_total,
        p.kernel_count,
        ms(p.kernel_seconds),
        p.median_kernel_seconds.map_or("-".into(), |s| format!("{:.1} us", s * 1e6)),
        p.launches_per_second.map_or("-".into(), |r| format!("{r:.0}")),
    );
    if !p.top_kernels.is_empty() {
        let _ =
            writeln!(out, "\n{:<60} {:<28} {:>8} {:>12} {:>7}", "TOP KERNELS", "CLASS", "COUNT", "TIME ms", "SHARE");
        for k in &p.top_kernels {
            let name: String = if k.name.chars().count() > 60 {
                k.name.chars().take(57).chain("...".chars()).collect()
            } else {
                k.name.clone()
            };
            let _ = writeln!(
                out,
                "{name:<60} {:<28} {:>8} {:>12} {:>7}",
                k.class.label(),
                k.count,
                ms(k.seconds),
                share(k.seconds, p.kernel_seconds)
            );
        }
    }
    if !p.classes.is_empty() {
        let _ = writeln!(out, "\n{:<28} {:>8} {:>12} {:>7}", "KERNEL CLASS", "COUNT", "TIME ms", "SHARE");
        let mut classes: Vec<_> = p.classes.iter().collect();
        classes.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        for c in classes {
            let _ = writeln!(
                out,
                "{:<28} {:>8} {:>12} {:>7}",
                c.class.label(),
                c.count,
                ms(c.seconds),
                share(c.seconds, p.kernel_seconds)
            );
        }
    }
    let _ = writeln!(
        out,
        "\ncopies from/to pageable memory: {} ({}), {} of them async (they run synchronously)",
        p.pageable_copies,
        mib(p.pageable_copy_bytes),
        p.async_pageable_copies
    );
    let _ = writeln!(
        out,
        "synchronization: {} ms ({} of the window)",
        ms(p.sync_seconds),
        share(p.sync_seconds, p.window_seconds)
    );
    let _ = writeln!(
        out,
        "GPU gaps between kernels: longest {}, total {}",
        p.gpu_gap_max_seconds.map_or("-".into(), |s| format!("{} ms", ms(s))),
        p.gpu_gap_seconds.map_or("-".into(), |s| format!("{} ms", ms(s)))
    );
    let _ = writeln!(
        out,
        "graph kernels: {}  profiler overhead: {} ms total{}  dropped records: {}  summaries dropped: {}",
        p.graph_kernels,
        ms(p.overhead_seconds_total),
        p.overhead_cpu_ratio.map_or(String::new(), |r| format!(" ({:.2}% of its CPU time)", r * 100.0)),
        p.dropped_records_total,
        p.summaries_dropped_total
    );
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail by panicking

    use super::*;

    #[test]
    fn windows_parse_with_units_and_bounds() {
        assert_eq!(parse_window("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_window("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_window("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_window(" 60s "), Ok(Duration::from_secs(60)));
        assert!(parse_window("500").unwrap_err().contains("no unit"));
        assert!(parse_window("61s").unwrap_err().contains("outside"));
        assert!(parse_window("0ms").unwrap_err().contains("outside"));
        assert!(parse_window("-1s").is_err());
        assert!(parse_window("fast").is_err());
    }

    #[test]
    fn base64_is_rfc_4648() {
        // RFC 4648 section 10's test vectors.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn an_unspecified_listen_address_is_asked_over_loopback() {
        assert_eq!(local_addr("0.0.0.0:9466".parse().unwrap()), "127.0.0.1:9466".parse().unwrap());
        assert_eq!(local_addr("[::]:9466".parse().unwrap()), "[::1]:9466".parse().unwrap());
        assert_eq!(local_addr("10.0.0.5:9466".parse().unwrap()), "10.0.0.5:9466".parse().unwrap());
    }
}
