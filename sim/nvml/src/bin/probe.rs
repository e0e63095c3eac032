//! `gpuscope-nvml-probe LIB [--wait-xid MS | --fields]`: reads everything the agent reads from an
//! NVML library through nvml-wrapper and prints it as JSON; `--fields` reads every field the
//! agent batches in one nvmlDeviceGetFieldValues call per GPU next to the single entry point that
//! gives the same value, so the two can be compared. Works on the simulator and on a real
//! driver alike (`/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1`); tests use it to compare the
//! simulator's answers with the scenario.

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, PcieUtilCounter, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::structs::device::FieldId;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::process::ExitCode;
use std::time::Instant;

fn v<T: Into<Value>>(r: Result<T, NvmlError>) -> Value {
    match r {
        Ok(x) => x.into(),
        Err(e) => {
            json!({ "error": format!("{e:?}").split('(').next().unwrap_or("Unknown").to_string() })
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(lib) = args.get(1) else {
        eprintln!("usage: gpuscope-nvml-probe LIBRARY [--wait-xid MILLISECONDS | --fields]");
        return ExitCode::from(2);
    };
    let nvml = match Nvml::builder().lib_path(OsStr::new(lib)).init() {
        Ok(n) => n,
        Err(e) => {
            println!("{}", json!({ "init_error": format!("{e:?}") }));
            return ExitCode::from(1);
        }
    };
    if args.get(2).map(String::as_str) == Some("--wait-xid") {
        let ms: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
        println!("{}", wait_xid(&nvml, ms));
        return ExitCode::SUCCESS;
    }
    if args.get(2).map(String::as_str) == Some("--fields") {
        println!("{}", fields(&nvml));
        return ExitCode::SUCCESS;
    }
    println!("{}", snapshot(&nvml));
    ExitCode::SUCCESS
}

/// A single entry point's answer for a field, as the field's integer value.
type Single<'a> = Box<dyn Fn() -> Result<u64, NvmlError> + 'a>;

/// For every GPU: each field the agent reads in a batch (one call, with scope ids), and what the
/// single entry point for the same value answers.
fn fields(nvml: &Nvml) -> Value {
    use nvml_wrapper::enum_wrappers::device::RetirementCause;
    use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
    let count = nvml.device_count().unwrap_or(0);
    let mut devices = Vec::new();
    for i in 0..count {
        let d = match nvml.device_by_index(i) {
            Ok(d) => d,
            Err(e) => {
                devices.push(json!({ "index": i, "error": format!("{e:?}") }));
                continue;
            }
        };
        let links = d
            .field_values_for(&[FieldId(91)])
            .ok()
            .and_then(|v| v.into_iter().next())
            .and_then(|r| r.ok())
            .and_then(|s| match s.value {
                Ok(nvml_wrapper::enums::device::SampleValue::U32(n)) => Some(n),
                _ => None,
            })
            .unwrap_or(0);
        let d = &d;
        let remapped = |k: usize| -> Single<'_> {
            Box::new(move || {
                let f = nvml.lib().nvmlDeviceGetRemappedRows.as_ref().map_err(|_| NvmlError::NotSupported)?;
                let mut v = [0u32; 4];
                let [a, b, c, e] = &mut v;
                // SAFETY: four caller-owned outputs and a live device handle.
                nvml_wrapper::error::nvml_try(unsafe { f(d.handle(), a, b, c, e) })?;
                Ok(u64::from(v[k]))
            })
        };
        let mut pairs: Vec<(u32, u32, Single<'_>)> = vec![
            (1, 0, Box::new(|| d.is_ecc_enabled().map(|m| u64::from(m.currently_enabled)))),
            (2, 0, Box::new(|| d.is_ecc_enabled().map(|m| u64::from(m.pending_enabled)))),
            (83, 0, Box::new(|| d.total_energy_consumption())),
            (185, 0, Box::new(|| d.power_usage().map(u64::from))),
            (94, 0, Box::new(|| d.pcie_replay_counter().map(u64::from))),
            (187, 0, Box::new(|| d.power_management_limit_constraints().map(|c| u64::from(c.min_limit)))),
            (188, 0, Box::new(|| d.power_management_limit_constraints().map(|c| u64::from(c.max_limit)))),
            (189, 0, Box::new(|| d.power_management_limit_default().map(u64::from))),
            (190, 0, Box::new(|| d.power_management_limit().map(u64::from))),
            (3, 0, Box::new(|| d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile))),
            (4, 0, Box::new(|| d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile))),
            (5, 0, Box::new(|| d.total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate))),
            (6, 0, Box::new(|| d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate))),
            (29, 0, Box::new(|| d.retired_pages(RetirementCause::MultipleSingleBitEccErrors).map(|p| p.len() as u64))),
            (30, 0, Box::new(|| d.retired_pages(RetirementCause::DoubleBitEccError).map(|p| p.len() as u64))),
            (31, 0, Box::new(|| d.are_pages_pending_retired().map(u64::from))),
            (142, 0, remapped(0)),
            (143, 0, remapped(1)),
            (144, 0, remapped(2)),
            (145, 0, remapped(3)),
        ];
        for link in 0..links {
            let w = move || d.link_wrapper_for(link);
            pairs.push((165, link, Box::new(move || w().is_active().map(u64::from))));
            pairs.push((161, link, Box::new(move || w().error_counter(ErrorCounter::DlReplay))));
            pairs.push((162, link, Box::new(move || w().error_counter(ErrorCounter::DlRecovery))));
            pairs.push((163, link, Box::new(move || w().error_counter(ErrorCounter::DlCrcData))));
        }
        let batched = batch(nvml, d, &pairs.iter().map(|(id, scope, _)| (*id, *scope)).collect::<Vec<_>>());
        let out: Vec<Value> = pairs
            .iter()
            .zip(batched)
            .map(|((id, scope, single), b)| json!({ "field": id, "scope": scope, "batched": b, "single": v(single()) }))
            .collect();
        devices.push(json!({ "index": i, "fields": out }));
    }
    json!({ "devices": devices })
}

/// One nvmlDeviceGetFieldValues call for `(field id, scope id)` requests.
fn batch(nvml: &Nvml, d: &nvml_wrapper::Device<'_>, reqs: &[(u32, u32)]) -> Vec<Value> {
    use nvml_wrapper_sys::bindings::nvmlFieldValue_t;
    let Ok(f) = nvml.lib().nvmlDeviceGetFieldValues.as_ref() else {
        return reqs.iter().map(|_| json!({ "error": "FunctionNotFound" })).collect();
    };
    let mut values: Vec<nvmlFieldValue_t> = reqs
        .iter()
        .map(|(id, scope)| {
            // SAFETY: plain old data; all-zero is a valid request.
            let mut v: nvmlFieldValue_t = unsafe { std::mem::zeroed() };
            v.fieldId = *id;
            v.scopeId = *scope;
            v
        })
        .collect();
    // SAFETY: a live device handle and `len` requests.
    let ret = unsafe { f(d.handle(), values.len() as i32, values.as_mut_ptr()) };
    if ret != 0 {
        return reqs.iter().map(|_| v::<u64>(nvml_wrapper::error::nvml_try(ret).map(|()| 0))).collect();
    }
    values
        .iter()
        .map(|fv| {
            if let Err(e) = nvml_wrapper::error::nvml_try(fv.nvmlReturn) {
                return v::<u64>(Err(e));
            }
            // SAFETY: the union member read is the one valueType names.
            let x = unsafe {
                match fv.valueType {
                    0 => fv.value.dVal as u64,
                    1 => u64::from(fv.value.uiVal),
                    2 => fv.value.ulVal,
                    3 => fv.value.ullVal,
                    4 => fv.value.sllVal as u64,
                    5 => fv.value.siVal as u64,
                    _ => u64::from(fv.value.usVal),
                }
            };
            json!(x)
        })
        .collect()
}

fn wait_xid(nvml: &Nvml, ms: u32) -> Value {
    let mut set = match nvml.create_event_set() {
        Ok(s) => s,
        Err(e) => return json!({ "error": format!("{e:?}") }),
    };
    let count = nvml.device_count().unwrap_or(0);
    for i in 0..count {
        // A lost GPU refuses registration (and a failed registration frees the set): skip it.
        if let Ok(d) = nvml.device_by_index(i)
            && d.uuid().is_ok()
        {
            match d.register_events(nvml_wrapper::bitmasks::event::EventTypes::CRITICAL_XID_ERROR, set) {
                Ok(s) => set = s,
                Err(e) => return json!({ "error": format!("register {i}: {:?}", e.error) }),
            }
        }
    }
    let began = Instant::now();
    match set.wait(ms) {
        Ok(ev) => json!({
            "xid": match ev.event_data {
                Some(nvml_wrapper::enums::event::XidError::Value(x)) => Some(x),
                _ => None,
            },
            "gpu": ev.device.index().ok(),
            "waited_ms": began.elapsed().as_millis() as u64,
        }),
        Err(e) => {
            json!({ "error": format!("{e:?}"), "waited_ms": began.elapsed().as_millis() as u64 })
        }
    }
}

fn snapshot(nvml: &Nvml) -> Value {
    let count = nvml.device_count().unwrap_or(0);
    let mut devices = Vec::new();
    for i in 0..count {
        let d = match nvml.device_by_index(i) {
            Ok(d) => d,
            Err(e) => {
                devices.push(json!({ "index": i, "error": format!("{e:?}") }));
                continue;
            }
        };
        let mem = d
            .memory_info()
            .map(|m| json!({ "total": m.total, "used": m.used, "free": m.free, "reserved": m.reserved }));
        let util = d.utilization_rates().map(|u| json!({ "gpu": u.gpu, "memory": u.memory }));
        let procs = d.running_compute_processes().map(|ps| {
            Value::from(
                ps.iter()
                    .map(|p| {
                        let mem = match p.used_gpu_memory {
                            UsedGpuMemory::Used(b) => Some(b),
                            UsedGpuMemory::Unavailable => None,
                        };
                        json!({ "pid": p.pid, "memory": mem })
                    })
                    .collect::<Vec<_>>(),
            )
        });
        let putil = d.process_utilization_stats(None).map(|ss| {
            Value::from(
                ss.iter()
                    .map(|s| json!({ "pid": s.pid, "sm": s.sm_util, "mem": s.mem_util, "timestamp": s.timestamp }))
                    .collect::<Vec<_>>(),
            )
        });
        let gpm = match d.gpm_support() {
            Ok(true) => {
                let ids = [
                    GpmMetricId::SmUtil,
                    GpmMetricId::SmOccupancy,
                    GpmMetricId::AnyTensorUtil,
                    GpmMetricId::DramBwUtil,
                    GpmMetricId::Fp64Util,
                    GpmMetricId::Fp32Util,
                    GpmMetricId::Fp16Util,
                ];
                let r = (|| {
                    let s1 = d.gpm_sample()?;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    let s2 = d.gpm_sample()?;
                    nvml_wrapper::gpm::gpm_metrics_get(nvml, &s1, &s2, &ids)
                })();
                match r {
                    Ok(rs) => {
                        let vals: Vec<Value> = rs.into_iter().map(|m| v(m.map(|m| m.value))).collect();
                        json!({ "sm_util": vals[0], "sm_occupancy": vals[1], "tensor": vals[2], "dram": vals[3], "fp64": vals[4], "fp32": vals[5], "fp16": vals[6] })
                    }
                    Err(e) => json!({ "error": format!("{e:?}") }),
                }
            }
            // Unsupported devices say so through the support query; sampling must fail too.
            Ok(false) => {
                json!({ "supported": false, "sample": v(d.gpm_sample().map(|_| "taken")) })
            }
            Err(e) => json!({ "error": format!("{e:?}") }),
        };
        let fields = d
            .field_values_for(&[FieldId(142), FieldId(143), FieldId(144), FieldId(145), FieldId(82), FieldId(45)])
            .map(|fs| {
                Value::from(
                    fs.into_iter()
                        .map(|f| match f {
                            Ok(s) => match s.value {
                                Ok(nvml_wrapper::enums::device::SampleValue::U32(x)) => json!(x),
                                Ok(nvml_wrapper::enums::device::SampleValue::U64(x)) => json!(x),
                                Ok(nvml_wrapper::enums::device::SampleValue::F64(x)) => json!(x),
                                Ok(nvml_wrapper::enums::device::SampleValue::I64(x)) => json!(x),
                                Err(e) => json!({ "error": format!("{e:?}") }),
                            },
                            Err(e) => json!({ "error": format!("{e:?}") }),
                        })
                        .collect::<Vec<_>>(),
                )
            });
        let cc = d.cuda_compute_capability().map(|c| format!("{}.{}", c.major, c.minor));
        let nvlink_active = (0..18).filter(|l| d.link_wrapper_for(*l).is_active().unwrap_or(false)).count();
        devices.push(json!({
            "index": i,
            "name": v(d.name()),
            "uuid": v(d.uuid()),
            "serial": v(d.serial()),
            "pci_bus_id": v(d.pci_info().map(|p| p.bus_id)),
            "compute_capability": v(cc),
            "memory": v(mem),
            "utilization": v(util),
            "encoder": v(d.encoder_utilization().map(|u| u.utilization)),
            "power_mw": v(d.power_usage()),
            "power_limit_mw": v(d.power_management_limit()),
            "energy_mj": v(d.total_energy_consumption()),
            "temperature_c": v(d.temperature(TemperatureSensor::Gpu)),
            "slowdown_c": v(d.temperature_threshold(TemperatureThreshold::Slowdown)),
            "shutdown_c": v(d.temperature_threshold(TemperatureThreshold::Shutdown)),
            "sm_clock_mhz": v(d.clock_info(Clock::SM)),
            "mem_clock_mhz": v(d.clock_info(Clock::Memory)),
            "max_sm_clock_mhz": v(d.max_clock_info(Clock::SM)),
            "throttle": v(d.current_throttle_reasons().map(|r| r.bits())),
            "pcie_rx_kbs": v(d.pcie_throughput(PcieUtilCounter::Receive)),
            "pcie_tx_kbs": v(d.pcie_throughput(PcieUtilCounter::Send)),
            "pcie_gen": v(d.current_pcie_link_gen()),
            "pcie_gen_max": v(d.max_pcie_link_gen()),
            "pcie_width": v(d.current_pcie_link_width()),
            "pcie_replays": v(d.pcie_replay_counter()),
            "ecc_uncorrected_volatile": v(d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)),
            "ecc_corrected_volatile": v(d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile)),
            "retired_pending": v(d.are_pages_pending_retired()),
            "processes": v(procs),
            "process_utilization": v(putil),
            "gpm": gpm,
            "fields": v(fields),
            "nvlink_active": nvlink_active,
        }));
    }
    json!({
        "driver_version": v(nvml.sys_driver_version()),
        "cuda_driver_version": v(nvml.sys_cuda_driver_version()),
        "device_count": v(nvml.device_count()),
        "devices": devices,
    })
}
