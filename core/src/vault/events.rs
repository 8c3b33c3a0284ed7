//! Vault events: what changed, told to observers after the change is durable and the lock is free.
//!
//! A job screen or a status bar wants to redraw when a sheet arrives, a job moves, a job is
//! shredded (by the technician, by dispatch or by hard expiry at any call) or a sync ends, without
//! polling the vault. Each change pushes its event into a buffer inside the locked state, only
//! after its transaction committed. When the lock guard [`Locked`] is released, it moves the
//! buffer to the observers' queue while still holding the lock (so the queue is in commit order
//! across threads), unlocks, and then delivers the queue unless another delivery is under way,
//! which then delivers it. So no observer ever runs with the vault locked, an observer may call
//! the vault (events of that nested call are queued behind the current one, never delivered
//! inside it), and every observer sees every event in commit order. Events carry no customer
//! value: job summaries, shred outcomes, sync health.

use super::{Inner, Vault};
use crate::model::{JobInfo, ShredOutcome};
use crate::sync::SyncStatus;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

/// Something that changed in the vault, after it is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultEvent {
    /// A job sheet the vault did not hold was stored (sealed from dispatch or ingested).
    JobReceived(JobInfo),
    /// A held job changed: a newer version of its sheet arrived, or it moved to another live state.
    JobChanged(JobInfo),
    /// A job's customer data was destroyed: closed, cancelled, revoked by dispatch or expired.
    JobShredded(ShredOutcome),
    /// A sync attempt ended, successfully or not; the outbox and backoff as they now are.
    SyncStatusChanged(SyncStatus),
}

/// Receives [`VaultEvent`]s, in commit order, after the vault's lock is released. Called on the
/// thread of a vault call: usually the one that made the change; when calls on several threads
/// finish together, one of them delivers the others' events too (so a call may return before
/// its events are told, while another thread tells them). May call the vault; its events are
/// told after the current one. Must return quickly (hand the event to a channel), and should
/// not panic: a panic is caught and that event is skipped for that observer.
pub trait VaultObserver: Send + Sync {
    /// One event.
    fn on_event(&self, event: &VaultEvent);
}

/// The registered observers, each under the id [`Vault::subscribe`] gave it, and the events
/// committed but not yet told.
#[derive(Default)]
pub(crate) struct Observers {
    list: Mutex<Registry>,
    /// Events in commit order; filled under the vault lock, drained by the one delivery.
    queue: Mutex<VecDeque<VaultEvent>>,
    /// Held by the thread delivering the queue.
    delivering: Mutex<()>,
}

/// The last id given, and the observers still registered with their ids.
type Registry = (u64, Vec<(u64, Arc<dyn VaultObserver>)>);

impl Observers {
    fn snapshot(&self) -> Vec<Arc<dyn VaultObserver>> {
        let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.1.iter().map(|(_, o)| Arc::clone(o)).collect()
    }

    /// Appends `events` to the queue; called with the vault lock held, so the queue is in commit
    /// order.
    fn enqueue(&self, events: Vec<VaultEvent>) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).extend(events);
    }

    /// Delivers the queue unless some delivery is under way (another thread's, or this thread's
    /// own further up the stack when an observer called the vault): that one delivers it.
    /// Looks again after stepping down, so an event queued just then is not left behind.
    pub(crate) fn deliver(&self) {
        loop {
            let _turn = match self.delivering.try_lock() {
                Ok(turn) => turn,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            loop {
                let batch: Vec<VaultEvent> = self.queue.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
                if batch.is_empty() {
                    break;
                }
                for observer in self.snapshot() {
                    for event in &batch {
                        // An observer's panic is its own: the change is durable and others are told.
                        let _ = catch_unwind(AssertUnwindSafe(|| observer.on_event(event)));
                    }
                }
            }
            drop(_turn);
            if self.queue.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
                return;
            }
        }
    }
}

/// The vault's lock, held: dereferences to the locked state and, when released, tells the
/// observers what the call committed meanwhile (after unlocking).
pub(crate) struct Locked<'a> {
    guard: Option<MutexGuard<'a, Inner>>,
    observers: &'a Observers,
}

impl<'a> Locked<'a> {
    pub(crate) fn new(guard: MutexGuard<'a, Inner>, observers: &'a Observers) -> Self {
        Locked { guard: Some(guard), observers }
    }
}

impl Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        match &self.guard {
            Some(guard) => guard,
            None => unreachable!("the guard is only taken when the lock is released"),
        }
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        match &mut self.guard {
            Some(guard) => guard,
            None => unreachable!("the guard is only taken when the lock is released"),
        }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else { return };
        let events = std::mem::take(&mut guard.events);
        let any = !events.is_empty();
        if any {
            // Queued under the lock: the queue's order is the commit order.
            self.observers.enqueue(events);
        }
        drop(guard);
        // While a panic unwinds, nothing is delivered here; the next call delivers the queue.
        if any && !std::thread::panicking() {
            self.observers.deliver();
        }
    }
}

impl Vault {
    /// Registers `observer` for every change from now on; returns the id to
    /// [`Vault::unsubscribe`] it with. Changes made while opening the vault (expired jobs
    /// shredded) are not told; [`Vault::sweep`] reports them.
    pub fn subscribe(&self, observer: Arc<dyn VaultObserver>) -> u64 {
        let mut list = self.observers.list.lock().unwrap_or_else(|p| p.into_inner());
        list.0 += 1;
        let id = list.0;
        list.1.push((id, observer));
        id
    }

    /// Removes the observer registered under `id`; false when there is none (already removed).
    /// A notification already under way may still reach it once.
    pub fn unsubscribe(&self, id: u64) -> bool {
        let mut list = self.observers.list.lock().unwrap_or_else(|p| p.into_inner());
        let before = list.1.len();
        list.1.retain(|(i, _)| *i != id);
        list.1.len() != before
    }

    /// Queues `event` (with the lock held, like every other) and delivers it; for a change whose
    /// event is known only after the call's own lock was released (the end of a sync).
    pub(super) fn notify(&self, event: VaultEvent) {
        let mut inner = self.lock();
        inner.events.push(event);
        drop(inner);
    }
}
