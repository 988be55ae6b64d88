//! Shared helpers of the integration tests.
#![allow(dead_code)]

/// `n` pseudo-random bytes from `seed`, so every run sees the same cases and a failing case is
/// named by its seed.
#[allow(unused_imports)]
pub use witness::world::arbitrary::seed_bytes as bytes;

/// Number of seeds property tests run: `WITNESS_CASES` or the default.
pub fn cases(default: u64) -> u64 {
    std::env::var("WITNESS_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}
