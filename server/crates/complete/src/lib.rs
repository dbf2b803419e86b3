//! The completion pipeline as plain functions over plain data.
//!
//! Owns: choosing the prefix/suffix windows (budgeted in tokens, cut at syntax boundaries, stable
//! while the user types so the model's KV cache stays reusable), the decision between a
//! single-line and a multi-line suggestion, the FIM prompt with token healing, post-processing,
//! and keeping a shown suggestion valid while the user types through it.
//! Must not: do IO, know LSP types, or hold locks across generation. The model is reached only
//! through [`moat_model::Backend`], so every stage is testable with a `$0` fixture and the fake
//! backend.

mod brackets;
mod extent;
mod pipeline;
mod postprocess;
mod typing;
mod window;

#[cfg(test)]
mod tests;

pub use pipeline::{
    CompletionInput, CompletionResult, CompletionSettings, Mode, Snippet, complete,
    short_prompt_settings,
};
pub use postprocess::postprocess;
pub use typing::ShownSuggestion;
pub use window::{Windows, choose_windows};
