//! Vault events: what changed, told to observers after the change is durable and the lock is free.
//!
//! A job screen or a status bar wants to redraw when a sheet arrives, a job moves, a job is
//! shredded (by the technician, by dispatch or by hard expiry at any call) or a sync ends, without
//! polling the vault. Each change pushes its event into a buffer inside the locked state, only
//! after its transaction committed; the lock guard [`Locked`] hands the buffer to the observers
//! when it is released, so an observer may call the vault again and no observer ever runs with
//! the vault locked. Events carry no customer value: job summaries, shred outcomes, sync health.

use super::{Inner, Vault};
use crate::model::{JobInfo, ShredOutcome};
use crate::sync::SyncStatus;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

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

/// Receives [`VaultEvent`]s. Called on the thread whose vault call made the change, after the
/// vault's lock is released, in the order the changes were made; may call the vault again.
/// Must not block for long: the vault call that made the change returns only after every
/// observer has been told.
pub trait VaultObserver: Send + Sync {
    /// One event.
    fn on_event(&self, event: &VaultEvent);
}

/// The registered observers, each under the id [`Vault::subscribe`] gave it.
#[derive(Default)]
pub(crate) struct Observers {
    list: Mutex<Registry>,
}

/// The last id given, and the observers still registered with their ids.
type Registry = (u64, Vec<(u64, Arc<dyn VaultObserver>)>);

impl Observers {
    fn snapshot(&self) -> Vec<Arc<dyn VaultObserver>> {
        let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.1.iter().map(|(_, o)| Arc::clone(o)).collect()
    }

    /// Tells every observer registered now about `events`, in order.
    pub(crate) fn notify(&self, events: &[VaultEvent]) {
        if events.is_empty() {
            return;
        }
        for observer in self.snapshot() {
            for event in events {
                observer.on_event(event);
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
        drop(guard);
        // While a panic unwinds, nothing is told: the call did not finish.
        if !std::thread::panicking() {
            self.observers.notify(&events);
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

    /// Tells the observers about `event` directly, for a change made without the lock held.
    pub(super) fn notify(&self, event: VaultEvent) {
        self.observers.notify(std::slice::from_ref(&event));
    }
}
