//! The one place for request timing (as Helix's `helix-event`): a newer request for a document
//! supersedes the older one, debounce waits for the user to pause, and a job's cancellation
//! reaches the model between decode steps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moat_model::CancelToken;
use tokio::sync::Notify;

/// One request's handle: cancelled when superseded, when the client cancels, or when dropped.
pub struct Job {
    pub cancel: CancelToken,
    notify: Arc<Notify>,
}

impl Job {
    /// Waits `delay` unless cancelled first; true when the wait completed.
    pub async fn debounce(&self, delay: Duration) -> bool {
        if self.cancel.is_cancelled() {
            return false;
        }
        let notified = self.notify.notified();
        tokio::select! {
            _ = tokio::time::sleep(delay) => !self.cancel.is_cancelled(),
            _ = notified => false,
        }
    }
}

impl Drop for Job {
    /// The client's `$/cancelRequest` drops the request future: the model job stops too.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[derive(Default)]
pub struct Scheduler {
    latest: Mutex<HashMap<String, (CancelToken, Arc<Notify>)>>,
}

impl Scheduler {
    /// Starts a job for `key` (a document), cancelling the previous job for it.
    pub fn begin(&self, key: &str) -> Job {
        let cancel = CancelToken::new();
        let notify = Arc::new(Notify::new());
        if let Ok(mut latest) = self.latest.lock()
            && let Some((old, old_notify)) =
                latest.insert(key.to_string(), (cancel.clone(), notify.clone()))
        {
            old.cancel();
            old_notify.notify_waiters();
        }
        Job { cancel, notify }
    }

    /// Forgets a closed document.
    pub fn forget(&self, key: &str) {
        if let Ok(mut latest) = self.latest.lock()
            && let Some((old, n)) = latest.remove(key)
        {
            old.cancel();
            n.notify_waiters();
        }
    }
}
