//! Time for the shared driver: corebgp-core's [`Clock`] on `embassy-time`.

use core::future::Future;

use corebgp_core::driver::Clock;
use corebgp_core::session::Instant;
use embassy_time::Timer;

/// [`Clock`] backed by `embassy-time` (the board's time driver, or the `std`
/// driver on a host). Instants are milliseconds since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now(&self) -> Instant {
        Instant::from_millis(embassy_time::Instant::now().as_millis())
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> {
        // A deadline beyond the tick counter's range means "never".
        Timer::at(
            embassy_time::Instant::try_from_millis(deadline.as_millis())
                .unwrap_or(embassy_time::Instant::MAX),
        )
    }
}
