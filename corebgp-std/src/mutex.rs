//! The lock of an [`UpdateQueue`](crate::UpdateQueue): one `std` mutex per
//! queue. embassy-sync's `CriticalSectionRawMutex` is, on hosts, one lock
//! for the whole process (critical-section's `std` implementation, with a
//! thread-local for nesting): every queue of every peer, and every other
//! user of `critical_section`, took the same lock, and a sender spent about
//! a fifth of its time locking and unlocking it.

#![allow(unsafe_code)]

use embassy_sync::blocking_mutex::raw::RawMutex;

/// A [`RawMutex`] over [`std::sync::Mutex`]: exclusion across threads,
/// per instance. Not reentrant (the queue never locks itself twice: each
/// use is one short closure over its `RefCell`, which would refuse a
/// nested borrow anyway).
pub struct StdRawMutex(std::sync::Mutex<()>);

// SAFETY: `lock` runs `f` while holding the `std` mutex, so no two calls
// of `lock` on one `StdRawMutex` run `f` at the same time, from any thread:
// the mutual exclusion `RawMutex` requires. A poisoned mutex (a panic in
// `f`) still excludes: its guard is taken all the same.
unsafe impl RawMutex for StdRawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self(std::sync::Mutex::new(()));

    fn lock<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }
}

impl std::fmt::Debug for StdRawMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StdRawMutex")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_sync::blocking_mutex::Mutex as BlockingMutex;
    use std::cell::RefCell;
    use std::sync::Arc;

    #[test]
    fn excludes_across_threads() {
        // A read, a yield and a write under the lock: updates are lost if
        // two threads are ever inside at once.
        let s: Arc<BlockingMutex<StdRawMutex, RefCell<u64>>> =
            Arc::new(BlockingMutex::new(RefCell::new(0)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        s.lock(|c| {
                            let v = *c.borrow();
                            if i % 64 == 0 {
                                std::thread::yield_now();
                            }
                            *c.borrow_mut() = v + 1;
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.lock(|c| *c.borrow()), 80_000);
    }

    #[test]
    fn a_panic_inside_does_not_lock_it_for_good() {
        let m = StdRawMutex::INIT;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            m.lock(|| panic!("inside"));
        }));
        assert!(r.is_err());
        assert_eq!(m.lock(|| 7), 7);
    }
}
