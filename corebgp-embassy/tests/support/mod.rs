//! Test support shared by the integration tests (each test file does
//! `mod support;`; not every file uses every item).
#![allow(dead_code)]

pub mod net;
pub mod speaker;
pub mod splice;

use std::future::Future;
use std::time::Duration;

/// Runs a test body on a current-thread tokio runtime (embassy-net futures
/// are `!Send`), failing it after `limit`.
pub fn run<F: Future<Output = T>, T>(limit: Duration, f: F) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        match tokio::time::timeout(limit, f).await {
            Ok(v) => v,
            Err(_) => panic!("test did not finish within {limit:?}"),
        }
    })
}
