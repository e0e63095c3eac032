//! Deterministic noise: a pure function of (seed, key, second), so the same scenario at the same
//! time always gives the same values, in every process that plays it.

/// SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Hash of several words.
pub fn hash(words: &[u64]) -> u64 {
    words.iter().fold(0x243F_6A88_85A3_08D3, |acc, w| mix(acc ^ mix(*w)))
}

/// Uniform value in [0, 1) for these words.
pub fn unit(words: &[u64]) -> f64 {
    (hash(words) >> 11) as f64 / (1u64 << 53) as f64
}

/// Uniform value in [-1, 1) for these words.
pub fn signed(words: &[u64]) -> f64 {
    unit(words) * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_and_spread() {
        assert_eq!(signed(&[1, 2, 3]), signed(&[1, 2, 3]));
        assert_ne!(signed(&[1, 2, 3]), signed(&[1, 2, 4]));
        let mean: f64 = (0..10_000).map(|k| signed(&[7, k])).sum::<f64>() / 10_000.0;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((0..10_000).all(|k| (-1.0..1.0).contains(&signed(&[9, k]))));
    }
}
