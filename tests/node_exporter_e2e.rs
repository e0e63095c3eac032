//! node_exporter (Debian's `prometheus-node-exporter`) reads the simulated node's /proc and /sys
//! as it reads a real host's: its InfiniBand, netclass and netstat collectors succeed and serve
//! the scenario's values exactly, the degraded port of `net-link-degraded` included.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{Metrics, Proc, bin, free_port};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn node_exporter_reads_the_simulated_infiniband_netclass_and_netstat() {
    let root = tempfile::tempdir().unwrap();
    // Node 5 of the job, scenario second 100: mlx5_1 trained at 2X 200 Gb/s, 3 symbol errors a
    // second; 11 GB/s each way on every port; eth0 0.05 GB/s in, 0.02 out.
    let st = Command::new(bin())
        .args(["sim", "run", "--scenario", "net-link-degraded", "--node", "5", "--once-at", "100", "--root"])
        .arg(root.path())
        .status()
        .unwrap();
    assert!(st.success());
    let addr = format!("127.0.0.1:{}", free_port());
    let _ne = Proc(
        Command::new("prometheus-node-exporter")
            .args([
                "--collector.disable-defaults",
                "--collector.infiniband",
                "--collector.netclass",
                "--collector.netstat",
            ])
            .arg(format!("--path.procfs={}", root.path().join("proc").display()))
            .arg(format!("--path.sysfs={}", root.path().join("sys").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter is installed (scripts/test installs Debian's package)"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            break out.split_once("\r\n\r\n").unwrap().1.to_string();
        }
        assert!(Instant::now() < deadline, "node_exporter did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let m = Metrics::parse(&text);
    for c in ["infiniband", "netclass", "netstat"] {
        assert_eq!(m.one("node_scrape_collector_success", &[("collector", c)]), 1.0, "{c}:\n{text}");
    }
    let port = |dev: &str| [("device", dev.to_string()), ("port", "1".to_string())];
    let one = |name: &str, dev: &str| {
        let l = port(dev);
        m.one(name, &[(l[0].0, l[0].1.as_str()), (l[1].0, l[1].1.as_str())])
    };
    assert_eq!(one("node_infiniband_rate_bytes_per_second", "mlx5_1"), 25e9);
    assert_eq!(one("node_infiniband_rate_bytes_per_second", "mlx5_0"), 50e9);
    assert_eq!(one("node_infiniband_state_id", "mlx5_1"), 4.0);
    assert_eq!(one("node_infiniband_physical_state_id", "mlx5_1"), 5.0);
    assert_eq!(one("node_infiniband_symbol_error_total", "mlx5_1"), 300.0);
    assert_eq!(one("node_infiniband_symbol_error_total", "mlx5_0"), 0.0);
    assert_eq!(one("node_infiniband_port_data_received_bytes_total", "mlx5_2"), 1.1e12);
    assert_eq!(one("node_infiniband_port_data_transmitted_bytes_total", "mlx5_3"), 1.1e12);
    let info = m.labels_of("node_infiniband_info", &[("device", "mlx5_1")]);
    assert_eq!(info.len(), 1);
    for (k, v) in [("hca_type", "MT4129"), ("firmware_version", "28.39.1002"), ("board_id", "SIM_0000000001")] {
        assert!(info[0].contains(&(k.to_string(), v.to_string())), "{k}={v} in {info:?}");
    }
    assert_eq!(m.one("node_network_speed_bytes", &[("device", "eth0")]), 12.5e9);
    assert_eq!(m.one("node_network_speed_bytes", &[("device", "ib1")]), 25e9);
    assert_eq!(m.one("node_network_up", &[("device", "eth0")]), 1.0);
    assert_eq!(m.one("node_network_carrier_changes_total", &[("device", "eth0")]), 1.0);
    assert_eq!(m.one("node_network_protocol_type", &[("device", "ib0")]), 32.0);
    // IP traffic is eth0's plus loopback's 1 MiB: 5 GB in, 2 GB out by second 100.
    assert_eq!(m.one("node_netstat_IpExt_InOctets", &[]), 5e9 + 1_048_576.0);
    assert_eq!(m.one("node_netstat_IpExt_OutOctets", &[]), 2e9 + 1_048_576.0);
    assert_eq!(m.one("node_netstat_Tcp_InSegs", &[]), ((5e9 + 1_048_576.0) / 1500.0_f64).floor());
    assert_eq!(m.one("node_netstat_Tcp_CurrEstab", &[]), 24.0);
    assert_eq!(m.one("node_netstat_TcpExt_TCPSynRetrans", &[]), 0.0);
}
