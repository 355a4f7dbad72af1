//! Polling with timeouts and informative failures.

use std::time::{Duration, Instant};

/// Default poll interval.
pub const POLL: Duration = Duration::from_millis(100);

/// Polls `check` every [`POLL`] until it returns `Some`, or panics after
/// `timeout` with `what` and the text produced by `context` (called only on
/// failure, e.g. to attach a daemon's state and log).
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
    context: impl FnOnce() -> String,
) -> T {
    match poll(timeout, &mut check) {
        Some(v) => v,
        None => panic!(
            "timed out after {timeout:?} waiting for {what}\n{}",
            context()
        ),
    }
}

/// Polls `check` every [`POLL`] until it returns `Some` or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}
