//! `moat`: the command-line edge. `serve` (LSP over stdio), `complete` (one completion from the
//! CLI, same pipeline), `doctor` (what is installed, what is broken), `eval` / `dataset` / `bench`
//! (quality and speed, measured by the product itself).

mod bench;
mod dataset;
mod eval;
mod exit;
mod finetune;
mod malloc;
mod model_cmd;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use moat_complete::{CompletionInput, CompletionSettings, complete};
use moat_model::{Backend, CancelToken, OnnxBackend, OnnxOptions};
use moat_syntax::{Language, SyntaxTree};
use moat_text::{Document, Position, PositionEncoding};

#[derive(Parser)]
#[command(
    name = "moat",
    version,
    about = "Private, codebase-aware code completion: an LSP server with its own model"
)]
struct Cli {
    /// Write logs to this file instead of stderr (level from MOAT_LOG, e.g. `debug`).
    #[arg(long, global = true)]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Parser, Clone)]
struct ModelArgs {
    /// Model folder (with model.toml) or manifest file. Default: MOAT_MODEL, else the installed
    /// default ($MOAT_HOME/models/default), else the bundled tiny model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Threads for the model; 0 = the model's recommendation (`[runtime] threads` in model.toml),
    /// else 2.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Path to libonnxruntime (default: ORT_DYLIB_PATH, then moat's install folder).
    #[arg(long)]
    onnxruntime: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve LSP over stdin/stdout.
    Serve {
        /// Model folder used when the client does not set moat.modelPath.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Accepted for editor compatibility; stdio is the only transport.
        #[arg(long, hide = true)]
        stdio: bool,
    },
    /// Complete at FILE:LINE:COL (1-based line and column, column in characters) and print the suggestion.
    Complete {
        location: String,
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, default_value_t = 64)]
        max_tokens: usize,
        /// Print JSON with timings instead of the bare suggestion.
        #[arg(long)]
        json: bool,
    },
    /// Check the installation: ONNX Runtime, model, tokenizer, grammars.
    Doctor {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Measure completion quality on a task file (JSON lines), through the server's pipeline.
    Eval(eval::EvalArgs),
    /// Build evaluation data sets from local source code.
    #[command(subcommand)]
    Dataset(dataset::DatasetCommand),
    /// Import open-weight models (transformers folder or GGUF) and list the installed ones.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Fine-tune an installed model on a data set from `moat dataset build` (LoRA, merged and
    /// exported as a new installed model).
    Finetune(finetune::FinetuneArgs),
    /// Measure speed, memory and cost of the model on this machine.
    Bench(bench::BenchArgs),
    /// Acceptance of suggestions (by language, length, latency) from the recorded feedback.
    Stats(stats::StatsArgs),
    /// Index a workspace (what the server does in the background) and print its statistics.
    Index {
        path: PathBuf,
        /// Where the index lives (default: the user's cache dir, per workspace).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
}

fn init_logging(log_file: Option<&Path>) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MOAT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            builder.with_writer(std::sync::Mutex::new(file)).init();
        }
        // Never stdout: it is the protocol channel.
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

/// The default model: MOAT_MODEL, then the installed default (`<data dir>/models/default`, set
/// up by `scripts/setup.sh` or `moat model import --default`), then the bundled tiny tier
/// (`model-assets/default` next to or above the binary).
pub(crate) fn default_model() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOAT_MODEL") {
        return Some(PathBuf::from(p));
    }
    if let Some(installed) = moat_model::models_dir().map(|d| d.join("default"))
        && installed.join("model.toml").is_file()
    {
        return Some(installed);
    }
    bundled_model()
}

/// Where the model `moat doctor` checks comes from, when the user did not name one.
fn default_note(explicit: &Option<PathBuf>) -> String {
    if explicit.is_some() {
        return String::new();
    }
    if std::env::var_os("MOAT_MODEL").is_some() {
        return " [from MOAT_MODEL]".into();
    }
    match moat_model::models_dir().map(|d| d.join("default")) {
        Some(d) if d.join("model.toml").is_file() => {
            let target = std::fs::read_link(&d).unwrap_or(d);
            format!(" [installed default → {}]", target.display())
        }
        _ => {
            " [bundled tiny model: the real default is not installed; run scripts/setup.sh]".into()
        }
    }
}

/// The tiny model that ships in the repository (`model-assets/default`).
fn bundled_model() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .map(|dir| dir.join("model-assets/default"))
        .find(|candidate| candidate.join("model.toml").is_file())
}

fn model_path(arg: &Option<PathBuf>) -> Result<PathBuf> {
    arg.clone().or_else(default_model).context(
        "no model found: pass --model DIR, set MOAT_MODEL, or run scripts/setup to install the default model",
    )
}

fn load_backend(args: &ModelArgs) -> Result<OnnxBackend> {
    let path = model_path(&args.model)?;
    let options = OnnxOptions {
        threads: args.threads,
        ort_library: args.onnxruntime.clone(),
    };
    OnnxBackend::load(&path, &options)
        .with_context(|| format!("cannot load the model {}", path.display()))
}

/// The manifest's model, in-process (`[onnx]`) or on its `[remote]` server.
fn load_any_backend(args: &ModelArgs) -> Result<std::sync::Arc<dyn Backend>> {
    let path = model_path(&args.model)?;
    let options = OnnxOptions {
        threads: args.threads,
        ort_library: args.onnxruntime.clone(),
    };
    moat_model::load_backend(&path, &options, false)
        .with_context(|| format!("cannot load the model {}", path.display()))
}

fn parse_location(location: &str) -> Result<(PathBuf, u32, u32)> {
    let mut parts = location.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    let (Some(col), Some(line), Some(file)) = (col, line, file) else {
        bail!("expected FILE:LINE:COL, got {location:?}");
    };
    let line: u32 = line
        .parse()
        .with_context(|| format!("bad line number {line:?}"))?;
    let col: u32 = col.parse().with_context(|| format!("bad column {col:?}"))?;
    if line == 0 || col == 0 {
        bail!("LINE and COL are 1-based");
    }
    Ok((PathBuf::from(file), line - 1, col - 1))
}

fn run_complete(location: &str, args: &ModelArgs, max_tokens: usize, json: bool) -> Result<()> {
    let (file, line, col) = parse_location(location)?;
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
    let doc = Document::new(&text, 0, "");
    let cursor = doc
        .offset(
            Position {
                line,
                character: col,
            },
            PositionEncoding::Utf32,
        )
        .with_context(|| format!("{location}: position out of range"))?;
    let language = Language::from_path(&file);
    let tree = language.and_then(|l| SyntaxTree::parse(l, &text));
    let backend = load_any_backend(args)?;
    let settings = CompletionSettings {
        max_new_tokens: max_tokens,
        ..Default::default()
    };
    let path = file.display().to_string();
    let input = CompletionInput {
        path: Some(&path),
        text: &text,
        cursor,
        language,
        tree: tree.as_ref(),
        snippets: &[],
    };
    let result = complete(&input, &settings, backend.as_ref(), &CancelToken::new())?;
    if json {
        let out = serde_json::json!({
            "suggestion": result.text,
            "mode": result.mode.map(|m| format!("{m:?}")),
            "skipped": result.skipped,
            "prompt_tokens": result.prompt_tokens,
            "generated_tokens": result.generated_tokens,
            "elapsed_ms": result.elapsed.as_secs_f64() * 1000.0,
            "model": backend.describe(),
        });
        print_out(&serde_json::to_string_pretty(&out)?);
    } else {
        print_out(&result.text);
    }
    Ok(())
}

fn run_index(root: &Path, cache_dir: Option<&Path>) -> Result<()> {
    let cache = cache_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| moat_index::default_cache_dir(root));
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} files ({elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("indexing {}", root.display()));
    let started = std::time::Instant::now();
    let stats = moat_index::index_path(root, &cache, &mut |p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
    })
    .with_context(|| format!("cannot index {}", root.display()))?;
    bar.finish_and_clear();
    print_out(&serde_json::to_string_pretty(&serde_json::json!({
        "root": root.display().to_string(),
        "cache_dir": cache.display().to_string(),
        "seconds": started.elapsed().as_secs_f64(),
        "stats": format!("{stats:?}"),
    }))?);
    Ok(())
}

/// `println!` through [`print_out`]: `moat doctor | head` must not panic on the closed pipe.
macro_rules! print_line {
    ($($arg:tt)*) => {
        print_out(&format!($($arg)*))
    };
}

/// Prints a line to stdout; a closed pipe (`moat complete … | head`) is not an error.
pub(crate) fn print_out(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn run_doctor(args: &ModelArgs) -> Result<()> {
    let mut ok = true;
    match moat_model::init_onnxruntime(args.onnxruntime.as_deref()) {
        Ok((lib, _)) => {
            let info = moat_model::build_info().unwrap_or_default();
            let name = lib
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let version = name
                .split(".so.")
                .nth(1)
                .unwrap_or("(version not in file name)");
            print_line!(
                "onnxruntime: ok   {version} {} (from {})\n             {info}",
                lib.path.display(),
                lib.source
            );
        }
        Err(e) => {
            print_line!("onnxruntime: MISSING\n  {e}");
            ok = false;
        }
    }
    match model_path(&args.model) {
        Ok(path) => match moat_model::Manifest::load(&path) {
            Ok(manifest) => {
                print_line!(
                    "model:       {} ({}){}",
                    manifest.model.name,
                    path.display(),
                    default_note(&args.model)
                );
                match load_any_backend(args) {
                    Ok(backend) => print_line!(
                        "             ok   {}; tokenizer: {} tokens; context {}",
                        backend.describe(),
                        backend.tokenizer().vocab_size(),
                        backend.context_length()
                    ),
                    Err(e) => {
                        print_line!("             BROKEN: {e:#}");
                        ok = false;
                    }
                }
            }
            Err(e) => {
                print_line!("model:       BROKEN: {e}");
                ok = false;
            }
        },
        Err(e) => {
            print_line!("model:       MISSING: {e:#}");
            ok = false;
        }
    }
    let mut langs = Vec::new();
    for lang in Language::all() {
        match lang.check_queries() {
            Ok(()) => langs.push(lang.name().to_string()),
            Err(e) => {
                print_line!("grammar:     BROKEN {}: {e}", lang.name());
                ok = false;
            }
        }
    }
    print_line!("languages:   {}", langs.join(", "));
    if !ok {
        bail!("moat doctor found problems (see above)");
    }
    print_line!("all good");
    Ok(())
}

fn main() -> ExitCode {
    malloc::configure();
    let cli = Cli::parse();
    if let Err(e) = init_logging(cli.log_file.as_deref()) {
        eprintln!("moat: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match &cli.command {
        Command::Serve { model, .. } => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("moat: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let model = model.clone().or_else(default_model);
            let outcome = runtime.block_on(moat_lsp::serve_stdio(model));
            // Every job is cancelled by now; give blocking threads a moment to leave ONNX
            // Runtime and the index writer (a model load or an index refresh may take longer:
            // those are not waited for), then end without C++ static destructors (`exit`).
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            exit::exit_now(match outcome {
                moat_lsp::ServeOutcome::CleanExit => 0,
                moat_lsp::ServeOutcome::ExitWithoutShutdown => 1,
            });
        }
        Command::Complete {
            location,
            model,
            max_tokens,
            json,
        } => run_complete(location, model, *max_tokens, *json),
        Command::Doctor { model } => run_doctor(model),
        Command::Eval(args) => eval::run(args),
        Command::Dataset(command) => dataset::run(command),
        Command::Bench(args) => bench::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Model(command) => model_cmd::run(command),
        Command::Finetune(args) => finetune::run(args),
        Command::Index { path, cache_dir } => run_index(path, cache_dir.as_deref()),
    };
    // Every command ends through `exit_now`: ONNX Runtime's C++ destructors must not run at exit.
    match result {
        Ok(()) => exit::exit_now(0),
        Err(e) => {
            eprintln!("moat: {e:#}");
            exit::exit_now(1)
        }
    }
}
