//! Time for the session driver.

use core::future::Future;

use embassy_time::{Instant, Timer};

/// A monotonic clock and a sleeper: what the session driver needs from the
/// platform to run its timers (ConnectRetry, Hold, Keepalive, IdleHold).
///
/// **Placeholder: to be replaced by corebgp-core's driver trait.** The shared
/// driver in corebgp-core defines the real trait; when it lands, this trait is
/// removed and [`EmbassyClock`] implements the core's trait instead, with the
/// same two operations. Time flows into the sans-IO session as a value
/// (`now`) and deadlines flow out, so the core never reads a clock itself.
pub trait Clock {
    /// Milliseconds since a fixed, arbitrary epoch (boot). Never decreases.
    fn now_ms(&self) -> u64;

    /// Completes once [`Clock::now_ms`] has reached `deadline_ms`
    /// (immediately for a deadline in the past). Dropping the future cancels
    /// the sleep.
    fn sleep_until_ms(&self, deadline_ms: u64) -> impl Future<Output = ()>;
}

/// [`Clock`] backed by `embassy-time` (the board's time driver, or the `std`
/// driver on a host).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now_ms(&self) -> u64 {
        Instant::now().as_millis()
    }

    fn sleep_until_ms(&self, deadline_ms: u64) -> impl Future<Output = ()> {
        // A deadline beyond the tick counter's range means "never".
        Timer::at(Instant::try_from_millis(deadline_ms).unwrap_or(Instant::MAX))
    }
}
