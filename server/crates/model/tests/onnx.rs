//! The ONNX backend against the real tiny test models (both KV layouts): prefix reuse gives the
//! same logits as a fresh computation, generation is deterministic and honours its limits, and a
//! manifest that does not match its model is rejected with a message naming the mismatch.

use std::path::{Path, PathBuf};

use moat_model::{
    Backend, CancelToken, FinishReason, GenerateRequest, Healing, ModelError, OnnxBackend,
    OnnxOptions,
};

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../model-assets")
        .join(name)
}

fn load(dir: &Path) -> Result<OnnxBackend, ModelError> {
    OnnxBackend::load(
        dir,
        &OnnxOptions {
            threads: 1,
            ort_library: None,
        },
    )
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn prompt(backend: &OnnxBackend, text: &str) -> Vec<u32> {
    backend.tokenizer().encode(text)
}

fn check_reuse_matches_fresh(model: &str) {
    let backend = load(&asset(model)).unwrap();
    let a = prompt(
        &backend,
        "import os\nimport sys\n\ndef main(argv):\n    path = os.path.join(argv[0], 'x')\n",
    );
    let mut ab = a.clone();
    ab.extend(prompt(&backend, "    return path\n"));
    let mut ac = a.clone();
    ac.extend(prompt(&backend, "    print(len(argv))\n"));

    backend.reset_cache();
    let fresh_ab = backend.logits_for(&ab).unwrap();
    backend.reset_cache();
    let fresh_ac = backend.logits_for(&ac).unwrap();

    // Grow: a, then a+b (only b is computed).
    backend.reset_cache();
    backend.logits_for(&a).unwrap();
    let grown = backend.logits_for(&ab).unwrap();
    assert!(
        max_diff(&grown, &fresh_ab) < 1e-4,
        "{model}: grown {}",
        max_diff(&grown, &fresh_ab)
    );
    // Rewind: a+b cached, now a+c (the cache is cut back to a).
    let rewound = backend.logits_for(&ac).unwrap();
    assert!(
        max_diff(&rewound, &fresh_ac) < 1e-4,
        "{model}: rewound {}",
        max_diff(&rewound, &fresh_ac)
    );
    // The same prompt again (everything cached: the last token is recomputed).
    let again = backend.logits_for(&ac).unwrap();
    assert!(max_diff(&again, &fresh_ac) < 1e-4);
    // And the KV cache matters at all (a different history gives different logits).
    assert!(max_diff(&fresh_ab, &fresh_ac) > 1e-3);
}

#[test]
fn llama_gqa_shared_reuse_matches_fresh() {
    check_reuse_matches_fresh("tiny-llama");
}

#[test]
fn gpt2_concat_reuse_matches_fresh() {
    check_reuse_matches_fresh("tiny-gpt2");
}

#[test]
fn generation_is_deterministic_and_reuses_the_prompt() {
    let backend = load(&asset("tiny-llama")).unwrap();
    let ids = prompt(&backend, "def add(a, b):\n    return a");
    let req = GenerateRequest {
        prompt: ids.clone(),
        max_new_tokens: 12,
        first_token_prefix: Healing::none(),
        stop: None,
    };
    let first = backend.generate(&req, &CancelToken::new()).unwrap();
    let second = backend.generate(&req, &CancelToken::new()).unwrap();
    assert_eq!(first.tokens, second.tokens);
    assert_eq!(first.finish, FinishReason::MaxTokens);
    assert_eq!(first.tokens.len(), 12);
    assert_eq!(
        second.reused_tokens,
        ids.len() - 1,
        "all but the last prompt token come from the cache"
    );
    assert_eq!(second.computed_tokens, 1);
}

#[test]
fn stop_check_and_token_healing() {
    let backend = load(&asset("tiny-llama")).unwrap();
    let ids = prompt(&backend, "import os\nimport sys\n\nclass Foo:\n    def ");
    let stop = |bytes: &[u8]| bytes.iter().position(|&b| b == b'(');
    let req = GenerateRequest {
        prompt: ids.clone(),
        max_new_tokens: 30,
        first_token_prefix: b"ge".to_vec().into(),
        stop: Some(&stop),
    };
    let out = backend.generate(&req, &CancelToken::new()).unwrap();
    assert!(
        out.bytes.starts_with(b"ge"),
        "healed first token: {:?}",
        String::from_utf8_lossy(&out.bytes)
    );
    assert!(!out.bytes.contains(&b'('));
}

#[test]
fn cancelled_generation_stops() {
    let backend = load(&asset("tiny-llama")).unwrap();
    let cancel = CancelToken::new();
    cancel.cancel();
    let req = GenerateRequest {
        prompt: vec![5, 6, 7],
        max_new_tokens: 5,
        first_token_prefix: Healing::none(),
        stop: None,
    };
    assert!(matches!(
        backend.generate(&req, &cancel),
        Err(ModelError::Cancelled)
    ));
}

#[test]
fn too_long_prompt_is_an_error_not_a_crash() {
    let backend = load(&asset("tiny-gpt2")).unwrap();
    let req = GenerateRequest {
        prompt: vec![9; 5000],
        max_new_tokens: 5,
        first_token_prefix: Healing::none(),
        stop: None,
    };
    let err = backend.generate(&req, &CancelToken::new()).unwrap_err();
    assert!(matches!(err, ModelError::PromptTooLong { .. }), "{err}");
    // Still usable afterwards.
    let req = GenerateRequest {
        prompt: vec![9, 10],
        max_new_tokens: 2,
        first_token_prefix: Healing::none(),
        stop: None,
    };
    backend.generate(&req, &CancelToken::new()).unwrap();
}

/// Copies a model folder to a temp dir, applying `edit` to its model.toml.
fn variant(model: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(asset(model)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let manifest = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, edit(text)).unwrap();
    dir
}

fn load_err(dir: &Path) -> String {
    match load(dir) {
        Ok(_) => panic!("expected {} to be rejected", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn mismatched_manifests_are_rejected_with_the_mismatch_named() {
    let more_layers = variant("tiny-llama", |t| {
        t.replace("num_layers = 2", "num_layers = 3")
    });
    let e = load_err(more_layers.path());
    assert!(
        e.contains("past_key_values.2.key") && e.contains("not in the graph"),
        "{e}"
    );

    let fewer_layers = variant("tiny-llama", |t| {
        t.replace("num_layers = 2", "num_layers = 1")
    });
    let e = load_err(fewer_layers.path());
    assert!(e.contains("more layers"), "{e}");

    let head_dim = variant("tiny-llama", |t| {
        t.replace("head_dim = 32", "head_dim = 64")
    });
    let e = load_err(head_dim.path());
    assert!(e.contains("head_dim"), "{e}");

    let heads = variant("tiny-gpt2", |t| {
        t.replace("num_kv_heads = 3", "num_kv_heads = 4")
    });
    let e = load_err(heads.path());
    assert!(e.contains("kv heads"), "{e}");

    let token = variant("tiny-gpt2", |t| t.replace("<fim_middle>", "<|fim_middle|>"));
    let e = load_err(token.path());
    assert!(
        e.contains("<|fim_middle|>") && e.contains("not in the vocabulary"),
        "{e}"
    );

    let position = variant("tiny-llama", |t| {
        t.replace("position_ids = \"\"", "position_ids = \"position_ids\"")
    });
    let e = load_err(position.path());
    assert!(e.contains("position_ids"), "{e}");
}

#[test]
fn corrupt_and_missing_files_give_clear_errors() {
    let corrupt = variant("tiny-llama", |t| t);
    std::fs::write(
        corrupt.path().join("model.onnx"),
        b"definitely not protobuf",
    )
    .unwrap();
    let e = load_err(corrupt.path());
    assert!(e.contains("not a loadable ONNX model"), "{e}");

    let missing = variant("tiny-llama", |t| t);
    std::fs::remove_file(missing.path().join("tokenizer.json")).unwrap();
    let e = load_err(missing.path());
    assert!(e.contains("tokenizer.json"), "{e}");

    let e = load_err(Path::new("/nonexistent/model"));
    assert!(e.contains("/nonexistent/model"), "{e}");

    let bad_toml = variant("tiny-llama", |t| t.replace("[onnx]", "[onnx"));
    let e = load_err(bad_toml.path());
    assert!(e.contains("invalid model manifest"), "{e}");
}

#[test]
fn threads_zero_takes_the_manifests_recommendation() {
    let with = |threads: usize, dir: &Path| {
        OnnxBackend::load(
            dir,
            &OnnxOptions {
                threads,
                ort_library: None,
            },
        )
        .unwrap()
        .threads()
    };
    let hinted = variant("tiny-llama", |t| format!("{t}\n[runtime]\nthreads = 1\n"));
    assert_eq!(with(0, hinted.path()), 1);
    assert_eq!(with(3, hinted.path()), 3, "the user's setting wins");
    assert_eq!(with(0, &asset("tiny-llama")), moat_model::DEFAULT_THREADS);
    let unknown = variant("tiny-llama", |t| format!("{t}\n[runtime]\nspin = true\n"));
    assert!(load_err(unknown.path()).contains("spin"));
}
