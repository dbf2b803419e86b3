//! The workspace index as the server uses it: opened and refreshed in the background after
//! `initialized` (reported with `$/progress` and `moat/status`), kept current on `didSave` and
//! `workspace/didChangeWatchedFiles`, queried for repository context and `workspace/symbol`.
//!
//! Must not: block a request on indexing. Requests use whatever is indexed so far; until the
//! index is open they get no repository context.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use moat_index::Index;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::request::WorkDoneProgressCreate;
use tower_lsp_server::ls_types::{ProgressToken, WorkDoneProgressCreateParams};

use crate::server::notify_status;

#[derive(Clone, Default)]
pub struct Workspace {
    index: Arc<RwLock<Option<Arc<Index>>>>,
}

impl Workspace {
    pub fn index(&self) -> Option<Arc<Index>> {
        self.index.read().ok().and_then(|i| i.clone())
    }

    /// Opens the index of `root` and refreshes it, in the background.
    pub fn start(&self, root: PathBuf, client: Client, progress_supported: bool) {
        let slot = self.index.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::spawn(async move {
            let token = ProgressToken::String("moat/index".into());
            let progress = if progress_supported
                && client
                    .send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                        token: token.clone(),
                    })
                    .await
                    .is_ok()
            {
                Some(
                    client
                        .progress(token, "moat: indexing")
                        .with_percentage(0)
                        .begin()
                        .await,
                )
            } else {
                None
            };
            notify_status(&client, "indexing", &format!("indexing {}", root.display()));
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
            let worker = tokio::task::spawn_blocking(move || -> Result<String, String> {
                let index = Arc::new(moat_index::open_workspace(&root).map_err(|e| e.to_string())?);
                if let Ok(mut s) = slot.write() {
                    *s = Some(index.clone());
                }
                let mut last = Instant::now();
                let report = index
                    .refresh(&mut |p| {
                        if last.elapsed() > Duration::from_millis(200) {
                            last = Instant::now();
                            let _ = tx.send((p.done, p.total));
                        }
                    })
                    .map_err(|e| e.to_string())?;
                let stats = index.stats();
                Ok(format!("indexed {} files ({report:?})", stats.files)
                    .chars()
                    .take(300)
                    .collect())
            });
            let reporter = handle.spawn({
                let client = client.clone();
                async move {
                    while let Some((done, total)) = rx.recv().await {
                        notify_status(
                            &client,
                            "indexing",
                            &format!("indexed {done}/{total} files"),
                        );
                    }
                }
            });
            let outcome = worker.await.unwrap_or_else(|e| Err(e.to_string()));
            reporter.abort();
            if let Some(p) = progress {
                p.finish_with_message(match &outcome {
                    Ok(m) => m.clone(),
                    Err(e) => format!("indexing failed: {e}"),
                })
                .await;
            }
            match outcome {
                Ok(message) => {
                    tracing::info!("{message}");
                    notify_status(&client, "indexed", &message);
                }
                Err(e) => tracing::warn!("workspace index: {e}"),
            }
        });
    }

    /// Re-reads one file (saved or changed on disk), off the async threads.
    pub fn file_changed(&self, path: PathBuf, deleted: bool) {
        let Some(index) = self.index() else { return };
        tokio::task::spawn_blocking(move || {
            let result = if deleted {
                index.remove_file(&path).map(|_| ())
            } else {
                index.update_file(&path).map(|_| ())
            };
            if let Err(e) = result {
                tracing::warn!("index update of {}: {e}", path.display());
            }
        });
    }
}

/// A `file://` URI's path.
pub fn uri_path(uri: &str) -> Option<PathBuf> {
    let path = uri.strip_prefix("file://")?;
    Some(Path::new(&percent_decode(path)).to_path_buf())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
