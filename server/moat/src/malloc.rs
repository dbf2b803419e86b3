//! The C library allocator's settings, made before any thread starts.
//!
//! moat's large short-lived blocks come from many threads: the index writer's buffers (1–2.4 MB
//! at each update), logits rows, retrieval's scorers, the tokenizer, ONNX Runtime's prefill
//! scratch (1–2.5 MB per layer; C++ `new`, so a Rust `#[global_allocator]` would not see
//! those). glibc gives each thread that meets a busy arena an arena of its own (up to 8 per
//! core) and raises its mmap threshold to the largest block freed so far, so after warm-up
//! these blocks are carved from a dozen heaps that each keep their holes and free top: with
//! repository context on, the server's memory grew +29–85% over 10,000 keystrokes after
//! warm-up while the memory in use stayed flat (README, Reliability).
//!
//! Two settings stop that:
//! - one arena (`M_ARENA_MAX` = 1): freed blocks are reused by every thread. Small blocks still
//!   come from each thread's own cache (glibc's tcache), so threads rarely meet on its lock.
//! - after a second without work, `malloc_trim(0)` hands the free pages inside the heap back to
//!   the system, so the memory at rest follows what is in use rather than the highest peak so
//!   far (an index update during a long prompt). While a request runs nothing changes.
//!
//! The thresholds stay dynamic: fixing them sends every large block to `mmap` and its page
//! faults, which cost the default model ~10%. `MALLOC_ARENA_MAX` in the environment, if set,
//! leaves glibc's defaults entirely (for measuring).

/// Limits glibc to one malloc arena and starts the idle trimmer, unless `MALLOC_ARENA_MAX` is
/// set. Call first in `main`, before any thread starts. A no-op on other C libraries (and on
/// 32-bit targets).
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        glibc::one_arena();
        glibc::trim_when_idle();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
mod glibc {
    use std::ffi::{c_int, c_long};
    use std::time::Duration;

    /// `M_ARENA_MAX` in glibc's `<malloc.h>`.
    const M_ARENA_MAX: c_int = -8;
    /// `CLOCK_PROCESS_CPUTIME_ID` in `<time.h>`: CPU time used by all the process's threads.
    const CLOCK_PROCESS_CPUTIME_ID: c_int = 2;
    /// How often the trimmer looks.
    const POLL: Duration = Duration::from_millis(250);
    /// A poll during which the process used less CPU than this (2% of a core) is quiet.
    const QUIET_CPU: Duration = Duration::from_millis(5);
    /// Quiet polls in a row before trimming: one second without work.
    const QUIET_POLLS: u32 = 4;

    /// `struct timespec` on 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        tv_sec: c_long,
        tv_nsec: c_long,
    }

    unsafe extern "C" {
        /// glibc's `mallopt`: sets an allocator parameter; returns 1 on success, 0 on error.
        fn mallopt(param: c_int, value: c_int) -> c_int;
        /// glibc's `malloc_trim`: returns free memory to the system; 1 if any was returned.
        fn malloc_trim(pad: usize) -> c_int;
        fn clock_gettime(clock: c_int, out: *mut Timespec) -> c_int;
    }

    pub(super) fn one_arena() {
        // SAFETY: `mallopt` only sets a parameter of glibc's allocator (M_ARENA_MAX exists since
        // glibc 2.10); a refusal would leave the default in place, so its result is not needed.
        unsafe { mallopt(M_ARENA_MAX, 1) };
    }

    fn process_cpu() -> Duration {
        let mut t = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid, writable `struct timespec` (this module is built for 64-bit
        // targets only, where both fields are `long`); the clock id exists on every Linux.
        if unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) } != 0 {
            return Duration::ZERO;
        }
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    }

    /// A thread that trims once per quiet spell: after `QUIET_POLLS` polls in a row with less
    /// than `QUIET_CPU` of the process's CPU each, and again only after some work.
    pub(super) fn trim_when_idle() {
        let spawned = std::thread::Builder::new()
            .name("moat-malloc-trim".into())
            .spawn(|| {
                let mut last = process_cpu();
                let mut quiet = 0;
                let mut trimmed = true;
                loop {
                    std::thread::sleep(POLL);
                    let now = process_cpu();
                    if now.saturating_sub(last) >= QUIET_CPU {
                        quiet = 0;
                        trimmed = false;
                    } else {
                        quiet += 1;
                    }
                    if !trimmed && quiet >= QUIET_POLLS {
                        // SAFETY: `malloc_trim` is thread-safe (it takes each arena's lock).
                        unsafe { malloc_trim(0) };
                        trimmed = true;
                        // The trim's own CPU time is not work.
                        last = process_cpu();
                    } else {
                        last = now;
                    }
                }
            });
        // Without the thread, memory at rest stays at its peak: nothing else is lost.
        drop(spawned);
    }
}
