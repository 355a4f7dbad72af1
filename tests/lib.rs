//! Shared helpers for the cross-crate and interoperability tests.
