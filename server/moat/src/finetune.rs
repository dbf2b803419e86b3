//! `moat finetune --data DIR [--base NAME] --out NAME [--budget 10m|50k tokens]`: LoRA
//! fine-tuning of an installed model on a data set from `moat dataset build`, exported as a new
//! installed model.
//!
//! Owns: resolving the base model (by default the one the data set was built for), the budget
//! syntax, running the pipeline's `finetune_lora.py` (train, merge, export through the import,
//! atomic registration), and the final proof that moat loads and runs the result.
//! Must not: leave a model moat cannot load where it looks for models: the script registers the
//! folder only once the export passed its checks, and this module removes it if the server's
//! backend then fails to load it. An interrupted run (Ctrl-C, SIGTERM) registers nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args)]
pub struct FinetuneArgs {
    /// A data set folder written by `moat dataset build`.
    #[arg(long)]
    pub data: PathBuf,
    /// The model to fine-tune: an installed model's name or a model folder (default: the model
    /// the data set was built for). Its tokenizer must be the data set's.
    #[arg(long)]
    pub base: Option<String>,
    /// Name of the new model (installed as `<models dir>/NAME`).
    #[arg(long)]
    pub out: String,
    /// When to stop training and export: a time (`90s`, `10m`, `1h`) or tokens seen (`50000
    /// tokens`, `200k tokens`, `1M tok`). The export comes on top of the time.
    #[arg(long, default_value = "10m")]
    pub budget: String,
    /// Stop after this many optimizer steps even when budget is left.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Learning rate of the LoRA adapters.
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// LoRA rank.
    #[arg(long, default_value_t = 16)]
    pub rank: u32,
    /// Tokens per micro-batch (padded); one optimizer step each.
    #[arg(long, default_value_t = 2048)]
    pub batch_tokens: u32,
    /// Held-out samples whose loss is measured before and after training (0: none; on a CPU
    /// each costs a forward pass of the base model).
    #[arg(long, default_value_t = 16)]
    pub heldout_samples: u32,
    /// CPU threads for training.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// bfloat16 autocast in the forward pass: about twice as fast on CPUs with AVX512-BF16 or
    /// AMX (measured 23 s against 44 s for a 355-token step of Qwen2.5-Coder-0.5B, 2 threads).
    #[arg(long)]
    pub bf16: bool,
    /// Where to train: `auto` uses a GPU when PyTorch sees one, else the CPU.
    #[arg(long, default_value = "auto", value_parser = ["auto", "cpu", "cuda"])]
    pub device: String,
    /// Export precision (default: the base model's).
    #[arg(long, value_enum)]
    pub precision: Option<crate::model_cmd::Precision>,
    /// Where models live (default: <data dir>/models, i.e. $MOAT_HOME/models).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Python with the model pipeline installed (default: MOAT_PYTHON, else
    /// model-assets/train/.venv/bin/python next to or above the binary).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Path to libonnxruntime for the final load check.
    #[arg(long)]
    pub onnxruntime: Option<PathBuf>,
}

/// A compute budget: wall-clock seconds of training, or tokens seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    Seconds(f64),
    Tokens(u64),
}

/// Parses `90s`, `10m`, `1.5h`, `600` (seconds), `50000 tokens`, `200k tokens`, `1M tok`.
pub fn parse_budget(text: &str) -> Result<Budget> {
    let t = text.trim().to_ascii_lowercase();
    let bad = || {
        anyhow::anyhow!(
            "bad --budget {text:?}: give a time (90s, 10m, 1h) or tokens (50000 tokens, 200k tokens)"
        )
    };
    let number = |s: &str| -> Result<f64> {
        let s = s.trim();
        let (digits, scale) = match s.chars().last() {
            Some('k') => (&s[..s.len() - 1], 1e3),
            Some('m') => (&s[..s.len() - 1], 1e6),
            Some('g') | Some('b') => (&s[..s.len() - 1], 1e9),
            _ => (s, 1.0),
        };
        let value: f64 = digits.trim().parse().map_err(|_| bad())?;
        if !value.is_finite() || value <= 0.0 {
            return Err(bad());
        }
        Ok(value * scale)
    };
    for unit in ["tokens", "token", "tok"] {
        if let Some(n) = t.strip_suffix(unit) {
            return Ok(Budget::Tokens(number(n)?.round() as u64));
        }
    }
    let (digits, scale) = if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = t.strip_suffix("min") {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t.as_str(), 1.0)
    };
    let value: f64 = digits.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 {
        return Err(bad());
    }
    Ok(Budget::Seconds(value * scale))
}

/// The base model: `--base`, else the model the data set names (dataset.json).
fn base_model(args: &FinetuneArgs) -> Result<PathBuf> {
    if args.base.is_some() {
        return crate::dataset::resolve_model(args.base.as_deref());
    }
    let manifest = args.data.join("dataset.json");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!(
            "{} is not a data set from `moat dataset build` (cannot read {})",
            args.data.display(),
            manifest.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", manifest.display()))?;
    let folder = value["base"]["folder"]
        .as_str()
        .context("the data set names no base model: pass --base NAME")?;
    let folder = PathBuf::from(folder);
    if !folder.join("model.toml").is_file() {
        bail!(
            "the data set's base model {} is gone: pass --base NAME",
            folder.display()
        );
    }
    Ok(folder)
}

pub fn run(args: &FinetuneArgs) -> Result<()> {
    let started = Instant::now();
    let budget = parse_budget(&args.budget)?;
    if !args.data.join("dataset.json").is_file() {
        bail!(
            "{} is not a data set from `moat dataset build` (no dataset.json)",
            args.data.display()
        );
    }
    let base = base_model(args)?;
    let pipeline = crate::model_cmd::pipeline_dir().context(
        "model-assets/train/finetune_lora.py not found next to or above the moat binary",
    )?;
    let python = crate::model_cmd::python(args.python.as_deref(), &pipeline)?;
    let models = match &args.models_dir {
        Some(dir) => dir.clone(),
        None => moat_model::models_dir().context("cannot tell where models live: set MOAT_HOME")?,
    };
    std::fs::create_dir_all(&models)
        .with_context(|| format!("cannot create {}", models.display()))?;
    let mut cmd = Command::new(&python);
    cmd.arg(pipeline.join("finetune_lora.py"))
        .arg("--data")
        .arg(std::path::absolute(&args.data)?)
        .arg("--base")
        .arg(std::path::absolute(&base)?)
        .arg("--name")
        .arg(&args.out)
        .arg("--models-dir")
        .arg(std::path::absolute(&models)?)
        .arg("--lr")
        .arg(args.lr.to_string())
        .arg("--rank")
        .arg(args.rank.to_string())
        .arg("--alpha")
        .arg((2 * args.rank).to_string())
        .arg("--batch-tokens")
        .arg(args.batch_tokens.to_string())
        .arg("--threads")
        .arg(args.threads.to_string());
    match budget {
        Budget::Seconds(s) => cmd.arg("--budget-seconds").arg(format!("{s}")),
        Budget::Tokens(n) => cmd.arg("--budget-tokens").arg(n.to_string()),
    };
    if let Some(steps) = args.steps {
        cmd.arg("--steps").arg(steps.to_string());
    }
    if args.bf16 {
        cmd.arg("--bf16");
    }
    cmd.arg("--device").arg(&args.device);
    cmd.arg("--heldout-samples")
        .arg(args.heldout_samples.to_string());
    if let Some(p) = args.precision {
        cmd.arg("--precision")
            .arg(format!("{p:?}").to_ascii_lowercase());
    }
    let (folder, check) = crate::model_cmd::install_with(
        &mut cmd,
        &python,
        &crate::model_cmd::Installing {
            script: "fine-tune",
            failed: "the fine-tune failed or was interrupted",
            left: "no model was registered",
            model: "fine-tuned",
        },
        args.onnxruntime.clone(),
    )?;
    let summary = summary(&folder).unwrap_or_default();
    eprintln!(
        "moat finetune: {} ready in {:.0} s ({summary}; {check}). Use it in a workspace with \
         `model = \"{}\"` in .moat.toml, or --model {}",
        folder.display(),
        started.elapsed().as_secs_f64(),
        folder.file_name().and_then(|n| n.to_str()).unwrap_or(""),
        folder.display(),
    );
    crate::print_out(&serde_json::to_string(&serde_json::json!({
        "model": folder.display().to_string(),
    }))?);
    Ok(())
}

/// One line from the model's finetune.json: steps, tokens, time, held-out loss.
fn summary(folder: &Path) -> Option<String> {
    let text = std::fs::read_to_string(folder.join("finetune.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let loss = match (
        v["heldout_loss_before"].as_f64(),
        v["heldout_loss_after"].as_f64(),
    ) {
        (Some(a), Some(b)) => format!(", held-out loss {a:.3} → {b:.3}"),
        _ => String::new(),
    };
    Some(format!(
        "{} steps, {} tokens in {:.0} s, stopped by {}{loss}",
        v["steps"],
        v["tokens_seen"],
        v["train_seconds"].as_f64().unwrap_or(0.0),
        v["stopped"].as_str().unwrap_or("?"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets() {
        assert_eq!(parse_budget("10m").unwrap(), Budget::Seconds(600.0));
        assert_eq!(parse_budget("90s").unwrap(), Budget::Seconds(90.0));
        assert_eq!(parse_budget("1.5h").unwrap(), Budget::Seconds(5400.0));
        assert_eq!(parse_budget("45").unwrap(), Budget::Seconds(45.0));
        assert_eq!(parse_budget("20 min").unwrap(), Budget::Seconds(1200.0));
        assert_eq!(
            parse_budget("50000 tokens").unwrap(),
            Budget::Tokens(50_000)
        );
        assert_eq!(
            parse_budget("200k tokens").unwrap(),
            Budget::Tokens(200_000)
        );
        assert_eq!(parse_budget("1M tok").unwrap(), Budget::Tokens(1_000_000));
        for bad in ["", "ten minutes", "-5m", "0s", "k tokens", "nan"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }
}
