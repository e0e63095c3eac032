//! Workload classification: whether a GPU process trains a model, serves one, or is an
//! interactive notebook kernel, judged on the node from its process name (`comm`) and its
//! command line.
//!
//! The rules need this because advice differs by workload: a training job that leaves GPU memory
//! unused can raise its batch size, while an inference server that holds 90% of the memory does so
//! by design (vLLM, SGLang, TGI and TensorRT-LLM size a KV-cache pool up front) and is tuned through
//! its own settings instead.
//!
//! Classification is one static pattern table ([`PATTERNS`]) walked in four stages, the first
//! decisive one winning (see `docs/workload.md` for the user-facing description):
//!
//! 1. **Process titles.** Frameworks that rename their processes (`VLLM::EngineCore`,
//!    `ray::ServeReplica:…`, `sglang::scheduler`) are recognised by a prefix of `comm` (which the
//!    kernel truncates to 15 bytes) or of `argv[0]`. A framework naming its own process is the
//!    strongest evidence there is.
//! 2. **Entry point.** The program's basename, or, under a Python interpreter, the `-m` module or
//!    the script, is matched against the table in table order; the first matching row decides.
//!    Launchers and wrappers (`torchrun`, `deepspeed`, `accelerate launch`, `mpirun`, `srun`,
//!    `uv run`, `conda run`, `env`…) are seen through: the walk restarts at the program they run.
//!    Notebook kernels and servers are entry points too, so a kernel is a notebook whatever its
//!    arguments say.
//! 3. **Arguments.** Flags that only one kind of program takes (`--deepspeed`, `--do_train`,
//!    `--gpu-memory-utilization`) anywhere in the command line.
//! 4. **Name fallback.** Keywords in the script's or module's name (`train`, `finetune`, `serve`,
//!    `inference`…).
//!
//! Stages 3 and 4 are weak evidence: when they disagree on the class the answer is
//! [`WorkloadClass::Unknown`], because a wrong class gives wrong advice and an unknown one only
//! withholds it.
//!
//! The command line is read on the node and never leaves it; only the class is exported.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a GPU process is doing, judged from its name and command line on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadClass {
    /// Trains or fine-tunes a model: batch-size and learning-rate advice applies.
    Training,
    /// Serves or runs a model: memory pools are provisioned by design; tune the server instead.
    Inference,
    /// An interactive kernel or notebook server, which may hold a GPU while nobody uses it.
    Notebook,
    /// Not recognised: no workload-specific advice.
    #[default]
    Unknown,
}

impl WorkloadClass {
    /// Every class, in declaration order.
    pub const ALL: [WorkloadClass; 4] =
        [WorkloadClass::Training, WorkloadClass::Inference, WorkloadClass::Notebook, WorkloadClass::Unknown];

    /// The label value, spelled as serde spells it (`training`, `inference`, `notebook`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadClass::Training => "training",
            WorkloadClass::Inference => "inference",
            WorkloadClass::Notebook => "notebook",
            WorkloadClass::Unknown => "unknown",
        }
    }

    /// The class a label value names, ignoring case and surrounding whitespace; `None` otherwise.
    pub fn parse(s: &str) -> Option<WorkloadClass> {
        let s = s.trim();
        WorkloadClass::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for WorkloadClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The classification: the class, the framework or server recognised, and whether it pre-allocates
/// a fixed GPU memory pool by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Workload {
    /// What the process is doing.
    pub class: WorkloadClass,
    /// The framework, server or launcher recognised (`"vllm"`, `"torchrun"`…); it can be set while
    /// the class is unknown, when a launcher was seen but not what it runs.
    pub framework: Option<&'static str>,
    /// The program reserves most GPU memory up front on purpose (a KV-cache pool, XLA's
    /// preallocation), so high memory use is not a leak and low use is not waste.
    pub preallocates: bool,
}

impl Workload {
    /// Nothing recognised.
    pub const UNKNOWN: Workload = Workload { class: WorkloadClass::Unknown, framework: None, preallocates: false };
}

/// Classifies a GPU process from its `comm` (at most 15 bytes, as in `/proc/PID/comm`) and its
/// command line (`/proc/PID/cmdline` split at NULs, already converted lossily to UTF-8).
///
/// Never panics; reads at most the first 64 arguments and ignores any argument longer than 4 KiB.
/// An empty command line (kernel threads, zombies, no permission) falls back to `comm` alone.
pub fn classify<S: AsRef<str>>(comm: &str, cmdline: &[S]) -> Workload {
    classify_traced(comm, cmdline, &mut Trace(None))
}

/// Arguments read at most: launchers put the program early, and the cost stays bounded.
const MAX_ARGS: usize = 64;
/// Arguments longer than this (inline JSON configs, base64 blobs) are treated as matching nothing.
const MAX_ARG_LEN: usize = 4096;
/// Launchers nested deeper than this are not followed (`srun torchrun …` is two).
const MAX_DEPTH: usize = 8;
/// The kernel's limit on `comm` (TASK_COMM_LEN 16, less the NUL): titles longer than this appear
/// truncated there.
const COMM_LEN: usize = 15;

/// How a table row recognises a process.
#[derive(Debug, Clone, Copy)]
enum Matcher {
    /// Stage 1: a prefix of the process title, matched on `comm` (also when `comm` is a 15-byte
    /// truncation of the prefix) and on `argv[0]`.
    Title(&'static str),
    /// Stage 2: the basename of the program, or of the script an interpreter runs, exactly.
    Name(&'static [&'static str]),
    /// Stage 2: the module of `python -m`, exactly or as a dotted prefix (`vllm.entrypoints`
    /// matches `vllm.entrypoints.openai.api_server`).
    Module(&'static [&'static str]),
    /// Stage 2: the end of the script's path, at a `/` boundary (`maxtext/train.py`).
    ScriptPath(&'static [&'static str]),
    /// Stage 2: any script an interpreter runs (with `subcommands`, the first argument after it).
    AnyScript,
    /// Stage 3: an argument anywhere; a flag (`--x`) also matches as `--x=value`, and `_` and `-`
    /// are the same in flags because argparse-based CLIs such as vLLM accept both.
    Arg(&'static [&'static str]),
    /// Stage 3: a prefix of a flag anywhere (`--trainer.` for LightningCLI's `--trainer.devices`).
    ArgPrefix(&'static str),
}

/// One row of the pattern table.
#[derive(Debug, Clone, Copy)]
struct Pattern {
    matcher: Matcher,
    /// The first positional argument after the entry point must be one of these (empty: any);
    /// `vllm serve` is a server, `vllm chat` a client.
    subcommands: &'static [&'static str],
    /// A launcher or wrapper: classify the program it runs instead.
    see_through: bool,
    class: WorkloadClass,
    framework: Option<&'static str>,
    preallocates: bool,
}

impl Pattern {
    /// A row that decides the class.
    const fn is(matcher: Matcher, class: WorkloadClass, framework: &'static str, preallocates: bool) -> Pattern {
        Pattern { matcher, subcommands: &[], see_through: false, class, framework: Some(framework), preallocates }
    }

    /// A launcher, named as the framework when what it runs names none.
    const fn launcher(matcher: Matcher, framework: &'static str) -> Pattern {
        Pattern {
            matcher,
            subcommands: &[],
            see_through: true,
            class: WorkloadClass::Unknown,
            framework: Some(framework),
            preallocates: false,
        }
    }

    /// A generic wrapper (environment, scheduler, MPI): seen through, names nothing.
    const fn wrapper(matcher: Matcher) -> Pattern {
        Pattern {
            matcher,
            subcommands: &[],
            see_through: true,
            class: WorkloadClass::Unknown,
            framework: None,
            preallocates: false,
        }
    }

    /// The same row, requiring one of these subcommands.
    const fn sub(self, subcommands: &'static [&'static str]) -> Pattern {
        Pattern { subcommands, ..self }
    }

    /// A row that decides the class but names no framework (the flag says what, not who).
    const fn class_only(matcher: Matcher, class: WorkloadClass) -> Pattern {
        Pattern { matcher, subcommands: &[], see_through: false, class, framework: None, preallocates: false }
    }

    fn workload(&self) -> Workload {
        Workload { class: self.class, framework: self.framework, preallocates: self.preallocates }
    }
}

use Matcher::{AnyScript, Arg, ArgPrefix, Module, Name, ScriptPath, Title};
use WorkloadClass::{Inference, Notebook, Training};

/// The pattern table. Within a stage, the first matching row wins; `docs/workload.md` lists the
/// same rows for users (a test keeps the two in step).
static PATTERNS: &[Pattern] = &[
    // Stage 1: process titles set by the frameworks themselves (setproctitle).
    Pattern::is(Title("VLLM::"), Inference, "vllm", true),
    Pattern::is(Title("ray::RayWorkerWrapper"), Inference, "vllm", true),
    Pattern::is(Title("sglang::"), Inference, "sglang", true),
    Pattern::is(Title("ray::ServeReplica"), Inference, "ray-serve", false),
    Pattern::is(Title("ray::RayTrainWorker"), Training, "ray-train", false),
    // Stage 2: notebooks first, so a kernel stays a notebook whatever its arguments contain.
    Pattern::is(Module(&["ipykernel_launcher", "ipykernel"]), Notebook, "ipykernel", false),
    Pattern::is(Module(&["colab_kernel_launcher"]), Notebook, "colab", false),
    Pattern::is(Module(&["spyder_kernels.console"]), Notebook, "spyder", false),
    Pattern::is(
        Name(&["jupyter-lab", "jupyter-notebook", "jupyter-server", "jupyterhub-singleuser"]),
        Notebook,
        "jupyter",
        false,
    ),
    Pattern::is(Module(&["jupyterlab", "notebook", "jupyter_server"]), Notebook, "jupyter", false),
    Pattern::is(Name(&["ipython", "ipython3"]), Notebook, "ipython", false),
    // Stage 2: inference servers.
    Pattern::is(Name(&["vllm"]), Inference, "vllm", true).sub(&["serve"]),
    Pattern::is(Module(&["vllm.entrypoints"]), Inference, "vllm", true),
    Pattern::is(Name(&["trl"]), Inference, "vllm", true).sub(&["vllm-serve"]),
    Pattern::is(Module(&["sglang.launch_server"]), Inference, "sglang", true),
    Pattern::is(
        Name(&["text-generation-launcher", "text-generation-server", "text-generation-router"]),
        Inference,
        "tgi",
        true,
    ),
    Pattern::is(Name(&["trtllm-serve"]), Inference, "tensorrt-llm", true),
    Pattern::is(Module(&["tensorrt_llm.commands.serve"]), Inference, "tensorrt-llm", true),
    Pattern::is(Name(&["tritonserver"]), Inference, "triton", false),
    Pattern::is(Name(&["torchserve", "model_service_worker.py"]), Inference, "torchserve", false),
    Pattern::is(Name(&["ollama"]), Inference, "ollama", true).sub(&["serve", "runner"]),
    Pattern::is(Name(&["ollama_llama_server"]), Inference, "ollama", true),
    Pattern::is(Name(&["llama-server", "llama-cli"]), Inference, "llama.cpp", true),
    Pattern::is(Name(&["text-embeddings-router"]), Inference, "tei", false),
    Pattern::is(Name(&["serve"]), Inference, "ray-serve", false).sub(&["run"]),
    Pattern::is(Name(&["uvicorn"]), Inference, "uvicorn", false),
    Pattern::is(Module(&["uvicorn"]), Inference, "uvicorn", false),
    // Stage 2: training entry points.
    Pattern::is(
        Name(&["pretrain_gpt.py", "pretrain_bert.py", "pretrain_t5.py", "pretrain_mamba.py"]),
        Training,
        "megatron",
        false,
    ),
    Pattern::is(
        Name(&[
            "megatron_gpt_pretraining.py",
            "megatron_bert_pretraining.py",
            "megatron_t5_pretraining.py",
            "megatron_llama_pretraining.py",
            "megatron_gpt_continue_training.py",
            "megatron_gpt_finetuning.py",
        ]),
        Training,
        "nemo",
        false,
    ),
    Pattern::is(Module(&["maxtext.train", "maxtext.trainers"]), Training, "maxtext", true),
    Pattern::is(ScriptPath(&["maxtext/train.py"]), Training, "maxtext", true),
    Pattern::is(Module(&["t5x.train"]), Training, "t5x", true),
    Pattern::is(ScriptPath(&["t5x/train.py"]), Training, "t5x", true),
    Pattern::is(Module(&["paxml.main"]), Training, "paxml", true),
    Pattern::is(ScriptPath(&["paxml/main.py"]), Training, "paxml", true),
    Pattern::is(Name(&["trl"]), Training, "trl", false)
        .sub(&["sft", "dpo", "grpo", "kto", "orpo", "ppo", "rloo", "reward"]),
    Pattern::is(Name(&["axolotl"]), Training, "axolotl", false).sub(&["train"]),
    Pattern::is(Module(&["axolotl.cli.train"]), Training, "axolotl", false),
    Pattern::is(Name(&["llamafactory-cli"]), Training, "llama-factory", false).sub(&["train"]),
    Pattern::is(AnyScript, Training, "lightning", false).sub(&["fit"]),
    // Stage 2: launchers and wrappers, seen through.
    Pattern::launcher(Name(&["torchrun"]), "torchrun"),
    Pattern::launcher(Module(&["torch.distributed.run", "torch.distributed.launch"]), "torchrun"),
    Pattern::launcher(Name(&["deepspeed"]), "deepspeed"),
    Pattern::launcher(Module(&["deepspeed.launcher.launch", "deepspeed.launcher.runner"]), "deepspeed"),
    Pattern::launcher(Name(&["accelerate"]), "accelerate").sub(&["launch"]),
    Pattern::launcher(Module(&["accelerate.commands.launch"]), "accelerate"),
    Pattern::launcher(Name(&["fabric", "lightning"]), "lightning").sub(&["run"]),
    Pattern::launcher(Name(&["composer"]), "composer"),
    Pattern::launcher(Name(&["trtllm-llmapi-launch"]), "tensorrt-llm"),
    Pattern::wrapper(Name(&["mpirun", "mpiexec", "orterun", "prterun", "srun"])),
    Pattern::wrapper(Name(&["uv", "conda", "mamba", "micromamba", "pixi", "poetry", "pipenv"])).sub(&["run"]),
    Pattern::wrapper(Name(&[
        "env",
        "nohup",
        "nice",
        "ionice",
        "numactl",
        "taskset",
        "stdbuf",
        "time",
        "timeout",
        "chrt",
        "setsid",
        "apptainer",
        "singularity",
    ])),
    // Stage 3: arguments only one kind of program takes.
    Pattern::is(Arg(&["--deepspeed", "--deepspeed_config"]), Training, "deepspeed", false),
    Pattern::is(Arg(&["--do_train"]), Training, "transformers", false),
    Pattern::class_only(Arg(&["--per_device_train_batch_size"]), Training),
    Pattern::is(ArgPrefix("--trainer."), Training, "lightning", false),
    Pattern::is(Arg(&["--gpu-memory-utilization"]), Inference, "vllm", true),
    Pattern::is(Arg(&["--mem-fraction-static"]), Inference, "sglang", true),
    Pattern::is(Arg(&["--kv_cache_free_gpu_memory_fraction"]), Inference, "tensorrt-llm", true),
    Pattern::is(Arg(&["org.pytorch.serve.ModelServer"]), Inference, "torchserve", false),
];

/// Stage 4, training: name tokens starting with one of these (`train`, `trainer`, `training`).
const TRAIN_PREFIXES: &[&str] = &["train", "pretrain", "finetun"];
/// Stage 4, training: whole name tokens (trailing digits ignored: `sft2`).
const TRAIN_TOKENS: &[&str] = &["sft", "dpo", "rlhf", "ppo", "grpo"];
/// Stage 4, inference: whole name tokens.
const INFERENCE_TOKENS: &[&str] =
    &["serve", "server", "serving", "inference", "infer", "predict", "predictor", "prediction"];

/// Records which table rows (and which alternative within a row) matched: the tests use it to
/// prove that no pattern is dead.
struct Trace<'t>(Option<&'t mut Vec<(usize, usize)>>);

impl Trace<'_> {
    fn hit(&mut self, row: usize, alt: usize) {
        if let Some(hits) = self.0.as_mut() {
            hits.push((row, alt));
        }
    }
}

fn classify_traced<S: AsRef<str>>(comm: &str, cmdline: &[S], trace: &mut Trace<'_>) -> Workload {
    let comm = head(comm.trim_end_matches(['\n', '\0']), 64);
    let argv0 = cmdline
        .first()
        .map_or("", |a| head(a.as_ref(), MAX_ARG_LEN).trim_matches(|c: char| c == '\0' || c.is_whitespace()));

    // Stage 1.
    for (i, row) in PATTERNS.iter().enumerate() {
        if let Title(title) = row.matcher
            && title_matches(comm, argv0, title)
        {
            trace.hit(i, 0);
            return row.workload();
        }
    }

    // A fixed buffer: no allocation, and the argument cap is structural.
    let mut buf: [&str; MAX_ARGS] = [""; MAX_ARGS];
    let mut n = 0;
    if cmdline.is_empty() {
        if !comm.is_empty() {
            buf[0] = comm;
            n = 1;
        }
    } else if cmdline.len() == 1 {
        // A process that rewrote its title puts the whole command line in argv[0], spaces and all.
        for part in head(cmdline[0].as_ref(), MAX_ARGS * (MAX_ARG_LEN + 1)).split_whitespace().take(MAX_ARGS) {
            buf[n] = opaque(part);
            n += 1;
        }
    } else {
        for arg in cmdline.iter().take(MAX_ARGS) {
            buf[n] = opaque(arg.as_ref());
            n += 1;
        }
    }
    let args = &buf[..n];

    // Stage 2.
    let walk = walk(args, 0, trace);
    if let Some(row) = walk.decided {
        return PATTERNS[row].workload();
    }

    // Stages 3 and 4: weak evidence, kept only when it agrees.
    let mut weak = Weak::default();
    for (i, row) in PATTERNS.iter().enumerate() {
        if let Some(alt) = args.iter().find_map(|a| arg_match(row.matcher, a)) {
            trace.hit(i, alt);
            weak.add(row.workload());
        }
    }
    if let Some(class) = walk.fallback.and_then(fallback_class) {
        weak.add(Workload { class, framework: None, preallocates: false });
    }
    match weak.found {
        Some(w) if !weak.conflict => Workload { framework: w.framework.or(walk.launcher), ..w },
        _ => Workload { framework: walk.launcher, ..Workload::UNKNOWN },
    }
}

/// Weak evidence gathered in stages 3 and 4.
#[derive(Default)]
struct Weak {
    found: Option<Workload>,
    conflict: bool,
}

impl Weak {
    fn add(&mut self, w: Workload) {
        match self.found {
            None => self.found = Some(w),
            Some(prev) if prev.class == w.class => {
                self.found = Some(Workload {
                    class: prev.class,
                    framework: prev.framework.or(w.framework),
                    preallocates: prev.preallocates || w.preallocates,
                })
            }
            Some(_) => self.conflict = true,
        }
    }
}

/// What stage 2 found at one position of the command line.
#[derive(Default)]
struct Walk<'a> {
    /// A row that decides the class.
    decided: Option<usize>,
    /// The innermost launcher's framework name.
    launcher: Option<&'static str>,
    /// The script's name without `.py`, or the module's last component, for stage 4.
    fallback: Option<&'a str>,
    /// This position is the program (so a launcher's scan stops here), not an option's value.
    decisive: bool,
}

/// The entry point of a command line.
enum Entry<'a> {
    /// A program's basename.
    Program(&'a str),
    /// A Python script: its path as given and its basename.
    Script(&'a str, &'a str),
    /// A module run with `-m`.
    Module(&'a str),
    /// `python -c`, `python -`, a bare interpreter: nothing to match.
    Command,
}

fn walk<'a>(args: &[&'a str], depth: usize, trace: &mut Trace<'_>) -> Walk<'a> {
    let Some((&first, rest)) = args.split_first() else { return Walk::default() };
    let name = basename(first);
    if is_interpreter(name) {
        let (entry, rest) = python_entry(rest);
        // Whatever the interpreter runs, this is the program: stop a launcher's scan here.
        return Walk { decisive: true, ..walk_entry(entry, rest, depth, trace) };
    }
    let entry = if ends_with_ci(name, ".py") { Entry::Script(first, name) } else { Entry::Program(name) };
    walk_entry(entry, rest, depth, trace)
}

fn walk_entry<'a>(entry: Entry<'a>, rest: &[&'a str], depth: usize, trace: &mut Trace<'_>) -> Walk<'a> {
    for (i, row) in PATTERNS.iter().enumerate() {
        let Some(alt) = entry_match(row.matcher, &entry) else { continue };
        let Some(after) = subcommand(row.subcommands, rest) else { continue };
        trace.hit(i, alt);
        if !row.see_through {
            return Walk { decided: Some(i), decisive: true, ..Walk::default() };
        }
        let mut inner = if depth < MAX_DEPTH { see_through(&rest[after..], depth + 1, trace) } else { Walk::default() };
        inner.launcher = inner.launcher.or(row.framework);
        inner.decisive = true;
        return inner;
    }
    match entry {
        Entry::Script(_, name) => {
            Walk { fallback: Some(strip_suffix_ci(name, ".py")), decisive: true, ..Walk::default() }
        }
        Entry::Module(module) => {
            let last = module.rsplit('.').next().unwrap_or(module);
            Walk { fallback: Some(last), decisive: fallback_class(last).is_some(), ..Walk::default() }
        }
        Entry::Command => Walk { decisive: true, ..Walk::default() },
        Entry::Program(_) => Walk::default(),
    }
}

/// Finds the program a launcher runs: the first position, skipping options, that is a known
/// program, an interpreter or a script. Option values (`-n 2`, `--hostfile hosts`) are tried too
/// and skipped because they are none of these.
fn see_through<'a>(rest: &[&'a str], depth: usize, trace: &mut Trace<'_>) -> Walk<'a> {
    let mut j = 0;
    while j < rest.len() {
        let arg = rest[j];
        // torchrun, accelerate launch, deepspeed and uv run take `-m`/`--module` to run a module.
        if arg == "-m" || arg.eq_ignore_ascii_case("--module") {
            if let Some(&module) = rest.get(j + 1) {
                let w = walk_entry(Entry::Module(module), &rest[j + 2..], depth, trace);
                if w.decisive {
                    return w;
                }
            }
            j += 2;
            continue;
        }
        if !arg.is_empty() && !arg.starts_with('-') && !arg.contains('=') {
            let w = walk(&rest[j..], depth, trace);
            if w.decisive {
                return w;
            }
        }
        j += 1;
    }
    Walk::default()
}

/// Splits a Python interpreter's arguments into what it runs and that program's arguments.
fn python_entry<'a, 'b>(args: &'b [&'a str]) -> (Entry<'a>, &'b [&'a str]) {
    let mut k = 0;
    while k < args.len() {
        let arg = args[k];
        let bytes = arg.as_bytes();
        if bytes.first() != Some(&b'-') {
            return (Entry::Script(arg, basename(arg)), &args[k + 1..]);
        }
        if arg == "-" {
            return (Entry::Command, &[]);
        }
        if bytes.starts_with(b"--") {
            // The one long option that takes a separate value.
            k += if arg.eq_ignore_ascii_case("--check-hash-based-pycs") { 2 } else { 1 };
            continue;
        }
        // A cluster of short options, as in `-u`, `-uB`, `-Xfrozen_modules=off`, `-um module`.
        let mut takes_next = false;
        for (i, &b) in bytes.iter().enumerate().skip(1) {
            match b {
                b'c' => return (Entry::Command, &[]),
                b'm' => {
                    // `m` is ASCII, so `i + 1` is a character boundary.
                    let attached = &arg[i + 1..];
                    if !attached.is_empty() {
                        return (Entry::Module(attached), &args[k + 1..]);
                    }
                    return match args.get(k + 1) {
                        Some(module) => (Entry::Module(module), &args[k + 2..]),
                        None => (Entry::Command, &[]),
                    };
                }
                b'W' | b'X' => {
                    takes_next = i + 1 == bytes.len();
                    break;
                }
                _ => {}
            }
        }
        k += if takes_next { 2 } else { 1 };
    }
    (Entry::Command, &[])
}

/// Which alternative of a stage-2 matcher the entry point matches.
fn entry_match(matcher: Matcher, entry: &Entry<'_>) -> Option<usize> {
    match (matcher, entry) {
        (Name(names), Entry::Program(name) | Entry::Script(_, name)) => {
            names.iter().position(|n| name.eq_ignore_ascii_case(n))
        }
        (Module(modules), Entry::Module(module)) => modules.iter().position(|m| module_matches(module, m)),
        (ScriptPath(suffixes), Entry::Script(path, _)) => suffixes.iter().position(|s| path_ends_with(path, s)),
        (AnyScript, Entry::Script(..)) => Some(0),
        _ => None,
    }
}

/// Which alternative of a stage-3 matcher one argument matches.
fn arg_match(matcher: Matcher, arg: &str) -> Option<usize> {
    match matcher {
        Arg(wanted) => wanted.iter().position(|w| {
            if w.starts_with('-') {
                let name = arg.split('=').next().unwrap_or(arg);
                flag_starts_with(name, w) && name.len() == w.len()
            } else {
                arg.eq_ignore_ascii_case(w)
            }
        }),
        ArgPrefix(prefix) => flag_starts_with(arg, prefix).then_some(0),
        _ => None,
    }
}

/// Where the arguments after a required subcommand start: `Some(0)` when none is required, `None`
/// when the first positional argument is not one of `subcommands`.
fn subcommand(subcommands: &[&str], rest: &[&str]) -> Option<usize> {
    if subcommands.is_empty() {
        return Some(0);
    }
    let at = rest.iter().position(|a| !a.starts_with('-'))?;
    subcommands.iter().any(|s| rest[at].eq_ignore_ascii_case(s)).then_some(at + 1)
}

fn title_matches(comm: &str, argv0: &str, title: &str) -> bool {
    starts_with_ci(argv0, title)
        || starts_with_ci(comm, title)
        // The kernel cut a longer title down to 15 bytes in comm.
        || (comm.len() >= COMM_LEN && starts_with_ci(title, comm))
}

/// Stage 4: the class a script or module name suggests, only when every keyword found agrees.
fn fallback_class(stem: &str) -> Option<WorkloadClass> {
    let (mut training, mut inference) = (false, false);
    let mut previous = "";
    for token in stem.split(|c: char| !c.is_ascii_alphanumeric()).filter(|t| !t.is_empty()) {
        let whole = token.trim_end_matches(|c: char| c.is_ascii_digit());
        if TRAIN_PREFIXES.iter().any(|p| starts_with_ci(token, p))
            || TRAIN_TOKENS.iter().any(|t| whole.eq_ignore_ascii_case(t))
            || (previous.eq_ignore_ascii_case("fine") && starts_with_ci(token, "tun"))
        {
            training = true;
        }
        if INFERENCE_TOKENS.iter().any(|t| whole.eq_ignore_ascii_case(t)) {
            inference = true;
        }
        previous = token;
    }
    match (training, inference) {
        (true, false) => Some(Training),
        (false, true) => Some(Inference),
        _ => None,
    }
}

/// `python`, `python3`, `python3.11`, `pypy3`: the interpreter, whose script is the program.
fn is_interpreter(name: &str) -> bool {
    let version = if starts_with_ci(name, "python") {
        &name.as_bytes()[6..]
    } else if starts_with_ci(name, "pypy") {
        &name.as_bytes()[4..]
    } else {
        return false;
    };
    version.iter().all(|&b| b.is_ascii_digit() || b == b'.')
}

fn basename(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
}

/// An argument as matched: NULs trimmed, too-long ones replaced by one that matches nothing.
fn opaque(arg: &str) -> &str {
    let arg = arg.trim_matches('\0');
    if arg.len() > MAX_ARG_LEN { "" } else { arg }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len() && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> &'a str {
    // The suffix is ASCII, so cutting before it lands on a character boundary.
    if ends_with_ci(s, suffix) { &s[..s.len() - suffix.len()] } else { s }
}

fn module_matches(module: &str, pattern: &str) -> bool {
    starts_with_ci(module, pattern) && module.as_bytes().get(pattern.len()).is_none_or(|&b| b == b'.')
}

fn path_ends_with(path: &str, suffix: &str) -> bool {
    ends_with_ci(path, suffix) && {
        let before = path.len() - suffix.len();
        before == 0 || path.as_bytes()[before - 1] == b'/'
    }
}

/// Case-insensitive prefix test in which `_` and `-` are the same character.
fn flag_starts_with(arg: &str, prefix: &str) -> bool {
    fn norm(b: u8) -> u8 {
        if b == b'_' { b'-' } else { b.to_ascii_lowercase() }
    }
    arg.len() >= prefix.len() && arg.bytes().zip(prefix.bytes()).all(|(a, p)| norm(a) == norm(p))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use WorkloadClass::Unknown;

    /// One real command line and what it must classify as.
    struct Case {
        comm: &'static str,
        /// Split at spaces into argv (as `/proc/PID/cmdline` is split at NULs).
        cmdline: &'static str,
        class: WorkloadClass,
        framework: Option<&'static str>,
        preallocates: bool,
    }

    const fn case(
        comm: &'static str,
        cmdline: &'static str,
        class: WorkloadClass,
        framework: Option<&'static str>,
        preallocates: bool,
    ) -> Case {
        Case { comm, cmdline, class, framework, preallocates }
    }

    /// Command lines as the projects' documentation, READMEs and logs spell them.
    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // --- Training: PyTorch launchers and their workers.
        case("torchrun", "/usr/bin/python3 /usr/local/bin/torchrun --nproc_per_node=8 train.py --batch-size 32", Training, Some("torchrun"), false),
        case("torchrun", "torchrun --nnodes=1 --nproc-per-node=4 --rdzv-endpoint=localhost:29400 finetune.py", Training, Some("torchrun"), false),
        case("pt_main_thread", "/usr/bin/python3 -u train.py --batch-size 32 --local-rank=0", Training, None, false),
        case("python", "python -m torch.distributed.run --nproc_per_node 2 --nnodes 1 train_gpt2.py", Training, Some("torchrun"), false),
        case("python", "python -m torch.distributed.launch --nproc_per_node=4 --use_env finetune.py --epochs 3", Training, Some("torchrun"), false),
        case("torchrun", "torchrun --nproc-per-node 8 -m mypkg.train --config cfg.yaml", Training, Some("torchrun"), false),
        case("torchrun", "torchrun --nproc_per_node 8 bench.py", Unknown, Some("torchrun"), false),
        // DeepSpeed: the runner, the per-node launcher it spawns, and the worker that launcher spawns.
        case("deepspeed", "/usr/bin/python /usr/local/bin/deepspeed --num_gpus 8 main.py --deepspeed ds_config.json", Training, Some("deepspeed"), false),
        case("python3.10", "/opt/conda/bin/python3.10 -u -m deepspeed.launcher.launch --world_info=eyJsb2NhbGhvc3QiOiBbMCwgMV19 --master_addr=127.0.0.1 --master_port=29500 --enable_each_rank_log=None zero_args.py --deepspeed_config=zero_dp_config.json", Training, Some("deepspeed"), false),
        case("python", "python -m deepspeed.launcher.runner --num_gpus 2 generate.py", Unknown, Some("deepspeed"), false),
        case("pt_main_thread", "/usr/bin/python -u main.py --local_rank=0 --data_path Dahoas/rm-static --model_name_or_path facebook/opt-1.3b --per_device_train_batch_size 8 --deepspeed", Training, Some("deepspeed"), false),
        case("pt_main_thread", "/usr/bin/python -u main.py --local_rank=0 --model_name_or_path facebook/opt-1.3b --per_device_train_batch_size 8", Training, None, false),
        // Accelerate: the launcher, and the child it starts.
        case("accelerate", "/usr/bin/python3 /usr/local/bin/accelerate launch --num_processes 2 --mixed_precision bf16 train.py", Training, Some("accelerate"), false),
        case("pt_main_thread", "/opt/conda/bin/python train.py --output_dir out", Training, None, false),
        case("python", "python -m accelerate.commands.launch --config_file default_config.yaml run_sft.py", Training, Some("accelerate"), false),
        case("accelerate", "accelerate launch -m axolotl.cli.train examples/llama-3/lora-1b.yml", Training, Some("axolotl"), false),
        case("axolotl", "/usr/bin/python3 /usr/local/bin/axolotl train examples/llama-3/lora-1b.yml", Training, Some("axolotl"), false),
        // Megatron-LM under torchrun, and its worker.
        case("torchrun", "torchrun --nproc_per_node 8 --nnodes 1 --master_addr localhost --master_port 6000 pretrain_gpt.py --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --num-layers 24", Training, Some("megatron"), false),
        case("pt_main_thread", "/usr/bin/python -u /workspace/Megatron-LM/pretrain_bert.py --tensor-model-parallel-size 2", Training, Some("megatron"), false),
        case("srun", "srun --ntasks-per-node=8 --gpus-per-node=8 python -u pretrain_t5.py --num-layers 12", Training, Some("megatron"), false),
        case("python", "python pretrain_mamba.py --num-layers 48", Training, Some("megatron"), false),
        // NeMo 1.x example scripts.
        case("python", "python examples/nlp/language_modeling/megatron_gpt_pretraining.py --config-path=conf --config-name=megatron_gpt_config trainer.devices=8", Training, Some("nemo"), false),
        case("python", "python examples/nlp/language_modeling/tuning/megatron_gpt_finetuning.py model.restore_from_path=/models/gpt.nemo", Training, Some("nemo"), false),
        case("python", "python megatron_bert_pretraining.py trainer.devices=2", Training, Some("nemo"), false),
        case("python", "python megatron_t5_pretraining.py trainer.devices=2", Training, Some("nemo"), false),
        case("python", "python megatron_llama_pretraining.py trainer.devices=2", Training, Some("nemo"), false),
        case("python", "python megatron_gpt_continue_training.py trainer.devices=2", Training, Some("nemo"), false),
        case("python", "python examples/nlp/language_modeling/megatron_gpt_eval.py gpt_model_file=gpt.nemo", Unknown, None, false),
        // Lightning.
        case("python", "python main.py fit --config config.yaml", Training, Some("lightning"), false),
        case("python", "python lightning_app.py --trainer.accelerator gpu --trainer.devices 4", Training, Some("lightning"), false),
        case("fabric", "fabric run --accelerator=cuda --devices=2 ./train_fabric.py", Training, Some("lightning"), false),
        case("lightning", "lightning run model --devices=2 ./path/to/train.py", Training, Some("lightning"), false),
        case("composer", "composer train/train.py train/yamls/pretrain/mpt-125m.yaml", Training, Some("composer"), false),
        // Hugging Face trainers.
        case("python", "python run_clm.py --model_name_or_path gpt2 --dataset_name wikitext --do_train --do_eval --output_dir /tmp/test-clm", Training, Some("transformers"), false),
        case("trl", "trl sft --model_name_or_path Qwen/Qwen2-0.5B --dataset_name trl-lib/Capybara --output_dir Qwen2-0.5B-SFT", Training, Some("trl"), false),
        case("llamafactory-cl", "llamafactory-cli train examples/train_lora/llama3_lora_sft.yaml", Training, Some("llama-factory"), false),
        // JAX trainers preallocate (XLA reserves 75% of GPU memory by default).
        case("python3", "python3 -m MaxText.train MaxText/configs/base.yml run_name=quick_start dataset_type=synthetic steps=10", Training, Some("maxtext"), true),
        case("python3", "python3 -m maxtext.trainers.pre_train.train src/maxtext/configs/base.yml run_name=q", Training, Some("maxtext"), true),
        case("python3", "python3 MaxText/train.py MaxText/configs/base.yml run_name=legacy", Training, Some("maxtext"), true),
        case("python", "python -m t5x.train --gin_file=t5x/examples/t5/t5_1_1/examples/base_wmt_from_scratch.gin --gin.MODEL_DIR=/tmp/model", Training, Some("t5x"), true),
        case("python", "python /opt/t5x/t5x/train.py --gin_file=base.gin", Training, Some("t5x"), true),
        case("python3", "python3 -m paxml.main --exp=tasks.lm.params.lm_cloud.LmCloudSpmd2BLimitSteps --job_log_dir=/tmp/jobs", Training, Some("paxml"), true),
        case("python3", "python3 /opt/paxml/paxml/main.py --exp=tasks.lm.params.c4.C4Spmd1BAdam4Replicas", Training, Some("paxml"), true),
        // Ray Train workers rename themselves.
        case("ray::RayTrainWo", "ray::RayTrainWorker._RayTrainWorker__execute.get_next", Training, Some("ray-train"), false),
        // Generic wrappers around a training script.
        case("mpirun", "mpirun -np 4 -H localhost:4 -bind-to none -map-by slot -x NCCL_DEBUG=INFO -x LD_LIBRARY_PATH python train.py", Training, None, false),
        case("uv", "uv run --with transformers python finetune_lora.py", Training, None, false),
        case("conda", "conda run -n llm --no-capture-output python -m mypkg.sft_trainer", Training, None, false),
        case("python3", "env CUDA_VISIBLE_DEVICES=0 python3 dpo_train.py", Training, None, false),
        case("python", "nohup numactl --cpunodebind=0 --membind=0 python3.11 fine_tune_llama.py", Training, None, false),
        // Every generic wrapper is seen through.
        case("mpiexec", "mpiexec -n 4 python train_resnet.py", Training, None, false),
        case("orterun", "orterun -np 2 python3 train_bert.py", Training, None, false),
        case("prterun", "prterun -n 2 python pretrain.py", Training, None, false),
        case("mamba", "mamba run -n torch python train_vit.py", Training, None, false),
        case("micromamba", "micromamba run -n base python -u sft.py", Training, None, false),
        case("pixi", "pixi run python train.py --epochs 1", Training, None, false),
        case("poetry", "poetry run python finetune.py", Training, None, false),
        case("pipenv", "pipenv run python serve.py", Inference, None, false),
        case("nice", "nice -n 10 python train.py", Training, None, false),
        case("ionice", "ionice -c 3 python train.py", Training, None, false),
        case("taskset", "taskset -c 0-15 python3 inference.py", Inference, None, false),
        case("stdbuf", "stdbuf -oL python train.py", Training, None, false),
        case("time", "time python train.py", Training, None, false),
        case("timeout", "timeout 3600 python train.py", Training, None, false),
        case("chrt", "chrt -f 10 python predict.py", Inference, None, false),
        case("setsid", "setsid python train.py", Training, None, false),
        case("apptainer", "apptainer exec --nv pytorch_24.01.sif python train.py", Training, None, false),
        case("singularity", "singularity exec --nv pytorch.sif torchrun --nproc_per_node 2 train.py", Training, Some("torchrun"), false),
        // --- Inference servers.
        case("vllm", "/usr/bin/python3 /usr/local/bin/vllm serve meta-llama/Llama-3.1-8B-Instruct --gpu-memory-utilization 0.9 --tensor-parallel-size 2", Inference, Some("vllm"), true),
        case("vllm", "vllm serve Qwen/Qwen3-14B --tensor-parallel-size 4 --host 0.0.0.0 --port 8000", Inference, Some("vllm"), true),
        case("python", "python -m vllm.entrypoints.openai.api_server --model facebook/opt-125m", Inference, Some("vllm"), true),
        case("VLLM::EngineCor", "VLLM::EngineCore", Inference, Some("vllm"), true),
        case("VLLM::Worker_TP", "VLLM::Worker_TP0", Inference, Some("vllm"), true),
        case("ray::RayWorkerW", "ray::RayWorkerWrapper.execute_method", Inference, Some("vllm"), true),
        case("vllm", "vllm chat --url http://localhost:8000/v1", Unknown, None, false),
        case("trl", "/usr/bin/python3 /usr/local/bin/trl vllm-serve --model Qwen/Qwen2.5-7B --gpu_memory_utilization 0.9", Inference, Some("vllm"), true),
        case("python3", "python3 -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B-Instruct --port 30000 --mem-fraction-static 0.8", Inference, Some("sglang"), true),
        case("sglang::schedul", "sglang::scheduler_TP0", Inference, Some("sglang"), true),
        case("text-generation", "text-generation-launcher --model-id bigscience/bloom-560m --num-shard 1 --port 8080", Inference, Some("tgi"), true),
        case("text-generation", "/opt/conda/bin/python3.10 /opt/conda/bin/text-generation-server serve google/flan-t5-small --uds-path /tmp/text-generation-server --logger-level INFO --json-output --quantize bitsandbytes", Inference, Some("tgi"), true),
        case("text-generation", "text-generation-router --max-concurrent-requests 128 --max-best-of 2", Inference, Some("tgi"), true),
        case("tritonserver", "tritonserver --model-repository=/models", Inference, Some("triton"), false),
        case("tritonserver", "/opt/tritonserver/bin/tritonserver --model-repository=/models --backend-config=python,shm-default-byte-size=1048576", Inference, Some("triton"), false),
        case("trtllm-serve", "trtllm-serve TinyLlama/TinyLlama-1.1B-Chat-v1.0 --kv_cache_free_gpu_memory_fraction 0.9", Inference, Some("tensorrt-llm"), true),
        case("python3", "python3 -m tensorrt_llm.commands.serve serve meta-llama/Llama-3.1-8B-Instruct --backend pytorch --tp_size 1", Inference, Some("tensorrt-llm"), true),
        case("mpirun", "mpirun -n 2 --allow-run-as-root --oversubscribe trtllm-serve meta-llama/Llama-3.1-70B-Instruct --tp_size 2", Inference, Some("tensorrt-llm"), true),
        case("trtllm-llmapi-l", "trtllm-llmapi-launch trtllm-serve /models/llama --host node1 --port 8000 --config config.yml", Inference, Some("tensorrt-llm"), true),
        case("trtllm-llmapi-l", "trtllm-llmapi-launch python3 quickstart_advanced.py", Unknown, Some("tensorrt-llm"), false),
        case("python3", "python3 -m tensorrt_llm.commands.build --checkpoint_dir ckpt --output_dir engine", Unknown, None, false),
        case("python3", "python3 run.py --engine_dir engine --kv_cache_free_gpu_memory_fraction 0.5", Inference, Some("tensorrt-llm"), true),
        case("serve", "/usr/bin/python3 /home/ray/anaconda3/bin/serve run app:app", Inference, Some("ray-serve"), false),
        case("ray::ServeRepli", "ray::ServeReplica:default:Model.handle_request", Inference, Some("ray-serve"), false),
        case("ray::IDLE", "ray::IDLE", Unknown, None, false),
        case("python3", "/usr/bin/python3 -u /home/ray/anaconda3/lib/python3.11/site-packages/ray/_private/workers/default_worker.py --node-ip-address=10.0.0.1 --node-manager-port=40000", Unknown, None, false),
        case("torchserve", "/usr/bin/python3 /usr/local/bin/torchserve --start --ncs --model-store model_store --models densenet161.mar", Inference, Some("torchserve"), false),
        case("python", "/home/venv/bin/python -u /home/venv/lib/python3.9/site-packages/ts/model_service_worker.py --sock-type unix --sock-name /tmp/.ts.sock.9000 --metrics-config /home/venv/lib/python3.9/site-packages/ts/configs/metrics.yaml", Inference, Some("torchserve"), false),
        case("java", "java -Dmodel_server_home=/home/venv/lib/python3.9/site-packages -cp .:/home/venv/lib/python3.9/site-packages/ts/frontend/* org.pytorch.serve.ModelServer", Inference, Some("torchserve"), false),
        case("ollama", "/usr/local/bin/ollama serve", Inference, Some("ollama"), true),
        case("ollama", "/usr/bin/ollama runner --model /root/.ollama/models/blobs/sha256-8934d96d3f08982e95922b2b7a2c626a1fe873d7c3b06e8e56d7bc0a1fef9246 --ctx-size 8192 --batch-size 512 --n-gpu-layers 33 --threads 6 --parallel 2 --port 50762", Inference, Some("ollama"), true),
        case("ollama_llama_se", "/tmp/ollama1234/runners/cuda_v12/ollama_llama_server --model /root/.ollama/models/blobs/sha256-1 --ctx-size 2048 --n-gpu-layers 33 --port 41234", Inference, Some("ollama"), true),
        case("ollama", "ollama run llama3", Unknown, None, false),
        case("llama-server", "./llama-server -m models/7B/ggml-model-q4_0.gguf -c 2048 --n-gpu-layers 99 --port 8080", Inference, Some("llama.cpp"), true),
        case("llama-cli", "/usr/local/bin/llama-cli -m model.gguf -p 'Hello' -ngl 99", Inference, Some("llama.cpp"), true),
        case("text-embeddings", "text-embeddings-router --model-id BAAI/bge-large-en-v1.5 --port 80", Inference, Some("tei"), false),
        case("uvicorn", "/usr/bin/python3 /usr/local/bin/uvicorn app.main:app --host 0.0.0.0 --port 8000", Inference, Some("uvicorn"), false),
        case("python", "python -m uvicorn main:app --workers 1", Inference, Some("uvicorn"), false),
        // Engine flags under a script of any name.
        case("python", "python my_launch.py --model-path /models/llama --mem-fraction-static 0.85", Inference, Some("sglang"), true),
        case("python3", "python3 offline_batch.py --gpu_memory_utilization 0.8", Inference, Some("vllm"), true),
        // --- Notebooks: Jupyter, VS Code, Colab, IPython, Spyder.
        case("python", "/opt/conda/bin/python -m ipykernel_launcher -f /root/.local/share/jupyter/runtime/kernel-af54e26b.json", Notebook, Some("ipykernel"), false),
        case("python", "/home/u/.venv/bin/python -Xfrozen_modules=off -m ipykernel_launcher --f=/run/user/1000/jupyter/runtime/kernel-v3b4777e58be2339c.json", Notebook, Some("ipykernel"), false),
        case("python", "python -m ipykernel -f /home/u/train/kernel-1.json", Notebook, Some("ipykernel"), false),
        case("python3", "/usr/bin/python3 -m colab_kernel_launcher -f /root/.local/share/jupyter/runtime/kernel-af54e26b-6b24-4dfb-ab99-ec125513e605.json", Notebook, Some("colab"), false),
        case("python", "python -m spyder_kernels.console -f /run/user/1000/jupyter/runtime/kernel-1234.json", Notebook, Some("spyder"), false),
        case("jupyter-lab", "/opt/conda/bin/python3.11 /opt/conda/bin/jupyter-lab --ip=0.0.0.0 --no-browser --allow-root", Notebook, Some("jupyter"), false),
        case("jupyter-noteboo", "/usr/bin/python3 /usr/local/bin/jupyter-notebook --port=8888", Notebook, Some("jupyter"), false),
        case("jupyter-server", "/usr/bin/python3 /usr/local/bin/jupyter-server --ServerApp.ip=172.28.0.12", Notebook, Some("jupyter"), false),
        case("jupyterhub-sing", "/opt/conda/bin/python /opt/conda/bin/jupyterhub-singleuser --ip=0.0.0.0", Notebook, Some("jupyter"), false),
        case("python", "python -m jupyterlab --ip 0.0.0.0", Notebook, Some("jupyter"), false),
        case("python", "python3 -m notebook --no-browser", Notebook, Some("jupyter"), false),
        case("python", "python -m jupyter_server --port 8888", Notebook, Some("jupyter"), false),
        case("ipython", "/usr/bin/python3 /usr/local/bin/ipython", Notebook, Some("ipython"), false),
        case("ipython3", "ipython3 --pylab", Notebook, Some("ipython"), false),
        // --- Fallback on the script's name, and what it must leave alone.
        case("python3", "python3 serve_model.py --port 8080", Inference, None, false),
        case("python", "python infer.py --ckpt model.pt", Inference, None, false),
        case("python", "python train_server.py", Unknown, None, false),
        case("python", "python grpo_train.py --gpu-memory-utilization 0.3", Unknown, None, false),
        case("python", "python constraint_solver.py", Unknown, None, false),
        case("python", "python bench.py", Unknown, None, false),
        case("python", "python", Unknown, None, false),
        case("pt_main_thread", "/usr/bin/python3 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7) --multiprocessing-fork", Unknown, None, false),
        case("nvidia-smi", "nvidia-smi", Unknown, None, false),
        case("Xorg", "/usr/lib/xorg/Xorg vt1 -displayfd 3 -auth /run/user/1000/gdm/Xauthority -nolisten tcp", Unknown, None, false),
        case("gnome-shell", "/usr/bin/gnome-shell", Unknown, None, false),
        case("", "", Unknown, None, false),
    ];

    fn argv(cmdline: &str) -> Vec<&str> {
        cmdline.split(' ').filter(|a| !a.is_empty()).collect()
    }

    #[test]
    fn real_command_lines() {
        let mut failures = Vec::new();
        for c in CASES {
            let got = classify(c.comm, &argv(c.cmdline));
            let want = Workload { class: c.class, framework: c.framework, preallocates: c.preallocates };
            if got != want {
                failures.push(format!("{:?} {:?}\n    got  {got:?}\n    want {want:?}", c.comm, c.cmdline));
            }
        }
        assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
        assert!(CASES.len() >= 40);
    }

    #[test]
    fn every_pattern_is_exercised() {
        let mut hits = Vec::new();
        for c in CASES {
            classify_traced(c.comm, &argv(c.cmdline), &mut Trace(Some(&mut hits)));
        }
        let mut dead = Vec::new();
        for (i, row) in PATTERNS.iter().enumerate() {
            let alternatives = match row.matcher {
                Name(a) | Module(a) | ScriptPath(a) | Arg(a) => a.len(),
                Title(_) | AnyScript | ArgPrefix(_) => 1,
            };
            for alt in 0..alternatives {
                if !hits.contains(&(i, alt)) {
                    dead.push(format!("row {i} alternative {alt}: {:?}", row.matcher));
                }
            }
        }
        assert!(dead.is_empty(), "patterns no case exercises:\n{}", dead.join("\n"));
    }

    #[test]
    fn the_document_lists_every_pattern_and_framework() {
        let doc = include_str!("../../docs/workload.md");
        let mut missing = Vec::new();
        let mut need = |s: &str| {
            if !doc.contains(&format!("`{s}`")) {
                missing.push(s.to_string());
            }
        };
        for row in PATTERNS {
            match row.matcher {
                Title(s) | ArgPrefix(s) => need(s),
                Name(a) | Module(a) | ScriptPath(a) | Arg(a) => a.iter().for_each(|s| need(s)),
                AnyScript => {}
            }
            row.subcommands.iter().for_each(|s| need(s));
            if let Some(f) = row.framework {
                need(f);
            }
        }
        for s in TRAIN_PREFIXES.iter().chain(TRAIN_TOKENS).chain(INFERENCE_TOKENS) {
            need(s);
        }
        for c in WorkloadClass::ALL {
            need(c.as_str());
        }
        assert!(missing.is_empty(), "docs/workload.md does not mention (in backticks): {missing:?}");
    }

    #[test]
    fn class_names_round_trip() {
        for c in WorkloadClass::ALL {
            assert_eq!(WorkloadClass::parse(c.as_str()), Some(c));
            assert_eq!(WorkloadClass::parse(&format!(" {} ", c.as_str().to_uppercase())), Some(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<WorkloadClass>(&format!("\"{c}\"")).unwrap(), c);
        }
        assert_eq!(WorkloadClass::parse("train"), None);
        assert_eq!(WorkloadClass::default(), WorkloadClass::Unknown);
        assert_eq!(Workload::default(), Workload::UNKNOWN);
    }

    #[test]
    fn accepts_owned_strings() {
        let owned: Vec<String> = argv("vllm serve m").into_iter().map(String::from).collect();
        assert_eq!(classify("vllm", &owned).framework, Some("vllm"));
    }

    #[test]
    fn a_rewritten_title_is_one_argument_with_spaces() {
        // setproctitle writes the title over argv: one NUL-free string, padded with spaces or NULs.
        let w = classify("ray::ServeRepli", &["ray::ServeReplica:Qwen3 235B A22B Thinking:vLLMGenericAPI   "]);
        assert_eq!(w.class, Inference);
        assert_eq!(classify("python3", &["VLLM::Worker_TP1\0\0"]).framework, Some("vllm"));
        // A process that joined its argv with spaces is still parsed.
        assert_eq!(classify("python3", &["python3 -m sglang.launch_server --model-path m"]).framework, Some("sglang"));
    }

    #[test]
    fn an_empty_command_line_falls_back_to_comm() {
        assert_eq!(classify::<&str>("ray::RayTrainWo", &[]).class, Training);
        assert_eq!(classify::<&str>("tritonserver", &[]).framework, Some("triton"));
        assert_eq!(classify::<&str>("text-generation", &[]).class, Unknown);
        assert_eq!(classify::<&str>("pt_main_thread", &[]), Workload::UNKNOWN);
    }

    #[test]
    fn matching_ignores_case() {
        assert_eq!(
            classify("python", &["/usr/bin/Python3", "-m", "VLLM.entrypoints.openai.api_server"]).class,
            Inference
        );
        assert_eq!(classify("x", &["TorchRun", "--nproc_per_node=2", "Train.PY"]).class, Training);
    }

    #[test]
    fn truncated_or_dangling_options_do_not_panic() {
        for cmdline in [
            "python -m",
            "python -W",
            "python -X",
            "python -c",
            "python --check-hash-based-pycs",
            "python -",
            "python -um",
            "python -umvllm.entrypoints.openai.api_server",
            "torchrun -m",
            "torchrun --module",
            "accelerate launch",
            "accelerate",
            "uv run -m",
            "srun -m block:block python train.py",
            "env",
            "serve",
            "/",
            "//",
            "-",
            "=",
            "ä/ö.py",
            "python é.py",
            "python -é",
        ] {
            let w = classify("", &argv(cmdline));
            assert!(!w.preallocates || w.class != Unknown, "{cmdline}: {w:?}");
        }
        assert_eq!(classify("", &argv("python -umvllm.entrypoints.openai.api_server")).framework, Some("vllm"));
        assert_eq!(classify("", &argv("srun -m block:block python train.py")).class, Training);
    }

    #[test]
    fn huge_command_lines_are_capped() {
        let long = "x".repeat(1 << 20);
        // The program after 64 arguments is not looked for.
        let mut args: Vec<&str> = vec!["env"; 100];
        args.push("vllm");
        args.push("serve");
        assert_eq!(classify("", &args).class, Unknown);
        // Too-long arguments match nothing but do not hide the rest.
        let args = ["python", long.as_str(), "-m", "vllm.entrypoints.openai.api_server"];
        assert_eq!(classify("", &args).class, Unknown);
        let args = ["vllm", "serve", long.as_str()];
        assert_eq!(classify("", &args).class, Inference);
        let many: Vec<&str> = std::iter::repeat_n(long.as_str(), 100_000).collect();
        assert_eq!(classify(&long, &many), Workload::UNKNOWN);
        let one = format!("torchrun {}", "a ".repeat(1 << 20));
        assert_eq!(classify("", &[one.as_str()]).framework, Some("torchrun"));
        let title = format!("VLLM::{long}");
        assert_eq!(classify(&title, &[title.as_str()]).class, Inference);
    }

    /// A small deterministic generator (xorshift64*), so the test needs no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // Pieces of every pattern plus garbage, assembled at random.
        let mut pool: Vec<String> = vec![
            "",
            " ",
            "-",
            "--",
            "-m",
            "--module",
            "-c",
            "-W",
            "-X",
            "-u",
            "-um",
            "=",
            "/",
            "a=b",
            "python",
            "python3.11",
            "/opt/conda/bin/python",
            "pypy3",
            "run",
            "serve",
            "launch",
            "train",
            "fit",
            "é",
            "日本語",
            "\u{0}",
            "\u{fffd}",
            "ray::",
            "VLLM::",
            "x.py",
            "train.py",
            "serve.py",
            ".py",
            "a/b/c.py",
            "-Xfrozen_modules=off",
            "--f=k.json",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        for row in PATTERNS {
            match row.matcher {
                Title(s) | ArgPrefix(s) => pool.push(s.to_string()),
                Name(a) | Module(a) | ScriptPath(a) | Arg(a) => pool.extend(a.iter().map(|s| s.to_string())),
                AnyScript => {}
            }
            pool.extend(row.subcommands.iter().map(|s| s.to_string()));
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let len = rng.below(12);
            let mut args: Vec<String> = Vec::with_capacity(len);
            for _ in 0..len {
                let mut a = pool[rng.below(pool.len())].clone();
                match rng.below(6) {
                    0 => a.push_str(&pool[rng.below(pool.len())]),
                    1 => a = a.to_uppercase(),
                    2 => {
                        // Cut at a random character boundary, as a truncated comm would be.
                        let cut = a.char_indices().map(|(i, _)| i).nth(rng.below(a.len() + 1)).unwrap_or(a.len());
                        a.truncate(cut);
                    }
                    _ => {}
                }
                args.push(a);
            }
            let comm: String = pool[rng.below(pool.len())].chars().take(15).collect();
            let w = classify(&comm, &args);
            assert!(!w.preallocates || w.class != Unknown, "{comm:?} {args:?}: {w:?}");
            let joined = args.join(" ");
            classify(&comm, &[joined.as_str()]);
        }
    }
}
