//! Per-document KV caches on the real tiny models (both layouts): switching between prompts that
//! share nothing keeps each one's cache, the caches together stay within their budget (the least
//! recently used is dropped first), and a prompt run in a kept cache gives the logits a fresh
//! computation gives.

use std::path::PathBuf;

use moat_model::{Backend, CancelToken, GenerateRequest, Healing, OnnxBackend, OnnxOptions};

fn load(name: &str) -> OnnxBackend {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../model-assets")
        .join(name);
    OnnxBackend::load(
        &dir,
        &OnnxOptions {
            threads: 1,
            ort_library: None,
        },
    )
    .unwrap()
}

/// A prompt of `n` tokens that shares no first token with the others (`seed` picks it).
fn document(backend: &OnnxBackend, seed: usize, n: usize) -> Vec<u32> {
    let vocab = backend.tokenizer().vocab_size() as u32;
    (0..n)
        .map(|i| ((seed * 7919 + i * 31 + 11) as u32) % (vocab - 10) + 5)
        .collect()
}

/// Tokens reused from a cache when `prompt` runs (one token generated).
fn reused(backend: &OnnxBackend, prompt: &[u32]) -> usize {
    let req = GenerateRequest::new(prompt.to_vec(), 1, Healing::none(), None);
    backend
        .generate(&req, &CancelToken::new())
        .unwrap()
        .reused_tokens
}

fn caches_stay_within_budget(model: &str) {
    let backend = load(model);
    let docs: Vec<Vec<u32>> = (0..4).map(|d| document(&backend, d, 120)).collect();
    backend.logits_for(&docs[0]).unwrap();
    let (count, bytes) = backend.kv_cache_usage();
    assert_eq!(count, 1);
    let per_token = bytes / docs[0].len();
    assert!(per_token > 0);
    // Room for two documents and a half: the third one in use drops the least recently used.
    let budget = per_token * 300;
    backend.set_kv_budget(budget);

    assert_eq!(reused(&backend, &docs[1]), 0);
    assert_eq!(
        backend.kv_cache_usage().0,
        2,
        "{model}: the first document is parked"
    );
    // Back to the first document: its cache was kept.
    assert_eq!(reused(&backend, &docs[0]), docs[0].len() - 1, "{model}");
    for doc in &docs[2..] {
        assert_eq!(reused(&backend, doc), 0);
        let (count, bytes) = backend.kv_cache_usage();
        assert!(
            bytes <= budget,
            "{model}: {bytes} bytes in {count} caches > {budget}"
        );
        assert!(count <= 2, "{model}: {count} caches");
    }
    // The most recent two are kept, the older ones dropped.
    assert_eq!(reused(&backend, &docs[2]), docs[2].len() - 1, "{model}");
    assert_eq!(reused(&backend, &docs[0]), 0, "{model}: dropped");
    assert!(backend.kv_cache_usage().1 <= budget);

    // A kept cache gives what a fresh computation gives.
    let mut grown = docs[3].clone();
    grown.extend_from_slice(&docs[1][..10]);
    let from_kept = backend.logits_for(&grown).unwrap();
    backend.reset_cache();
    assert_eq!(backend.kv_cache_usage().0, 1);
    let fresh = backend.logits_for(&grown).unwrap();
    let diff = from_kept
        .iter()
        .zip(&fresh)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-4, "{model}: {diff}");
}

#[test]
fn llama_gqa_shared_caches_stay_within_budget() {
    caches_stay_within_budget("tiny-llama");
}

#[test]
fn gpt2_concat_caches_stay_within_budget() {
    caches_stay_within_budget("tiny-gpt2");
}

#[test]
fn a_small_budget_keeps_only_the_cache_in_use() {
    let backend = load("tiny-llama");
    backend.set_kv_budget(0);
    for d in 0..3 {
        let doc = document(&backend, d, 80);
        assert_eq!(reused(&backend, &doc), 0);
        assert_eq!(backend.kv_cache_usage().0, 1);
        // The cache in use keeps its work.
        assert_eq!(reused(&backend, &doc), doc.len() - 1);
    }
}

#[test]
fn a_partly_filled_cache_is_continued_not_replaced() {
    // What a cancelled request or background step leaves: the first chunks of the prompt.
    let backend = load("tiny-llama");
    let other = document(&backend, 9, 100);
    backend.logits_for(&other).unwrap();
    let doc = document(&backend, 1, 200);
    backend.logits_for(&doc[..60]).unwrap();
    assert_eq!(
        backend.kv_cache_usage().0,
        2,
        "the other document is parked"
    );
    assert_eq!(reused(&backend, &doc), 60, "the 60 tokens are continued");
    assert_eq!(backend.kv_cache_usage().0, 2, "no third cache");
}

#[test]
fn at_most_four_caches_are_held() {
    let backend = load("tiny-gpt2");
    for d in 0..8 {
        assert_eq!(reused(&backend, &document(&backend, d, 60)), 0);
        assert!(backend.kv_cache_usage().0 <= 4);
    }
    // The four most recent are kept.
    assert_eq!(reused(&backend, &document(&backend, 5, 60)), 59);
    assert_eq!(reused(&backend, &document(&backend, 0, 60)), 0);
}
