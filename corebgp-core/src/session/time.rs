//! The session's own time: an instant on integer milliseconds, supplied by
//! the adapter. Neither std's nor embassy's clock leaks into the core.

pub use core::time::Duration;

/// A point in time, in milliseconds since an epoch the adapter chooses (its
/// monotonic clock's start, usually). Only differences matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Self = Self(0);

    /// An instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the far future.
    ///
    /// Out of line and on `u64` (not `Duration::as_millis`'s `u128`): the
    /// session adds durations in dozens of places, and inlined 128-bit
    /// arithmetic cost over 1 KB of flash on a Cortex-M.
    #[inline(never)]
    pub fn saturating_add(self, d: Duration) -> Self {
        let ms = d
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(d.subsec_millis()));
        self.add_millis(ms)
    }

    /// `self + ms` milliseconds, saturating at the far future.
    pub(crate) fn add_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        self.saturating_add(d)
    }
}

impl Instant {
    /// The deadline of a timer that is not running: the far future
    /// (`u64::MAX` ms, 584 million years after the epoch, never reached).
    ///
    /// The state machine keeps its timers as plain instants with this value
    /// for "off", not as `Option<Instant>`: a 64-bit `Option` is a tag and
    /// a padded pair of words on a 32-bit core, and testing and merging
    /// them cost flash in every timer path. Only the public deadlines are
    /// `Option`s ([`Instant::deadline`]).
    pub(crate) const NEVER: Self = Self(u64::MAX);

    /// This internal deadline as the API reports it: `None` for
    /// [`Instant::NEVER`].
    pub(crate) fn deadline(self) -> Option<Self> {
        (self != Self::NEVER).then_some(self)
    }
}

/// Whether a deadline ([`Instant::NEVER`] when off) has passed at `now`.
pub(crate) fn expired(deadline: Instant, now: Instant) -> bool {
    deadline <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_add_is_whole_milliseconds_and_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(1500), Instant::from_millis(1505));
        // Sub-millisecond parts are dropped, as `Duration::as_millis` does.
        assert_eq!(t + Duration::from_micros(2999), Instant::from_millis(7));
        assert_eq!(t + Duration::MAX, Instant::from_millis(u64::MAX));
        assert_eq!(
            Instant::from_millis(u64::MAX - 1) + Duration::from_secs(1),
            Instant::from_millis(u64::MAX)
        );
        assert_eq!(
            t + Duration::from_secs(u64::MAX / 1000 + 1),
            Instant::from_millis(u64::MAX)
        );
    }
}
