//! Trusted time (G2).
//!
//! Access windows are only as good as the clock that checks them, and the phone's wall clock
//! belongs to the technician. The vault therefore never uses the wall clock alone: it keeps a
//! persisted high-water mark, so setting the clock back can never reopen or extend a window, and
//! when dispatch has told it the time during a sync it counts forward from that anchor on the boot
//! clock (which counts through sleep and cannot be set), ignoring the wall clock altogether until
//! the next reboot.

use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;

/// What the platform provides to tell the time.
///
/// Implementations must be cheap, safe from any thread, and must never call back into the vault.
pub trait Clock: Send + Sync {
    /// The device's wall-clock time (System.currentTimeMillis, Date()).
    fn wall_now(&self) -> DateTime<Utc>;
    /// Time since boot on a clock that keeps counting during sleep and cannot be set
    /// (SystemClock.elapsedRealtime, mach_continuous_time, CLOCK_BOOTTIME), or `None` where the
    /// platform has none. With `None`, trusted time rests on the wall clock and the high-water mark.
    fn boot_elapsed(&self) -> Option<std::time::Duration>;
}

/// The host's clocks: wall time from the system, the boot clock from CLOCK_BOOTTIME on Linux and
/// Android, none elsewhere (mobile apps supply their own [`Clock`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall_now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn boot_elapsed(&self) -> Option<std::time::Duration> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime writes only into the timespec we pass.
            let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
            if rc == 0 && ts.tv_sec >= 0 {
                return Some(std::time::Duration::new(ts.tv_sec as u64, u32::try_from(ts.tv_nsec).unwrap_or(0)));
            }
            None
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        None
    }
}

/// A clock that shows whatever it is set to: for tests, and for the CLI's `--now`.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(DateTime<Utc>, Option<std::time::Duration>)>,
}

impl ManualClock {
    /// A clock at `wall` with no boot clock.
    pub fn new(wall: DateTime<Utc>) -> Self {
        ManualClock { state: Mutex::new((wall, None)) }
    }

    /// A clock at `wall` whose boot clock reads `boot`.
    pub fn with_boot(wall: DateTime<Utc>, boot: std::time::Duration) -> Self {
        ManualClock { state: Mutex::new((wall, Some(boot))) }
    }

    /// Sets the wall clock only, as a technician changing the phone's time would.
    pub fn set_wall(&self, wall: DateTime<Utc>) {
        self.lock().0 = wall;
    }

    /// Lets time pass: both clocks move forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut s = self.lock();
        s.0 += d;
        if let (Some(b), Ok(step)) = (s.1, d.to_std()) {
            s.1 = Some(b + step);
        }
    }

    /// Simulates a reboot: the boot clock starts again from `boot`.
    pub fn reboot(&self, boot: std::time::Duration) {
        self.lock().1 = Some(boot);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (DateTime<Utc>, Option<std::time::Duration>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn wall_now(&self) -> DateTime<Utc> {
        self.lock().0
    }

    fn boot_elapsed(&self) -> Option<std::time::Duration> {
        self.lock().1
    }
}

/// A moment of server time paired with the boot clock's reading when it was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeAnchor {
    /// Server time, milliseconds since the Unix epoch.
    pub server_ms: i64,
    /// Boot clock at the same moment, milliseconds.
    pub boot_ms: i64,
}

/// The persisted state from which trusted time is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeState {
    /// The latest trusted time ever handed out, milliseconds since the Unix epoch.
    pub high_water_ms: i64,
    /// The last server-time anchor, if any.
    pub anchor: Option<TimeAnchor>,
}

impl TimeState {
    /// Trusted time now, given the clocks' readings. Never earlier than the high-water mark.
    ///
    /// With an anchor from the current boot (the boot clock has not gone backwards since), time is
    /// the anchor plus the boot time elapsed, whatever the wall clock says. Otherwise the wall
    /// clock is used, floored at the high-water mark.
    pub fn trusted_ms(&self, wall_ms: i64, boot_ms: Option<i64>) -> i64 {
        let base = match (self.anchor, boot_ms) {
            (Some(a), Some(b)) if b >= a.boot_ms => a.server_ms.saturating_add(b - a.boot_ms),
            _ => wall_ms,
        };
        base.max(self.high_water_ms)
    }
}

pub use jobseal_protocol::time::{from_ms, to_ms};

/// Reads a clock as (wall ms, boot ms).
pub(crate) fn read(clock: &dyn Clock) -> (i64, Option<i64>) {
    let boot = clock.boot_elapsed().map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    (to_ms(clock.wall_now()), boot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_never_moves_trusted_time_back() {
        let st = TimeState { high_water_ms: 10_000, anchor: None };
        assert_eq!(st.trusted_ms(5_000, None), 10_000);
        assert_eq!(st.trusted_ms(12_000, None), 12_000);
    }

    #[test]
    fn anchor_ignores_the_wall_clock_within_a_boot() {
        let st = TimeState { high_water_ms: 0, anchor: Some(TimeAnchor { server_ms: 1_000_000, boot_ms: 500 }) };
        // Wall clock set a day ahead: ignored.
        assert_eq!(st.trusted_ms(1_000_000 + 86_400_000, Some(1_500)), 1_001_000);
        // After a reboot the boot clock restarts below the anchor: fall back to the wall clock.
        assert_eq!(st.trusted_ms(2_000_000, Some(100)), 2_000_000);
    }

    #[test]
    fn system_clock_has_a_boot_clock_on_linux() {
        let c = SystemClock;
        if cfg!(target_os = "linux") {
            assert!(c.boot_elapsed().is_some());
        }
        assert!(c.wall_now().timestamp() > 1_700_000_000);
    }
}
