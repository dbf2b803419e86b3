//! Finding and loading the ONNX Runtime shared library, once per process.
//!
//! The library is not linked at build time (`ort`'s `load-dynamic`): it comes from the
//! `onnxruntime` wheel on PyPI, installed by `scripts/setup` into moat's data folder. This module
//! owns the search order and the one process-wide ONNX Runtime environment.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::ModelError;

/// The ONNX Runtime release moat is built and tested against.
pub const ORT_VERSION: &str = "1.32.0";

/// Where the library was found and how.
#[derive(Debug, Clone)]
pub struct OrtLibrary {
    pub path: PathBuf,
    pub source: &'static str,
}

/// moat's data folder: `$MOAT_HOME`, else `${XDG_DATA_HOME:-~/.local/share}/moat`.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("MOAT_HOME") {
        Some(PathBuf::from(home))
    } else if let Some(data) = std::env::var_os("XDG_DATA_HOME") {
        Some(PathBuf::from(data).join("moat"))
    } else {
        Some(PathBuf::from(std::env::var_os("HOME")?).join(".local/share/moat"))
    }
}

/// Where imported models live (`moat model import`): `<data dir>/models/<name>`, with
/// `models/default` naming the default model.
pub fn models_dir() -> Option<PathBuf> {
    Some(data_dir()?.join("models"))
}

/// The installed default model, for the tests that need the real one: `MOAT_DEFAULT_MODEL_DIR`,
/// else `<models dir>/default`. `None`, with a `SKIPPED <test>` line on stderr, when no
/// `model.toml` is there; with `MOAT_REQUIRE_DEFAULT_MODEL=1` (scripts/test.sh sets it, so CI
/// fails instead of skipping) its absence panics.
#[doc(hidden)]
pub fn default_model_for_tests(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("MOAT_DEFAULT_MODEL_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(models_dir()?.join("default")));
    match dir.as_ref().filter(|d| d.join("model.toml").is_file()) {
        Some(dir) => Some(dir.clone()),
        None if std::env::var("MOAT_REQUIRE_DEFAULT_MODEL").as_deref() == Ok("1") => {
            panic!("{test}: no default model at {dir:?} and MOAT_REQUIRE_DEFAULT_MODEL=1")
        }
        None => {
            eprintln!(
                "SKIPPED {test}: no default model at {dir:?} (scripts/setup.sh installs it; \
                 MOAT_DEFAULT_MODEL_DIR names another)"
            );
            None
        }
    }
}

/// moat's own install location of ONNX Runtime: `<data dir>/onnxruntime/<ver>`.
pub fn install_dir() -> Option<PathBuf> {
    Some(data_dir()?.join("onnxruntime").join(ORT_VERSION))
}

fn library_in(dir: &Path) -> Option<PathBuf> {
    let capi = dir.join("onnxruntime").join("capi");
    for d in [capi.as_path(), dir] {
        let exact = d.join(format!("libonnxruntime.so.{ORT_VERSION}"));
        if exact.is_file() {
            return Some(exact);
        }
        if let Ok(entries) = std::fs::read_dir(d) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with("libonnxruntime.so")
                            || n == "libonnxruntime.dylib"
                            || n == "onnxruntime.dll"
                    })
                })
                .collect();
            found.sort();
            if let Some(p) = found.pop() {
                return Some(p);
            }
        }
    }
    None
}

/// Search order: an explicit path (setting or flag), `ORT_DYLIB_PATH`, moat's install folder.
pub fn find_onnxruntime(explicit: Option<&Path>) -> Result<OrtLibrary, ModelError> {
    let mut tried = Vec::new();
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(OrtLibrary {
                path: p.to_path_buf(),
                source: "setting",
            });
        }
        if let Some(found) = library_in(p) {
            return Ok(OrtLibrary {
                path: found,
                source: "setting",
            });
        }
        tried.push(format!("{} (setting onnxruntimePath)", p.display()));
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from) {
        if p.is_file() {
            return Ok(OrtLibrary {
                path: p,
                source: "ORT_DYLIB_PATH",
            });
        }
        tried.push(format!("{} (ORT_DYLIB_PATH)", p.display()));
    }
    if let Some(dir) = install_dir() {
        if let Some(found) = library_in(&dir) {
            return Ok(OrtLibrary {
                path: found,
                source: "moat install folder",
            });
        }
        tried.push(format!("{} (moat install folder)", dir.display()));
    }
    let target = install_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "~/.local/share/moat/onnxruntime/1.32.0".into());
    Err(ModelError::Runtime(format!(
        "ONNX Runtime {ORT_VERSION} shared library not found (looked in: {}).\n\
         Install it with `scripts/setup`, or by hand:\n  \
         python3 -m pip install --no-deps --target {target} onnxruntime=={ORT_VERSION}\n\
         or point ORT_DYLIB_PATH (or the setting moat.onnxruntimePath) at libonnxruntime.so.",
        tried.join(", ")
    )))
}

static ENVIRONMENT: OnceLock<Result<(OrtLibrary, ort::environment::Environment), String>> =
    OnceLock::new();

/// Loads the library and creates the process's one ONNX Runtime environment (first call wins).
pub fn init_onnxruntime(
    explicit: Option<&Path>,
) -> Result<(OrtLibrary, &'static ort::environment::Environment), ModelError> {
    let result = ENVIRONMENT.get_or_init(|| {
        let lib = find_onnxruntime(explicit).map_err(|e| e.to_string())?;
        let builder = ort::init_from(&lib.path)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", lib.path.display()))?;
        let env = builder
            .with_name("moat")
            .build()
            .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))?;
        Ok((lib, env))
    });
    match result {
        Ok((lib, env)) => Ok((lib.clone(), env)),
        Err(e) => Err(ModelError::Runtime(e.clone())),
    }
}

/// ONNX Runtime's build string (version, commit), once the library is loaded.
pub fn build_info() -> Option<String> {
    ENVIRONMENT.get()?.as_ref().ok()?;
    Some(ort::info().to_string())
}
