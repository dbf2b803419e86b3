//! The C library allocator's settings, made before any thread starts.
//!
//! Most of moat's large short-lived blocks are ONNX Runtime's (its outputs, such as a prompt's
//! logits, whose size follows the prompt), allocated with glibc's `malloc` from whichever thread
//! runs the model: a Rust `#[global_allocator]` would not see them. glibc gives each thread that
//! meets a busy arena an arena of its own (up to 8 per core), and its mmap threshold grows to the
//! largest block freed so far, so after warm-up those blocks are carved from the heaps. Blocks
//! of changing sizes moving between a dozen arenas leave each of them with free holes and a free
//! top it keeps: with repository context on (longer, varying prompts) the server's memory grew
//! +30–45% over 10,000 keystrokes after warm-up, with the memory in use flat (README,
//! Reliability).
//!
//! One arena (`M_ARENA_MAX` = 1) keeps that growth under 1%: freed blocks are reused by every
//! thread. Small blocks still come from each thread's own cache (glibc's tcache), so threads
//! rarely meet on the arena's lock; the default model's latency was unchanged within the
//! machine's noise (README). The thresholds stay dynamic: fixing them sends every large block to
//! `mmap`, page faults included, which cost the default model ~10%.
//!
//! `MALLOC_ARENA_MAX` in the environment, if set, is left to glibc (for measuring).

/// Limits glibc to one malloc arena unless `MALLOC_ARENA_MAX` is set. Call first in `main`,
/// before any thread starts. A no-op on other C libraries.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        glibc::one_arena();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;

    /// `M_ARENA_MAX` in glibc's `<malloc.h>`.
    const M_ARENA_MAX: c_int = -8;

    unsafe extern "C" {
        /// glibc's `mallopt`: sets an allocator parameter; returns 1 on success, 0 on error.
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    pub(super) fn one_arena() {
        // SAFETY: `mallopt` only sets a parameter of glibc's allocator (M_ARENA_MAX exists since
        // glibc 2.10); a refusal would leave the default in place, so its result is not needed.
        unsafe { mallopt(M_ARENA_MAX, 1) };
    }
}
