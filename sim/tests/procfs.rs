//! The /proc + /sys writer: the kernel's formats, parsed by procfs-core (the agent's parsers),
//! carrying the scenario's values.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use gpuscope_sim::procfs::{TreeWriter, USER_HZ};
use gpuscope_sim::scenario::Scenario;
use gpuscope_sim::{SimClock, Simulation};
use procfs_core::process::{Stat, Status};
use procfs_core::{FromBufRead, FromRead};
use std::path::Path;

const CLOCK: SimClock = SimClock { start_unix: 1_800_000_000.0, speed: 1.0, frozen: None };

fn write_at(sim: &Simulation, root: &Path, t: f64) -> TreeWriter {
    let mut w = TreeWriter::new(root).expect("root");
    w.write(sim, &CLOCK, t).expect("write");
    w
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn kernel_stats(root: &Path) -> procfs_core::KernelStats {
    let si = procfs_core::ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: USER_HZ as u64,
        page_size: 4096,
        is_little_endian: true,
    };
    procfs_core::FromBufReadSI::from_buf_read(read(root, "proc/stat").as_bytes(), &si).expect("parse /proc/stat")
}

fn busy_fraction(a: &procfs_core::CpuTime, b: &procfs_core::CpuTime) -> f64 {
    let total = |c: &procfs_core::CpuTime| {
        c.user
            + c.nice
            + c.system
            + c.idle
            + c.iowait.unwrap_or(0)
            + c.irq.unwrap_or(0)
            + c.softirq.unwrap_or(0)
            + c.steal.unwrap_or(0)
    };
    let idle = |c: &procfs_core::CpuTime| c.idle + c.iowait.unwrap_or(0);
    let dt = (total(b) - total(a)) as f64;
    1.0 - (idle(b) - idle(a)) as f64 / dt
}

fn sim(name: &str) -> Simulation {
    Simulation::new(Scenario::load(name).expect("scenario"), 0).expect("sim")
}

#[test]
fn cpu_memory_and_load_parse_and_match_the_scenario() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = sim("dataloader-stall");
    write_at(&s, dir.path(), 140.0);
    let a = kernel_stats(dir.path());
    write_at(&s, dir.path(), 150.0);
    let b = kernel_stats(dir.path());
    assert_eq!(a.cpu_time.len(), 64);
    let busy = busy_fraction(&a.total, &b.total);
    assert!((busy - 0.97).abs() < 0.01, "stall phase busy {busy}");
    assert_eq!(b.btime, 1_800_000_000 - 3600);
    // Per-core lines sum to the total line.
    let users: u64 = b.cpu_time.iter().map(|c| c.user).sum();
    assert_eq!(users, b.total.user);

    let mem = procfs_core::Meminfo::from_buf_read(read(dir.path(), "proc/meminfo").as_bytes()).expect("meminfo");
    assert_eq!(mem.mem_total, 1024 * 1024 * 1024 * 1024);
    assert!(mem.mem_available.is_some_and(|a| a < mem.mem_total && a > mem.mem_total / 2));
    let load = procfs_core::LoadAverage::from_read(read(dir.path(), "proc/loadavg").as_bytes()).expect("loadavg");
    assert!((f64::from(load.one) - 0.97 * 64.0).abs() < 2.0, "load {}", load.one);
}

#[test]
fn processes_have_kernel_formatted_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = sim("healthy-bf16-training");
    write_at(&s, dir.path(), 100.0);
    let pid = dir.path().join("proc/41001");
    let stat = Stat::from_read(read(dir.path(), "proc/41001/stat").as_bytes()).expect("stat");
    assert_eq!(stat.pid, 41001);
    assert_eq!(stat.comm, "python");
    // 24 busy cores for 100 s = 2400 CPU seconds.
    let cpu_s = (stat.utime + stat.stime) as f64 / USER_HZ;
    assert!((cpu_s - 2400.0).abs() < 0.1, "cpu seconds {cpu_s}");
    assert_eq!(stat.rss * 4096, 180 * 1024 * 1024 * 1024);
    let status = Status::from_buf_read(read(dir.path(), "proc/41001/status").as_bytes()).expect("status");
    assert_eq!(status.name, "python");
    assert_eq!(status.ruid, 1000);
    assert_eq!(status.nspid, Some(vec![41001, 1]), "host PID first, then the container's");
    assert_eq!(read(dir.path(), "proc/41001/comm"), "python\n");
    let cmdline = std::fs::read(pid.join("cmdline")).expect("cmdline");
    assert!(cmdline.starts_with(b"python\0-m\0torch.distributed.run\0"));
    let cg =
        procfs_core::ProcessCGroups::from_buf_read(read(dir.path(), "proc/41001/cgroup").as_bytes()).expect("cgroup");
    assert_eq!(cg.0.len(), 1);
    assert_eq!(cg.0[0].hierarchy, 0);
    assert_eq!(
        cg.0[0].pathname,
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b1f0d7e_2c4a_4f7e_9a51_0c7d2e8b9f13.slice/\
         cri-containerd-3f1c2a9b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a.scope"
    );
    assert!(
        dir.path()
            .join("var/log/pods/ml-training_llama-pretrain-worker-0_6b1f0d7e-2c4a-4f7e-9a51-0c7d2e8b9f13")
            .is_dir()
    );
}

#[test]
fn network_infiniband_and_nvme_counters_carry_the_rates() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = sim("healthy-bf16-training");
    write_at(&s, dir.path(), 100.0);
    let dev_a = procfs_core::net::InterfaceDeviceStatus::from_buf_read(read(dir.path(), "proc/net/dev").as_bytes())
        .expect("net/dev");
    let words_a: u64 =
        read(dir.path(), "sys/class/infiniband/mlx5_2/ports/1/counters/port_xmit_data").trim().parse().expect("words");
    let disks_a =
        procfs_core::DiskStats::from_buf_read(read(dir.path(), "proc/diskstats").as_bytes()).expect("diskstats");
    write_at(&s, dir.path(), 110.0);
    let dev_b = procfs_core::net::InterfaceDeviceStatus::from_buf_read(read(dir.path(), "proc/net/dev").as_bytes())
        .expect("net/dev");
    let words_b: u64 =
        read(dir.path(), "sys/class/infiniband/mlx5_2/ports/1/counters/port_xmit_data").trim().parse().expect("words");
    let disks_b =
        procfs_core::DiskStats::from_buf_read(read(dir.path(), "proc/diskstats").as_bytes()).expect("diskstats");

    // InfiniBand data counters are 4-byte words: 11 GB/s.
    let ib_rate = (words_b - words_a) as f64 * 4.0 / 10.0;
    assert!((ib_rate - 11e9).abs() / 11e9 < 1e-6, "ib rate {ib_rate}");
    // RDMA bypasses the IPoIB netdev.
    assert_eq!(dev_b.0["ib2"].sent_bytes, 0);
    let eth = (dev_b.0["eth0"].recv_bytes - dev_a.0["eth0"].recv_bytes) as f64 / 10.0;
    assert!((eth - 0.05e9).abs() < 1e3, "eth0 rx {eth}");
    assert!(dev_b.0.contains_key("lo"));
    assert_eq!(read(dir.path(), "sys/class/net/eth0/speed"), "100000\n");
    assert_eq!(read(dir.path(), "sys/class/infiniband/mlx5_0/ports/1/rate"), "400 Gb/sec (4X NDR)\n");
    assert_eq!(read(dir.path(), "sys/class/net/ib0/type"), "32\n");
    let mem = procfs_core::Meminfo::from_buf_read(read(dir.path(), "proc/meminfo").as_bytes()).expect("meminfo");
    assert_eq!((mem.swap_total, mem.swap_free), (16 << 30, (16 << 30) - (1 << 28)), "16 GiB, 0.25 GiB used");

    let d = |s: &procfs_core::DiskStats| s.0.iter().find(|d| d.name == "nvme1n1").cloned().expect("nvme1n1");
    let read_rate = (d(&disks_b).sectors_read - d(&disks_a).sectors_read) as f64 * 512.0 / 10.0;
    assert!((read_rate - 900e6).abs() < 1e3, "nvme read {read_rate}");
    assert!(read(dir.path(), "sys/class/nvme/nvme1/model").starts_with("SAMSUNG"));
}

/// Once a counter writer keeps the traffic counters, a slow whole-tree write that lands after a
/// newer counter write leaves them alone: they never go back.
#[test]
fn the_counter_writer_owns_the_traffic_counters() {
    let s = sim("healthy-bf16-training");
    let dir = tempfile::tempdir().expect("tmp");
    let mut w = write_at(&s, dir.path(), 100.0);
    let counters = w.counter_writer();
    counters.write_counters(&s, 110.0).expect("counters");
    w.write(&s, &CLOCK, 105.0).expect("tree");
    // 11 GB/s for 110 s, in 4-byte words.
    let words = read(dir.path(), "sys/class/infiniband/mlx5_0/ports/1/counters/port_rcv_data");
    assert_eq!(words, "302500000000\n");
    let dev = procfs_core::net::InterfaceDeviceStatus::from_buf_read(read(dir.path(), "proc/net/dev").as_bytes())
        .expect("net/dev");
    assert_eq!(dev.0["eth0"].recv_bytes, 5_500_000_000, "0.05 GB/s for 110 s");
    assert_eq!(read(dir.path(), "proc/uptime"), "3705.00 3334.50\n", "the rest is the tree's own time");
}

/// A node's NIC override: node 5's mlx5_1 port trained at 2X 200 Gb/s with 3 symbol errors a
/// second, written as the kernel writes them; node 4 of the same job is untouched.
#[test]
fn a_degraded_infiniband_port_on_one_node() {
    let sc = Scenario::load("net-link-degraded").expect("scenario");
    let dir = tempfile::tempdir().expect("tmp");
    let five = Simulation::new(sc.clone(), 5).expect("node 5");
    write_at(&five, dir.path(), 100.0);
    let p = |rel: &str| read(dir.path(), &format!("sys/class/infiniband/{rel}"));
    assert_eq!(p("mlx5_1/ports/1/rate"), "200 Gb/sec (2X NDR)\n");
    assert_eq!(p("mlx5_0/ports/1/rate"), "400 Gb/sec (4X NDR)\n");
    assert_eq!(p("mlx5_1/ports/1/state"), "4: ACTIVE\n");
    assert_eq!(p("mlx5_1/ports/1/phys_state"), "5: LinkUp\n");
    assert_eq!(p("mlx5_1/ports/1/counters/symbol_error"), "300\n");
    assert_eq!(p("mlx5_0/ports/1/counters/symbol_error"), "0\n");
    assert_eq!(p("mlx5_1/hca_type"), "MT4129\n");
    assert_eq!(p("mlx5_1/fw_ver"), "28.39.1002\n");
    assert_eq!(read(dir.path(), "sys/class/net/ib1/speed"), "200000\n");
    assert_eq!(read(dir.path(), "sys/class/net/eth0/operstate"), "up\n");
    assert_eq!(read(dir.path(), "sys/class/net/eth0/carrier_changes"), "1\n");
    // The 16-bit counter stops at its maximum: 3/s reaches 65535 after 21845 s.
    write_at(&five, dir.path(), 30_000.0);
    assert_eq!(p("mlx5_1/ports/1/counters/symbol_error"), "65535\n");

    let dir4 = tempfile::tempdir().expect("tmp");
    write_at(&Simulation::new(sc, 4).expect("node 4"), dir4.path(), 100.0);
    assert_eq!(read(dir4.path(), "sys/class/infiniband/mlx5_1/ports/1/rate"), "400 Gb/sec (4X NDR)\n");
    assert_eq!(read(dir4.path(), "sys/class/infiniband/mlx5_1/ports/1/counters/symbol_error"), "0\n");
}

/// A port that is not active carries nothing and says so in every file that shows it.
#[test]
fn a_port_down_carries_nothing() {
    let text = r#"
        [node]
        nics = [
          { name = "eth0", kind = "ethernet", speed_gbps = 100 },
          { name = "ib0", kind = "infiniband", speed_gbps = 400, device = "mlx5_0" },
        ]
        [[gpus]]
        model = "H100-SXM5-80GB"
        [[phases]]
        duration_s = 100
        host = { nics = { ib0 = { rx_gb_s = 10, state = "down", link_downed_per_s = 0.01 }, eth0 = { rx_gb_s = 1, state = "down" } } }
    "#;
    let s = Simulation::new(Scenario::from_toml(text, "down.toml").expect("scenario"), 0).expect("sim");
    let dir = tempfile::tempdir().expect("tmp");
    write_at(&s, dir.path(), 50.0);
    assert_eq!(read(dir.path(), "sys/class/infiniband/mlx5_0/ports/1/state"), "1: DOWN\n");
    assert_eq!(read(dir.path(), "sys/class/infiniband/mlx5_0/ports/1/phys_state"), "2: Polling\n");
    assert_eq!(read(dir.path(), "sys/class/infiniband/mlx5_0/ports/1/counters/port_rcv_data"), "0\n");
    assert_eq!(read(dir.path(), "sys/class/infiniband/mlx5_0/ports/1/counters/link_downed"), "0\n");
    assert_eq!(read(dir.path(), "sys/class/net/eth0/operstate"), "down\n");
    assert_eq!(read(dir.path(), "sys/class/net/eth0/speed"), "-1\n");
    assert_eq!(read(dir.path(), "sys/class/net/eth0/carrier_changes"), "2\n");
    write_at(&s, dir.path(), 100.0);
    assert_eq!(read(dir.path(), "sys/class/infiniband/mlx5_0/ports/1/counters/link_downed"), "1\n");
}

#[test]
fn process_lifetimes_and_cgroup_layouts() {
    let text = r#"
        [node]
        cgroup = "v1"
        cgroup_driver = "cgroupfs"
        [[gpus]]
        model = "T4"
        [[processes]]
        pid = 900
        name = "a-very-long-process-name"
        gpus = [0]
        end_s = 50
        container = { runtime = "docker", id = "abc123" }
        pod = { uid = "u-1", name = "p", namespace = "n", qos = "besteffort" }
        [[processes]]
        pid = 901
        name = "bash"
        gpus = "all"
        uid = 1001
        [[phases]]
        duration_s = 100
    "#;
    let s = Simulation::new(Scenario::from_toml(text, "life.toml").expect("scenario"), 0).expect("sim");
    let dir = tempfile::tempdir().expect("tmp");
    let mut w = write_at(&s, dir.path(), 10.0);
    assert_eq!(read(dir.path(), "proc/900/comm"), "a-very-long-pro\n", "comm keeps 15 bytes");
    let cg =
        procfs_core::ProcessCGroups::from_buf_read(read(dir.path(), "proc/900/cgroup").as_bytes()).expect("v1 cgroup");
    assert!(cg.0.len() > 5, "one line per v1 hierarchy");
    assert!(cg.0.iter().any(|c| c.controllers == ["memory"] && c.pathname == "/kubepods/besteffort/podu-1/abc123"));
    assert_eq!(read(dir.path(), "proc/901/cgroup").lines().last(), Some("0::/"));
    assert!(read(dir.path(), "proc/901/cgroup").contains("/user.slice/user-1001.slice/session-1.scope"));
    w.write(&s, &CLOCK, 60.0).expect("write");
    assert!(!dir.path().join("proc/900").exists(), "an exited process disappears");
    assert!(dir.path().join("proc/901/stat").exists());
}
