//! The LSP edge of moat: tower-lsp-server glue, capability negotiation, configuration, the
//! request scheduler (debounce, cancellation, one model job per document) and the conversion
//! between LSP types and moat's plain types.
//!
//! Must not: contain completion logic (that is `moat-complete`) or convert positions itself
//! (that is `moat-text`). Handlers live one per file under `handlers/`.

mod config;
pub mod feedback;
mod handlers;
mod model_slot;
mod prefill;
mod scheduler;
mod server;
mod transport;
mod workspace;

pub use config::Config;
pub use server::{MoatServer, ServeOutcome, serve_stdio};
