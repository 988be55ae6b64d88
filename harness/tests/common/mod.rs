//! Shared helpers of the integration tests: a deterministic byte source for `arbitrary`.
#![allow(dead_code)]

/// `n` pseudo-random bytes from `seed` (xorshift64*), so every test run sees the same cases
/// and a failing case is named by its seed.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Number of seeds property tests run: `WITNESS_CASES` or the default.
pub fn cases(default: u64) -> u64 {
    std::env::var("WITNESS_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
