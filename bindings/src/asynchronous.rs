//! The vault for coroutines and Swift concurrency: `suspend` / `async` twins of every call that
//! touches disk or network, an async transport, and vault events for a `Flow` / `AsyncStream`.
//!
//! The core is synchronous: each call takes the vault's lock, writes SQLite and fsyncs. An async
//! twin runs that same call on a thread of the `blocking` crate's pool (threads made on demand,
//! up to 500, idle ones exit after a second; a sync holds one through its network waits) and awaits
//! it, so a coroutine on `Dispatchers.Main` or a Swift `MainActor` task never blocks on storage.
//! There is one rule set: every twin calls exactly the core method its blocking twin calls.
//!
//! Cancelling a twin (a cancelled coroutine or Swift task) drops its future. A vault call cannot
//! be interrupted halfway (it is one transaction), so it finishes on its pool thread and its
//! result is dropped; what it committed stays committed, exactly as if the app had been killed
//! after it returned. A sync in flight is the exception worth more: dropping it cancels the
//! transport's request in flight (the platform's coroutine or task is cancelled), and every later
//! request of that sync fails at once as a network error, so the sync ends at the next request
//! boundary, with the outbox kept for the next sync (G8: nothing lost, nothing applied twice).

use crate::error::JobsealError;
use crate::types::{
    AuditEvent, AuditVerification, DeviceBundle, HttpRequest, HttpResponse, JobInfo, JobState, Reveal, ShredOutcome,
    SyncReport, SyncStatus,
};
use crate::vault::JobVault;
use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

type Result<T> = std::result::Result<T, JobsealError>;

/// Moves sync requests to dispatch and back, as a `suspend` function (Kotlin, e.g. OkHttp's
/// `executeAsync` or Ktor) or an `async` one (Swift, `URLSession.data(for:)`).
///
/// The rules of [`crate::PlatformTransport`] apply: every HTTP answer, whatever its status, is a
/// response; throw `Network` only when no answer came; never log bodies or the `authorization`
/// header; never call back into the vault. When the sync that called it is cancelled, the call is
/// cancelled too (Kotlin: its coroutine; Swift: its task) and its answer is ignored.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait PlatformAsyncTransport: Send + Sync {
    /// Sends one request and returns dispatch's answer.
    async fn send(&self, request: HttpRequest) -> std::result::Result<HttpResponse, JobsealError>;
}

/// Something that changed in the vault, told after it is durable. No customer values.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum VaultEvent {
    /// A job sheet the vault did not hold was stored (sealed from dispatch or ingested).
    JobReceived {
        /// The job as it now is.
        job: JobInfo,
    },
    /// A held job changed: a newer sheet version arrived, or it moved to another live state.
    JobChanged {
        /// The job as it now is.
        job: JobInfo,
    },
    /// A job's customer data was destroyed: closed, cancelled, revoked by dispatch or expired
    /// (hard expiry is enforced by every call, so this can follow any call).
    JobShredded {
        /// What was destroyed.
        outcome: ShredOutcome,
    },
    /// A sync attempt ended, successfully or not: the outbox and backoff as they now are.
    SyncStatusChanged {
        /// The sync health after the attempt.
        status: SyncStatus,
    },
}

impl From<jobseal::VaultEvent> for VaultEvent {
    fn from(e: jobseal::VaultEvent) -> Self {
        match e {
            jobseal::VaultEvent::JobReceived(job) => VaultEvent::JobReceived { job: job.into() },
            jobseal::VaultEvent::JobChanged(job) => VaultEvent::JobChanged { job: job.into() },
            jobseal::VaultEvent::JobShredded(outcome) => VaultEvent::JobShredded { outcome: outcome.into() },
            jobseal::VaultEvent::SyncStatusChanged(status) => VaultEvent::SyncStatusChanged { status: status.into() },
        }
    }
}

/// Receives [`VaultEvent`]s; the library's `events()` (a Kotlin `Flow`, a Swift `AsyncStream`)
/// is built on it, and most apps use that instead.
///
/// Called after the vault's lock is released, in commit order, on the thread of a vault call
/// (usually the one that made the change; when calls finish together on several threads, one may
/// tell the others' events). It may call the vault: that call's events are told after the
/// current one. Return quickly (hand the event to a channel). What it throws is ignored.
#[uniffi::export(with_foreign)]
pub trait VaultListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: VaultEvent) -> std::result::Result<(), JobsealError>;
}

/// A [`VaultListener`] as the core's observer.
struct ListenerAdapter(Arc<dyn VaultListener>);

impl jobseal::VaultObserver for ListenerAdapter {
    fn on_event(&self, event: &jobseal::VaultEvent) {
        // A listener's failure is its own: the change is already durable and others are told.
        let _ = self.0.on_event(event.clone().into());
    }
}

/// Runs a blocking vault call on the blocking pool and awaits it.
async fn off_thread<T: Send + 'static>(call: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    blocking::unblock(call).await
}

/// Set when the future of a sync is dropped before it finished; wakes the request in flight.
#[derive(Default)]
struct Cancel {
    cancelled: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Cancel {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            waker.wake();
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once [`Cancel::cancel`] was called.
    fn wait(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.is_cancelled() {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
            // A cancel between the check and storing the waker found no waker: look again.
            if self.is_cancelled() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Cancels on drop: held by the future of a sync, so dropping that future cancels the sync.
struct CancelOnDrop(Arc<Cancel>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

const CANCELLED: &str = "sync cancelled by the app";

/// A [`PlatformAsyncTransport`] as the core's blocking [`jobseal::Transport`], for a sync running
/// on a pool thread: each request waits on the platform's future or on the sync's cancellation,
/// whichever comes first; on cancellation the platform's future is dropped (cancelling it).
struct AsyncTransportAdapter {
    transport: Arc<dyn PlatformAsyncTransport>,
    cancel: Arc<Cancel>,
}

impl jobseal::Transport for AsyncTransportAdapter {
    fn send(
        &self,
        request: jobseal::HttpRequest,
    ) -> std::result::Result<jobseal::HttpResponse, jobseal::TransportError> {
        let cancelled = || jobseal::TransportError { message: CANCELLED.into() };
        if self.cancel.is_cancelled() {
            return Err(cancelled());
        }
        let send = async {
            self.transport
                .send(request.into())
                .await
                .map(Into::into)
                .map_err(|e| jobseal::TransportError { message: e.detail() })
        };
        let stop = async {
            self.cancel.wait().await;
            Err(cancelled())
        };
        futures_lite::future::block_on(futures_lite::future::or(send, stop))
    }
}

/// The `suspend` / `async` twins. Each does exactly what the blocking method of the same name
/// without `Async` does (see its docs), on a pool thread.
#[uniffi::export]
impl JobVault {
    /// `receive`, without blocking the caller's thread.
    pub async fn receive_async(self: Arc<Self>, envelope: Vec<u8>) -> Result<JobInfo> {
        off_thread(move || self.receive(envelope)).await
    }

    /// `listJobs` / `listJobs()`, without blocking the caller's thread.
    pub async fn list_jobs_async(self: Arc<Self>) -> Result<Vec<JobInfo>> {
        off_thread(move || self.list_jobs()).await
    }

    /// `job`, without blocking the caller's thread.
    pub async fn job_async(self: Arc<Self>, job_id: String) -> Result<JobInfo> {
        off_thread(move || self.job(job_id)).await
    }

    /// `advance`, without blocking the caller's thread.
    pub async fn advance_async(self: Arc<Self>, job_id: String, to: JobState) -> Result<JobInfo> {
        off_thread(move || self.advance(job_id, to)).await
    }

    /// `reveal`, without blocking the caller's thread. The reveal is audited before it returns,
    /// whether or not the caller is still waiting for it.
    pub async fn reveal_async(self: Arc<Self>, job_id: String) -> Result<Reveal> {
        off_thread(move || self.reveal(job_id)).await
    }

    /// `closeJob`, without blocking the caller's thread. Once started, the close and its shred
    /// finish even if the caller is cancelled.
    pub async fn close_job_async(self: Arc<Self>, job_id: String, report: String) -> Result<ShredOutcome> {
        off_thread(move || self.close_job(job_id, report)).await
    }

    /// `cancelJob`, without blocking the caller's thread.
    pub async fn cancel_job_async(self: Arc<Self>, job_id: String) -> Result<ShredOutcome> {
        off_thread(move || self.cancel_job(job_id)).await
    }

    /// `sweep`, without blocking the caller's thread (for a periodic background task).
    pub async fn sweep_async(self: Arc<Self>) -> Result<Vec<ShredOutcome>> {
        off_thread(move || self.sweep()).await
    }

    /// `auditLog`, without blocking the caller's thread.
    pub async fn audit_log_async(self: Arc<Self>, job_id: Option<String>) -> Result<Vec<AuditEvent>> {
        off_thread(move || self.audit_log(job_id)).await
    }

    /// `verifyAudit`, without blocking the caller's thread.
    pub async fn verify_audit_async(self: Arc<Self>) -> Result<AuditVerification> {
        off_thread(move || self.verify_audit()).await
    }

    /// `addPrekeys`, without blocking the caller's thread.
    pub async fn add_prekeys_async(self: Arc<Self>, count: u32) -> Result<DeviceBundle> {
        off_thread(move || self.add_prekeys(count)).await
    }

    /// `syncStatus`, without blocking the caller's thread.
    pub async fn sync_status_async(self: Arc<Self>) -> Result<SyncStatus> {
        off_thread(move || self.sync_status()).await
    }

    /// `enrolWithDispatch` over an async transport. Cancelling it cancels the request in flight;
    /// call again to finish (see `enrolWithDispatch` on a lost answer).
    pub async fn enrol_with_dispatch_async(
        self: Arc<Self>,
        transport: Arc<dyn PlatformAsyncTransport>,
        dispatch_key_hex: Option<String>,
        prekeys: u32,
        enrolment_code: Option<String>,
    ) -> Result<DeviceBundle> {
        let cancel = Arc::new(Cancel::default());
        let _on_drop = CancelOnDrop(Arc::clone(&cancel));
        let adapter = AsyncTransportAdapter { transport, cancel };
        off_thread(move || self.enrol_with(&adapter, dispatch_key_hex, prekeys, enrolment_code)).await
    }

    /// `sync` over an async transport. Cancelling it (the coroutine, the task) cancels the request
    /// in flight and ends the sync at the next request boundary: nothing is lost, the outbox is
    /// kept, and the attempt counts as a failed one (`syncStatus().nextAttemptAtMs` moves).
    pub async fn sync_async(self: Arc<Self>, transport: Arc<dyn PlatformAsyncTransport>) -> Result<SyncReport> {
        let cancel = Arc::new(Cancel::default());
        let _on_drop = CancelOnDrop(Arc::clone(&cancel));
        let adapter = AsyncTransportAdapter { transport, cancel };
        off_thread(move || self.sync_with(&adapter)).await
    }

    /// Tells `listener` about every change from now on ([`VaultEvent`]); returns the id to
    /// `removeListener` it with. Kotlin's `events()` Flow and Swift's `events()` AsyncStream wrap
    /// this pair.
    pub fn add_listener(&self, listener: Arc<dyn VaultListener>) -> u64 {
        self.core().subscribe(Arc::new(ListenerAdapter(listener)))
    }

    /// Stops telling the listener added under `id`; false when there is none. An event already
    /// being told may still reach it once.
    pub fn remove_listener(&self, id: u64) -> bool {
        self.core().unsubscribe(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A platform request that never answers until dropped, counting how many were dropped.
    struct Hangs {
        started: AtomicUsize,
        dropped: Arc<AtomicUsize>,
    }

    struct DropCounter(Arc<AtomicUsize>);
    impl Drop for DropCounter {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[async_trait::async_trait]
    impl PlatformAsyncTransport for Hangs {
        async fn send(&self, _: HttpRequest) -> std::result::Result<HttpResponse, JobsealError> {
            self.started.fetch_add(1, Ordering::SeqCst);
            let _counter = DropCounter(Arc::clone(&self.dropped));
            std::future::pending::<()>().await;
            unreachable!("a pending future never resolves")
        }
    }

    #[test]
    fn cancelling_a_request_in_flight_drops_the_platforms_future_and_fails_the_rest_at_once() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let transport = Arc::new(Hangs { started: AtomicUsize::new(0), dropped: Arc::clone(&dropped) });
        let cancel = Arc::new(Cancel::default());
        let adapter = AsyncTransportAdapter { transport: transport.clone(), cancel: Arc::clone(&cancel) };
        let req =
            jobseal::HttpRequest { method: "POST".into(), path: "/v1/sync".into(), headers: vec![], body: vec![] };
        let sending = std::thread::spawn(move || jobseal::Transport::send(&adapter, req));
        while transport.started.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        drop(CancelOnDrop(cancel));
        let err = sending.join().unwrap().unwrap_err();
        assert_eq!(err.message, CANCELLED);
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the platform's request was dropped (cancelled)");
    }
}
