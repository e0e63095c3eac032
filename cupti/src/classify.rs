//! Kernel-name classifier: what a kernel computes (matmul, convolution, attention, …), on which
//! pipe (tensor cores or the SIMT/CUDA cores) and in which precision, read from its name alone.
//!
//! CUPTI reports kernel names mangled (`_ZN2at6native18elementwise_kernel…`) or demangled
//! (`void at::native::elementwise_kernel<…>`), and vendor libraries encode what a kernel does in
//! the name (`ampere_bf16_s16816gemm_…`, `sm80_xmma_gemm_f32f32_tf32f32_…`,
//! `ncclDevKernel_AllReduce_Sum_bf16_RING_LL`). Both forms keep the identifiers, so one table of
//! lower-case substrings serves both.
//!
//! The table is data: [`KIND_RULES`] (first matching row wins) decides the kind and how the pipe
//! is found, [`PRECISION_TOKENS`] (first matching token wins) the precision. Decisions a reader
//! may not expect are written next to the row that makes them. `docs/cupti-protocol.md` lists
//! the classes as they travel on the wire.

use serde::{Deserialize, Serialize};

/// What a kernel computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelKind {
    /// Matrix multiplication (GEMM, GEMV, batched and grouped GEMMs).
    Gemm,
    /// Convolution (cuDNN implicit GEMM, Winograd, weight/data gradients).
    Conv,
    /// Fused attention (FlashAttention, cuDNN SDPA, memory-efficient attention, paged attention).
    Attention,
    /// Pointwise work: activations, copies, casts, fills, optimizer steps, fused Triton pointwise.
    Elementwise,
    /// Reductions: sums, arg-max, top-k, cuBLAS split-K reduction, Triton reductions.
    Reduction,
    /// Normalization: layer, RMS, batch, group norm, and softmax (see [`KIND_RULES`]).
    Normalization,
    /// An NCCL collective or point-to-point kernel.
    Collective(CollectiveKind),
    /// A copy shown as an activity rather than a kernel (`[CUDA memcpy HtoD]`).
    Memcpy,
    /// A memset shown as an activity or a memset kernel.
    Memset,
    /// Anything the table does not recognise.
    Other,
}

/// Which NCCL operation a collective kernel is named after. Since NCCL 2.2 one kernel can run
/// several grouped operations; the name says the first (NVIDIA/nccl#739), which is what we report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectiveKind {
    /// AllReduce.
    AllReduce,
    /// AllGather.
    AllGather,
    /// ReduceScatter.
    ReduceScatter,
    /// Broadcast.
    Broadcast,
    /// Reduce.
    Reduce,
    /// Send/receive (point-to-point, also all-to-all built from it).
    SendRecv,
    /// AllToAll.
    AllToAll,
    /// An NCCL kernel whose name names no known operation.
    Other,
}

/// Which execution units a matmul, convolution or attention kernel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MathPipe {
    /// Tensor cores (HMMA/IMMA/GMMA, `wgmma`, `xmma`, `tensorop`, cuBLASLt `nvjet`).
    TensorCore,
    /// The SIMT (CUDA) cores: FFMA/DFMA, e.g. `sgemm`, CUTLASS `simt`, cuDNN `scudnn`.
    Simt,
    /// The name does not say, or the kernel does no matrix math.
    Unknown,
}

/// The arithmetic precision a kernel's name states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 64-bit floating point.
    Fp64,
    /// 32-bit floating point.
    Fp32,
    /// TensorFloat-32 (fp32 storage, 10-bit mantissa in the tensor cores).
    Tf32,
    /// IEEE half precision.
    Fp16,
    /// bfloat16.
    Bf16,
    /// 8-bit floating point (e4m3 / e5m2).
    Fp8,
    /// 4-bit floating point (NVFP4 / MXFP4, e2m1).
    Fp4,
    /// 8-bit integer.
    Int8,
    /// The name does not say, or the kernel does no matrix math.
    Unknown,
}

/// The class of one kernel: kind, pipe and precision. Pipe and precision are only read for
/// matmul, convolution and attention kernels; every other kind carries `Unknown` for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KernelClass {
    /// What the kernel computes.
    pub kind: KernelKind,
    /// Tensor cores or SIMT cores.
    pub pipe: MathPipe,
    /// Arithmetic precision.
    pub precision: Precision,
}

impl KernelKind {
    /// Stable lower-case label (used in tests and in the agent's metric labels).
    pub fn label(self) -> &'static str {
        match self {
            KernelKind::Gemm => "gemm",
            KernelKind::Conv => "conv",
            KernelKind::Attention => "attention",
            KernelKind::Elementwise => "elementwise",
            KernelKind::Reduction => "reduction",
            KernelKind::Normalization => "normalization",
            KernelKind::Collective(_) => "collective",
            KernelKind::Memcpy => "memcpy",
            KernelKind::Memset => "memset",
            KernelKind::Other => "other",
        }
    }

    /// Whether pipe and precision are read from the name for this kind.
    pub fn does_matrix_math(self) -> bool {
        matches!(self, KernelKind::Gemm | KernelKind::Conv | KernelKind::Attention)
    }
}

impl CollectiveKind {
    /// Stable lower-case label.
    pub fn label(self) -> &'static str {
        match self {
            CollectiveKind::AllReduce => "allreduce",
            CollectiveKind::AllGather => "allgather",
            CollectiveKind::ReduceScatter => "reducescatter",
            CollectiveKind::Broadcast => "broadcast",
            CollectiveKind::Reduce => "reduce",
            CollectiveKind::SendRecv => "sendrecv",
            CollectiveKind::AllToAll => "alltoall",
            CollectiveKind::Other => "other",
        }
    }
}

impl MathPipe {
    /// Stable lower-case label.
    pub fn label(self) -> &'static str {
        match self {
            MathPipe::TensorCore => "tensor",
            MathPipe::Simt => "simt",
            MathPipe::Unknown => "unknown",
        }
    }
}

impl Precision {
    /// Stable lower-case label.
    pub fn label(self) -> &'static str {
        match self {
            Precision::Fp64 => "fp64",
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
            Precision::Fp8 => "fp8",
            Precision::Fp4 => "fp4",
            Precision::Int8 => "int8",
            Precision::Unknown => "unknown",
        }
    }

    /// Precisions whose matrix math only runs at speed on tensor cores.
    fn is_tensor_core_only(self) -> bool {
        matches!(
            self,
            Precision::Tf32 | Precision::Fp16 | Precision::Bf16 | Precision::Fp8 | Precision::Fp4 | Precision::Int8
        )
    }
}

impl KernelClass {
    /// The class of a kernel the table does not recognise.
    pub const OTHER: KernelClass =
        KernelClass { kind: KernelKind::Other, pipe: MathPipe::Unknown, precision: Precision::Unknown };

    /// `kind`, `collective/<op>`, or `kind/pipe/precision` for matrix-math kinds: the form the
    /// test list of real kernel names uses.
    pub fn label(&self) -> String {
        match self.kind {
            KernelKind::Collective(op) => format!("collective/{}", op.label()),
            kind if kind.does_matrix_math() => {
                format!("{}/{}/{}", kind.label(), self.pipe.label(), self.precision.label())
            }
            kind => kind.label().to_string(),
        }
    }
}

/// How a row of [`KIND_RULES`] decides the pipe.
#[derive(Debug, Clone, Copy)]
pub enum PipeRule {
    /// The name says tensor cores.
    TensorCore,
    /// The name says SIMT cores.
    Simt,
    /// Fused attention: FlashAttention, cuDNN SDPA and FlashInfer exist only for 16- and 8-bit
    /// types, which run on tensor cores; a name that says fp32/fp64 (xformers' `fmha_cutlassF_f32`)
    /// is SIMT.
    TensorCoreUnlessWide,
    /// The name says nothing about the pipe: a precision only tensor cores run at speed (tf32,
    /// fp16, bf16, fp8, fp4, int8) counts as tensor cores, fp32/fp64 as SIMT, unknown stays
    /// unknown. (A Triton `tl.dot` or cuDNN kernel in bf16 runs on tensor cores on Volta and later;
    /// one in fp32 with TF32 allowed cannot be told apart by name and is counted as SIMT.)
    FromPrecision,
    /// Not matrix math.
    None,
}

/// What a row of [`KIND_RULES`] concludes.
#[derive(Debug, Clone, Copy)]
pub enum KindRule {
    /// This kind.
    Fixed(KernelKind),
    /// Convolution when the name carries a [`CONV_TOKENS`] token, else GEMM.
    ConvOrGemm,
    /// An NCCL kernel: the operation from [`COLLECTIVE_TOKENS`].
    Collective,
}

/// One row of the kind table: it matches when the lower-cased name contains any of `any` and
/// none of `unless`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Substrings (lower case); one is enough.
    pub any: &'static [&'static str],
    /// Substrings (lower case) that stop this row from matching.
    pub unless: &'static [&'static str],
    /// The kind it concludes.
    pub kind: KindRule,
    /// How the pipe is decided.
    pub pipe: PipeRule,
}

/// The kind table, first match wins. Order matters and is explained per row.
#[rustfmt::skip]
pub const KIND_RULES: &[Rule] = &[
    // Copies and memsets as profilers print them (`[CUDA memcpy HtoD]`, `Memcpy DtoD (Device ->
    // Device)`, `Memset (Device)`): CUPTI reports them as memcpy/memset records, not kernels, but
    // traces and tools mix them into kernel tables.
    Rule {
        any: &["[cuda memcpy", "memcpy htod", "memcpy dtoh", "memcpy dtod", "memcpy htoh", "memcpy ptop"],
        unless: &[],
        kind: KindRule::Fixed(KernelKind::Memcpy),
        pipe: PipeRule::None,
    },
    Rule {
        any: &["[cuda memset", "memset (device)", "memset_kernel", "memsetkernel"],
        unless: &[],
        kind: KindRule::Fixed(KernelKind::Memset),
        pipe: PipeRule::None,
    },
    // NCCL before anything else: its names carry `reduce`, `bf16`, `sum`…
    Rule {
        any: &["nccl"],
        unless: &[],
        kind: KindRule::Collective,
        pipe: PipeRule::None,
    },
    // Collectives outside NCCL (TensorRT-LLM's and vLLM's custom all-reduce, MSCCL++).
    Rule {
        any: &["allreduce", "all_reduce", "allgather", "all_gather", "reducescatter", "reduce_scatter",
            "alltoall"],
        unless: &[],
        kind: KindRule::Collective,
        pipe: PipeRule::None,
    },
    // Fused attention before GEMM: FlashAttention-3 runs inside `cutlass::device_kernel<…>` and
    // cuDNN's SDPA kernels carry `cudnn` and `gemm`-like tile shapes.
    Rule {
        any: &["flash_fwd", "flash_bwd", "flashattn", "flash_attn", "flash::", "fmha", "sdpa", "attention",
            "_attn_fwd", "_attn_bwd", "attn_fwd", "attn_bwd", "mha_fwd", "mha_bwd", "flashinfer", "mqa_logits"],
        unless: &[],
        kind: KindRule::Fixed(KernelKind::Attention),
        pipe: PipeRule::TensorCoreUnlessWide,
    },
    // Normalization before GEMM/convolution: cuDNN's batch-norm kernels are `cudnn::detail::bn_…`.
    // Softmax is counted here: like layer norm it is a row-wise reduce-then-scale pass, memory
    // bound and a fusion candidate; softmax inside a fused attention kernel is attention (above).
    Rule {
        any: &["layer_norm", "layernorm", "rms_norm", "rmsnorm", "batch_norm", "batchnorm", "group_norm",
            "groupnorm", "instance_norm", "bn_fw", "bn_bw", "bn_fwd", "bn_bwd", "ln_fwd", "ln_bwd",
            "rowwisemoments", "gammabetabackward", "compute_stats", "welford", "softmax"],
        unless: &[],
        kind: KindRule::Fixed(KernelKind::Normalization),
        pipe: PipeRule::None,
    },
    // cuBLAS split-K reduction: the second pass of a split-K GEMM, a pure reduction.
    Rule {
        any: &["splitkreduce"],
        unless: &[],
        kind: KindRule::Fixed(KernelKind::Reduction),
        pipe: PipeRule::None,
    },
    // SIMT matrix math before the tensor-core row: `sm80_xmma_gemm_f32f32_f32f32_f32_…_ffma` is
    // an xmma-family kernel doing FP32 FFMA (TF32 disabled), and cuDNN's `scudnn` kernels are SIMT
    // even in fp16 (`volta_fp16_scudnn_fp16_…`).
    Rule {
        // `_dgemm`, not `dgemm`: `GroupedGemm` contains `dgemm`.
        any: &["sgemm", "_dgemm", "_cgemm", "_zgemm", "hgemm_simt", "simt", "_ffma", "scudnn",
            "implicit_convolve", "wgrad_alg", "dgrad_alg", "gemv", "_direct_kernel"],
        unless: &["tensorop", "hmma", "wgmma"],
        kind: KindRule::ConvOrGemm,
        pipe: PipeRule::Simt,
    },
    // Tensor cores: instruction shapes in cuBLAS/cuDNN names (`s1688`, `h884`, `i8816`, `16816`),
    // CUTLASS `tensorop`, the xmma/gmma families, Hopper `wgmma`, cuBLASLt's Hopper+ `nvjet`.
    Rule {
        any: &["hmma", "h884", "h1688", "h16816", "s884", "s1688", "s16816", "i8816", "i16832", "16816", "imma",
            "xmma", "wgmma", "gmma", "tensorop", "nvjet", "tcgen05", "umma"],
        unless: &[],
        kind: KindRule::ConvOrGemm,
        pipe: PipeRule::TensorCore,
    },
    // Matmuls and convolutions whose name says nothing about the pipe: Triton matmuls and
    // Inductor templates, DeepGEMM, other cuDNN engines.
    Rule {
        any: &["gemm", "matmul", "mul_mat", "triton_tem_", "bmm_", "_bmm", "conv", "winograd", "cudnn",
            "implicit_gemm"],
        // `conv` is also in `convert_element_type` (Inductor pointwise casts).
        unless: &["convert", "triton_poi_", "triton_red_", "triton_per_"],
        kind: KindRule::ConvOrGemm,
        pipe: PipeRule::FromPrecision,
    },
    // Reductions, including Triton's `triton_red_` (looped) and `triton_per_` (persistent), and
    // pooling (each window reduced to one value).
    Rule {
        any: &["reduce", "reduction", "triton_red_", "triton_per_", "argmax", "argmin", "topk", "cumsum",
            "scan_kernel", "sum_kernel", "norm_kernel", "maxpool", "avgpool", "max_pool", "avg_pool"],
        unless: &[],
        kind: KindRule::Fixed(KernelKind::Reduction),
        pipe: PipeRule::None,
    },
    // Pointwise: ATen's elementwise launchers (and THC's older `kernelPointwiseApply`), Triton
    // pointwise, copies, fills, Eigen (TensorFlow), multi-tensor optimizer steps, dropout, layout
    // transposes, activations.
    Rule {
        any: &["elementwise", "triton_poi_", "copy_kernel", "catarraybatchedcopy", "fill_kernel",
            "eigenmetakernel", "multi_tensor_apply", "dropout", "nchwtonhwc", "nhwctonchw", "transpose",
            "act_and_mul", "silu", "gelu", "relu", "index_select", "indexselect", "gather_kernel",
            "scatter_kernel", "rotary", "adam", "optimizer", "axpy", "im2col", "col2im", "pointwise"],
        unless: &[],
        kind: KindRule::Fixed(KernelKind::Elementwise),
        pipe: PipeRule::None,
    },
];

/// Tokens that make a matmul-family kernel a convolution.
pub const CONV_TOKENS: &[&str] =
    &["conv", "cudnn", "winograd", "wgrad", "dgrad", "fprop", "implicit_gemm", "implicit_convolve"];

/// NCCL operation tokens, first match wins (`reducescatter` before `reduce`, `allreduce` before
/// `reduce`). Old names are `ncclKernel_AllReduce_RING_LL_Sum_float`, `ncclAllReduceRingLLKernel_sum_f32`;
/// new ones `ncclDevKernel_AllReduce_Sum_bf16_RING_LL`, `ncclDevKernel_SendRecv`.
pub const COLLECTIVE_TOKENS: &[(&str, CollectiveKind)] = &[
    ("allreduce", CollectiveKind::AllReduce),
    ("all_reduce", CollectiveKind::AllReduce),
    ("allgather", CollectiveKind::AllGather),
    ("all_gather", CollectiveKind::AllGather),
    ("reducescatter", CollectiveKind::ReduceScatter),
    ("reduce_scatter", CollectiveKind::ReduceScatter),
    ("broadcast", CollectiveKind::Broadcast),
    ("alltoall", CollectiveKind::AllToAll),
    ("sendrecv", CollectiveKind::SendRecv),
    ("send_recv", CollectiveKind::SendRecv),
    ("_send", CollectiveKind::SendRecv),
    ("_recv", CollectiveKind::SendRecv),
    ("reduce", CollectiveKind::Reduce),
];

/// Precision tokens, first match wins. The order resolves names that carry several: the
/// narrowest element type named wins (`_matmul_ogs_bf16xbf16xmxfp4` is fp4, the weights'
/// type); `bf16` before `f16` (a substring of it); explicit types before the implicit ones
/// carried by instruction shapes; `f32`/`float` last, because fp32 accumulators and scale
/// arguments appear in names of lower-precision kernels.
pub const PRECISION_TOKENS: &[(&str, Precision)] = &[
    ("nvfp4", Precision::Fp4),
    ("mxfp4", Precision::Fp4),
    ("fp4", Precision::Fp4),
    ("e2m1", Precision::Fp4),
    ("e4m3", Precision::Fp8),
    ("e5m2", Precision::Fp8),
    ("fp8", Precision::Fp8),
    ("float8", Precision::Fp8),
    ("f8f6f4", Precision::Fp8),
    ("qmma", Precision::Fp8),
    ("i8816", Precision::Int8),
    ("i16832", Precision::Int8),
    ("imma", Precision::Int8),
    ("int8", Precision::Int8),
    ("s8s8", Precision::Int8),
    ("i8i8", Precision::Int8),
    ("bf16", Precision::Bf16),
    ("bfloat16", Precision::Bf16),
    ("tf32", Precision::Tf32),
    ("fp16", Precision::Fp16),
    ("f16", Precision::Fp16),
    ("h884", Precision::Fp16),
    ("h1688", Precision::Fp16),
    ("h16816", Precision::Fp16),
    ("hmma", Precision::Fp16),
    ("half", Precision::Fp16),
    ("_dgemm", Precision::Fp64),
    ("_zgemm", Precision::Fp64),
    ("fp64", Precision::Fp64),
    ("f64", Precision::Fp64),
    ("double", Precision::Fp64),
    ("dmma", Precision::Fp64),
    // `s1688` with no 16-bit type named is Ampere's TF32 tensor-core shape
    // (`cutlass_80_tensorop_s1688gemm_…`); fp16 `s1688` kernels name fp16 and matched above.
    ("s1688", Precision::Tf32),
    // `s884`/`s16816` are 16-bit inputs with fp32 accumulation; bf16 names say so above.
    ("s884", Precision::Fp16),
    ("s16816", Precision::Fp16),
    ("sgemm", Precision::Fp32),
    ("_cgemm", Precision::Fp32),
    ("scudnn", Precision::Fp32),
    ("fp32", Precision::Fp32),
    ("f32", Precision::Fp32),
    ("float", Precision::Fp32),
    ("ffma", Precision::Fp32),
];

fn contains_any(haystack: &str, needles: &[&str]) -> bool {
    needles.iter().any(|needle| haystack.contains(needle))
}

/// The precision a (lower-cased) name states, from [`PRECISION_TOKENS`].
fn precision_of(lower: &str) -> Precision {
    PRECISION_TOKENS
        .iter()
        .find(|(token, _)| lower.contains(token))
        .map(|&(_, precision)| precision)
        .unwrap_or(Precision::Unknown)
}

fn collective_of(lower: &str) -> CollectiveKind {
    COLLECTIVE_TOKENS
        .iter()
        .find(|(token, _)| lower.contains(token))
        .map(|&(_, kind)| kind)
        .unwrap_or(CollectiveKind::Other)
}

/// Classifies a kernel by its name (mangled or demangled). Costs one lower-cased copy of the
/// name and a scan of the table: call it once per distinct name (the aggregator does).
pub fn classify(name: &str) -> KernelClass {
    let lower = name.to_ascii_lowercase();
    let Some(rule) =
        KIND_RULES.iter().find(|rule| contains_any(&lower, rule.any) && !contains_any(&lower, rule.unless))
    else {
        return KernelClass::OTHER;
    };
    let kind = match rule.kind {
        KindRule::Fixed(kind) => kind,
        KindRule::Collective => KernelKind::Collective(collective_of(&lower)),
        KindRule::ConvOrGemm if contains_any(&lower, CONV_TOKENS) => KernelKind::Conv,
        KindRule::ConvOrGemm => KernelKind::Gemm,
    };
    if !kind.does_matrix_math() {
        return KernelClass { kind, pipe: MathPipe::Unknown, precision: Precision::Unknown };
    }
    let mut precision = precision_of(&lower);
    let pipe = match rule.pipe {
        PipeRule::TensorCore => MathPipe::TensorCore,
        PipeRule::Simt => {
            // A SIMT kernel named only by its instruction family (`_ffma`, `simt`) and no type
            // is single precision: that is what FFMA is.
            if precision == Precision::Unknown {
                precision = Precision::Fp32;
            }
            MathPipe::Simt
        }
        PipeRule::TensorCoreUnlessWide if matches!(precision, Precision::Fp32 | Precision::Fp64) => MathPipe::Simt,
        PipeRule::TensorCoreUnlessWide => MathPipe::TensorCore,
        PipeRule::FromPrecision if precision.is_tensor_core_only() => MathPipe::TensorCore,
        PipeRule::FromPrecision if matches!(precision, Precision::Fp32 | Precision::Fp64) => MathPipe::Simt,
        PipeRule::FromPrecision | PipeRule::None => MathPipe::Unknown,
    };
    KernelClass { kind, pipe, precision }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_have_the_test_list_form() {
        assert_eq!(classify("ampere_bf16_s16816gemm_bf16_256x128_ldg8_f2f_stages_32x3_nn").label(), "gemm/tensor/bf16");
        assert_eq!(classify("ncclDevKernel_AllGather_RING_LL").label(), "collective/allgather");
        assert_eq!(classify("completely_unknown_kernel").label(), "other");
    }

    #[test]
    fn mangled_and_demangled_forms_classify_alike() {
        let mangled =
            "_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIfEENS_6detail5ArrayIPcLi1EEEEEviT0_T1_";
        let demangled = "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, at::detail::Array<char*, 1> >(int, at::native::FillFunctor<float>, at::detail::Array<char*, 1>)";
        assert_eq!(classify(mangled), classify(demangled));
        assert_eq!(classify(mangled).kind, KernelKind::Elementwise);
    }

    #[test]
    fn non_math_kinds_carry_no_pipe_or_precision() {
        let class = classify("ncclDevKernel_AllReduce_Sum_bf16_RING_LL");
        assert_eq!(class.pipe, MathPipe::Unknown);
        assert_eq!(class.precision, Precision::Unknown);
    }

    #[test]
    fn nccl_operations_are_told_apart() {
        // NCCL >= 2.19 names its kernels ncclDevKernel_<Coll>[_<RedOp>_<type>]_<ALGO>_<PROTO>;
        // `reducescatter` and `allreduce` must not fall to the `reduce` token.
        for (name, op) in [
            ("ncclDevKernel_AllGather_RING_LL", "allgather"),
            ("ncclDevKernel_ReduceScatter_Sum_f32_RING_LL", "reducescatter"),
            ("ncclDevKernel_AllReduce_Sum_bf16_TREE_LL", "allreduce"),
            ("ncclDevKernel_Broadcast_RING_LL", "broadcast"),
            ("ncclDevKernel_Reduce_Sum_f32_RING_LL", "reduce"),
            ("ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)", "sendrecv"),
            ("ncclDevKernel_Generic", "other"),
        ] {
            assert_eq!(classify(name).label(), format!("collective/{op}"), "{name}");
        }
    }

    #[test]
    fn inductor_casts_are_not_convolutions() {
        assert_eq!(classify("triton_poi_fused__to_copy_convert_element_type_0").label(), "elementwise");
    }

    #[test]
    fn grouped_gemm_is_not_a_double_precision_gemm() {
        assert_eq!(classify("Sm100W4A16GroupedGemmKernel").label(), "gemm/unknown/unknown");
        assert_eq!(classify("volta_dgemm_64x64_nn").label(), "gemm/simt/fp64");
    }

    #[test]
    fn ffma_xmma_is_simt_fp32_not_tensor_core() {
        let class = classify("sm80_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize64x128x8_stage3_warpsize1x4x1_ffma");
        assert_eq!(class, KernelClass { kind: KernelKind::Gemm, pipe: MathPipe::Simt, precision: Precision::Fp32 });
    }
}
