//! The walk from a catalogue row to its series in a snapshot, and back: written once here, used
//! by the Prometheus encoder (identity → labels), the OTLP encoder (identity → attributes), the
//! interval aggregation (identity → the same series in older samples) and the collector's
//! decoder (attributes → identity → the owner found or created in a snapshot).
//!
//! An [`Identity`] names the owner of a series (a GPU, a link of a GPU, a process on a GPU, the
//! host, a core, an interface, a device) plus the extra label of a labelled row. Text in it is
//! borrowed: from the snapshot when walking, from the OTLP attributes when decoding, so neither
//! direction allocates per series.

use super::{Accessor, MetricDef};
use crate::exposition::LabelValue;
use crate::model::{
    CpuSample, DiskSample, FsSample, GpuSample, HostSample, KernelClassTime, KernelProfile, MigSample, NicKind,
    NicSample, NodeSnapshot, NvLinkSample, ProcessSample,
};
use gpuscope_cupti::KernelClass;
use std::borrow::Cow;

/// A GPU as a series names it. Walked from a snapshot, every description is filled in as the
/// snapshot holds it; decoded, a description the point did not carry is `None` and leaves the
/// snapshot's value as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuId<'a> {
    /// NVML index: what finds the GPU.
    pub index: u32,
    /// GPU UUID.
    pub uuid: Option<Cow<'a, str>>,
    /// Product name.
    pub model: Option<Cow<'a, str>>,
    /// Board serial.
    pub serial: Option<Cow<'a, str>>,
    /// PCI bus id.
    pub pci_bus_id: Option<Cow<'a, str>>,
    /// CUDA compute capability.
    pub compute_capability: Option<Cow<'a, str>>,
    /// VBIOS version.
    pub vbios_version: Option<Cow<'a, str>>,
    /// CPUs nearest the GPU (a Linux CPU list).
    pub cpu_affinity: Option<Cow<'a, str>>,
}

impl<'a> GpuId<'a> {
    /// The identity of a GPU of a snapshot.
    pub fn of(g: &'a GpuSample) -> Self {
        GpuId {
            index: g.index,
            uuid: Some(Cow::Borrowed(&g.uuid)),
            model: Some(Cow::Borrowed(&g.model)),
            serial: g.serial.as_deref().map(Cow::Borrowed),
            pci_bus_id: g.pci_bus_id.as_deref().map(Cow::Borrowed),
            compute_capability: g.compute_capability.as_deref().map(Cow::Borrowed),
            vbios_version: g.vbios_version.as_deref().map(Cow::Borrowed),
            cpu_affinity: g.cpu_affinity.as_deref().map(Cow::Borrowed),
        }
    }

    /// This GPU in `gpus` (usually at the position of its index).
    fn find<'s>(&self, gpus: &'s [GpuSample]) -> Option<&'s GpuSample> {
        find(gpus, self.index as usize, |g| g.index == self.index)
    }

    /// This GPU in `gpus`, appended when absent, with the descriptions the identity carries
    /// brought up to date (compared first: a point repeats what the snapshot already holds).
    #[inline]
    fn find_or_insert<'s>(&self, gpus: &'s mut Vec<GpuSample>) -> &'s mut GpuSample {
        let index = self.index;
        let g =
            find_or_insert(gpus, index as usize, |g| g.index == index, || GpuSample { index, ..GpuSample::default() });
        refresh(&mut g.uuid, &self.uuid);
        refresh(&mut g.model, &self.model);
        refresh_option(&mut g.serial, &self.serial);
        refresh_option(&mut g.pci_bus_id, &self.pci_bus_id);
        refresh_option(&mut g.compute_capability, &self.compute_capability);
        refresh_option(&mut g.vbios_version, &self.vbios_version);
        refresh_option(&mut g.cpu_affinity, &self.cpu_affinity);
        g
    }
}

/// A process on a GPU as a series names it: found by (pid, GPU index); the rest describes it
/// when it is first seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessId<'a> {
    /// Host PID.
    pub pid: u32,
    /// NVML index of the GPU.
    pub gpu_index: u32,
    /// UUID of the GPU, as the process sample records it.
    pub gpu_uuid: Cow<'a, str>,
    /// The GPU as the snapshot describes it, when it holds one with this index (walking only:
    /// encoders label a process with its GPU's model).
    pub gpu: Option<&'a GpuSample>,
    /// Process name.
    pub name: Cow<'a, str>,
    /// Owner.
    pub user: Option<Cow<'a, str>>,
    /// Container id.
    pub container: Option<Cow<'a, str>>,
    /// Kubernetes pod name.
    pub pod: Option<Cow<'a, str>>,
    /// Kubernetes namespace.
    pub namespace: Option<Cow<'a, str>>,
    /// Kubernetes pod UID.
    pub pod_uid: Option<Cow<'a, str>>,
    /// Workload class, when classified.
    pub workload: Option<crate::workload::WorkloadClass>,
    /// Parent PID.
    pub ppid: Option<u32>,
    /// The parent's name.
    pub parent_name: Option<Cow<'a, str>>,
}

impl<'a> ProcessId<'a> {
    /// The identity of a process of a snapshot running on `gpu`.
    pub fn of(p: &'a ProcessSample, gpu: Option<&'a GpuSample>) -> Self {
        let text = |v: &'a Option<String>| v.as_deref().map(Cow::Borrowed);
        ProcessId {
            pid: p.pid,
            gpu_index: p.gpu_index,
            gpu_uuid: Cow::Borrowed(&p.gpu_uuid),
            gpu,
            name: Cow::Borrowed(&p.name),
            user: text(&p.user),
            container: text(&p.container),
            pod: text(&p.pod),
            namespace: text(&p.namespace),
            pod_uid: text(&p.pod_uid),
            workload: p.workload,
            ppid: p.ppid,
            parent_name: text(&p.parent_name),
        }
    }

    fn is(&self, p: &ProcessSample) -> bool {
        p.pid == self.pid && p.gpu_index == self.gpu_index
    }

    fn to_sample(&self) -> ProcessSample {
        let text = |v: &Option<Cow<'_, str>>| v.as_deref().map(str::to_string);
        ProcessSample {
            pid: self.pid,
            gpu_index: self.gpu_index,
            gpu_uuid: self.gpu_uuid.to_string(),
            name: self.name.to_string(),
            user: text(&self.user),
            container: text(&self.container),
            pod: text(&self.pod),
            namespace: text(&self.namespace),
            pod_uid: text(&self.pod_uid),
            workload: self.workload,
            ppid: self.ppid,
            parent_name: text(&self.parent_name),
            ..ProcessSample::default()
        }
    }
}

/// A process profiled through CUPTI as a series names it: found by its host PID; the rest
/// describes it when it is first seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileId<'a> {
    /// Host PID.
    pub pid: u32,
    /// Process name.
    pub name: Cow<'a, str>,
    /// Owner.
    pub user: Option<Cow<'a, str>>,
    /// Container id.
    pub container: Option<Cow<'a, str>>,
    /// Kubernetes pod name.
    pub pod: Option<Cow<'a, str>>,
    /// Kubernetes namespace.
    pub namespace: Option<Cow<'a, str>>,
    /// Kubernetes pod UID.
    pub pod_uid: Option<Cow<'a, str>>,
    /// NVML indices of the GPUs the process uses.
    pub gpus: Cow<'a, [u32]>,
}

impl<'a> ProfileId<'a> {
    /// The identity of a profile of a snapshot.
    pub fn of(p: &'a KernelProfile) -> Self {
        let text = |v: &'a Option<String>| v.as_deref().map(Cow::Borrowed);
        ProfileId {
            pid: p.pid,
            name: Cow::Borrowed(&p.name),
            user: text(&p.user),
            container: text(&p.container),
            pod: text(&p.pod),
            namespace: text(&p.namespace),
            pod_uid: text(&p.pod_uid),
            gpus: Cow::Borrowed(&p.gpus),
        }
    }

    /// The GPUs as one label value: NVML indices separated by commas (`0,1`).
    pub fn gpus_label(&self) -> String {
        let mut out = String::new();
        for (i, g) in self.gpus.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&g.to_string());
        }
        out
    }

    /// The GPUs a [`Self::gpus_label`] names; an entry that is not an index is left out.
    pub fn parse_gpus(label: &str) -> Vec<u32> {
        label.split(',').filter_map(|g| g.trim().parse().ok()).collect()
    }

    fn is(&self, p: &KernelProfile) -> bool {
        p.pid == self.pid
    }

    fn find_or_insert<'s>(&self, profiles: &'s mut Vec<KernelProfile>) -> &'s mut KernelProfile {
        find_or_insert(profiles, 0, |p| self.is(p), || self.to_profile())
    }

    fn to_profile(&self) -> KernelProfile {
        let text = |v: &Option<Cow<'_, str>>| v.as_deref().map(str::to_string);
        KernelProfile {
            pid: self.pid,
            name: self.name.to_string(),
            user: text(&self.user),
            container: text(&self.container),
            pod: text(&self.pod),
            namespace: text(&self.namespace),
            pod_uid: text(&self.pod_uid),
            gpus: self.gpus.to_vec(),
            ..KernelProfile::default()
        }
    }
}

/// Who a series belongs to. A new scope of series is a new variant here only when it has a new
/// kind of owner; a new split of an existing owner is a [`Label`].
#[derive(Debug, Clone, PartialEq)]
pub enum Owner<'a> {
    /// A GPU.
    Gpu(GpuId<'a>),
    /// One NVLink link of a GPU.
    NvLink {
        /// The GPU.
        gpu: GpuId<'a>,
        /// Link number.
        link: u32,
    },
    /// One MIG instance of a GPU.
    Mig {
        /// The parent GPU.
        gpu: GpuId<'a>,
        /// GPU instance id.
        gpu_instance_id: u32,
        /// GPU instance profile name (describes the instance when first seen).
        profile: Cow<'a, str>,
    },
    /// A process on a GPU.
    Process(ProcessId<'a>),
    /// The whole host.
    Host,
    /// A CPU core.
    Cpu(u32),
    /// A network interface.
    Nic {
        /// Interface name.
        name: Cow<'a, str>,
        /// Ethernet or InfiniBand (describes it when first seen).
        kind: NicKind,
    },
    /// A block device, by name.
    Disk(Cow<'a, str>),
    /// A mounted filesystem, by mount point.
    Fs(Cow<'a, str>),
    /// A process profiled through CUPTI.
    Profile(ProfileId<'a>),
    /// One kernel class of a profiled process.
    ProfileClass {
        /// The profiled process.
        profile: ProfileId<'a>,
        /// The class (its labels: kind, collective, pipe, precision).
        class: KernelClass,
    },
}

/// The extra label of a labelled row's series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label<'a> {
    /// Label name (`reason`, `xid`).
    pub key: &'static str,
    /// Its value for this series.
    pub value: LabelValue<'a>,
}

/// What tells one series of a row from the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity<'a> {
    /// Who the series belongs to.
    pub owner: Owner<'a>,
    /// The extra label of a labelled row.
    pub label: Option<Label<'a>>,
}

impl<'a> From<Owner<'a>> for Identity<'a> {
    fn from(owner: Owner<'a>) -> Self {
        Identity { owner, label: None }
    }
}

/// One series of a row in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<'a> {
    /// Which series.
    pub identity: Identity<'a>,
    /// Its value.
    pub value: f64,
}

/// One place a row can hold a value in a snapshot, with the value when present.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot<'a> {
    /// Which series.
    pub identity: Identity<'a>,
    /// Its value; `None` when absent.
    pub value: Option<f64>,
}

impl MetricDef {
    /// Every series of this row in `snap`, in export order. Absent values yield nothing: absent is
    /// not zero.
    pub fn series<'s>(&self, snap: &'s NodeSnapshot) -> impl Iterator<Item = Series<'s>> + use<'s> {
        Slots { accessor: self.accessor, snap, outer: 0, inner: 0, skip_absent: true }
            .filter_map(|s| Some(Series { value: s.value?, identity: s.identity }))
    }

    /// Every place this row can hold a value in `snap` (each GPU, link, process, core, interface,
    /// device the snapshot holds; each label value present), absent values included.
    pub fn slots<'s>(&self, snap: &'s NodeSnapshot) -> Slots<'s> {
        Slots { accessor: self.accessor, snap, outer: 0, inner: 0, skip_absent: false }
    }

    /// The value of the series `id` in `snap`, when `snap` holds it.
    pub fn value_in(&self, snap: &NodeSnapshot, id: &Identity<'_>) -> Option<f64> {
        let host = snap.host.as_ref();
        match (self.accessor, &id.owner) {
            (Accessor::Gpu(get, _), Owner::Gpu(g)) => g.find(&snap.gpus).and_then(get),
            (Accessor::GpuLabelled { get, .. }, Owner::Gpu(g)) => {
                let label = id.label?.value;
                let gpu = g.find(&snap.gpus)?;
                (0..).map_while(|n| get(gpu, n)).find(|(l, _)| *l == label).map(|(_, v)| v)
            }
            (Accessor::NvLink(get, _), Owner::NvLink { gpu, link }) => {
                gpu.find(&snap.gpus)?.nvlinks.iter().find(|l| l.link == *link).and_then(get)
            }
            (Accessor::Mig(get, _), Owner::Mig { gpu, gpu_instance_id, .. }) => {
                gpu.find(&snap.gpus)?.mig_instances.iter().find(|m| m.gpu_instance_id == *gpu_instance_id).and_then(get)
            }
            (Accessor::Process(get, _), Owner::Process(p)) => snap.processes.iter().find(|x| p.is(x)).and_then(get),
            (Accessor::Host(get, _), Owner::Host) => host.and_then(get),
            (Accessor::Cpu(get, _), Owner::Cpu(cpu)) => {
                find(&host?.cpus, *cpu as usize, |c| c.cpu == *cpu).and_then(get)
            }
            (Accessor::Nic(get, _), Owner::Nic { name, .. }) => {
                host?.nics.iter().find(|n| n.name == *name).and_then(get)
            }
            (Accessor::Disk(get, _), Owner::Disk(name)) => host?.disks.iter().find(|d| d.name == *name).and_then(get),
            (Accessor::Fs(get, _), Owner::Fs(m)) => host?.filesystems.iter().find(|f| f.mountpoint == *m).and_then(get),
            (Accessor::Profile(get, _), Owner::Profile(p)) => {
                snap.kernel_profiles.iter().find(|x| p.is(x)).and_then(get)
            }
            (Accessor::ProfileClass(get, _), Owner::ProfileClass { profile, class }) => {
                let p = snap.kernel_profiles.iter().find(|x| profile.is(x))?;
                p.classes.iter().find(|c| c.class == *class).and_then(get)
            }
            _ => None,
        }
    }

    /// Sets the series `id` to `value` in `snap`, finding its owner or creating it from what the
    /// identity describes. False when the identity does not name a series of this row (another
    /// scope, or a labelled row's label missing).
    pub fn set(&self, snap: &mut NodeSnapshot, id: &Identity<'_>, value: f64) -> bool {
        match (self.accessor, &id.owner) {
            (Accessor::Gpu(_, set), Owner::Gpu(g)) => set(g.find_or_insert(&mut snap.gpus), value),
            (Accessor::GpuLabelled { set, label: key, .. }, Owner::Gpu(g)) => {
                let Some(label) = id.label.filter(|l| l.key == key) else { return false };
                set(g.find_or_insert(&mut snap.gpus), label.value, value);
            }
            (Accessor::NvLink(_, set), Owner::NvLink { gpu, link }) => {
                let link = *link;
                let links = &mut gpu.find_or_insert(&mut snap.gpus).nvlinks;
                set(
                    find_or_insert(
                        links,
                        link as usize,
                        |l| l.link == link,
                        || NvLinkSample { link, ..NvLinkSample::default() },
                    ),
                    value,
                );
            }
            (Accessor::Mig(_, set), Owner::Mig { gpu, gpu_instance_id, profile }) => {
                let id = *gpu_instance_id;
                let new = || MigSample { gpu_instance_id: id, profile: profile.to_string(), ..MigSample::default() };
                let instances = &mut gpu.find_or_insert(&mut snap.gpus).mig_instances;
                set(find_or_insert(instances, 0, |m| m.gpu_instance_id == id, new), value);
            }
            (Accessor::Process(_, set), Owner::Process(p)) => {
                set(find_or_insert(&mut snap.processes, 0, |x| p.is(x), || p.to_sample()), value);
            }
            (Accessor::Host(_, set), Owner::Host) => set(host(snap), value),
            (Accessor::Cpu(_, set), Owner::Cpu(cpu)) => {
                let cpu = *cpu;
                set(
                    find_or_insert(
                        &mut host(snap).cpus,
                        cpu as usize,
                        |c| c.cpu == cpu,
                        || CpuSample { cpu, ..CpuSample::default() },
                    ),
                    value,
                );
            }
            (Accessor::Nic(_, set), Owner::Nic { name, kind }) => {
                let new = || NicSample { name: name.to_string(), kind: *kind, ..NicSample::default() };
                set(find_or_insert(&mut host(snap).nics, 0, |n| n.name == *name, new), value);
            }
            (Accessor::Disk(_, set), Owner::Disk(name)) => {
                let new = || DiskSample { name: name.to_string(), ..DiskSample::default() };
                set(find_or_insert(&mut host(snap).disks, 0, |d| d.name == *name, new), value);
            }
            (Accessor::Fs(_, set), Owner::Fs(m)) => {
                let new = || FsSample { mountpoint: m.to_string(), ..FsSample::default() };
                set(find_or_insert(&mut host(snap).filesystems, 0, |f| f.mountpoint == *m, new), value);
            }
            (Accessor::Profile(_, set), Owner::Profile(p)) => set(p.find_or_insert(&mut snap.kernel_profiles), value),
            (Accessor::ProfileClass(_, set), Owner::ProfileClass { profile, class }) => {
                let class = *class;
                let classes = &mut profile.find_or_insert(&mut snap.kernel_profiles).classes;
                let new = || KernelClassTime { class, count: 0, seconds: 0.0 };
                set(find_or_insert(classes, 0, |c| c.class == class, new), value);
            }
            _ => return false,
        }
        true
    }
}

/// The places of one row in one snapshot, in export order; see [`MetricDef::slots`].
#[derive(Debug, Clone)]
pub struct Slots<'s> {
    accessor: Accessor,
    snap: &'s NodeSnapshot,
    /// Position in the outer list (GPUs, processes, cores, interfaces, devices).
    outer: usize,
    /// Position in the inner list (a GPU's links or label values).
    inner: usize,
    /// Skip absent values before building their identity (the series walk).
    skip_absent: bool,
}

impl<'s> Iterator for Slots<'s> {
    type Item = Slot<'s>;

    fn next(&mut self) -> Option<Slot<'s>> {
        let snap = self.snap;
        let host = snap.host.as_ref();
        loop {
            let (owner, label, value) = match self.accessor {
                Accessor::Gpu(get, _) => {
                    let g = snap.gpus.get(self.outer)?;
                    self.outer += 1;
                    let v = get(g);
                    if v.is_none() && self.skip_absent {
                        continue;
                    }
                    (Owner::Gpu(GpuId::of(g)), None, v)
                }
                Accessor::GpuLabelled { label: key, get, .. } => {
                    let g = snap.gpus.get(self.outer)?;
                    let Some((label, v)) = get(g, self.inner) else {
                        self.outer += 1;
                        self.inner = 0;
                        continue;
                    };
                    self.inner += 1;
                    (Owner::Gpu(GpuId::of(g)), Some(Label { key, value: label }), Some(v))
                }
                Accessor::NvLink(get, _) => {
                    let g = snap.gpus.get(self.outer)?;
                    let Some(l) = g.nvlinks.get(self.inner) else {
                        self.outer += 1;
                        self.inner = 0;
                        continue;
                    };
                    self.inner += 1;
                    let v = get(l);
                    if v.is_none() && self.skip_absent {
                        continue;
                    }
                    (Owner::NvLink { gpu: GpuId::of(g), link: l.link }, None, v)
                }
                Accessor::Mig(get, _) => {
                    let g = snap.gpus.get(self.outer)?;
                    let Some(m) = g.mig_instances.get(self.inner) else {
                        self.outer += 1;
                        self.inner = 0;
                        continue;
                    };
                    self.inner += 1;
                    let v = get(m);
                    if v.is_none() && self.skip_absent {
                        continue;
                    }
                    let owner = Owner::Mig {
                        gpu: GpuId::of(g),
                        gpu_instance_id: m.gpu_instance_id,
                        profile: Cow::Borrowed(&m.profile),
                    };
                    (owner, None, v)
                }
                Accessor::Process(get, _) => {
                    let p = snap.processes.get(self.outer)?;
                    self.outer += 1;
                    let v = get(p);
                    if v.is_none() && self.skip_absent {
                        continue;
                    }
                    let gpu = snap.gpus.iter().find(|g| g.index == p.gpu_index);
                    (Owner::Process(ProcessId::of(p, gpu)), None, v)
                }
                Accessor::Host(get, _) => {
                    if self.outer > 0 {
                        return None;
                    }
                    self.outer = 1;
                    let v = get(host?);
                    if v.is_none() && self.skip_absent {
                        return None;
                    }
                    (Owner::Host, None, v)
                }
                Accessor::Cpu(get, _) => {
                    let c = host?.cpus.get(self.outer)?;
                    self.outer += 1;
                    let v = get(c);
                    if v.is_none() && self.skip_absent {
                        continue;
                    }
                    (Owner::Cpu(c.cpu), None, v)
                }
                Accessor::Nic(get, _) => {
                    let n = host?.nics.get(self.outer)?;
                    self.outer += 1;
                    let v = get(n);
                    if v.is_none() && self.skip_absent {
                        continue;
                    }
                    (Owner::Nic { name: Cow::Borrowed(&n.name), kind: n.kind }, None, v)
                }
                Accessor::Disk(get, _) => {
                    let d = host?.disks.get(self.outer)?;
                    self.outer += 1;
                    let v = get(d);
                    if v.is_none() && self.skip_absent {
                        continue;
                    }
                    (Owner::Disk(Cow::Borrowed(&d.name)), None, v)
                }
                Accessor::Fs(get, _) => {
                    let f = host?.filesystems.get(self.outer)?;
                    self.outer += 1;
                    let v = get(f);
                    if v.is_none() && self.skip_absent {
                        continue;
                    }
                    (Owner::Fs(Cow::Borrowed(&f.mountpoint)), None, v)
                }
                Accessor::Profile(get, _) => {
                    let p = snap.kernel_profiles.get(self.outer)?;
                    self.outer += 1;
                    let v = get(p);
                    if v.is_none() && self.skip_absent {
                        continue;
                    }
                    (Owner::Profile(ProfileId::of(p)), None, v)
                }
                Accessor::ProfileClass(get, _) => {
                    let p = snap.kernel_profiles.get(self.outer)?;
                    let Some(c) = p.classes.get(self.inner) else {
                        self.outer += 1;
                        self.inner = 0;
                        continue;
                    };
                    self.inner += 1;
                    let v = get(c);
                    if v.is_none() && self.skip_absent {
                        continue;
                    }
                    (Owner::ProfileClass { profile: ProfileId::of(p), class: c.class }, None, v)
                }
            };
            return Some(Slot { identity: Identity { owner, label }, value });
        }
    }
}

fn host(snap: &mut NodeSnapshot) -> &mut HostSample {
    snap.host.get_or_insert_with(HostSample::default)
}

/// The element `is` picks; `hint` is where it usually sits (GPUs and cores at the position of
/// their index), tried before the scan.
fn find<T>(v: &[T], hint: usize, is: impl Fn(&T) -> bool) -> Option<&T> {
    v.get(hint).filter(|x| is(x)).or_else(|| v.iter().find(|x| is(x)))
}

/// The element `is` picks, appended from `new` when absent; `hint` as in [`find`].
#[inline]
fn find_or_insert<T>(v: &mut Vec<T>, hint: usize, is: impl Fn(&T) -> bool, new: impl FnOnce() -> T) -> &mut T {
    let pos = match v.get(hint).filter(|x| is(x)).map(|_| hint).or_else(|| v.iter().position(&is)) {
        Some(p) => p,
        None => {
            v.push(new());
            v.len() - 1
        }
    };
    &mut v[pos]
}

/// Copies `v` into `field` when it differs (no allocation when it is the same).
#[inline]
fn refresh(field: &mut String, v: &Option<Cow<'_, str>>) {
    if let Some(v) = v
        && field != v
    {
        *field = v.to_string();
    }
}

/// [`refresh`] for a description that may be unknown.
#[inline]
fn refresh_option(field: &mut Option<String>, v: &Option<Cow<'_, str>>) {
    if let Some(v) = v
        && field.as_deref() != Some(v)
    {
        *field = Some(v.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{CATALOGUE, Scope};

    fn gpu(index: u32) -> GpuSample {
        GpuSample {
            index,
            uuid: format!("GPU-{index}"),
            model: "NVIDIA H100 80GB HBM3".into(),
            serial: Some(format!("16500{index}")),
            ..GpuSample::default()
        }
    }

    fn row(name: &str) -> &'static MetricDef {
        MetricDef::by_prometheus(name).unwrap_or_else(|| panic!("no row {name}"))
    }

    /// The series of a row as (owner key, label, value), for comparing with what was built.
    fn keys(name: &str, snap: &NodeSnapshot) -> Vec<(String, Option<String>, f64)> {
        row(name)
            .series(snap)
            .map(|s| {
                let owner = match &s.identity.owner {
                    Owner::Gpu(g) => format!("gpu{}", g.index),
                    Owner::NvLink { gpu, link } => format!("gpu{}/link{link}", gpu.index),
                    Owner::Mig { gpu, gpu_instance_id, .. } => format!("gpu{}/gi{gpu_instance_id}", gpu.index),
                    Owner::Process(p) => format!("pid{}@gpu{}", p.pid, p.gpu_index),
                    Owner::Host => "host".into(),
                    Owner::Cpu(c) => format!("cpu{c}"),
                    Owner::Nic { name, kind } => format!("{name}:{}", kind.as_str()),
                    Owner::Disk(name) => name.to_string(),
                    Owner::Fs(m) => format!("fs:{m}"),
                    Owner::Profile(p) => format!("profile{}", p.pid),
                    Owner::ProfileClass { profile, class } => format!("profile{}/{}", profile.pid, class.label()),
                };
                (owner, s.identity.label.map(|l| format!("{}={}", l.key, l.value)), s.value)
            })
            .collect()
    }

    fn s(owner: &str, v: f64) -> (String, Option<String>, f64) {
        (owner.to_string(), None, v)
    }

    fn snapshot() -> NodeSnapshot {
        let mut g0 = gpu(0);
        g0.power_watts = Some(300.0);
        g0.clock_event_reasons = Some(0x4 | 0x40);
        g0.xid_counts.insert(79, 2);
        g0.xid_counts.insert(48, 1);
        g0.nvlinks = vec![
            NvLinkSample { link: 0, active: Some(true), crc_errors_total: Some(5), ..NvLinkSample::default() },
            NvLinkSample { link: 1, active: Some(false), ..NvLinkSample::default() },
        ];
        let mut g1 = gpu(1);
        g1.lost = true;
        NodeSnapshot {
            gpus: vec![g0, g1],
            processes: vec![
                ProcessSample {
                    pid: 7,
                    gpu_index: 0,
                    name: "python".into(),
                    rss_bytes: Some(1024),
                    ..Default::default()
                },
                ProcessSample { pid: 8, gpu_index: 0, name: "idle".into(), ..Default::default() },
            ],
            host: Some(HostSample {
                load1: Some(2.5),
                cpus: vec![
                    CpuSample { cpu: 0, busy_ratio: Some(0.5), iowait_ratio: None },
                    CpuSample { cpu: 1, busy_ratio: Some(0.25), iowait_ratio: Some(0.0) },
                ],
                nics: vec![NicSample {
                    name: "mlx5_0/1".into(),
                    kind: NicKind::Infiniband,
                    rx_bytes_total: Some(10),
                    ..NicSample::default()
                }],
                disks: vec![DiskSample { name: "nvme0n1".into(), busy_ratio: Some(0.1), ..DiskSample::default() }],
                ..HostSample::default()
            }),
            ..NodeSnapshot::default()
        }
    }

    #[test]
    fn the_walk_yields_exactly_the_series_the_snapshot_holds() {
        let snap = snapshot();
        assert_eq!(keys("gpuscope_gpu_up", &snap), vec![s("gpu0", 1.0), s("gpu1", 0.0)], "lost GPUs still answer up");
        assert_eq!(keys("gpuscope_gpu_power_watts", &snap), vec![s("gpu0", 300.0)]);
        let reasons = keys("gpuscope_gpu_clock_event_active", &snap);
        assert_eq!(reasons.len(), 8, "every reason of the one GPU whose mask was read");
        assert!(reasons.contains(&("gpu0".into(), Some("reason=sw_power_cap".into()), 1.0)));
        assert!(reasons.contains(&("gpu0".into(), Some("reason=hw_thermal_slowdown".into()), 1.0)));
        assert!(reasons.contains(&("gpu0".into(), Some("reason=gpu_idle".into()), 0.0)));
        assert_eq!(
            keys("gpuscope_gpu_xid_errors_total", &snap),
            vec![("gpu0".into(), Some("xid=48".into()), 1.0), ("gpu0".into(), Some("xid=79".into()), 2.0)]
        );
        assert_eq!(keys("gpuscope_gpu_nvlink_up", &snap), vec![s("gpu0/link0", 1.0), s("gpu0/link1", 0.0)]);
        assert_eq!(keys("gpuscope_gpu_nvlink_crc_errors_total", &snap), vec![s("gpu0/link0", 5.0)]);
        assert_eq!(keys("gpuscope_process_resident_memory_bytes", &snap), vec![s("pid7@gpu0", 1024.0)]);
        assert_eq!(keys("gpuscope_host_load1", &snap), vec![s("host", 2.5)]);
        assert_eq!(keys("gpuscope_host_cpu_core_busy_ratio", &snap), vec![s("cpu0", 0.5), s("cpu1", 0.25)]);
        assert_eq!(keys("gpuscope_host_cpu_core_iowait_ratio", &snap), vec![s("cpu1", 0.0)], "zero is a value");
        assert_eq!(keys("gpuscope_host_network_receive_bytes_total", &snap), vec![s("mlx5_0/1:infiniband", 10.0)]);
        assert_eq!(keys("gpuscope_host_disk_busy_ratio", &snap), vec![s("nvme0n1", 0.1)]);
        // Absent is not zero: nothing read, no series.
        for name in [
            "gpuscope_gpu_temperature_celsius",
            "gpuscope_host_memory_total_bytes",
            "gpuscope_host_disk_read_bytes_total",
        ] {
            assert!(keys(name, &snap).is_empty(), "{name}");
        }
        assert!(keys("gpuscope_host_load1", &NodeSnapshot::default()).is_empty());
        // Identities carry what describes their owner.
        let up: Vec<_> = row("gpuscope_gpu_up").series(&snap).collect();
        let Owner::Gpu(g) = &up[0].identity.owner else { panic!("{up:?}") };
        assert_eq!((g.uuid.as_deref(), g.serial.as_deref()), (Some("GPU-0"), Some("165000")));
        let p: Vec<_> = row("gpuscope_process_resident_memory_bytes").series(&snap).collect();
        let Owner::Process(p) = &p[0].identity.owner else { panic!("{p:?}") };
        assert_eq!((p.name.as_ref(), p.gpu.as_ref().map(|g| g.index)), ("python", Some(0)));
    }

    #[test]
    fn profiles_yield_one_series_per_process_and_one_per_class() {
        use crate::model::{KernelClassTime, KernelProfile};
        let gemm = gpuscope_cupti::classify("ampere_sgemm_128x64_tn");
        let nccl = gpuscope_cupti::classify("ncclDevKernel_AllReduce_Sum_bf16_RING_LL");
        let snap = NodeSnapshot {
            kernel_profiles: vec![
                KernelProfile {
                    pid: 7,
                    kernel_seconds: 0.4,
                    classes: vec![
                        KernelClassTime { class: gemm, count: 3, seconds: 0.3 },
                        KernelClassTime { class: nccl, count: 1, seconds: 0.1 },
                    ],
                    ..KernelProfile::default()
                },
                KernelProfile { pid: 8, median_kernel_seconds: Some(1e-5), ..KernelProfile::default() },
            ],
            ..NodeSnapshot::default()
        };
        assert_eq!(keys("gpuscope_process_kernel_time_seconds", &snap), vec![s("profile7", 0.4), s("profile8", 0.0)]);
        assert_eq!(
            keys("gpuscope_process_kernel_class_time_seconds", &snap),
            vec![s("profile7/gemm/simt/fp32", 0.3), s("profile7/collective/allreduce", 0.1)]
        );
        // A median only where kernels ran: absent, not zero.
        assert_eq!(keys("gpuscope_process_kernel_median_duration_seconds", &snap), vec![s("profile8", 1e-5)]);
        assert!(keys("gpuscope_process_kernel_launches_per_second", &snap).is_empty());
    }

    #[test]
    fn slots_include_absent_values() {
        let snap = snapshot();
        let temps: Vec<_> = row("gpuscope_gpu_temperature_celsius").slots(&snap).map(|s| s.value).collect();
        assert_eq!(temps, vec![None, None]);
        let iowait: Vec<_> = row("gpuscope_host_cpu_core_iowait_ratio").slots(&snap).map(|s| s.value).collect();
        assert_eq!(iowait, vec![None, Some(0.0)]);
        assert_eq!(row("gpuscope_host_load1").slots(&NodeSnapshot::default()).count(), 0, "no host, no slot");
    }

    fn profile_id() -> ProfileId<'static> {
        ProfileId {
            pid: 42,
            name: "python".into(),
            pod: Some("trainer-0".into()),
            gpus: Cow::Owned(vec![0, 3]),
            ..ProfileId::default()
        }
    }

    /// One identity per scope, as a decoder would build it: keys and descriptions only.
    fn identity_for(m: &MetricDef) -> Identity<'static> {
        let gpu = GpuId {
            index: 2,
            uuid: Some("GPU-2".into()),
            model: Some("NVIDIA H100 80GB HBM3".into()),
            serial: Some("1650002".into()),
            ..GpuId::default()
        };
        let owner = match m.scope() {
            Scope::Gpu => Owner::Gpu(gpu),
            Scope::NvLink => Owner::NvLink { gpu, link: 3 },
            Scope::Mig => Owner::Mig { gpu, gpu_instance_id: 9, profile: Cow::Borrowed("1g.10gb") },
            Scope::Process => Owner::Process(ProcessId {
                pid: 42,
                gpu_index: 2,
                gpu_uuid: "GPU-2".into(),
                name: "python".into(),
                pod: Some("trainer-0".into()),
                ..ProcessId::default()
            }),
            Scope::Host => Owner::Host,
            Scope::Cpu => Owner::Cpu(5),
            Scope::Nic => Owner::Nic { name: "eth0".into(), kind: NicKind::Ethernet },
            Scope::Disk => Owner::Disk("nvme0n1".into()),
            Scope::Filesystem => Owner::Fs("/data".into()),
            Scope::KernelProfile => Owner::Profile(profile_id()),
            Scope::KernelClass => Owner::ProfileClass {
                profile: profile_id(),
                class: gpuscope_cupti::classify("ampere_bf16_s16816gemm_bf16_128x256_ldg8_f2f_stages_64x3_nn"),
            },
        };
        let label = m.label().map(|key| Label {
            key,
            value: match key {
                "xid" => LabelValue::Number(79),
                "peer_gpu" => LabelValue::Number(5),
                _ => LabelValue::Text("sw_power_cap"),
            },
        });
        Identity { owner, label }
    }

    #[test]
    fn set_by_identity_round_trips_for_every_row() {
        for m in CATALOGUE {
            let id = identity_for(m);
            let mut snap = NodeSnapshot::default();
            assert!(m.set(&mut snap, &id, 1.0), "{}", m.prometheus);
            assert_eq!(m.value_in(&snap, &id), Some(1.0), "{} reads back what it set", m.prometheus);
            let series: Vec<_> = m.series(&snap).filter(|s| s.identity.label == id.label).collect();
            assert_eq!(series.len(), 1, "{}", m.prometheus);
            assert_eq!(series[0].value, 1.0, "{}", m.prometheus);
            // The owner created from the identity is described as the identity said.
            match (&series[0].identity.owner, &id.owner) {
                (Owner::Gpu(a), Owner::Gpu(b))
                | (Owner::NvLink { gpu: a, .. }, Owner::NvLink { gpu: b, .. })
                | (Owner::Mig { gpu: a, .. }, Owner::Mig { gpu: b, .. }) => {
                    assert_eq!(a, b, "{}", m.prometheus)
                }
                (Owner::Process(a), Owner::Process(b)) => {
                    assert_eq!(ProcessId { gpu: None, ..a.clone() }, *b, "{}", m.prometheus)
                }
                (a, b) => assert_eq!(a, b, "{}", m.prometheus),
            }
            // Set again: found, not appended.
            assert!(m.set(&mut snap, &id, 1.0));
            assert_eq!(m.series(&snap).filter(|s| s.identity.label == id.label).count(), 1, "{}", m.prometheus);
        }
    }

    #[test]
    fn owners_with_nothing_read_yield_no_series() {
        let snap = NodeSnapshot {
            gpus: vec![GpuSample { nvlinks: vec![NvLinkSample::default()], ..GpuSample::default() }],
            processes: vec![ProcessSample::default()],
            host: Some(HostSample {
                cpus: vec![CpuSample::default()],
                nics: vec![NicSample::default()],
                disks: vec![DiskSample::default()],
                filesystems: vec![FsSample::default()],
                ..HostSample::default()
            }),
            ..NodeSnapshot::default()
        };
        for m in CATALOGUE.iter().filter(|m| m.prometheus != "gpuscope_gpu_up") {
            assert_eq!(m.series(&snap).count(), 0, "{} reads a value from an empty sample", m.prometheus);
        }
    }

    #[test]
    fn labelled_rows_write_the_model_fields() {
        let mut snap = NodeSnapshot::default();
        for name in ["gpuscope_gpu_clock_event_active", "gpuscope_gpu_xid_errors_total"] {
            let m = row(name);
            assert!(m.set(&mut snap, &identity_for(m), 1.0));
        }
        assert_eq!(snap.gpus[0].clock_event_reasons, Some(0x4));
        assert_eq!(snap.gpus[0].xid_counts.get(&79), Some(&1));
        // A decoded label is text: the XID code parses.
        let xid = row("gpuscope_gpu_xid_errors_total");
        let text = Identity { label: Some(Label { key: "xid", value: LabelValue::Text("13") }), ..identity_for(xid) };
        assert!(xid.set(&mut snap, &text, 4.0));
        assert_eq!(snap.gpus[0].xid_counts.get(&13), Some(&4));
    }

    #[test]
    fn set_refuses_identities_of_another_scope_or_without_the_label() {
        let power = row("gpuscope_gpu_power_watts");
        let mut snap = NodeSnapshot::default();
        assert!(!power.set(&mut snap, &Owner::Host.into(), 1.0));
        let xid = row("gpuscope_gpu_xid_errors_total");
        assert!(!xid.set(&mut snap, &Owner::Gpu(GpuId::default()).into(), 1.0), "label missing");
        let wrong = Identity {
            owner: Owner::Gpu(GpuId::default()),
            label: Some(Label { key: "reason", value: LabelValue::Text("sw_power_cap") }),
        };
        assert!(!xid.set(&mut snap, &wrong, 1.0), "another row's label");
        assert_eq!(snap, NodeSnapshot::default(), "nothing was created");
    }

    #[test]
    fn set_keeps_descriptions_the_identity_does_not_carry() {
        let snap0 = snapshot();
        let mut snap = snap0.clone();
        let bare = Identity::from(Owner::Gpu(GpuId { index: 0, ..GpuId::default() }));
        assert!(row("gpuscope_gpu_power_watts").set(&mut snap, &bare, 100.0));
        assert_eq!(snap.gpus[0].uuid, "GPU-0");
        assert_eq!(snap.gpus[0].serial.as_deref(), Some("165000"));
        assert_eq!(snap.gpus[0].power_watts, Some(100.0));
        // A described identity updates the description.
        let renamed = Identity::from(Owner::Gpu(GpuId {
            index: 0,
            pci_bus_id: Some("00000000:18:00.0".into()),
            ..GpuId::default()
        }));
        assert!(row("gpuscope_gpu_up").set(&mut snap, &renamed, 1.0));
        assert_eq!(snap.gpus[0].pci_bus_id.as_deref(), Some("00000000:18:00.0"));
    }

    #[test]
    fn value_in_finds_the_same_series_in_another_snapshot() {
        let a = snapshot();
        let mut b = snapshot();
        b.gpus.reverse();
        b.gpus[1].power_watts = Some(200.0);
        b.gpus[1].clock_event_reasons = Some(0);
        let power = row("gpuscope_gpu_power_watts");
        let id = power.series(&a).next().map(|s| s.identity).unwrap_or_else(|| panic!("no series"));
        assert_eq!(power.value_in(&b, &id), Some(200.0), "found by index, not position");
        let reasons = row("gpuscope_gpu_clock_event_active");
        let cap = reasons
            .series(&a)
            .find(|s| s.identity.label.is_some_and(|l| l.value == LabelValue::Text("sw_power_cap")))
            .unwrap_or_else(|| panic!("no sw_power_cap"));
        assert_eq!(reasons.value_in(&a, &cap.identity), Some(1.0));
        assert_eq!(reasons.value_in(&b, &cap.identity), Some(0.0));
        assert_eq!(power.value_in(&NodeSnapshot::default(), &id), None);
    }
}
