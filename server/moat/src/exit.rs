//! Ending the process without running C++ static destructors.
//!
//! ONNX Runtime is a C++ library loaded at run time; its global objects (the `OrtEnv`, the
//! operator-schema registry, the logging manager) are destroyed by `exit()` through
//! `__cxa_finalize`, in an order ONNX Runtime does not control on Linux, and while other threads
//! may still be inside the library (a model load cannot be interrupted; a decode step finishes
//! before it sees its cancellation). A destructor that finds a locked mutex or a released
//! environment calls `std::terminate`: the process ends with SIGABRT (-6) although every
//! request was answered. ONNX Runtime's own answer on Windows is the same as this one: at
//! process exit, skip the destructors (microsoft/onnxruntime#24891).
//!
//! So moat ends every command here: Rust's buffered output is flushed, then `_exit` ends the
//! process at once. Nothing is lost: logs are written unbuffered, the index commits its writes
//! itself (and is crash-safe, see `moat_index::store`), and no moat code relies on a
//! destructor at exit.

use std::io::Write;

unsafe extern "C" {
    /// POSIX `_exit` (in the C library every Rust program on Unix links).
    fn _exit(code: i32) -> !;
}

/// Flushes stdout and stderr, then ends the process with `code`, skipping `atexit` handlers and
/// C++ static destructors.
pub fn exit_now(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` is async-signal-safe and never returns; Rust's buffers are flushed above.
    unsafe { _exit(code) }
}
