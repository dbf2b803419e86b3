//! Cancelling background work stops the model's run in flight (ONNX Runtime's terminate flag);
//! a cancelled request's prompt step runs to its end and is kept for the next request (typing
//! supersedes requests faster than a step). Either way what is cached stays valid: the next
//! request reuses it and answers exactly as a fresh model does. On the default model, whose runs
//! are long enough to be caught in flight on two cores.

use std::sync::Arc;
use std::time::Duration;

use moat_model::{
    Backend, CancelToken, GenerateRequest, Healing, ModelError, OnnxBackend, OnnxOptions,
    default_model_for_tests,
};

fn load(dir: &std::path::Path) -> OnnxBackend {
    OnnxBackend::load(
        dir,
        &OnnxOptions {
            threads: 2,
            ort_library: None,
        },
    )
    .unwrap()
}

fn prompt(backend: &OnnxBackend, n: usize) -> Vec<u32> {
    let text = include_str!("../../../../bench/fixtures/typing_sample.rs");
    let mut ids = backend.tokenizer().encode(text);
    ids.truncate(n);
    ids
}

fn greedy(backend: &OnnxBackend, prompt: &[u32]) -> Vec<u32> {
    let req = GenerateRequest::new(prompt.to_vec(), 8, Healing::none(), None);
    backend.generate(&req, &CancelToken::new()).unwrap().tokens
}

#[test]
fn a_cancelled_run_stops_in_flight_and_leaves_the_cache_valid() {
    let Some(dir) = default_model_for_tests("a_cancelled_run_stops_in_flight") else {
        return;
    };
    let backend = Arc::new(load(&dir));
    let long = prompt(&backend, 512);
    let fresh = load(&dir);
    let expected = greedy(&fresh, &long);
    // How long the first foreground step (256 tokens) takes here: cancelling well inside it
    // shows that the step runs to its end and is kept (256 cached).
    fresh.reset_cache();
    let started = std::time::Instant::now();
    fresh.logits_for(&long[..256]).unwrap();
    let step = started.elapsed();
    let wait = Duration::from_millis(150);

    // A background prefill and a request, each cancelled while its model run is under way.
    for background in [true, false] {
        backend.reset_cache();
        let cancel = CancelToken::new();
        let worker = {
            let (backend, long, cancel) = (backend.clone(), long.clone(), cancel.clone());
            std::thread::spawn(move || {
                if background {
                    backend.prefill(&long, &cancel).map(|_| ())
                } else {
                    let req = GenerateRequest::new(long, 8, Healing::none(), None);
                    backend.generate(&req, &cancel).map(|_| ())
                }
            })
        };
        std::thread::sleep(wait);
        cancel.cancel();
        let result = worker.join().unwrap();
        assert!(
            matches!(result, Err(ModelError::Cancelled)),
            "background {background}: {result:?}"
        );
        // What was cached before the interrupted run is reused, and the answer is the fresh one.
        let cached = backend.cached_prefix(&long);
        assert!(cached < long.len(), "{cached}");
        if !background && step > wait * 3 {
            assert_eq!(cached, 256, "the first step was kept ({step:?} a step)");
        }
        assert_eq!(greedy(&backend, &long), expected, "background {background}");
    }

    // The flag is down again: an uncancelled request runs to the end.
    backend.reset_cache();
    assert_eq!(greedy(&backend, &long), expected);
}
