//! The in-process ONNX Runtime backend: one session, one KV cache, prefix reuse across requests.
//!
//! Two cache layouts, chosen by the manifest:
//! - `gqa-shared` (onnxruntime-genai builder): one `[1, kv_heads, context, head_dim]` buffer per
//!   layer and per K/V, bound through IO binding as both the `past` input and the `present` output,
//!   so GroupQueryAttention appends in place. Rewinding the cache is setting a counter.
//! - `concat` (optimum): `present = concat(past, new)`; the outputs of one step are the next step's
//!   inputs; a rewind copies the kept rows.
//!
//! Several caches: the one in use and parked ones (other documents, other regions of a document),
//! so switching between files keeps their work. A prompt runs in the cache sharing the longest
//! prefix with it; when none shares half of it, in a fresh cache, and the one in use is parked.
//! Parked caches are dropped least recently used first to keep all caches within
//! [`KV_CACHE_BUDGET_BYTES`] (the one in use may alone exceed it: it needs what it needs).
//!
//! Invariant: `Engine::cached` lists exactly the tokens whose keys/values the cache holds, in order
//! (and so does each parked cache's `cached`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{IoBinding, RunOptions, Session, SessionInputValue};
use ort::value::{DynValue, Tensor, ValueType};

use crate::backend::{CancelHook, pick_token_with_margin};
use crate::manifest::OnnxSection;
use crate::speculate::{self, SpeculationCounters, SpeculationStats, bump};
use crate::{
    Backend, CancelToken, FinishReason, GenerateRequest, Generation, KvLayout, Manifest,
    ModelError, ModelTokenizer, init_onnxruntime,
};

#[derive(Debug, Clone, Default)]
pub struct OnnxOptions {
    /// Intra-op threads; 0 = the manifest's `[runtime] threads`, else 2 (the editor's machine
    /// has few cores).
    pub threads: usize,
    /// Explicit path to libonnxruntime (else ORT_DYLIB_PATH, else moat's install folder).
    pub ort_library: Option<PathBuf>,
}

/// Most prompt tokens fed to the model in one run. A long cold prompt runs in chunks: the
/// attention scores of a chunk are `heads × chunk × context` instead of `heads × prompt²` (84 MB
/// for a 1,225-token prompt on Qwen2.5-Coder-0.5B), and a newer keystroke cancels the prompt
/// between chunks instead of waiting seconds for the whole of it.
pub const PREFILL_CHUNK: usize = 256;

/// All KV caches together (in use and parked), counted by the rows written: 96 MiB holds ~4,000
/// tokens of Qwen2.5-Coder-0.5B (24 KiB a token), four 1k-token documents.
pub const KV_CACHE_BUDGET_BYTES: usize = 96 << 20;

/// Most KV caches ever allocated (in use + parked): the least recently used is reused after that.
const MAX_CACHES: usize = 4;

/// A cache with fewer tokens than this is not worth parking: a fresh prompt overwrites it.
const MIN_PARKED_TOKENS: usize = 32;

/// Most prompt tokens one step of background work ([`Backend::prefill`]) feeds. A request that
/// arrives meanwhile interrupts the step and loses its work; steps are sized to take about
/// [`BACKGROUND_STEP_TIME`] at the measured cost per token, so little is lost.
pub const BACKGROUND_CHUNK: usize = 64;
/// The fewest tokens of a background step (a run's fixed cost dominates below this).
const BACKGROUND_CHUNK_MIN: usize = 16;
/// What one background step should take.
const BACKGROUND_STEP_TIME: Duration = Duration::from_millis(40);

/// Threads when neither the user nor the manifest says.
pub const DEFAULT_THREADS: usize = 2;

pub struct OnnxBackend {
    manifest: Manifest,
    tokenizer: ModelTokenizer,
    /// Boxed: the engine is large and `OnnxBackend` sits beside other backends in enums.
    engine: Mutex<Box<Engine>>,
    threads: usize,
    /// Speculative decoding wanted (manifest `[runtime] speculative`, [`Self::set_speculation`]);
    /// it runs only where the engine can verify drafts ([`Engine::last_k_rows`]).
    speculation: AtomicBool,
    /// [`speculate::VERIFY_MARGIN`] or the manifest's, as `f32` bits.
    verify_margin: AtomicU32,
    counters: SpeculationCounters,
    /// Recent prompt compute per token, nanoseconds (0 = nothing measured yet): a moving average
    /// over prefills of at least [`COST_SAMPLE_MIN`] tokens ([`Backend::prefill_cost_per_token`]).
    prefill_ns_per_token: AtomicU64,
}

/// Prefills shorter than this say little about the cost per token (a run's fixed overhead).
const COST_SAMPLE_MIN: usize = 16;

struct Names {
    input_ids: String,
    attention_mask: String,
    position_ids: Option<String>,
    past: Vec<(String, String)>,
    present: Vec<(String, String)>,
    logits: String,
    /// The input that says how many of the last fed positions get logits, when the graph has it.
    logits_to_keep: Option<String>,
}

enum Kv {
    Shared {
        binding: Box<IoBinding>,
        _buffers: Vec<Tensor<f32>>,
    },
    Concat {
        past: Vec<(DynValue, DynValue)>,
    },
}

/// A cache not in use, with the tokens it holds.
struct Parked {
    kv: Kv,
    cached: Vec<u32>,
    /// Most rows ever written (the memory it holds).
    high_water: usize,
    last_used: u64,
}

struct Engine {
    session: Session,
    cpu: MemoryInfo<'static>,
    names: Names,
    layout: KvLayout,
    kv: Kv,
    kv_heads: usize,
    head_dim: usize,
    capacity: usize,
    cached: Vec<u32>,
    /// Most rows ever written into `kv`.
    high_water: usize,
    parked: Vec<Parked>,
    /// Bytes of keys and values per cached token (all layers).
    bytes_per_token: usize,
    budget_bytes: usize,
    /// Stops a run in flight when the request it serves is cancelled.
    interrupt: Interrupt,
    /// Counts prompts, for least-recently-used eviction.
    clock: u64,
    /// The graph can return the logits of the last K fed positions (all of them, or K fed as
    /// `logits_to_keep`; a builder export with `prune_lm_head=true` alone returns only the last)
    /// and the cache rewinds by a counter (`gqa-shared`): drafts can be verified. Read from the
    /// graph at load; turned off if a run disagrees.
    last_k_rows: bool,
}

impl OnnxBackend {
    pub fn load(manifest_path: &Path, options: &OnnxOptions) -> Result<Self, ModelError> {
        let manifest = Manifest::load(manifest_path)?;
        let onnx_path = manifest.onnx_path().ok_or_else(|| ModelError::Manifest {
            path: manifest.dir.join("model.toml"),
            message: "model.onnx is not set: this manifest has no ONNX model".into(),
        })?;
        let tokenizer = ModelTokenizer::load(&manifest.tokenizer_path(), &manifest)?;
        let (_, env) = init_onnxruntime(options.ort_library.as_deref())?;
        if !onnx_path.is_file() {
            return Err(ModelError::Io {
                path: onnx_path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the ONNX file is missing",
                ),
            });
        }
        let threads = match options.threads {
            0 => manifest.runtime.threads.unwrap_or(DEFAULT_THREADS),
            n => n,
        }
        .max(1);
        let session =
            build_session(env, threads, &onnx_path).map_err(|e| ModelError::Mismatch {
                path: onnx_path.clone(),
                message: format!("not a loadable ONNX model: {e}"),
            })?;
        let onnx = manifest.onnx.clone().ok_or_else(|| ModelError::Manifest {
            path: manifest.dir.join("model.toml"),
            message: "[onnx] section missing".into(),
        })?;
        let names = check_graph(&session, &onnx, &onnx_path, tokenizer.vocab_size())?;
        let last_k_rows = onnx.layout == KvLayout::GqaShared
            && (names.logits_to_keep.is_some() || logits_per_position(&session, &onnx));
        let mut engine = Engine::new(session, names, &onnx, manifest.model.context_length)?;
        engine.last_k_rows = last_k_rows;
        let speculation = AtomicBool::new(manifest.runtime.speculative.unwrap_or(true));
        let verify_margin = AtomicU32::new(
            manifest
                .runtime
                .verify_margin
                .unwrap_or(speculate::VERIFY_MARGIN)
                .to_bits(),
        );
        Ok(Self {
            manifest,
            tokenizer,
            engine: Mutex::new(Box::new(engine)),
            threads,
            speculation,
            verify_margin,
            counters: SpeculationCounters::default(),
            prefill_ns_per_token: AtomicU64::new(0),
        })
    }

    /// Folds a prefill of `tokens` that took `took` into the cost per token (an exponential
    /// moving average, weight 1/4 for the newest: the machine's load changes).
    fn note_prefill(&self, tokens: usize, took: Duration) {
        if tokens < COST_SAMPLE_MIN {
            return;
        }
        let sample = (took.as_nanos() / tokens as u128).min(u128::from(u32::MAX)) as u64;
        let _ =
            self.prefill_ns_per_token
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                    Some(if old == 0 {
                        sample
                    } else {
                        (old * 3 + sample) / 4
                    })
                });
    }

    /// The intra-op threads in use (after resolving 0 = auto).
    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Logits after feeding `prompt` (reusing the cache as a request would). For tests and tools.
    pub fn logits_for(&self, prompt: &[u32]) -> Result<Vec<f32>, ModelError> {
        let mut engine = self
            .engine
            .lock()
            .map_err(|_| ModelError::Runtime("model engine poisoned".into()))?;
        let (logits, _) = engine.prefill(prompt, &CancelToken::new())?;
        Ok(logits)
    }

    /// Turns speculative decoding on or off (it is on unless the manifest's `[runtime]
    /// speculative = false`; it runs only where [`Self::can_speculate`]).
    pub fn set_speculation(&self, on: bool) {
        self.speculation.store(on, Ordering::Relaxed);
    }

    /// Sets the margin below which a verified row is recomputed by a one-token step (see
    /// [`speculate::VERIFY_MARGIN`]; 0 trusts every verified row).
    pub fn set_verify_margin(&self, logits: f32) {
        self.verify_margin
            .store(logits.to_bits(), Ordering::Relaxed);
    }

    /// Whether this model can verify drafts: `gqa-shared` KV and logits for the last K fed
    /// positions (a `logits_to_keep` input, or logits for every position). A model exported with
    /// the builder's `prune_lm_head=true` and not edited returns only the last position's logits
    /// and decodes one token per step.
    pub fn can_speculate(&self) -> bool {
        self.engine.lock().is_ok_and(|e| e.last_k_rows)
    }

    /// Whether speculative decoding is on and possible.
    pub fn speculating(&self) -> bool {
        self.speculation.load(Ordering::Relaxed) && self.can_speculate()
    }

    /// Decode counters over all requests so far (steps, drafts, accepted draft tokens).
    pub fn speculation_stats(&self) -> SpeculationStats {
        self.counters.snapshot()
    }

    /// Forgets the KV cache (the next request computes its whole prompt).
    pub fn reset_cache(&self) {
        if let Ok(mut engine) = self.engine.lock() {
            let _ = engine.rewind(0);
            engine.parked.clear();
        }
    }

    /// Bounds all KV caches together (default [`KV_CACHE_BUDGET_BYTES`]); parked caches over it
    /// are dropped at the next request.
    pub fn set_kv_budget(&self, bytes: usize) {
        if let Ok(mut engine) = self.engine.lock() {
            engine.budget_bytes = bytes;
        }
    }

    /// The KV caches held: how many (in use and parked) and their bytes (rows written).
    pub fn kv_cache_usage(&self) -> (usize, usize) {
        self.engine
            .lock()
            .map_or((0, 0), |e| (1 + e.parked.len(), e.kv_bytes()))
    }
}

fn check_graph(
    session: &Session,
    onnx: &OnnxSection,
    path: &Path,
    vocab: usize,
) -> Result<Names, ModelError> {
    let mismatch = |message: String| ModelError::Mismatch {
        path: path.to_path_buf(),
        message,
    };
    let inputs: Vec<(&str, &ValueType)> = session
        .inputs()
        .iter()
        .map(|o| (o.name(), o.dtype()))
        .collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let input_names: Vec<&str> = inputs.iter().map(|(n, _)| *n).collect();
    let need_in = |name: &str, what: &str| {
        if input_names.contains(&name) {
            Ok(())
        } else {
            Err(mismatch(format!(
                "{what} input {name:?} is not in the graph (inputs: {})",
                input_names.join(", ")
            )))
        }
    };
    let need_out = |name: &str, what: &str| {
        if outputs.contains(&name) {
            Ok(())
        } else {
            Err(mismatch(format!(
                "{what} output {name:?} is not in the graph (outputs: {})",
                outputs.join(", ")
            )))
        }
    };
    need_in(&onnx.input_ids, "onnx.input_ids")?;
    need_in(&onnx.attention_mask, "onnx.attention_mask")?;
    need_out(&onnx.logits, "onnx.logits")?;
    let position_ids = if onnx.position_ids.is_empty() {
        if let Some(p) = input_names.iter().find(|n| n.contains("position")) {
            return Err(mismatch(format!(
                "the graph takes {p:?} but onnx.position_ids is empty"
            )));
        }
        None
    } else {
        need_in(&onnx.position_ids, "onnx.position_ids")?;
        Some(onnx.position_ids.clone())
    };
    let mut past = Vec::new();
    let mut present = Vec::new();
    for layer in 0..onnx.num_layers {
        let pk = OnnxSection::layer_name(&onnx.past_key, layer);
        let pv = OnnxSection::layer_name(&onnx.past_value, layer);
        need_in(&pk, "onnx.past_key")?;
        need_in(&pv, "onnx.past_value")?;
        let ok = OnnxSection::layer_name(&onnx.present_key, layer);
        let ov = OnnxSection::layer_name(&onnx.present_value, layer);
        need_out(&ok, "onnx.present_key")?;
        need_out(&ov, "onnx.present_value")?;
        for name in [&pk, &pv] {
            if let Some((_, ValueType::Tensor { shape, ty, .. })) =
                inputs.iter().find(|(n, _)| n == name)
            {
                if shape.len() != 4 {
                    return Err(mismatch(format!(
                        "{name} has rank {} (expected 4: batch, kv_heads, seq, head_dim)",
                        shape.len()
                    )));
                }
                if shape[1] > 0 && shape[1] as usize != onnx.num_kv_heads {
                    return Err(mismatch(format!(
                        "{name} has {} kv heads, model.toml says num_kv_heads = {}",
                        shape[1], onnx.num_kv_heads
                    )));
                }
                if shape[3] > 0 && shape[3] as usize != onnx.head_dim {
                    return Err(mismatch(format!(
                        "{name} has head_dim {}, model.toml says head_dim = {}",
                        shape[3], onnx.head_dim
                    )));
                }
                if *ty != ort::value::TensorElementType::Float32 {
                    return Err(mismatch(format!(
                        "{name} is {ty:?}, model.toml says kv_dtype = float32"
                    )));
                }
            }
        }
        past.push((pk, pv));
        present.push((ok, ov));
    }
    let extra = OnnxSection::layer_name(&onnx.past_key, onnx.num_layers);
    if input_names.contains(&extra.as_str()) {
        return Err(mismatch(format!(
            "the graph has more layers than model.toml's num_layers = {} (found {extra:?})",
            onnx.num_layers
        )));
    }
    if let Some(o) = session.outputs().iter().find(|o| o.name() == onnx.logits)
        && let ValueType::Tensor { shape, .. } = o.dtype()
        && let Some(&v) = shape.last()
        && v > 0
        && (v as usize) < vocab
    {
        return Err(mismatch(format!(
            "logits have {v} entries but the tokenizer has {vocab} tokens"
        )));
    }
    Ok(Names {
        input_ids: onnx.input_ids.clone(),
        attention_mask: onnx.attention_mask.clone(),
        position_ids,
        past,
        present,
        logits: onnx.logits.clone(),
        logits_to_keep: logits_to_keep_input(session, onnx),
    })
}

/// The graph's `logits_to_keep` input (`onnx.logits_to_keep`), if it has one: a plain input, or an
/// initializer that is also an input (what the import's edit writes, so that a caller which does
/// not feed it gets one row, as from the unedited graph).
fn logits_to_keep_input(session: &Session, onnx: &OnnxSection) -> Option<String> {
    let name = onnx.logits_to_keep.as_str();
    if name.is_empty() {
        return None;
    }
    let is_input = session.inputs().iter().any(|i| i.name() == name);
    let overridable = || {
        session
            .overridable_initializers()
            .iter()
            .any(|i| i.name() == name)
    };
    (is_input || overridable()).then(|| name.to_string())
}

/// Whether the graph's logits have a sequence axis that is not fixed at 1 (`[batch, seq, vocab]`
/// with `seq` symbolic or > 1): then a run returns a row per fed token. The builder's
/// `prune_lm_head=true` exports `[batch, 1, vocab]`.
fn logits_per_position(session: &Session, onnx: &OnnxSection) -> bool {
    session
        .outputs()
        .iter()
        .find(|o| o.name() == onnx.logits)
        .is_some_and(|o| match o.dtype() {
            ValueType::Tensor { shape, .. } => shape.len() == 3 && shape[1] != 1,
            _ => false,
        })
}

fn build_session(
    env: &ort::environment::Environment,
    threads: usize,
    onnx_path: &Path,
) -> Result<Session, String> {
    let e = |e: ort::Error<_>| e.to_string();
    Session::builder(env)
        .map_err(|e| e.to_string())?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(e)?
        .with_intra_threads(threads)
        .map_err(e)?
        .with_inter_threads(1)
        .map_err(e)?
        .with_intra_op_spinning(false)
        .map_err(e)?
        .with_inter_op_spinning(false)
        .map_err(e)?
        // From the path, not from bytes: ONNX Runtime finds external data (`model.onnx.data`)
        // next to the file and maps it instead of holding a second copy of the weights.
        .commit_from_file(onnx_path)
        .map_err(|e| e.to_string())
}

/// How many tokens `cached` and `prompt` share from the start.
fn common_prefix(cached: &[u32], prompt: &[u32]) -> usize {
    cached
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .count()
}

/// Empties a cache: no token is cached (a `concat` cache also drops its tensors; a
/// `gqa-shared` cache keeps its buffers, which `cached` alone makes valid).
fn forget(cached: &mut Vec<u32>, kv: &mut Kv) {
    cached.clear();
    if let Kv::Concat { past } = kv {
        past.clear();
    }
}

/// An empty cache in `layout`.
fn new_kv(
    session: &Session,
    names: &Names,
    layout: KvLayout,
    kv_heads: usize,
    head_dim: usize,
    capacity: usize,
) -> Result<Kv, ModelError> {
    Ok(match layout {
        KvLayout::GqaShared => {
            let mut binding = session.create_binding().map_err(ModelError::ort)?;
            let mut buffers = Vec::new();
            for ((pk, pv), (ok, ov)) in names.past.iter().zip(&names.present) {
                for (input, output) in [(pk, ok), (pv, ov)] {
                    let mut t = Tensor::<f32>::new(
                        session.allocator(),
                        [1usize, kv_heads, capacity, head_dim],
                    )
                    .map_err(ModelError::ort)?;
                    // Not zero-filled: attention reads only the rows below the cached count,
                    // each written before it is read, and untouched pages of a long context
                    // never become resident (up to 50 MB for a 24-layer model at 2,048).
                    binding
                        .bind_input(input.as_str(), &t)
                        .map_err(ModelError::ort)?;
                    binding
                        .bind_output(output.as_str(), &mut t)
                        .map_err(ModelError::ort)?;
                    buffers.push(t);
                }
            }
            Kv::Shared {
                binding: Box::new(binding),
                _buffers: buffers,
            }
        }
        KvLayout::Concat => Kv::Concat { past: Vec::new() },
    })
}

fn i64_tensor(shape: [usize; 2], data: Vec<i64>) -> Result<Tensor<i64>, ModelError> {
    Tensor::from_array((shape, data.into_boxed_slice())).map_err(ModelError::ort)
}

fn empty_kv(kv_heads: usize, head_dim: usize) -> Result<DynValue, ModelError> {
    Tensor::<f32>::from_array((
        [1usize, kv_heads, 0, head_dim],
        Vec::<f32>::new().into_boxed_slice(),
    ))
    .map(|t| t.into_dyn())
    .map_err(ModelError::ort)
}

/// Keeps the first `len` positions of a `[1, heads, seq, dim]` tensor.
fn truncate_kv(value: &DynValue, len: usize) -> Result<DynValue, ModelError> {
    let (shape, data) = value.try_extract_tensor::<f32>().map_err(ModelError::ort)?;
    let (heads, seq, dim) = (shape[1] as usize, shape[2] as usize, shape[3] as usize);
    let len = len.min(seq);
    let mut out = Vec::with_capacity(heads * len * dim);
    for h in 0..heads {
        let start = h * seq * dim;
        out.extend_from_slice(&data[start..start + len * dim]);
    }
    Tensor::from_array(([1usize, heads, len, dim], out.into_boxed_slice()))
        .map(|t| t.into_dyn())
        .map_err(ModelError::ort)
}

/// The last `rows` rows of the logits (`[batch, seq, vocab]`), flattened; `None` when the model
/// returned fewer rows than that.
fn last_rows(value: &DynValue, rows: usize) -> Result<Option<Vec<f32>>, ModelError> {
    let (shape, data) = value.try_extract_tensor::<f32>().map_err(ModelError::ort)?;
    let vocab = *shape.last().unwrap_or(&0) as usize;
    if vocab == 0 || data.len() < vocab || data.len() % vocab != 0 {
        return Err(ModelError::Runtime(format!(
            "logits have an unexpected shape {shape:?}"
        )));
    }
    if data.len() < rows * vocab {
        return Ok(None);
    }
    Ok(Some(data[data.len() - rows * vocab..].to_vec()))
}

/// ONNX Runtime's terminate flag for one engine's runs: a cancelled request's run in flight
/// stops within an operator instead of at the end of its step (a 64-token background step takes
/// 70–200 ms on two cores, which a request arriving meanwhile would otherwise wait for).
struct Interrupt {
    options: Arc<RunOptions>,
    /// Set when the flag was raised, so the run's error reads as a cancellation.
    fired: Arc<AtomicBool>,
}

impl Interrupt {
    fn new() -> Result<Self, ModelError> {
        Ok(Self {
            options: Arc::new(RunOptions::new().map_err(ModelError::ort)?),
            fired: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Raises the flag when `cancel` is cancelled, until the guard is dropped (which lowers it
    /// again). Arm it only while holding the engine: one request's runs at a time.
    fn arm(&self, cancel: &CancelToken) -> Armed {
        let (options, fired) = (self.options.clone(), self.fired.clone());
        let hook = cancel.on_cancel(move || {
            fired.store(true, Ordering::SeqCst);
            let _ = options.terminate();
        });
        Armed {
            hook: Some(hook),
            options: self.options.clone(),
            fired: self.fired.clone(),
        }
    }

    /// A failed run's error: a cancellation when the flag stopped it.
    fn error(&self, e: impl std::fmt::Display) -> ModelError {
        if self.fired.load(Ordering::SeqCst) {
            ModelError::Cancelled
        } else {
            ModelError::ort(e)
        }
    }
}

/// An armed [`Interrupt`]; dropping it disarms it.
struct Armed {
    hook: Option<CancelHook>,
    options: Arc<RunOptions>,
    fired: Arc<AtomicBool>,
}

impl Drop for Armed {
    fn drop(&mut self) {
        // First the hook (once removed it cannot fire), then the flag.
        drop(self.hook.take());
        if self.fired.swap(false, Ordering::SeqCst) {
            let _ = self.options.unterminate();
        }
    }
}

impl Engine {
    fn new(
        session: Session,
        names: Names,
        onnx: &OnnxSection,
        capacity: usize,
    ) -> Result<Self, ModelError> {
        let (kv_heads, head_dim) = (onnx.num_kv_heads, onnx.head_dim);
        let kv = new_kv(&session, &names, onnx.layout, kv_heads, head_dim, capacity)?;
        let bytes_per_token = names.past.len() * 2 * kv_heads * head_dim * size_of::<f32>();
        let cpu = MemoryInfo::new(
            AllocationDevice::CPU,
            0,
            AllocatorType::Device,
            MemoryType::Default,
        )
        .map_err(ModelError::ort)?;
        Ok(Self {
            session,
            cpu,
            names,
            kv,
            kv_heads,
            head_dim,
            capacity,
            cached: Vec::new(),
            high_water: 0,
            parked: Vec::new(),
            bytes_per_token,
            interrupt: Interrupt::new()?,
            budget_bytes: KV_CACHE_BUDGET_BYTES,
            clock: 0,
            layout: onnx.layout,
            last_k_rows: false,
        })
    }

    /// Bytes held by all caches (rows written, in use and parked).
    fn kv_bytes(&self) -> usize {
        let rows: usize = self.high_water + self.parked.iter().map(|p| p.high_water).sum::<usize>();
        rows * self.bytes_per_token
    }

    /// The most tokens of `prompt` that one cache (in use or parked) holds.
    fn longest_cached(&self, prompt: &[u32]) -> usize {
        self.parked
            .iter()
            .map(|p| common_prefix(&p.cached, prompt))
            .fold(common_prefix(&self.cached, prompt), usize::max)
    }

    /// Makes the cache sharing the longest prefix with `prompt` the one in use, or a fresh one
    /// when none shares half of it (parking the one in use), then drops the least recently used
    /// parked caches until all of them, with `prompt` written, fit the budget.
    fn select_cache(&mut self, prompt: &[u32]) -> Result<(), ModelError> {
        self.clock += 1;
        let common = |cached: &[u32]| common_prefix(cached, prompt);
        let in_use = common(&self.cached);
        let best = self
            .parked
            .iter()
            .enumerate()
            .map(|(i, p)| (common(&p.cached), i))
            .max();
        let shared = best.map_or(in_use, |(n, _)| n.max(in_use));
        // Most of the cache in use would be lost (not a partial prefill of this very prompt, which
        // a cancelled request or background step leaves behind: that one is continued).
        let lost = self.cached.len() - in_use;
        if shared * 2 < prompt.len()
            && lost * 2 > self.cached.len()
            && self.cached.len() >= MIN_PARKED_TOKENS
            && MAX_CACHES > 1
        {
            let fresh = if 1 + self.parked.len() >= MAX_CACHES {
                // The least recently used parked cache is emptied and reused: at most
                // MAX_CACHES caches are ever allocated.
                let lru = self
                    .parked
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, p)| p.last_used)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                let mut p = self.parked.swap_remove(lru);
                forget(&mut p.cached, &mut p.kv);
                p
            } else {
                Parked {
                    kv: new_kv(
                        &self.session,
                        &self.names,
                        self.layout,
                        self.kv_heads,
                        self.head_dim,
                        self.capacity,
                    )?,
                    cached: Vec::new(),
                    high_water: 0,
                    last_used: self.clock,
                }
            };
            self.park_and_use(fresh);
        } else if let Some((n, i)) = best
            && n > in_use
        {
            let chosen = self.parked.swap_remove(i);
            self.park_and_use(chosen);
        }
        let needed = prompt.len().max(self.high_water) * self.bytes_per_token;
        while !self.parked.is_empty()
            && needed + self.kv_bytes() - self.high_water * self.bytes_per_token > self.budget_bytes
        {
            if let Some((i, _)) = self
                .parked
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.last_used)
            {
                self.parked.swap_remove(i);
            }
        }
        Ok(())
    }

    /// Puts `next` in use and parks the cache that was (dropped when it holds too little).
    fn park_and_use(&mut self, mut next: Parked) {
        std::mem::swap(&mut self.kv, &mut next.kv);
        std::mem::swap(&mut self.cached, &mut next.cached);
        std::mem::swap(&mut self.high_water, &mut next.high_water);
        next.last_used = self.clock - 1;
        if next.cached.len() >= MIN_PARKED_TOKENS {
            self.parked.push(next);
        }
    }

    /// Drops cached tokens after `len`.
    fn rewind(&mut self, len: usize) -> Result<(), ModelError> {
        if len >= self.cached.len() {
            return Ok(());
        }
        self.cached.truncate(len);
        if let Kv::Concat { past } = &mut self.kv {
            if len == 0 {
                past.clear();
            } else {
                for (k, v) in past.iter_mut() {
                    *k = truncate_kv(k, len)?;
                    *v = truncate_kv(v, len)?;
                }
            }
        }
        Ok(())
    }

    /// Feeds `ids` after the cached tokens; returns the logits of the last one.
    fn step(&mut self, ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        Ok(self.run(ids, false)?.unwrap_or_default())
    }

    /// Feeds `ids` after the cached tokens; returns the logits of every one of them (flattened,
    /// `ids.len()` rows), or `None` when the model returned fewer rows (only the last: the cache
    /// then holds `ids` all the same).
    fn step_rows(&mut self, ids: &[u32]) -> Result<Option<Vec<f32>>, ModelError> {
        self.run(ids, true)
    }

    fn run(&mut self, ids: &[u32], all: bool) -> Result<Option<Vec<f32>>, ModelError> {
        let rows = if all { ids.len() } else { 1 };
        let past_len = self.cached.len();
        let total = past_len + ids.len();
        if total > self.capacity {
            return Err(ModelError::PromptTooLong {
                len: total,
                max: self.capacity,
            });
        }
        let input_ids = i64_tensor([1, ids.len()], ids.iter().map(|&i| i64::from(i)).collect())?;
        let mask = i64_tensor([1, total], vec![1; total])?;
        // One row for a prompt or a plain step; the fed draft's rows for a verification.
        let keep = match &self.names.logits_to_keep {
            Some(_) => Some(
                Tensor::from_array(([1usize], vec![rows as i64].into_boxed_slice()))
                    .map_err(ModelError::ort)?,
            ),
            None => None,
        };
        let positions = match &self.names.position_ids {
            Some(_) => Some(i64_tensor(
                [1, ids.len()],
                (past_len as i64..total as i64).collect(),
            )?),
            None => None,
        };
        let logits = match &mut self.kv {
            Kv::Shared { binding, .. } => {
                binding
                    .bind_input(self.names.input_ids.as_str(), &input_ids)
                    .map_err(ModelError::ort)?;
                binding
                    .bind_input(self.names.attention_mask.as_str(), &mask)
                    .map_err(ModelError::ort)?;
                if let (Some(name), Some(p)) = (&self.names.position_ids, &positions) {
                    binding
                        .bind_input(name.as_str(), p)
                        .map_err(ModelError::ort)?;
                }
                if let (Some(name), Some(k)) = (&self.names.logits_to_keep, &keep) {
                    binding
                        .bind_input(name.as_str(), k)
                        .map_err(ModelError::ort)?;
                }
                // Rebound every run: ONNX Runtime would otherwise reuse the last run's logits
                // buffer, whose shape depends on how many tokens that run fed.
                binding
                    .bind_output_to_device(self.names.logits.as_str(), &self.cpu)
                    .map_err(ModelError::ort)?;
                let outputs = self
                    .session
                    .run_binding_with_options(binding, &self.interrupt.options)
                    .map_err(|e| self.interrupt.error(e))?;
                let logits = outputs
                    .get(&self.names.logits)
                    .ok_or_else(|| ModelError::Runtime("the model returned no logits".into()))?;
                last_rows(logits, rows)?
            }
            Kv::Concat { past } => {
                if past.is_empty() {
                    for _ in 0..self.names.past.len() {
                        past.push((
                            empty_kv(self.kv_heads, self.head_dim)?,
                            empty_kv(self.kv_heads, self.head_dim)?,
                        ));
                    }
                }
                let mut inputs: Vec<(&str, SessionInputValue<'_>)> = vec![
                    (self.names.input_ids.as_str(), (&input_ids).into()),
                    (self.names.attention_mask.as_str(), (&mask).into()),
                ];
                if let (Some(name), Some(p)) = (&self.names.position_ids, &positions) {
                    inputs.push((name.as_str(), p.into()));
                }
                if let (Some(name), Some(k)) = (&self.names.logits_to_keep, &keep) {
                    inputs.push((name.as_str(), k.into()));
                }
                for ((pk, pv), (k, v)) in self.names.past.iter().zip(past.iter()) {
                    inputs.push((pk.as_str(), k.into()));
                    inputs.push((pv.as_str(), v.into()));
                }
                let mut outputs = self
                    .session
                    .run_with_options(inputs, &self.interrupt.options)
                    .map_err(|e| self.interrupt.error(e))?;
                let logits = outputs
                    .get(&self.names.logits)
                    .ok_or_else(|| ModelError::Runtime("the model returned no logits".into()))
                    .and_then(|l| last_rows(l, rows))?;
                let mut next = Vec::with_capacity(self.names.present.len());
                for (ok, ov) in &self.names.present {
                    let k = outputs.remove(ok.as_str());
                    let v = outputs.remove(ov.as_str());
                    match (k, v) {
                        (Some(k), Some(v)) => next.push((k, v)),
                        _ => {
                            return Err(ModelError::Runtime(format!(
                                "the model returned no {ok}/{ov}"
                            )));
                        }
                    }
                }
                drop(outputs);
                *past = next;
                logits
            }
        };
        self.cached.extend_from_slice(ids);
        self.high_water = self.high_water.max(self.cached.len());
        Ok(logits)
    }

    /// Brings the cache to `prompt` (all of it: no logits wanted) in steps of `chunk` tokens,
    /// checking `cancel` between them. Each step's tokens and time go to `stepped` (what was
    /// computed stays cached, cancelled or not). Returns the tokens computed.
    fn warm(
        &mut self,
        prompt: &[u32],
        chunk: usize,
        cancel: &CancelToken,
        stepped: &mut dyn FnMut(usize, Duration),
    ) -> Result<usize, ModelError> {
        if prompt.is_empty() || prompt.len() >= self.capacity {
            return Ok(0);
        }
        self.select_cache(prompt)?;
        let common = common_prefix(&self.cached, prompt);
        self.rewind(common)?;
        let mut computed = 0;
        for piece in prompt[common..].chunks(chunk.max(1)) {
            if cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            let started = Instant::now();
            if let Err(e) = self.step(piece) {
                // Interrupted by cancellation: what is cached is intact (the step's rows lie
                // past it); any other failure may have left the cache half-written.
                if !matches!(e, ModelError::Cancelled) {
                    forget(&mut self.cached, &mut self.kv);
                }
                return Err(e);
            }
            stepped(piece.len(), started.elapsed());
            computed += piece.len();
        }
        Ok(computed)
    }

    /// Brings the cache to `prompt`, computing only what follows the longest common prefix, in
    /// chunks of at most [`PREFILL_CHUNK`] tokens with a cancellation check between them.
    /// Returns the last position's logits and how many prompt tokens were reused.
    fn prefill(
        &mut self,
        prompt: &[u32],
        cancel: &CancelToken,
    ) -> Result<(Vec<f32>, usize), ModelError> {
        if prompt.is_empty() {
            return Err(ModelError::Runtime("empty prompt".into()));
        }
        self.select_cache(prompt)?;
        let common = common_prefix(&self.cached, prompt);
        // At least one token must run to get logits for the last position.
        let keep = common.min(prompt.len() - 1);
        self.rewind(keep)?;
        let mut result = Err(ModelError::Cancelled);
        for chunk in prompt[keep..].chunks(PREFILL_CHUNK) {
            if cancel.is_cancelled() {
                result = Err(ModelError::Cancelled);
                break;
            }
            result = self.step(chunk);
            if result.is_err() {
                break;
            }
        }
        if matches!(result, Err(ModelError::Cancelled)) {
            // Every finished chunk is valid cache: the next request reuses it.
            return Err(ModelError::Cancelled);
        }
        if result.is_err() {
            // The cache may be half-written: forget it rather than trust it.
            forget(&mut self.cached, &mut self.kv);
        }
        Ok((result?, keep))
    }
}

impl Backend for OnnxBackend {
    fn describe(&self) -> String {
        let layout = self.manifest.onnx.as_ref().map(|o| o.layout);
        format!(
            "{} (onnx, {:?}, {} threads)",
            self.manifest.model.name, layout, self.threads
        )
    }

    fn tokenizer(&self) -> &ModelTokenizer {
        &self.tokenizer
    }

    fn context_length(&self) -> usize {
        self.manifest.model.context_length
    }

    fn prefill(&self, prompt: &[u32], cancel: &CancelToken) -> Result<usize, ModelError> {
        let mut engine = self
            .engine
            .lock()
            .map_err(|_| ModelError::Runtime("model engine poisoned".into()))?;
        // Background work is interrupted in flight by the request that cancels it.
        let _armed = engine.interrupt.arm(cancel);
        let chunk = self
            .prefill_cost_per_token()
            .map_or(BACKGROUND_CHUNK, |cost| {
                let fits = BACKGROUND_STEP_TIME.as_nanos() / cost.as_nanos().max(1);
                usize::try_from(fits)
                    .unwrap_or(BACKGROUND_CHUNK)
                    .clamp(BACKGROUND_CHUNK_MIN, BACKGROUND_CHUNK)
            });
        // Each step is measured as it ends: the prefill after `didOpen` is usually still running
        // (or cut short) when the first request comes, and that request needs the measurement.
        engine.warm(prompt, chunk, cancel, &mut |tokens, took| {
            self.note_prefill(tokens, took)
        })
    }

    fn cached_prefix(&self, prompt: &[u32]) -> usize {
        self.engine
            .lock()
            .map_or(0, |engine| engine.longest_cached(prompt))
    }

    fn prefill_cost_per_token(&self) -> Option<Duration> {
        match self.prefill_ns_per_token.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    fn generate(
        &self,
        req: &GenerateRequest<'_>,
        cancel: &CancelToken,
    ) -> Result<Generation, ModelError> {
        let start = Instant::now();
        req.check_fits(self.context_length())?;
        let mut engine = self
            .engine
            .lock()
            .map_err(|_| ModelError::Runtime("model engine poisoned".into()))?;
        if cancel.is_cancelled() {
            return Err(ModelError::Cancelled);
        }
        let prefill_start = Instant::now();
        // A request's prompt steps are not interrupted, only stopped between steps: the next
        // keystroke's prompt is mostly this one, and a finished step is work it reuses (typing
        // at 80 ms a key would otherwise never finish a 256-token step).
        let (logits, reused) = engine.prefill(&req.prompt, cancel)?;
        let computed = req.prompt.len() - reused;
        self.note_prefill(computed, prefill_start.elapsed());
        // Decoding for a cancelled request is waste: stopped in flight.
        let _armed = engine.interrupt.arm(cancel);
        let mut speculate = self.speculation.load(Ordering::Relaxed) && engine.last_k_rows;
        // Prompt and generated tokens: where drafts are looked up.
        let mut history = if speculate {
            req.prompt.clone()
        } else {
            Vec::new()
        };
        let margin_floor = f32::from_bits(self.verify_margin.load(Ordering::Relaxed));
        let vocab = logits.len();
        // The logits not yet decoded from, one row per position the last run fed; when that run
        // verified a draft, `fed` holds what it fed (the token before the draft, then the draft):
        // row `at` follows `fed[at]`, and `fed[at + 1]` is the draft's guess for its choice.
        let mut rows = logits;
        let mut at = 0;
        let mut fed: Vec<u32> = Vec::new();
        // Draft length, following the acceptance of the drafts so far.
        let mut budget = speculate::DraftBudget::default();
        let mut time_to_first_token = None;
        let mut tokens = Vec::new();
        let mut bytes = Vec::new();
        let mut finish = FinishReason::MaxTokens;
        let counters = &self.counters;
        while tokens.len() < req.max_new_tokens {
            if cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            // Exactly plain greedy decoding's choice on this position's logits.
            let (id, margin) = pick_token_with_margin(
                &rows[at * vocab..(at + 1) * vocab],
                &self.tokenizer,
                tokens.is_empty(),
                &req.first_token_prefix,
            );
            if !fed.is_empty() && margin < margin_floor {
                // A near tie in a row computed with others: a batched run rounds differently
                // from a one-token step (int8 kernels), enough to flip it. Recompute the row as
                // plain decoding does, from the same cache.
                let keep = engine.cached.len() - (fed.len() - at);
                engine.rewind(keep)?;
                let token = fed[at];
                fed.clear();
                at = 0;
                bump(&counters.recomputed, 1);
                bump(&counters.model_steps, 1);
                rows = engine.step(&[token])?;
                continue;
            }
            time_to_first_token.get_or_insert_with(|| start.elapsed());
            bump(&counters.generated, 1);
            if self.tokenizer.is_stop(id) {
                finish = FinishReason::StopToken;
                break;
            }
            if req.push_token(&self.tokenizer, id, &mut tokens, &mut bytes) {
                finish = FinishReason::StopCheck;
                break;
            }
            if tokens.len() >= req.max_new_tokens {
                break;
            }
            if speculate {
                history.push(id);
            }
            if let Some(&guess) = fed.get(at + 1) {
                if guess == id {
                    // The draft was right: the cache holds `id` and the next row follows it.
                    bump(&counters.accepted, 1);
                    at += 1;
                    continue;
                }
                // Wrong from here on: drop the draft's rows from `guess` on.
                budget.rejected_after(at);
                let keep = engine.cached.len() - (fed.len() - at - 1);
                engine.rewind(keep)?;
            } else if !fed.is_empty() {
                budget.accepted_all();
            }
            fed.clear();
            at = 0;
            if engine.cached.len() + 1 >= engine.capacity {
                finish = FinishReason::ContextFull;
                break;
            }
            // Draft no further than plain decoding would go: the token budget (one more token
            // comes from the last row) and the context (every fed token leaves the room plain
            // decoding's check above asks for).
            let room = (req.max_new_tokens - tokens.len())
                .saturating_sub(1)
                .min(engine.capacity.saturating_sub(engine.cached.len() + 2))
                .min(budget.len());
            let draft = if speculate {
                speculate::draft(&history, room)
            } else {
                Vec::new()
            };
            bump(&counters.model_steps, 1);
            if draft.is_empty() {
                rows = engine.step(&[id])?;
                continue;
            }
            bump(&counters.verify_steps, 1);
            bump(&counters.drafted, draft.len() as u64);
            fed.push(id);
            fed.extend_from_slice(&draft);
            let base = engine.cached.len();
            match engine.step_rows(&fed)? {
                Some(all) => rows = all,
                None => {
                    // The graph returned only the last row after all: no drafts from now on.
                    engine.last_k_rows = false;
                    speculate = false;
                    engine.rewind(base)?;
                    fed.clear();
                    rows = engine.step(&[id])?;
                }
            }
        }
        // Unverified draft tokens leave the cache: it holds what plain decoding leaves.
        if at + 1 < fed.len() {
            let keep = engine.cached.len() - (fed.len() - at - 1);
            engine.rewind(keep)?;
        }
        Ok(Generation {
            tokens,
            bytes,
            finish,
            reused_tokens: reused,
            computed_tokens: computed,
            time_to_first_token: time_to_first_token.unwrap_or_else(|| start.elapsed()),
            total_time: start.elapsed(),
        })
    }
}
