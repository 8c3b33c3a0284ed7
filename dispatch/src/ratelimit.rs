//! Per-source rate limit of enrolment (issue 14).
//!
//! `POST /v1/enrol` is the one endpoint a caller without any credential can make the server work
//! for: every request costs a key agreement and, with a valid code, a bundle of up to
//! [`crate::MAX_PREKEYS_HELD`] prekeys in the database (the issue measured 56 enrolments/s
//! growing it by 84 MB in 8 s). The per-code limit (`crate::enrolment::MAX_CODE_FAILURES`) stops
//! guessing one code; this limit stops one address from hammering the endpoint at all. It is
//! counted in memory, per peer address as the accept loop saw it (`crate::server`), before the
//! body is read; an IPv6 peer counts by its /64, the block one subscriber is usually given.
//! Behind a reverse proxy every request comes from the proxy's address, so the proxy must do
//! this limiting instead (or be given a larger [`EnrolRate`]).
//!
//! The limiter is `governor`'s GCRA: a burst, then a steady rate, and for a refused request the
//! time until the next one would pass (sent as `Retry-After`).

use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many enrolment requests one source address may make: a burst, then a steady rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnrolRate {
    /// Requests allowed at once from a fresh address.
    pub burst: u32,
    /// Requests per minute allowed after the burst is spent.
    pub per_minute: u32,
}

impl Default for EnrolRate {
    /// A burst of 30, then 30 a minute: a depot enrolling a van's worth of phones from one
    /// address at once gets through; a script does not get far.
    fn default() -> Self {
        EnrolRate { burst: 30, per_minute: 30 }
    }
}

/// How often (in checks) addresses whose limit has fully recovered are forgotten, so that the
/// table does not grow with every address ever seen.
const FORGET_EVERY: u32 = 1024;

/// The per-address enrolment limiter.
pub(crate) struct SourceLimiter {
    limiter: RateLimiter<IpAddr, HashMapStateStore<IpAddr>, DefaultClock>,
    clock: DefaultClock,
    checks: AtomicU32,
}

impl SourceLimiter {
    /// A limiter allowing `rate` (a zero burst or rate counts as 1).
    pub(crate) fn new(rate: EnrolRate) -> SourceLimiter {
        let per_minute = NonZeroU32::new(rate.per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
        let clock = DefaultClock::default();
        let limiter = RateLimiter::new(
            Quota::per_minute(per_minute).allow_burst(burst),
            HashMapStateStore::default(),
            clock.clone(),
        );
        SourceLimiter { limiter, clock, checks: AtomicU32::new(0) }
    }

    /// Counts one enrolment request from `peer`; 429 `rate_limited` with the seconds until one
    /// would pass if the address is over its limit.
    pub(crate) fn check(&self, peer: IpAddr) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&source(peer))
            .map_err(|not_until| ApiError::rate_limited(not_until.wait_time_from(self.clock.now()).as_secs() + 1))
    }
}

/// The key an address counts under: itself for IPv4, its /64 for IPv6 (an IPv4 address mapped
/// into IPv6 counts as the IPv4 address).
fn source(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_subscriber_counts_as_one_source_and_a_mapped_ipv4_as_itself() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source(a), source(b));
        assert_ne!(source(a), source(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let limiter = SourceLimiter::new(EnrolRate { burst: 2, per_minute: 1 });
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(b).is_ok());
        assert!(limiter.check(a).is_err(), "a second address in the same /64 shares the limit");
        assert!(limiter.check(other).is_ok());
    }
}
