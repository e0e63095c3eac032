//! One point per series per push interval: gauges become their mean over the interval (clock
//! event reasons thereby become fractions of time, rounded to the bitmask), counters and
//! identity come from the newest sample.

use gpuscope_core::NodeSnapshot;
use gpuscope_core::catalogue::{CATALOGUE, MetricKind, Owner, Scope};

/// Aggregates samples of one node (oldest first) into one snapshot stamped with the newest time.
pub fn aggregate(samples: &[NodeSnapshot]) -> Option<NodeSnapshot> {
    let newest = samples.last()?;
    let mut out = newest.clone();
    if samples.len() == 1 {
        return Some(out);
    }
    // A link's up flag is not averaged: the newest state is reported, as the counters are. Nor
    // is a kernel profile: its values already describe one window (the latest), and a mean of
    // two windows' values (or end times) describes none.
    let averaged = |m: &&gpuscope_core::MetricDef| {
        m.kind == MetricKind::Gauge && !matches!(m.scope(), Scope::NvLink | Scope::KernelProfile | Scope::KernelClass)
    };
    for m in CATALOGUE.iter().filter(averaged) {
        // Every place the newest sample has, even where its own value is absent: the older
        // samples' values still make a mean.
        for slot in m.slots(newest) {
            // A GPU lost in the aggregate keeps the newest values (none, as it answers nothing);
            // `gpu_up` comes first, so a GPU lost for most of the interval is lost here too.
            if let Owner::Gpu(g) = &slot.identity.owner
                && out.gpus.iter().any(|x| x.index == g.index && x.lost)
            {
                continue;
            }
            let mut n = 0;
            let sum: f64 = samples.iter().filter_map(|s| m.value_in(s, &slot.identity)).inspect(|_| n += 1).sum();
            if n > 0 {
                m.set(&mut out, &slot.identity, sum / f64::from(n));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpuscope_core::GpuSample;

    #[test]
    fn gauges_average_counters_take_the_newest() {
        let s = |t: u64, power: f64, energy: f64, reasons: u64| NodeSnapshot {
            timestamp_ms: t,
            gpus: vec![GpuSample {
                index: 0,
                power_watts: Some(power),
                energy_joules: Some(energy),
                clock_event_reasons: Some(reasons),
                ..GpuSample::default()
            }],
            ..NodeSnapshot::default()
        };
        let a = aggregate(&[s(1000, 100.0, 10.0, 0x4), s(2000, 200.0, 20.0, 0x4), s(3000, 300.0, 30.0, 0)])
            .expect("aggregate");
        assert_eq!(a.timestamp_ms, 3000);
        assert_eq!(a.gpus[0].power_watts, Some(200.0));
        assert_eq!(a.gpus[0].energy_joules, Some(30.0));
        assert_eq!(a.gpus[0].clock_event_reasons, Some(0x4), "power cap held two thirds of the interval");
    }

    #[test]
    fn absent_in_the_newest_sample_still_averages_and_lost_gpus_and_links_keep_the_newest() {
        use gpuscope_core::NvLinkSample;
        let s = |t: u64, temp: Option<f64>, lost1: bool, link_up: bool| NodeSnapshot {
            timestamp_ms: t,
            gpus: vec![
                GpuSample {
                    index: 0,
                    temperature_celsius: temp,
                    nvlinks: vec![NvLinkSample { link: 0, active: Some(link_up), ..NvLinkSample::default() }],
                    ..GpuSample::default()
                },
                GpuSample { index: 1, lost: lost1, power_watts: (!lost1).then_some(100.0), ..GpuSample::default() },
            ],
            ..NodeSnapshot::default()
        };
        let a =
            aggregate(&[s(1000, Some(60.0), false, true), s(2000, Some(70.0), true, true), s(3000, None, true, false)])
                .expect("aggregate");
        assert_eq!(a.gpus[0].temperature_celsius, Some(65.0), "the older samples' mean");
        assert_eq!(a.gpus[0].nvlinks[0].active, Some(false), "link state from the newest sample");
        assert!(a.gpus[1].lost);
        assert_eq!(a.gpus[1].power_watts, None, "a lost GPU is not given its past values");
    }

    #[test]
    fn kernel_profiles_report_their_latest_window_not_a_mean_of_windows() {
        use gpuscope_core::KernelProfile;
        let s = |t: u64, kernel_seconds: f64, end_ms: u64| NodeSnapshot {
            timestamp_ms: t,
            kernel_profiles: vec![KernelProfile {
                pid: 7,
                kernel_seconds,
                window_end_unix_ms: end_ms,
                ..KernelProfile::default()
            }],
            ..NodeSnapshot::default()
        };
        let a = aggregate(&[s(1000, 0.1, 900), s(2000, 0.3, 1900)]).expect("aggregate");
        assert_eq!(a.kernel_profiles[0].kernel_seconds, 0.3);
        assert_eq!(a.kernel_profiles[0].window_end_unix_ms, 1900);
    }
}
