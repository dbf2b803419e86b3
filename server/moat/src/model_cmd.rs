//! `moat model`: import an open-weight model (transformers folder or GGUF) and list the installed
//! ones.
//!
//! The conversion itself (dequantize, onnxruntime-genai's builder, manifest, logits check,
//! template measurement) is Python and lives with the rest of the model pipeline in
//! `model-assets/train/import_model.py`; this module finds that script and its virtualenv, runs
//! it with progress on stderr, then proves the result by loading it the way the server does and
//! generating a few tokens. The script writes into a temporary folder and renames it at the end,
//! so an interrupted import never leaves a half-written model where moat looks for models.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use moat_model::{Backend, CancelToken, GenerateRequest, OnnxBackend, OnnxOptions};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Import a transformers model folder or a GGUF file: ONNX export, model.toml, checks.
    Import(ImportArgs),
    /// List the installed models (and which one is the default).
    List,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Precision {
    Int4,
    Int8,
    Fp32,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Template {
    /// Measure SPM, PSM and prefix-only on the built-in tasks and keep the best.
    Auto,
    Spm,
    Psm,
    Prefix,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A transformers model folder (config.json + weights + tokenizer) or a GGUF file.
    pub src: PathBuf,
    /// Name of the model folder (default: the GGUF's general.name or the folder's name).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, value_enum, default_value_t = Precision::Int4)]
    pub precision: Precision,
    /// int4/int8 quantization block size (32, 64, 128 or 256).
    #[arg(long, default_value_t = 128)]
    pub block_size: u32,
    /// FIM template; `auto` chooses by measurement.
    #[arg(long, value_enum, default_value_t = Template::Auto)]
    pub template: Template,
    /// Most tokens moat's KV cache holds for this model (capped by the model's own limit).
    #[arg(long, default_value_t = 2048)]
    pub context_length: usize,
    /// Expected sha256 of a GGUF source, checked before anything else.
    #[arg(long)]
    pub sha256: Option<String>,
    /// Where models live (default: <data dir>/models, i.e. $MOAT_HOME/models).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Make it the default model (`<models dir>/default`).
    #[arg(long)]
    pub default: bool,
    /// Redo the import even when the model is up to date.
    #[arg(long)]
    pub force: bool,
    /// Python with the model pipeline installed (default: MOAT_PYTHON, else
    /// model-assets/train/.venv/bin/python next to or above the binary).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Path to libonnxruntime for the final load check.
    #[arg(long)]
    pub onnxruntime: Option<PathBuf>,
}

pub fn run(command: &ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Import(args) => import(args),
        ModelCommand::List => list(),
    }
}

fn models_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(moat_model::models_dir)
        .context("cannot tell where models live: set MOAT_HOME or HOME")
}

/// The model pipeline's folder (`model-assets/train`) next to or above the binary.
pub(crate) fn pipeline_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .map(|d| d.join("model-assets/train"))
        .find(|d| d.join("import_model.py").is_file())
}

pub(crate) fn python(explicit: Option<&Path>, pipeline: &Path) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("MOAT_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let venv = pipeline.join(".venv/bin/python");
    if venv.is_file() {
        return Ok(venv);
    }
    bail!(
        "the model pipeline's Python is not installed: run {}/setup.sh (or pass --python)",
        pipeline.display()
    )
}

fn import(args: &ImportArgs) -> Result<()> {
    let started = Instant::now();
    let pipeline = pipeline_dir()
        .context("model-assets/train/import_model.py not found next to or above the moat binary")?;
    let python = python(args.python.as_deref(), &pipeline)?;
    let models = models_dir(args.models_dir.as_deref())?;
    std::fs::create_dir_all(&models)
        .with_context(|| format!("cannot create {}", models.display()))?;
    let src = std::path::absolute(&args.src)
        .with_context(|| format!("bad source path {}", args.src.display()))?;
    let mut cmd = Command::new(&python);
    cmd.arg(pipeline.join("import_model.py"))
        .arg(&src)
        .arg("--models-dir")
        .arg(&models)
        .arg("--precision")
        .arg(format!("{:?}", args.precision).to_lowercase())
        .arg("--block-size")
        .arg(args.block_size.to_string())
        .arg("--template")
        .arg(format!("{:?}", args.template).to_lowercase())
        .arg("--context-length")
        .arg(args.context_length.to_string());
    if let Some(name) = &args.name {
        cmd.arg("--name").arg(name);
    }
    if let Some(hash) = &args.sha256 {
        cmd.arg("--sha256").arg(hash);
    }
    if args.force {
        cmd.arg("--force");
    }
    let (folder, check) = install_with(
        &mut cmd,
        &python,
        &Installing {
            script: "import",
            failed: "the import failed",
            left: "nothing was installed",
            model: "imported",
        },
        args.onnxruntime.clone(),
    )?;
    if args.default {
        set_default(&models, &folder)?;
    }
    eprintln!(
        "moat model import: {} ready in {:.0} s ({check}){}",
        folder.display(),
        started.elapsed().as_secs_f64(),
        if args.default {
            "; now the default"
        } else {
            ""
        }
    );
    crate::print_out(&serde_json::to_string(&serde_json::json!({
        "model": folder.display().to_string(),
        "default": args.default,
    }))?);
    Ok(())
}

/// What [`install_with`] says about the script it runs.
pub(crate) struct Installing {
    /// The script, in errors: "import" → "the import script's reply is not JSON".
    pub script: &'static str,
    /// The failure, before its exit status: "the import failed".
    pub failed: &'static str,
    /// What a failure leaves, after its exit status: "nothing was installed".
    pub left: &'static str,
    /// The model, in the load check's error: "imported" → "moat cannot load the imported model".
    pub model: &'static str,
}

/// Runs a model-pipeline script that installs a model (its progress goes to stderr as it writes
/// it; stdout ends with one JSON line naming the folder, `{"model": ...}`), then loads the result
/// as the server would and generates: a model moat cannot load is removed, never left where moat
/// looks for models. Returns the folder and the load check's summary.
pub(crate) fn install_with(
    cmd: &mut Command,
    python: &Path,
    says: &Installing,
    ort_library: Option<PathBuf>,
) -> Result<(PathBuf, String)> {
    let output = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "{} (exit status {}); {}",
            says.failed,
            output.status.code().unwrap_or(-1),
            says.left
        );
    }
    let reply: serde_json::Value = serde_json::from_slice(
        output
            .stdout
            .split(|&b| b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap_or_default(),
    )
    .with_context(|| format!("the {} script's reply is not JSON", says.script))?;
    let folder = PathBuf::from(
        reply["model"]
            .as_str()
            .with_context(|| format!("the {} script named no model folder", says.script))?,
    );
    match load_check(&folder, ort_library) {
        Ok(check) => Ok((folder, check)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&folder);
            Err(e.context(format!(
                "moat cannot load the {} model; removed {}",
                says.model,
                folder.display()
            )))
        }
    }
}

/// Loads the model with the server's backend and greedily generates a few tokens.
pub(crate) fn load_check(folder: &Path, ort_library: Option<PathBuf>) -> Result<String> {
    let t = Instant::now();
    let backend = OnnxBackend::load(
        folder,
        &OnnxOptions {
            threads: 0,
            ort_library,
        },
    )?;
    let loaded = t.elapsed();
    let tok = backend.tokenizer();
    let prompt = tok.encode("def add(a, b):\n    return");
    let generation = backend.generate(
        &GenerateRequest {
            prompt,
            max_new_tokens: 4,
            first_token_prefix: Vec::new().into(),
            stop: None,
        },
        &CancelToken::new(),
    )?;
    if generation.tokens.is_empty() && generation.bytes.is_empty() {
        bail!("the model generated nothing for a plain prompt");
    }
    Ok(format!(
        "{}; loaded in {:.1} s, generated {:?}",
        backend.describe(),
        loaded.as_secs_f64(),
        String::from_utf8_lossy(&generation.bytes)
    ))
}

/// Points `<models>/default` at `folder` (a symlink swapped in atomically).
fn set_default(models: &Path, folder: &Path) -> Result<()> {
    let link = models.join("default");
    let tmp = models.join(format!(".default-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let target = folder
        .file_name()
        .map(PathBuf::from)
        .context("bad model folder")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    #[cfg(not(unix))]
    bail!("--default needs symlinks (unix)");
    std::fs::rename(&tmp, &link).with_context(|| format!("cannot update {}", link.display()))?;
    Ok(())
}

fn list() -> Result<()> {
    let models = models_dir(None)?;
    let default = std::fs::read_link(models.join("default")).ok();
    let mut rows = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&models) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "default" {
                continue;
            }
            let path = entry.path();
            let Ok(manifest) = moat_model::Manifest::load(&path) else {
                continue;
            };
            let report: serde_json::Value = std::fs::read(path.join("import.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            rows.push(serde_json::json!({
                "name": name,
                "model": manifest.model.name,
                "path": path.display().to_string(),
                "default": default.as_deref() == Some(Path::new(&name)),
                "precision": report["precision"],
                "template": report["template"]["chosen"],
                "source": report["source"]["path"],
            }));
        }
    }
    rows.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    crate::print_out(&serde_json::to_string_pretty(&serde_json::json!({
        "models_dir": models.display().to_string(),
        "models": rows,
    }))?);
    Ok(())
}
