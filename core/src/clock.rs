//! Trusted time (G2).
//!
//! Access windows are only as good as the clock that checks them, and the phone's wall clock
//! belongs to the technician, who can also reboot the phone and keep it offline. The vault never
//! uses the wall clock alone. It keeps a persisted [`TimeState`] (authenticated, see
//! `crate::integrity`) holding:
//! - a high-water mark: trusted time never goes below the latest time it handed out, so setting the
//!   clock back can never reopen or extend a window;
//! - a proven lower bound of real time, with the boot clock's reading and the boot's identity when
//!   it was taken. Within one boot the boot clock (which counts through sleep and cannot be set)
//!   moves it forward exactly; after a reboot it moves forward by the new boot's uptime, which is
//!   less than the time that really passed, so it stays a lower bound.
//!
//! When dispatch has told the vault the time (an authenticated sync answer), that is the proven
//! bound and, until the next reboot, trusted time is that anchor plus the boot clock, whatever the
//! wall clock says. Otherwise the wall clock is believed only between the proven bound and
//! [`MAX_WALL_CREDIT_MS`] above it: setting the clock forward can open a window early by at most
//! that much, and the credit does not compound over reboots, because it is always measured from the
//! proven bound, never from the high-water mark.

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
    /// An identity of the current boot, different after every reboot: `Settings.Global.BOOT_COUNT`
    /// on Android, `kern.boottime` on iOS, `/proc/sys/kernel/random/boot_id` on Linux. `None`
    /// where the platform has none: a server anchor is then never carried from one call to the
    /// next as exact, only as a lower bound.
    fn boot_id(&self) -> Option<String> {
        None
    }
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

    fn boot_id(&self) -> Option<String> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            let id = id.trim();
            (!id.is_empty()).then(|| id.to_owned())
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        None
    }
}

/// A clock that shows whatever it is set to: for tests, and for the CLI's `--now`.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug)]
struct ManualState {
    wall: DateTime<Utc>,
    boot: Option<std::time::Duration>,
    /// Reboots so far; the boot id is derived from it.
    boots: u32,
}

impl ManualClock {
    /// A clock at `wall` with no boot clock.
    pub fn new(wall: DateTime<Utc>) -> Self {
        ManualClock { state: Mutex::new(ManualState { wall, boot: None, boots: 0 }) }
    }

    /// A clock at `wall` whose boot clock reads `boot`.
    pub fn with_boot(wall: DateTime<Utc>, boot: std::time::Duration) -> Self {
        ManualClock { state: Mutex::new(ManualState { wall, boot: Some(boot), boots: 0 }) }
    }

    /// Sets the wall clock only, as a technician changing the phone's time would.
    pub fn set_wall(&self, wall: DateTime<Utc>) {
        self.lock().wall = wall;
    }

    /// Lets time pass: both clocks move forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut s = self.lock();
        s.wall += d;
        if let (Some(b), Ok(step)) = (s.boot, d.to_std()) {
            s.boot = Some(b + step);
        }
    }

    /// Simulates a reboot: the boot clock starts again from `boot` and the boot id changes.
    pub fn reboot(&self, boot: std::time::Duration) {
        let mut s = self.lock();
        s.boot = Some(boot);
        s.boots += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn wall_now(&self) -> DateTime<Utc> {
        self.lock().wall
    }

    fn boot_elapsed(&self) -> Option<std::time::Duration> {
        self.lock().boot
    }

    /// A clock with a boot clock has a boot id, `manual-boot-<reboots>`; one without has none.
    fn boot_id(&self) -> Option<String> {
        let s = self.lock();
        s.boot.map(|_| format!("manual-boot-{}", s.boots))
    }
}

/// How far above the proven lower bound of real time the wall clock is believed when no server
/// anchor of the current boot exists: 12 hours, enough for a phone switched off overnight to show
/// the morning's windows on time, and the most a clock set forward can open a window early.
pub const MAX_WALL_CREDIT_MS: i64 = 12 * 60 * 60 * 1000;

/// One reading of the platform's clocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// Wall clock, milliseconds since the Unix epoch.
    pub wall_ms: i64,
    /// Boot clock, milliseconds since boot, if the platform has one.
    pub boot_ms: Option<i64>,
    /// The boot's identity, hashed to 16 bytes, if the platform gives one.
    pub boot_id: Option<[u8; 16]>,
}

/// The persisted state from which trusted time is computed (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeState {
    /// The latest trusted time ever handed out, milliseconds since the Unix epoch.
    pub high_water_ms: i64,
    /// A lower bound of real time, milliseconds since the Unix epoch, taken when the boot clock
    /// read `proven_boot_ms`.
    pub proven_ms: i64,
    /// The boot clock's reading when `proven_ms` was taken (`None`: no boot clock then).
    pub proven_boot_ms: Option<i64>,
    /// The boot `proven_ms` was taken in (`None`: unknown).
    pub boot_id: Option<[u8; 16]>,
    /// `proven_ms` is dispatch's authenticated time, exact within `boot_id`'s boot.
    pub anchored: bool,
}

impl TimeState {
    /// The state of a new vault: the wall clock is all there is to go on.
    pub fn initial(r: &Reading) -> TimeState {
        TimeState {
            high_water_ms: r.wall_ms,
            proven_ms: r.wall_ms,
            proven_boot_ms: r.boot_ms,
            boot_id: r.boot_id,
            anchored: false,
        }
    }

    /// The state of a vault written before the proven bound existed: its high-water mark is the
    /// best bound it has, with no boot reference.
    pub fn from_high_water(high_water_ms: i64) -> TimeState {
        TimeState { high_water_ms, proven_ms: high_water_ms, proven_boot_ms: None, boot_id: None, anchored: false }
    }

    /// The state after dispatch said it is `server_ms` (authenticated) at reading `r`. Trusted
    /// time still never goes below the high-water mark.
    pub fn anchored_at(&self, server_ms: i64, r: &Reading) -> TimeState {
        TimeState {
            high_water_ms: self.high_water_ms.max(server_ms),
            proven_ms: server_ms,
            proven_boot_ms: r.boot_ms,
            boot_id: r.boot_id,
            anchored: r.boot_ms.is_some() && r.boot_id.is_some(),
        }
    }

    /// Whether `r` was taken in the boot this state's proven bound belongs to.
    fn same_boot(&self, r: &Reading) -> bool {
        matches!((self.boot_id, r.boot_id, self.proven_boot_ms, r.boot_ms),
            (Some(a), Some(b), Some(pb), Some(now)) if a == b && now >= pb)
    }

    /// Trusted time at reading `r`, and the state to persist with it. Never below the high-water
    /// mark.
    pub fn advance(&self, r: &Reading) -> (i64, TimeState) {
        let Some(now_boot) = r.boot_ms else {
            // No boot clock: only the wall clock, floored at the high-water mark.
            let t = r.wall_ms.max(self.high_water_ms);
            let next =
                TimeState { high_water_ms: t, proven_ms: t, proven_boot_ms: None, boot_id: None, anchored: false };
            return (t, next);
        };
        let same = self.same_boot(r);
        let elapsed = match self.proven_boot_ms {
            Some(pb) if same => now_boot - pb,
            // A known reboot (another boot id, or the boot clock went back): the whole uptime of
            // this boot has passed since the bound was taken, and more.
            Some(pb) if (self.boot_id.is_some() && r.boot_id.is_some()) || now_boot < pb => now_boot,
            // Unknown whether there was a reboot: only what is certain either way.
            Some(pb) => now_boot - pb,
            // The bound was taken without a boot clock: nothing is certain.
            None => 0,
        };
        let proven = self.proven_ms.saturating_add(elapsed.max(0));
        let anchored = same && self.anchored;
        let t = if anchored { proven } else { r.wall_ms.clamp(proven, proven.saturating_add(MAX_WALL_CREDIT_MS)) }
            .max(self.high_water_ms);
        let next = TimeState {
            high_water_ms: t,
            proven_ms: proven,
            proven_boot_ms: Some(now_boot),
            boot_id: r.boot_id,
            anchored,
        };
        (t, next)
    }
}

pub use jobseal_protocol::time::{from_ms, to_ms};

/// Reads a clock.
pub(crate) fn read(clock: &dyn Clock) -> Reading {
    use sha2::Digest;
    let boot_ms = clock.boot_elapsed().map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let boot_id = clock.boot_id().map(|id| {
        let digest = sha2::Sha256::digest(id.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        out
    });
    Reading { wall_ms: to_ms(clock.wall_now()), boot_ms, boot_id }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 60 * 60 * 1000;

    fn at(wall_ms: i64, boot_ms: i64, boot: u8) -> Reading {
        Reading { wall_ms, boot_ms: Some(boot_ms), boot_id: Some([boot; 16]) }
    }

    #[test]
    fn rollback_never_moves_trusted_time_back() {
        let st = TimeState::from_high_water(10_000);
        let no_boot = |wall_ms| Reading { wall_ms, boot_ms: None, boot_id: None };
        assert_eq!(st.advance(&no_boot(5_000)).0, 10_000);
        assert_eq!(st.advance(&no_boot(12_000)).0, 12_000);
        // With a boot clock too, and across a reboot.
        let st = TimeState::initial(&at(100 * H, 5_000, 1));
        let (t, st) = st.advance(&at(101 * H, 5_000 + H, 1));
        assert_eq!(t, 101 * H);
        assert_eq!(st.advance(&at(50 * H, 1_000, 2)).0, 101 * H + 1_000, "reboot and clock set back");
    }

    #[test]
    fn anchor_ignores_the_wall_clock_within_a_boot() {
        let st = TimeState::initial(&at(0, 500, 1)).anchored_at(1_000_000, &at(0, 500, 1));
        // Wall clock set a day ahead: ignored.
        assert_eq!(st.advance(&at(1_000_000 + 24 * H, 1_500, 1)).0, 1_001_000);
        // Wall clock set back: ignored.
        assert_eq!(st.advance(&at(0, 2_500, 1)).0, 1_002_000);
    }

    #[test]
    fn after_a_reboot_the_anchor_is_a_lower_bound_and_the_wall_clock_gets_bounded_credit() {
        let st = TimeState::initial(&at(0, 500, 1)).anchored_at(100 * H, &at(0, 500, 1));
        // Reboot; the phone was off a while; 10 minutes of uptime. Clock set back: the bound holds.
        let up = 10 * 60 * 1000;
        assert_eq!(st.advance(&at(0, up, 2)).0, 100 * H + up);
        // Clock honest (8 h later): believed, within the credit.
        assert_eq!(st.advance(&at(108 * H, up, 2)).0, 108 * H);
        // Clock set a week ahead: believed only up to the credit above the bound.
        assert_eq!(st.advance(&at(268 * H, up, 2)).0, 100 * H + up + MAX_WALL_CREDIT_MS);
    }

    #[test]
    fn uptime_passing_the_old_anchors_uptime_does_not_make_it_current() {
        // The old fail-open case: the anchor was taken at 10 s of uptime; after a reboot, 1 h of
        // uptime is more than that, but it is another boot.
        let st = TimeState::initial(&at(0, 10_000, 1)).anchored_at(100 * H, &at(0, 10_000, 1));
        let (t, next) = st.advance(&at(500 * H, H, 2));
        assert_eq!(t, 100 * H + H + MAX_WALL_CREDIT_MS, "credit bounded, not the anchor's exactness");
        assert!(!next.anchored);
        // Without boot ids, the anchor is not exact either once the boot clock went back.
        let no_id = |wall_ms, boot_ms| Reading { wall_ms, boot_ms: Some(boot_ms), boot_id: None };
        let st = TimeState::initial(&no_id(0, 10_000)).anchored_at(100 * H, &no_id(0, 10_000));
        assert!(!st.anchored);
        assert_eq!(st.advance(&no_id(0, H)).0, 100 * H + H - 10_000, "only the certain elapsed time");
    }

    #[test]
    fn credit_does_not_compound_over_reboots() {
        let mut st = TimeState::initial(&at(100 * H, 1_000, 0)).anchored_at(100 * H, &at(100 * H, 1_000, 0));
        let mut highest = 0;
        for boot in 1..20u8 {
            // Each time: reboot, clock set far ahead, one minute of uptime.
            let (t, next) = st.advance(&at(10_000 * H, 60_000, boot));
            highest = highest.max(t);
            st = next;
        }
        // Real time passed is at least 19 minutes; the credit never stacked beyond one.
        assert!(highest <= 100 * H + 19 * 60_000 + MAX_WALL_CREDIT_MS, "{highest}");
    }

    #[test]
    fn a_known_reboot_credits_the_whole_uptime() {
        let st = TimeState::initial(&at(100 * H, 50 * H, 1));
        // Rebooted and up for 2 h: real time is at least 2 h after the bound, whatever the old
        // boot clock said.
        assert_eq!(st.advance(&at(0, 2 * H, 2)).0, 102 * H);
    }

    #[test]
    fn system_clock_has_a_boot_clock_and_a_boot_id_on_linux() {
        let c = SystemClock;
        if cfg!(target_os = "linux") {
            assert!(c.boot_elapsed().is_some());
            assert_eq!(c.boot_id().map(|id| id.len()), Some(36));
        }
        assert!(c.wall_now().timestamp() > 1_700_000_000);
    }
}
