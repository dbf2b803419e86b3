//! llama.cpp's `llama-bench` on the same weights (the GGUF the default model was imported from),
//! run beside moat's own measurements so that both share the machine's state (bench/README.md).
//!
//! The keystroke step is `llama-bench -p 1 -n 8 -d DEPTH`: llama-bench times the one-token
//! prefill (pp1) and the 8-token generation (tg8) as two tests at that depth; the step is the sum
//! of their means. TTFT is `-p N -n 0` (the prefill of N tokens from an empty cache).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The GGUF to run: `explicit`, else the newest `*.gguf` in moat's downloads folder (where
/// `scripts/setup.sh` keeps the file the default model was imported from).
pub fn find_gguf(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let dir = moat_model::data_dir()
        .map(|d| d.join("downloads"))
        .context("no data folder (set MOAT_HOME)")?;
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, p)| p)
        .with_context(|| format!("no .gguf in {} (pass --gguf)", dir.display()))
}

/// One llama-bench run: its JSON results and its peak RSS (MiB, sampled from /proc).
fn run(
    bin: &Path,
    gguf: &Path,
    threads: usize,
    poll: u8,
    args: &[&str],
) -> Result<(Vec<Value>, Option<f64>)> {
    let mut child = Command::new(bin)
        .arg("-m")
        .arg(gguf)
        .args([
            "-t",
            &threads.to_string(),
            "--poll",
            &poll.to_string(),
            "-o",
            "json",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak: Option<f64> = None;
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stdout {
            let _ = std::io::Read::read_to_string(&mut s, &mut text);
        }
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(kib) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        }) {
            peak = Some(peak.unwrap_or(0.0).max(kib / 1024.0));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("{} exited with {status}", bin.display());
    }
    let results: Vec<Value> = serde_json::from_str(&text).with_context(|| {
        format!(
            "llama-bench printed no JSON: {}",
            text.chars().take(200).collect::<String>()
        )
    })?;
    Ok((results, peak))
}

fn mean_ms(results: &[Value], prompt: u64, generated: u64) -> Option<f64> {
    results
        .iter()
        .find(|r| r["n_prompt"].as_u64() == Some(prompt) && r["n_gen"].as_u64() == Some(generated))
        .and_then(|r| r["avg_ns"].as_f64())
        .map(|ns| ns / 1e6)
}

pub struct Step {
    /// pp1 + tg`generated` at `depth`, ms.
    pub ms: f64,
    /// Decode speed of the tg test, tokens/s.
    pub tokens_per_s: f64,
    pub peak_rss_mib: Option<f64>,
}

/// The keystroke step: `-p 1 -n GENERATED -d DEPTH`, `repetitions` each.
pub fn keystroke_step(
    bin: &Path,
    gguf: &Path,
    threads: usize,
    poll: u8,
    depth: usize,
    generated: usize,
    repetitions: usize,
) -> Result<Step> {
    let (results, peak) = run(
        bin,
        gguf,
        threads,
        poll,
        &[
            "-p",
            "1",
            "-n",
            &generated.to_string(),
            "-d",
            &depth.to_string(),
            "-r",
            &repetitions.to_string(),
        ],
    )?;
    let pp = mean_ms(&results, 1, 0).context("llama-bench gave no pp1 result")?;
    let tg = mean_ms(&results, 0, generated as u64).context("llama-bench gave no tg result")?;
    Ok(Step {
        ms: pp + tg,
        tokens_per_s: generated as f64 / (tg / 1000.0),
        peak_rss_mib: peak,
    })
}

/// Prompt tokens and their prefill time, ms.
pub type PrefillTime = (usize, f64);

/// Prefill time of each of `lengths` tokens from an empty cache (`-p N -n 0`), ms.
pub fn ttft(
    bin: &Path,
    gguf: &Path,
    threads: usize,
    poll: u8,
    lengths: &[usize],
    repetitions: usize,
) -> Result<(Vec<PrefillTime>, Option<f64>)> {
    let list = lengths
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let (results, peak) = run(
        bin,
        gguf,
        threads,
        poll,
        &["-p", &list, "-n", "0", "-r", &repetitions.to_string()],
    )?;
    let out = lengths
        .iter()
        .filter_map(|&n| Some((n, mean_ms(&results, n as u64, 0)?)))
        .collect();
    Ok((out, peak))
}
