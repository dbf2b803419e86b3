//! The one place for request timing (as Helix's `helix-event`): a newer request for a document
//! supersedes the older one (also while it waits for the model to load), debounce waits for the
//! user to pause, and a job's cancellation reaches the model between decode steps. Background
//! work (the prefill ahead of the keystroke) holds one token that every request cancels, so it
//! never delays a request by more than one of its steps.

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

    /// Resolves once the job is cancelled (superseded, or the server is closing).
    pub async fn cancelled(&self) {
        loop {
            let mut notified = std::pin::pin!(self.notify.notified());
            notified.as_mut().enable();
            if self.cancel.is_cancelled() {
                return;
            }
            notified.await;
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
    /// The background job's token: cancelled by any request, and by a newer background job.
    background: Mutex<Option<CancelToken>>,
    /// Set by [`Scheduler::close`]: every job starts cancelled.
    closed: std::sync::atomic::AtomicBool,
}

impl Scheduler {
    /// Starts a job for `key` (a document), cancelling the previous job for it.
    pub fn begin(&self, key: &str) -> Job {
        self.preempt_background();
        let cancel = CancelToken::new();
        let notify = Arc::new(Notify::new());
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            cancel.cancel();
        }
        if let Ok(mut latest) = self.latest.lock()
            && let Some((old, old_notify)) =
                latest.insert(key.to_string(), (cancel.clone(), notify.clone()))
        {
            old.cancel();
            old_notify.notify_waiters();
        }
        Job { cancel, notify }
    }

    /// A token for background work, cancelling the previous one's. Any request cancels it.
    pub fn background(&self) -> CancelToken {
        let cancel = CancelToken::new();
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            cancel.cancel();
        }
        if let Ok(mut slot) = self.background.lock()
            && let Some(old) = slot.replace(cancel.clone())
        {
            old.cancel();
        }
        cancel
    }

    /// Stops the background work (a request needs the model).
    pub fn preempt_background(&self) {
        if let Ok(slot) = self.background.lock()
            && let Some(b) = slot.as_ref()
        {
            b.cancel();
        }
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

    /// Cancels every job and every later one: after `shutdown` or the end of input, nothing
    /// waits on the model any more (the server's exit waits for pending requests).
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.preempt_background();
        if let Ok(mut latest) = self.latest.lock() {
            for (_, (cancel, notify)) in latest.drain() {
                cancel.cancel();
                notify.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_newer_job_wakes_a_waiting_one() {
        let scheduler = Arc::new(Scheduler::default());
        let first = scheduler.begin("doc");
        let waiting = tokio::spawn(async move {
            first.cancelled().await;
            first.cancel.is_cancelled()
        });
        tokio::task::yield_now().await;
        let _second = scheduler.begin("doc");
        let woke = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(woke.expect("woken").expect("joined"));
    }

    #[test]
    fn requests_and_newer_background_jobs_cancel_background_work() {
        let scheduler = Scheduler::default();
        let first = scheduler.background();
        let second = scheduler.background();
        assert!(first.is_cancelled() && !second.is_cancelled());
        let _job = scheduler.begin("doc");
        assert!(second.is_cancelled());
        scheduler.close();
        assert!(scheduler.background().is_cancelled());
    }

    #[tokio::test]
    async fn close_cancels_current_and_later_jobs() {
        let scheduler = Scheduler::default();
        let job = scheduler.begin("a");
        scheduler.close();
        assert!(job.cancel.is_cancelled());
        let later = scheduler.begin("b");
        assert!(later.cancel.is_cancelled());
        tokio::time::timeout(Duration::from_secs(5), later.cancelled())
            .await
            .expect("a cancelled job resolves at once");
    }
}
