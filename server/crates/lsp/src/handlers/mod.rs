//! One file per LSP method (ruff's layout); `suggest` is the shared core of the two completion
//! methods.

pub(crate) mod code_action;
pub(crate) mod completion;
pub(crate) mod document;
pub(crate) mod feedback;
pub(crate) mod inline_completion;
pub(crate) mod suggest;
pub(crate) mod workspace_symbol;
