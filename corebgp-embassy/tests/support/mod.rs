//! Test support shared by the integration tests (each test file does
//! `mod support;`; not every file uses every item).
#![allow(dead_code)]

pub mod bgp;
pub mod net;
pub mod splice;
pub mod tokio_side;

use std::future::Future;
use std::time::Duration;

/// Runs a test body on a current-thread tokio runtime (embassy-net futures
/// are `!Send`), failing it after `limit`. The body is built and runs on a thread with a
/// 64 MiB stack: unoptimised driver futures of several peers, pinned on the
/// stack by `block_on`, outgrow the test harness's 2 MiB threads.
pub fn run<F: Future<Output = T>, T: Send>(limit: Duration, body: impl FnOnce() -> F + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(s, move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let f = body();
                rt.block_on(async {
                    match tokio::time::timeout(limit, f).await {
                        Ok(v) => v,
                        Err(_) => panic!("test did not finish within {limit:?}"),
                    }
                })
            })
            .expect("test thread")
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}
