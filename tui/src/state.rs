//! What the UI knows: the snapshot history, the findings of the session and the view settings.
//! Nothing here draws or reads the terminal; `update` changes it, `draw` reads it.

use crate::theme::Theme;
use gpuscope_core::api::{FindingEvent, FindingRecord};
use gpuscope_core::{KernelProfile, NodeSnapshot, ProcessSample};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// How much history is kept by default: one hour.
pub const DEFAULT_HISTORY_MS: u64 = 3_600_000;

/// Chart windows the user cycles through (`w`), in seconds.
pub const WINDOWS_S: [u64; 4] = [60, 300, 900, 3600];

/// Snapshots kept whole (the last five minutes at 1 s): scrolling back through them costs
/// nothing; older ones are kept compressed in blocks.
const RECENT: usize = 300;
/// Snapshots per compressed block.
const BLOCK: usize = 60;

/// What the charts need of a snapshot, kept for every snapshot in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Thin {
    /// When the snapshot was taken, ms since the epoch.
    pub timestamp_ms: u64,
    /// Per GPU, in snapshot order.
    pub gpus: Box<[GpuThin]>,
    /// Per process (its GPUs merged).
    pub processes: Box<[ProcessThin]>,
}

/// The charted signals of one GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuThin {
    /// NVML utilization.
    pub utilization: Option<f32>,
    /// SM activity.
    pub sm_active: Option<f32>,
    /// Power over its limit.
    pub power_share: Option<f32>,
}

/// The charted signals of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessThin {
    /// Host PID.
    pub pid: u32,
    /// SM share over its GPUs.
    pub sm: Option<f32>,
    /// GPU memory over its GPUs, MiB.
    pub gpu_memory_mib: Option<f32>,
}

impl Thin {
    fn of(s: &NodeSnapshot) -> Thin {
        let gpus = s
            .gpus
            .iter()
            .map(|g| GpuThin {
                utilization: g.utilization_ratio.map(|x| x as f32),
                sm_active: g.sm_active_ratio.map(|x| x as f32),
                power_share: match (g.power_watts, g.power_limit_watts) {
                    (Some(p), Some(l)) if l > 0.0 => Some((p / l) as f32),
                    _ => None,
                },
            })
            .collect();
        let processes = process_rows(s, None, 1.0)
            .into_iter()
            .map(|r| ProcessThin {
                pid: r.pid,
                sm: r.sm_ratio.map(|x| x as f32),
                gpu_memory_mib: r.gpu_memory_bytes.map(|b| (b as f64 / f64::from(1u32 << 20)) as f32),
            })
            .collect();
        Thin { timestamp_ms: s.timestamp_ms, gpus, processes }
    }
}

/// Older snapshots, deflated together as JSON lines (consecutive snapshots share most of their
/// text, so a block costs about a tenth of the snapshots it holds). The deflating runs on a
/// thread of its own, so the UI never waits for it; the snapshots stay whole until it is done.
#[derive(Debug, Clone)]
struct Block {
    id: u64,
    count: usize,
    packed: Arc<std::sync::OnceLock<Vec<u8>>>,
    whole: Option<Vec<Arc<NodeSnapshot>>>,
}

/// Blocks deflated at once on their own threads at most; beyond it (a long recording loading)
/// the caller deflates, which bounds the threads and the memory waiting for them.
const MAX_PACKING: usize = 4;

impl Block {
    fn new(id: u64, snaps: Vec<Arc<NodeSnapshot>>, packing: usize) -> Block {
        let packed = Arc::new(std::sync::OnceLock::new());
        let (cell, copy) = (packed.clone(), snaps.clone());
        let spawned = (packing < MAX_PACKING)
            .then(|| {
                std::thread::Builder::new().name("gpuscope-tui-pack".into()).spawn(move || {
                    let _ = cell.set(pack(&copy));
                })
            })
            .and_then(Result::ok);
        if spawned.is_none() {
            // No thread to spare: deflate here rather than keep the block whole for ever.
            let _ = packed.set(pack(&snaps));
            return Block { id, count: snaps.len(), packed, whole: None };
        }
        Block { id, count: snaps.len(), packed, whole: Some(snaps) }
    }

    /// Drops the whole snapshots once their deflated copy exists.
    fn settle(&mut self) {
        if self.packed.get().is_some() {
            self.whole = None;
        }
    }
}

fn pack(snaps: &[Arc<NodeSnapshot>]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    for s in snaps {
        // Writing into memory cannot fail, and a snapshot always serializes.
        let _ = serde_json::to_writer(&mut enc, &**s);
        let _ = enc.write_all(b"\n");
    }
    enc.finish().unwrap_or_default()
}

fn unpack(bytes: &[u8]) -> Vec<Arc<NodeSnapshot>> {
    use std::io::Read as _;
    let mut text = Vec::new();
    let _ = flate2::read::DeflateDecoder::new(bytes).read_to_end(&mut text);
    text.split(|b| *b == b'\n').filter_map(|l| serde_json::from_slice(l).ok()).map(Arc::new).collect()
}

/// Snapshots of one node, oldest first, bounded by age: the newest [`RECENT`] whole, older ones
/// compressed in blocks (decoded one block at a time when the cursor goes there), and the charted
/// signals of every one.
#[derive(Debug, Clone)]
pub struct History {
    thin: VecDeque<Thin>,
    blocks: VecDeque<Block>,
    recent: VecDeque<Arc<NodeSnapshot>>,
    keep_ms: u64,
    next_block: u64,
    /// The last block decoded.
    decoded: std::cell::RefCell<Option<(u64, Vec<Arc<NodeSnapshot>>)>>,
}

impl History {
    /// Lets go of the whole copies of blocks whose deflating is done (pushes do it too); true
    /// when no block is still being deflated.
    pub fn settle(&mut self) -> bool {
        self.blocks.iter_mut().for_each(Block::settle);
        self.blocks.iter().all(|b| b.whole.is_none())
    }

    /// An empty history keeping `keep_ms` milliseconds of snapshots behind the newest (rounded
    /// up to a whole block).
    pub fn new(keep_ms: u64) -> History {
        History {
            thin: VecDeque::new(),
            blocks: VecDeque::new(),
            recent: VecDeque::new(),
            keep_ms,
            next_block: 0,
            decoded: std::cell::RefCell::new(None),
        }
    }

    /// Appends a snapshot; one older than the newest is dropped (a clock step back or a replayed
    /// duplicate must not reorder the timeline).
    pub fn push(&mut self, snap: Arc<NodeSnapshot>) {
        if self.recent.back().is_some_and(|b| b.timestamp_ms >= snap.timestamp_ms) {
            return;
        }
        let newest = snap.timestamp_ms;
        self.thin.push_back(Thin::of(&snap));
        self.recent.push_back(snap);
        if self.recent.len() >= RECENT + BLOCK {
            let old: Vec<Arc<NodeSnapshot>> = self.recent.drain(..BLOCK).collect();
            let packing = self.blocks.iter().filter(|b| b.whole.is_some()).count();
            self.blocks.push_back(Block::new(self.next_block, old, packing));
            self.next_block += 1;
        }
        self.blocks.iter_mut().for_each(Block::settle);
        // Whole blocks leave once all they hold is older than the bound.
        while let Some(b) = self.blocks.front() {
            let last = self.thin.get(b.count - 1).map_or(0, |t| t.timestamp_ms);
            if newest.saturating_sub(last) <= self.keep_ms {
                break;
            }
            let n = b.count;
            self.blocks.pop_front();
            self.thin.drain(..n);
        }
    }

    /// Number of snapshots kept.
    pub fn len(&self) -> usize {
        self.thin.len()
    }

    /// True before the first snapshot.
    pub fn is_empty(&self) -> bool {
        self.thin.is_empty()
    }

    /// The snapshot at position `i` (0 = oldest); an old one is decoded from its block.
    pub fn get(&self, i: usize) -> Option<Arc<NodeSnapshot>> {
        let blocked = self.thin.len() - self.recent.len();
        if i >= blocked {
            return self.recent.get(i - blocked).cloned();
        }
        let mut first = 0;
        for b in &self.blocks {
            if i < first + b.count {
                if let Some(w) = &b.whole {
                    return w.get(i - first).cloned();
                }
                let mut cache = self.decoded.borrow_mut();
                if cache.as_ref().is_none_or(|(id, _)| *id != b.id) {
                    *cache = Some((b.id, unpack(b.packed.get().map_or(&[][..], Vec::as_slice))));
                }
                return cache.as_ref().and_then(|(_, v)| v.get(i - first).cloned());
            }
            first += b.count;
        }
        None
    }

    /// When the snapshot at position `i` was taken.
    pub fn time_at(&self, i: usize) -> Option<u64> {
        self.thin.get(i).map(|t| t.timestamp_ms)
    }

    /// The newest snapshot.
    pub fn latest(&self) -> Option<&Arc<NodeSnapshot>> {
        self.recent.back()
    }

    /// Position of the last snapshot taken at or before `ms` (the first one when all are later).
    pub fn index_at(&self, ms: u64) -> Option<usize> {
        if self.thin.is_empty() {
            return None;
        }
        let after = self.thin.partition_point(|s| s.timestamp_ms <= ms);
        Some(after.saturating_sub(1))
    }

    /// The charted signals of the snapshots taken in `(end_ms - window_ms, end_ms]`, oldest first.
    pub fn window(&self, end_ms: u64, window_ms: u64) -> impl Iterator<Item = &Thin> {
        let start = end_ms.saturating_sub(window_ms);
        let from = self.thin.partition_point(|s| s.timestamp_ms <= start);
        let to = self.thin.partition_point(|s| s.timestamp_ms <= end_ms);
        self.thin.range(from..to.max(from))
    }
}

/// The screens of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// GPU panel, charts and the findings next to them.
    Gpus,
    /// GPU processes.
    Processes,
    /// Host CPU, memory, NICs and NVMe.
    Host,
    /// Findings with their evidence and advice.
    Findings,
    /// Kernel profiles of the processes that load the CUPTI injection library.
    Kernels,
    /// The collector's nodes (fleet mode only).
    Fleet,
}

impl View {
    /// All views in tab order.
    pub const ALL: [View; 5] = [View::Gpus, View::Processes, View::Host, View::Findings, View::Kernels];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            View::Gpus => "GPUs",
            View::Processes => "Processes",
            View::Host => "Host",
            View::Findings => "Findings",
            View::Kernels => "Kernels",
            View::Fleet => "Fleet",
        }
    }
}

/// Process table columns, each sortable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessColumn {
    /// Host PID.
    Pid,
    /// User.
    User,
    /// Container or pod.
    Place,
    /// Workload class (training, inference, notebook).
    Class,
    /// GPU indices.
    Gpus,
    /// GPU memory.
    Memory,
    /// SM share.
    Sm,
    /// CPU use.
    Cpu,
    /// Resident memory.
    Rss,
    /// Process name.
    Name,
}

impl ProcessColumn {
    /// Columns in display order.
    pub const ALL: [ProcessColumn; 10] = [
        ProcessColumn::Pid,
        ProcessColumn::User,
        ProcessColumn::Place,
        ProcessColumn::Class,
        ProcessColumn::Gpus,
        ProcessColumn::Memory,
        ProcessColumn::Sm,
        ProcessColumn::Cpu,
        ProcessColumn::Rss,
        ProcessColumn::Name,
    ];

    /// Header text.
    pub fn title(self) -> &'static str {
        match self {
            ProcessColumn::Pid => "PID",
            ProcessColumn::User => "USER",
            ProcessColumn::Place => "CONTAINER / POD",
            ProcessColumn::Class => "CLASS",
            ProcessColumn::Gpus => "GPU",
            ProcessColumn::Memory => "GPU MEM",
            ProcessColumn::Sm => "SM%",
            ProcessColumn::Cpu => "CPU%",
            ProcessColumn::Rss => "RSS",
            ProcessColumn::Name => "NAME",
        }
    }

    /// Column width in cells in a table `table_width` wide (the container column gives way
    /// on narrow terminals so the name stays visible).
    pub fn width(self, table_width: u16) -> u16 {
        match self {
            ProcessColumn::Pid => 8,
            ProcessColumn::User => 10,
            ProcessColumn::Place if table_width < 110 => 12,
            ProcessColumn::Place => 26,
            ProcessColumn::Class => 9,
            ProcessColumn::Gpus => 7,
            ProcessColumn::Memory => 9,
            ProcessColumn::Sm => 5,
            ProcessColumn::Cpu => 6,
            ProcessColumn::Rss => 8,
            // The rest of the row (tree lines need room), at least 16.
            ProcessColumn::Name => {
                let others: u16 = ProcessColumn::ALL[..9].iter().map(|c| c.width(table_width) + 1).sum();
                table_width.saturating_sub(others).clamp(16, 48)
            }
        }
    }

    /// The column under x (relative to the table's left edge), with the layout `draw` uses.
    pub fn at_x(x: u16, table_width: u16) -> Option<ProcessColumn> {
        let mut left = 0;
        for c in ProcessColumn::ALL {
            // One cell of spacing between columns, as the table draws them.
            let right = left + c.width(table_width) + 1;
            if x < right || c == ProcessColumn::Name {
                return Some(c);
            }
            left = right;
        }
        None
    }
}

/// One process with its GPUs merged (NVML reports one entry per process and GPU).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRow {
    /// Host PID.
    pub pid: u32,
    /// `comm`.
    pub name: String,
    /// User name or uid.
    pub user: Option<String>,
    /// `namespace/pod`, or a short container id.
    pub place: Option<String>,
    /// What the process does, when the node classified it.
    pub workload: Option<gpuscope_core::WorkloadClass>,
    /// GPUs it uses.
    pub gpus: Vec<u32>,
    /// GPU memory over its GPUs; unknown when no GPU reported it.
    pub gpu_memory_bytes: Option<u64>,
    /// SM share summed over its GPUs (can pass 1 on several GPUs).
    pub sm_ratio: Option<f64>,
    /// CPU use since the previous snapshot, in cores (1.0 = one core busy).
    pub cpu_cores: Option<f64>,
    /// Resident set size.
    pub rss_bytes: Option<u64>,
    /// Parent PID, when the node read it.
    pub ppid: Option<u32>,
    /// The parent's name, when the node read it.
    pub parent_name: Option<String>,
    /// Drawn before the name in the tree view (`├─ `, `│  └─ `); empty in the flat list.
    pub tree_prefix: String,
    /// A parent listed only to hold the tree together: it uses no GPU, and the node samples
    /// nothing of it but its PID and name.
    pub launcher: bool,
}

fn place(p: &ProcessSample) -> Option<String> {
    match (&p.namespace, &p.pod, &p.container) {
        (Some(ns), Some(pod), _) => Some(format!("{ns}/{pod}")),
        (None, Some(pod), _) => Some(pod.clone()),
        (_, _, Some(c)) => Some(c.chars().take(12).collect()),
        _ => None,
    }
}

fn add_opt<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The processes of `snap`, one row per PID, with CPU use from the CPU time `prev` saw;
/// `speed` is workload seconds per clock second (1 on a real node; the demo's simulator runs
/// faster, and its CPU counters with it).
pub fn process_rows(snap: &NodeSnapshot, prev: Option<&NodeSnapshot>, speed: f64) -> Vec<ProcessRow> {
    let mut rows: BTreeMap<u32, ProcessRow> = BTreeMap::new();
    for p in &snap.processes {
        let row = rows.entry(p.pid).or_insert_with(|| ProcessRow {
            pid: p.pid,
            name: p.name.clone(),
            user: p.user.clone(),
            place: place(p),
            workload: p.workload,
            gpus: Vec::new(),
            gpu_memory_bytes: None,
            sm_ratio: None,
            cpu_cores: None,
            rss_bytes: p.rss_bytes,
            ppid: p.ppid,
            parent_name: p.parent_name.clone(),
            tree_prefix: String::new(),
            launcher: false,
        });
        if !row.gpus.contains(&p.gpu_index) {
            row.gpus.push(p.gpu_index);
        }
        row.gpu_memory_bytes = add_opt(row.gpu_memory_bytes, p.gpu_memory_bytes);
        row.sm_ratio = add_opt(row.sm_ratio, p.sm_utilization_ratio);
    }
    if let Some(prev) = prev {
        let dt_s = snap.timestamp_ms.saturating_sub(prev.timestamp_ms) as f64 / 1000.0 * speed;
        let before: HashMap<u32, f64> =
            prev.processes.iter().filter_map(|p| p.cpu_seconds_total.map(|c| (p.pid, c))).collect();
        for p in &snap.processes {
            if let (Some(now), Some(then), Some(row)) = (p.cpu_seconds_total, before.get(&p.pid), rows.get_mut(&p.pid))
                && dt_s > 0.0
                && now >= *then
            {
                row.cpu_cores = Some((now - then) / dt_s);
            }
        }
    }
    rows.into_values().collect()
}

/// Process table settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessTable {
    /// Sort column.
    pub sort: ProcessColumn,
    /// Largest first.
    pub descending: bool,
    /// Text a row must contain (name, user, place or PID), case-insensitive; empty shows all.
    pub filter: String,
    /// The filter line has the keyboard.
    pub editing_filter: bool,
    /// Selected row (in the sorted, filtered list).
    pub selected: usize,
    /// Children under their parents (launchers such as torchrun included), siblings in sort
    /// order.
    pub tree: bool,
}

impl Default for ProcessTable {
    fn default() -> Self {
        ProcessTable {
            sort: ProcessColumn::Memory,
            descending: true,
            filter: String::new(),
            editing_filter: false,
            selected: 0,
            tree: false,
        }
    }
}

impl ProcessTable {
    /// `rows` filtered and sorted as the table shows them. Unknown values sort below known ones.
    pub fn apply(&self, mut rows: Vec<ProcessRow>) -> Vec<ProcessRow> {
        if !self.filter.is_empty() {
            let needle = self.filter.to_lowercase();
            rows.retain(|r| {
                r.name.to_lowercase().contains(&needle)
                    || r.user.as_deref().is_some_and(|u| u.to_lowercase().contains(&needle))
                    || r.place.as_deref().is_some_and(|p| p.to_lowercase().contains(&needle))
                    || r.pid.to_string().contains(&needle)
            });
        }
        fn num(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
            match (a, b) {
                (Some(a), Some(b)) => a.total_cmp(&b),
                (Some(_), None) => std::cmp::Ordering::Greater,
                (None, Some(_)) => std::cmp::Ordering::Less,
                (None, None) => std::cmp::Ordering::Equal,
            }
        }
        let key = self.sort;
        rows.sort_by(|a, b| {
            let o = match key {
                ProcessColumn::Pid => a.pid.cmp(&b.pid),
                ProcessColumn::User => a.user.cmp(&b.user),
                ProcessColumn::Place => a.place.cmp(&b.place),
                ProcessColumn::Class => a.workload.map(|w| w.as_str()).cmp(&b.workload.map(|w| w.as_str())),
                ProcessColumn::Gpus => a.gpus.cmp(&b.gpus),
                ProcessColumn::Memory => {
                    num(a.gpu_memory_bytes.map(|x| x as f64), b.gpu_memory_bytes.map(|x| x as f64))
                }
                ProcessColumn::Sm => num(a.sm_ratio, b.sm_ratio),
                ProcessColumn::Cpu => num(a.cpu_cores, b.cpu_cores),
                ProcessColumn::Rss => num(a.rss_bytes.map(|x| x as f64), b.rss_bytes.map(|x| x as f64)),
                ProcessColumn::Name => a.name.cmp(&b.name),
            };
            // PID breaks ties so equal rows do not swap places between frames.
            let o = o.then(a.pid.cmp(&b.pid));
            if self.descending { o.reverse() } else { o }
        });
        if self.tree { tree(rows) } else { rows }
    }
}

/// `rows` (sorted) as a forest: each process under its parent, a parent that holds no GPU
/// added as a launcher row, each tree placed where its first-sorted member was and siblings
/// kept in sort order.
pub fn tree(rows: Vec<ProcessRow>) -> Vec<ProcessRow> {
    let mut rows = rows;
    let mut pids: std::collections::HashSet<u32> = rows.iter().map(|r| r.pid).collect();
    // Parents outside the list: a launcher row each, named from what its children read. Init
    // (1) and the kernel (0) are not launchers.
    let mut launchers: BTreeMap<u32, ProcessRow> = BTreeMap::new();
    for r in &rows {
        if let Some(pp) = r.ppid
            && pp > 1
            && !pids.contains(&pp)
        {
            launchers.entry(pp).or_insert_with(|| ProcessRow {
                pid: pp,
                name: r.parent_name.clone().unwrap_or_else(|| "?".into()),
                user: r.user.clone(),
                place: r.place.clone(),
                workload: None,
                gpus: Vec::new(),
                gpu_memory_bytes: None,
                sm_ratio: None,
                cpu_cores: None,
                rss_bytes: None,
                ppid: None,
                parent_name: None,
                tree_prefix: String::new(),
                launcher: true,
            });
        }
    }
    let order: HashMap<u32, usize> = rows.iter().enumerate().map(|(i, r)| (r.pid, i)).collect();
    pids.extend(launchers.keys());
    rows.extend(launchers.into_values());
    let parent = |r: &ProcessRow| r.ppid.filter(|pp| *pp != r.pid && pids.contains(pp));
    let mut children: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        match parent(r) {
            Some(pp) => children.entry(pp).or_default().push(i),
            None => roots.push(i),
        }
    }
    // A tree's place: its best-sorted member's (launchers have none of their own).
    fn rank(
        i: usize,
        rows: &[ProcessRow],
        children: &HashMap<u32, Vec<usize>>,
        order: &HashMap<u32, usize>,
        depth: usize,
    ) -> usize {
        let own = order.get(&rows[i].pid).copied().unwrap_or(usize::MAX);
        if depth > 64 {
            return own;
        }
        children
            .get(&rows[i].pid)
            .into_iter()
            .flatten()
            .map(|&c| rank(c, rows, children, order, depth + 1))
            .fold(own, usize::min)
    }
    let ranks: Vec<usize> = (0..rows.len()).map(|i| rank(i, &rows, &children, &order, 0)).collect();
    roots.sort_by_key(|&i| ranks[i]);
    for list in children.values_mut() {
        list.sort_by_key(|&i| ranks[i]);
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut seen = std::collections::HashSet::new();
    // (row, prefix of its ancestors' lines, is it the last child, depth)
    let mut stack: Vec<(usize, String, bool, usize)> =
        roots.iter().rev().map(|&i| (i, String::new(), true, 0)).collect();
    // A PID cycle cannot happen in /proc, but a corrupt recording may hold one: its members have
    // no root, so they start trees of their own after the others, and none is listed twice.
    let mut rest = (0..rows.len()).rev().collect::<Vec<_>>();
    while let Some((i, lines, last, depth)) = stack.pop().or_else(|| rest.pop().map(|i| (i, String::new(), true, 0))) {
        if !seen.insert(i) {
            continue;
        }
        let mut row = rows[i].clone();
        if depth > 0 {
            row.tree_prefix = format!("{lines}{}", if last { "└─ " } else { "├─ " });
        }
        let below = if depth == 0 { String::new() } else { format!("{lines}{}", if last { "   " } else { "│  " }) };
        let kids = children.get(&row.pid).cloned().unwrap_or_default();
        for (n, &c) in kids.iter().enumerate().rev() {
            stack.push((c, below.clone(), n + 1 == kids.len(), depth + 1));
        }
        out.push(row);
    }
    out
}

/// A signal waiting for the user's yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignal {
    /// Target PID.
    pub pid: u32,
    /// Its name, shown in the question.
    pub name: String,
    /// Signal number.
    pub signal: i32,
}

/// Where the data comes from, shown in the title bar.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// This node, sampled in-process.
    Local,
    /// A simulated node (the demo).
    Demo {
        /// Scenario name.
        scenario: String,
    },
    /// A recording played back.
    Replay {
        /// The file.
        file: String,
    },
    /// A collector's fleet.
    Collector {
        /// Its API's URL.
        url: String,
    },
}

/// Playback of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Playback {
    /// Recording milliseconds per wall millisecond.
    pub speed: f64,
    /// Advancing (else held at the cursor).
    pub playing: bool,
    /// Recording time shown, ms since the epoch.
    pub position_ms: u64,
}

/// How the data source is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceHealth {
    /// Data arrives.
    Ok,
    /// The source ended (a replay's end, a stopped sampler) with this explanation.
    Ended(String),
    /// The source failed; the message says why.
    Failed(String),
}

/// The whole UI state.
#[derive(Debug, Clone)]
pub struct App {
    /// Where the data comes from.
    pub source: SourceKind,
    /// How the source is doing.
    pub health: SourceHealth,
    /// Snapshots, oldest first.
    pub history: History,
    /// Every finding seen this session (open and closed), in the order they opened.
    pub findings: Vec<FindingRecord>,
    /// Current screen.
    pub view: View,
    /// `None`: live (the newest snapshot); `Some(ms)`: paused, showing the values at that time.
    pub cursor_ms: Option<u64>,
    /// Chart window, an index into [`WINDOWS_S`].
    pub window: usize,
    /// One line per GPU.
    pub compact: bool,
    /// Process table settings.
    pub processes: ProcessTable,
    /// Selected finding (index into [`App::findings_at`]).
    pub finding_selected: usize,
    /// The keyboard help is open.
    pub help: bool,
    /// Process detail view open for this PID.
    pub process_detail: Option<u32>,
    /// The process whose kernel profile the kernels screen details (the first when `None` or
    /// no longer profiled).
    pub kernel_pid: Option<u32>,
    /// A signal awaiting confirmation.
    pub confirm: Option<PendingSignal>,
    /// Signals are refused.
    pub readonly: bool,
    /// A one-line message for the user (result of the last action).
    pub message: Option<String>,
    /// Colours.
    pub theme: Theme,
    /// Replay controls, in replay mode.
    pub playback: Option<Playback>,
    /// Terminal size as last seen (for mouse hit-testing).
    pub size: (u16, u16),
    /// Workload seconds per clock second: 1, except on the demo's faster simulated clock.
    pub speed: f64,
    /// Fleet mode: the collector's nodes, and the one drilled into.
    pub fleet: Option<crate::fleet::Fleet>,
}

impl App {
    /// An empty UI for `source`.
    pub fn new(source: SourceKind, theme: Theme) -> App {
        App {
            source,
            health: SourceHealth::Ok,
            history: History::new(DEFAULT_HISTORY_MS),
            findings: Vec::new(),
            view: View::Gpus,
            cursor_ms: None,
            window: 0,
            compact: false,
            processes: ProcessTable::default(),
            finding_selected: 0,
            help: false,
            process_detail: None,
            kernel_pid: None,
            confirm: None,
            readonly: false,
            message: None,
            theme,
            playback: None,
            size: (80, 24),
            speed: 1.0,
            fleet: None,
        }
    }

    /// The time shown: the cursor when paused or replaying, else the newest snapshot's.
    pub fn shown_ms(&self) -> Option<u64> {
        self.cursor_ms.or_else(|| self.history.latest().map(|s| s.timestamp_ms))
    }

    /// Position in the history of the snapshot shown.
    pub fn shown_index(&self) -> Option<usize> {
        match self.cursor_ms {
            Some(ms) => self.history.index_at(ms),
            None => self.history.len().checked_sub(1),
        }
    }

    /// The snapshot shown (the one at the cursor when paused).
    pub fn shown(&self) -> Option<Arc<NodeSnapshot>> {
        self.shown_index().and_then(|i| self.history.get(i))
    }

    /// The snapshot before the one shown (for per-process CPU use).
    pub fn before_shown(&self) -> Option<Arc<NodeSnapshot>> {
        self.shown_index().and_then(|i| i.checked_sub(1)).and_then(|i| self.history.get(i))
    }

    /// The processes at the time shown, one row per PID, as the table lists them.
    pub fn process_rows(&self) -> Vec<ProcessRow> {
        let Some(s) = self.shown() else { return Vec::new() };
        self.processes.apply(process_rows(&s, self.before_shown().as_deref(), self.speed))
    }

    /// The kernel profiles at the time shown, by PID.
    pub fn kernel_profiles(&self) -> Vec<KernelProfile> {
        let Some(s) = self.shown() else { return Vec::new() };
        let mut v = s.kernel_profiles.clone();
        v.sort_by_key(|p| p.pid);
        v
    }

    /// Position of the profile the kernels screen details among [`App::kernel_profiles`].
    pub fn kernel_selected(&self, profiles: &[KernelProfile]) -> usize {
        self.kernel_pid.and_then(|pid| profiles.iter().position(|p| p.pid == pid)).unwrap_or(0)
    }

    /// The chart window in milliseconds.
    pub fn window_ms(&self) -> u64 {
        WINDOWS_S[self.window.min(WINDOWS_S.len() - 1)] * 1000
    }

    /// Paused (live data keeps arriving behind the cursor) or a replay.
    pub fn paused(&self) -> bool {
        self.cursor_ms.is_some()
    }

    /// Findings as they stood at the time shown, newest first: those open then first, then the
    /// ones already closed by then.
    pub fn findings_at(&self) -> Vec<&FindingRecord> {
        let Some(t) = self.shown_ms() else { return Vec::new() };
        let mut open: Vec<&FindingRecord> = Vec::new();
        let mut closed: Vec<&FindingRecord> = Vec::new();
        for r in self.findings.iter().rev() {
            if r.opened_ms > t {
                continue;
            }
            match r.closed_ms {
                Some(c) if c <= t => closed.push(r),
                _ => open.push(r),
            }
        }
        open.extend(closed);
        open
    }

    /// True when `r` was open at the time shown.
    pub fn open_at(&self, r: &FindingRecord) -> bool {
        let t = self.shown_ms().unwrap_or(u64::MAX);
        r.opened_ms <= t && r.closed_ms.is_none_or(|c| c > t)
    }

    /// The finding selected in the findings list, if any.
    pub fn selected_finding(&self) -> Option<&FindingRecord> {
        self.findings_at().get(self.finding_selected).copied()
    }

    /// Records an opened or closed finding (a close replaces its open record).
    pub fn apply_finding(&mut self, event: FindingEvent) {
        match event {
            FindingEvent::Opened(r) => {
                if !self.findings.iter().any(|x| same_finding(x, &r) && x.opened_ms == r.opened_ms) {
                    self.findings.push(r);
                }
            }
            FindingEvent::Closed(r) => {
                match self.findings.iter_mut().rev().find(|x| same_finding(x, &r) && x.closed_ms.is_none()) {
                    // The open record knows when it opened (a streamed close does not).
                    Some(x) => *x = FindingRecord { opened_ms: x.opened_ms, ..r },
                    // Opened before this session started: keep the close so its duration shows.
                    None => self.findings.push(r),
                }
            }
        }
    }
}

/// The same rule on the same scope.
fn same_finding(a: &FindingRecord, b: &FindingRecord) -> bool {
    a.finding.rule == b.finding.rule && a.finding.scope == b.finding.scope
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn snap(ms: u64) -> Arc<NodeSnapshot> {
        Arc::new(NodeSnapshot { timestamp_ms: ms, ..NodeSnapshot::default() })
    }

    #[test]
    fn history_keeps_its_age_bound_and_order() {
        let mut h = History::new(10_000);
        for s in 0..=30 {
            h.push(snap(s * 1000));
        }
        assert_eq!(h.len(), 31, "all still whole");
        h.push(snap(25_000));
        assert_eq!(h.len(), 31, "an older snapshot is ignored");
        assert_eq!(h.latest().unwrap().timestamp_ms, 30_000);
        assert_eq!(h.index_at(22_500), Some(22));
        let w: Vec<u64> = h.window(30_000, 3_000).map(|s| s.timestamp_ms).collect();
        assert_eq!(w, vec![28_000, 29_000, 30_000]);
    }

    #[test]
    fn old_snapshots_are_compressed_in_blocks_and_read_back_exactly() {
        let one_hour = 3_600_000;
        let mut h = History::new(one_hour);
        let at = |s: u64| {
            let mut x = (*snap(s * 1000)).clone();
            x.node.machine_id = Some(format!("m{s}"));
            Arc::new(x)
        };
        for s in 0..=(3600 + 2 * BLOCK as u64) {
            h.push(at(s));
        }
        assert!(!h.blocks.is_empty() && h.recent.len() < RECENT + BLOCK);
        // The deflating threads finish; the next push lets go of the whole copies.
        for b in &h.blocks {
            while b.packed.get().is_none() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        h.push(at(3600 + 2 * BLOCK as u64 + 1));
        assert!(h.blocks.iter().all(|b| b.whole.is_none()), "only deflated copies stay");
        // Whole blocks leave: at least an hour stays, at most a block more.
        let oldest = h.time_at(0).unwrap();
        let newest = h.latest().unwrap().timestamp_ms;
        assert!(newest - oldest >= one_hour && newest - oldest <= one_hour + BLOCK as u64 * 1000, "{oldest}..{newest}");
        for i in [0, 1, 59, 60, 61, 1000, h.len() - RECENT - 1, h.len() - 1] {
            let s = h.get(i).unwrap();
            assert_eq!(s.timestamp_ms, h.time_at(i).unwrap());
            assert_eq!(s.node.machine_id, Some(format!("m{}", s.timestamp_ms / 1000)), "position {i}");
        }
        assert!(h.get(h.len()).is_none());
    }

    fn proc(pid: u32, gpu: u32, mem: Option<u64>, sm: Option<f64>, cpu: Option<f64>) -> ProcessSample {
        ProcessSample {
            pid,
            name: format!("p{pid}"),
            gpu_index: gpu,
            gpu_memory_bytes: mem,
            sm_utilization_ratio: sm,
            cpu_seconds_total: cpu,
            ..ProcessSample::default()
        }
    }

    #[test]
    fn process_rows_merge_gpus_and_derive_cpu_from_two_snapshots() {
        let prev = NodeSnapshot {
            timestamp_ms: 1000,
            processes: vec![proc(7, 0, Some(10), Some(0.5), Some(10.0))],
            ..NodeSnapshot::default()
        };
        let now = NodeSnapshot {
            timestamp_ms: 3000,
            processes: vec![
                proc(7, 0, Some(10), Some(0.5), Some(13.0)),
                proc(7, 1, Some(5), None, Some(13.0)),
                proc(9, 1, None, None, None),
            ],
            ..NodeSnapshot::default()
        };
        let rows = process_rows(&now, Some(&prev), 1.0);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].gpus, vec![0, 1]);
        assert_eq!(rows[0].gpu_memory_bytes, Some(15));
        assert_eq!(rows[0].sm_ratio, Some(0.5));
        assert_eq!(rows[0].cpu_cores, Some(1.5));
        assert_eq!(rows[1].gpu_memory_bytes, None, "unknown stays unknown");
        assert_eq!(rows[1].cpu_cores, None);
        assert_eq!(process_rows(&now, None, 1.0)[0].cpu_cores, None, "one reading gives no rate");
    }

    #[test]
    fn the_tree_puts_ranks_under_their_launcher_and_nested_workers_under_their_rank() {
        let child = |pid, gpu, mem, ppid: u32, parent: &str| ProcessSample {
            ppid: Some(ppid),
            parent_name: Some(parent.into()),
            ..proc(pid, gpu, Some(mem), None, None)
        };
        let now = NodeSnapshot {
            processes: vec![
                // torchrun (100, no GPU) launched ranks 101 and 102; rank 102 started a GPU
                // helper 103; 200 runs on its own under init.
                child(101, 0, 10, 100, "torchrun"),
                child(102, 1, 30, 100, "torchrun"),
                child(103, 1, 5, 102, "p102"),
                child(200, 2, 20, 1, "systemd"),
            ],
            ..NodeSnapshot::default()
        };
        let table = ProcessTable { tree: true, ..ProcessTable::default() };
        let rows = table.apply(process_rows(&now, None, 1.0));
        let shown: Vec<(u32, &str, bool)> = rows.iter().map(|r| (r.pid, r.tree_prefix.as_str(), r.launcher)).collect();
        // Sorted by GPU memory, largest first: 102 (30) leads, so torchrun's tree comes first,
        // then 200 (20); under torchrun 102 before 101.
        assert_eq!(
            shown,
            vec![(100, "", true), (102, "├─ ", false), (103, "│  └─ ", false), (101, "└─ ", false), (200, "", false),]
        );
        assert_eq!(rows[0].name, "torchrun", "the launcher is named from what its children read");
        assert_eq!(rows[0].gpu_memory_bytes, None, "a launcher's own values are unknown, not 0");
        // The filter applies to processes; a matching child brings its launcher along.
        let filtered = ProcessTable { filter: "p101".into(), ..table.clone() }.apply(process_rows(&now, None, 1.0));
        assert_eq!(filtered.iter().map(|r| r.pid).collect::<Vec<_>>(), vec![100, 101]);
        // Flat, nothing is added.
        assert_eq!(ProcessTable::default().apply(process_rows(&now, None, 1.0)).len(), 4);
        // A corrupt recording with a PID cycle still ends.
        let cyclic = NodeSnapshot {
            processes: vec![child(1, 0, 1, 2, "p2"), child(2, 0, 1, 1, "p1")],
            ..NodeSnapshot::default()
        };
        let mut pids: Vec<u32> = table.apply(process_rows(&cyclic, None, 1.0)).iter().map(|r| r.pid).collect();
        pids.sort();
        assert_eq!(pids, vec![1, 2], "each listed once");
    }

    #[test]
    fn the_table_filters_and_sorts_unknown_values_last() {
        let now = NodeSnapshot {
            processes: vec![
                proc(1, 0, Some(5), None, None),
                proc(2, 0, None, None, None),
                proc(3, 0, Some(9), None, None),
            ],
            ..NodeSnapshot::default()
        };
        let mut t = ProcessTable::default();
        let pids = |t: &ProcessTable| t.apply(process_rows(&now, None, 1.0)).iter().map(|r| r.pid).collect::<Vec<_>>();
        assert_eq!(pids(&t), vec![3, 1, 2]);
        t.descending = false;
        t.sort = ProcessColumn::Pid;
        assert_eq!(pids(&t), vec![1, 2, 3]);
        t.filter = "P3".into();
        assert_eq!(pids(&t), vec![3]);
    }

    #[test]
    fn findings_are_judged_at_the_time_shown() {
        let mut app = App::new(SourceKind::Local, Theme::dark());
        for s in 0..10 {
            app.history.push(snap(s * 1000));
        }
        let f = gpuscope_core::Finding {
            rule: "r".into(),
            severity: gpuscope_core::Severity::Warning,
            scope: Default::default(),
            since_ms: 0,
            summary: String::new(),
            evidence: vec![],
            recommendation: String::new(),
            docs: None,
            action: None,
            cause: None,
        };
        app.apply_finding(FindingEvent::Opened(FindingRecord { finding: f.clone(), opened_ms: 3000, closed_ms: None }));
        app.apply_finding(FindingEvent::Closed(FindingRecord { finding: f, opened_ms: 3000, closed_ms: Some(6000) }));
        assert_eq!(app.findings.len(), 1, "the close replaces the open record");
        assert!(!app.open_at(&app.findings[0]), "closed at the newest snapshot");
        app.cursor_ms = Some(4000);
        assert!(app.open_at(&app.findings[0]));
        app.cursor_ms = Some(2000);
        assert!(app.findings_at().is_empty(), "not opened yet at 2 s");
    }

    #[test]
    fn a_click_finds_its_column() {
        assert_eq!(ProcessColumn::at_x(0, 200), Some(ProcessColumn::Pid));
        assert_eq!(ProcessColumn::at_x(9, 200), Some(ProcessColumn::User));
        assert_eq!(ProcessColumn::at_x(40, 200), Some(ProcessColumn::Place));
        assert_eq!(ProcessColumn::at_x(55, 78), Some(ProcessColumn::Memory), "narrow: the container column shrinks");
        assert_eq!(ProcessColumn::at_x(500, 200), Some(ProcessColumn::Name));
    }
}
