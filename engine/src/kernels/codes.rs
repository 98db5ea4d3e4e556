//! Kernels over quantized codes: the integer dot product and squared L2 distance of two int8 code
//! rows (components in `0..=127`, as scalar quantization writes them), and the Hamming distance of
//! two bit-packed rows (binary quantization), and that distance weighted by the bit planes of a
//! query quantized to 4 or 8 bits (binary quantization's asymmetric scoring).
//!
//! On x86_64 the int8 kernels use AVX2 (`vpmaddubsw` multiplies unsigned by signed bytes into 16-bit
//! pair sums; with both sides at most 127 a pair sum stays below `i16::MAX`), and the Hamming
//! distance the `popcnt` instruction; the portable loops give bit-identical results, since integer
//! sums do not depend on their order.

/// Dot product of two code rows (over the shorter of the two). Components must be in `0..=127`.
#[inline]
pub fn u8_dot(a: &[u8], b: &[u8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if super::avx2_fma() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { x86::u8_dot(a, b) };
    }
    portable::u8_dot(a, b)
}

/// Squared Euclidean distance of two code rows (over the shorter of the two).
#[inline]
pub fn u8_l2(a: &[u8], b: &[u8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if super::avx2_fma() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { x86::u8_l2(a, b) };
    }
    portable::u8_l2(a, b)
}

/// Number of differing bits of two bit-packed rows (over the shorter of the two).
#[inline]
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if popcnt() {
        // SAFETY: the CPU supports POPCNT (checked just above).
        return unsafe { x86::hamming(a, b) };
    }
    portable::hamming(a, b)
}

/// `Σ_b 2^b · popcount(row XOR plane_b)` for a query of `B` bit planes laid out word by word
/// (`planes[j·B + b]` is plane `b`'s word `j`), over the words of `row`.
#[inline]
pub fn weighted_hamming<const B: usize>(row: &[u64], planes: &[u64]) -> u32 {
    debug_assert_eq!(row.len() * B, planes.len());
    #[cfg(target_arch = "x86_64")]
    if popcnt() {
        // SAFETY: the CPU supports POPCNT (checked just above).
        return unsafe { x86::weighted_hamming::<B>(row, planes) };
    }
    portable::weighted_hamming::<B>(row, planes)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn popcnt() -> bool {
    std::arch::is_x86_feature_detected!("popcnt")
}

/// The portable loops, public for the comparison tests and benchmarks.
pub mod portable {
    /// [`super::u8_dot`] without intrinsics.
    pub fn u8_dot(a: &[u8], b: &[u8]) -> i32 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum()
    }

    /// [`super::u8_l2`] without intrinsics.
    pub fn u8_l2(a: &[u8], b: &[u8]) -> i32 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| {
                let d = i32::from(x) - i32::from(y);
                d * d
            })
            .sum()
    }

    /// [`super::hamming`] without the `popcnt` instruction (unless the build targets it).
    pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
        a.iter().zip(b).map(|(&x, &y)| (x ^ y).count_ones()).sum()
    }

    /// [`super::weighted_hamming`] without the `popcnt` instruction (unless the build targets it).
    #[inline(always)]
    pub fn weighted_hamming<const B: usize>(row: &[u64], planes: &[u64]) -> u32 {
        let mut total = 0u32;
        for (&x, query) in row.iter().zip(planes.chunks_exact(B)) {
            for (b, &q) in query.iter().enumerate() {
                total += (x ^ q).count_ones() << b;
            }
        }
        total
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Sum of the eight `i32` lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn hsum_i32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn u8_dot(a: &[u8], b: &[u8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY (all loads): `i + 32 <= n` keeps every unaligned load inside both slices.
        while i + 32 <= n {
            let x = _mm256_loadu_si256(pa.add(i).cast());
            let y = _mm256_loadu_si256(pb.add(i).cast());
            // Unsigned × signed bytes, adjacent pairs summed into i16: at most 2·127·127 < 2^15.
            let pairs = _mm256_maddubs_epi16(x, y);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
            i += 32;
        }
        if i + 16 <= n {
            let x = _mm_loadu_si128(pa.add(i).cast());
            let y = _mm_loadu_si128(pb.add(i).cast());
            let pairs = _mm_maddubs_epi16(x, y);
            let half = _mm_madd_epi16(pairs, _mm_set1_epi16(1));
            acc = _mm256_add_epi32(acc, _mm256_zextsi128_si256(half));
            i += 16;
        }
        let mut total = hsum_i32(acc);
        while i < n {
            total += i32::from(*pa.add(i)) * i32::from(*pb.add(i));
            i += 1;
        }
        total
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn u8_l2(a: &[u8], b: &[u8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY (all loads): `i + 32 <= n` keeps every unaligned load inside both slices.
        while i + 32 <= n {
            let x = _mm256_loadu_si256(pa.add(i).cast());
            let y = _mm256_loadu_si256(pb.add(i).cast());
            // |x − y| as saturating differences both ways; with codes in 0..=127 it is at most 127,
            // so it serves as both the unsigned and the signed operand of `vpmaddubsw` (a pair sum
            // of squares is at most 2·127² < 2^15): 32 components a step instead of 16 after
            // widening to 16 bits.
            let d = _mm256_or_si256(_mm256_subs_epu8(x, y), _mm256_subs_epu8(y, x));
            let pairs = _mm256_maddubs_epi16(d, d);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
            i += 32;
        }
        if i + 16 <= n {
            let x = _mm_loadu_si128(pa.add(i).cast());
            let y = _mm_loadu_si128(pb.add(i).cast());
            let d = _mm_or_si128(_mm_subs_epu8(x, y), _mm_subs_epu8(y, x));
            let half = _mm_madd_epi16(_mm_maddubs_epi16(d, d), _mm_set1_epi16(1));
            acc = _mm256_add_epi32(acc, _mm256_zextsi128_si256(half));
            i += 16;
        }
        let mut total = hsum_i32(acc);
        while i < n {
            let d = i32::from(*pa.add(i)) - i32::from(*pb.add(i));
            total += d * d;
            i += 1;
        }
        total
    }

    /// # Safety
    /// The CPU must support POPCNT.
    #[target_feature(enable = "popcnt")]
    pub(super) unsafe fn hamming(a: &[u64], b: &[u64]) -> u32 {
        // With the feature enabled, `count_ones` compiles to the `popcnt` instruction.
        let mut total = 0u32;
        for (&x, &y) in a.iter().zip(b) {
            total += (x ^ y).count_ones();
        }
        total
    }

    /// # Safety
    /// The CPU must support POPCNT.
    #[target_feature(enable = "popcnt")]
    pub(super) unsafe fn weighted_hamming<const B: usize>(row: &[u64], planes: &[u64]) -> u32 {
        super::portable::weighted_hamming::<B>(row, planes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn dispatched_kernels_match_the_portable_loops_at_every_tail_length() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for n in [0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 384, 785] {
            let a: Vec<u8> = (0..n).map(|_| rng.random_range(0..=127u8)).collect();
            let b: Vec<u8> = (0..n).map(|_| rng.random_range(0..=127u8)).collect();
            let dot_ref: i32 = a.iter().zip(&b).map(|(&x, &y)| x as i32 * y as i32).sum();
            let l2_ref: i32 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (x as i32 - y as i32).pow(2))
                .sum();
            assert_eq!(u8_dot(&a, &b), dot_ref, "dot n={n}");
            assert_eq!(portable::u8_dot(&a, &b), dot_ref, "portable dot n={n}");
            assert_eq!(u8_l2(&a, &b), l2_ref, "l2 n={n}");
            assert_eq!(portable::u8_l2(&a, &b), l2_ref, "portable l2 n={n}");
            let words = n / 8 + 1;
            let x: Vec<u64> = (0..words).map(|_| rng.random()).collect();
            let y: Vec<u64> = (0..words).map(|_| rng.random()).collect();
            let ham_ref: u32 = x
                .iter()
                .zip(&y)
                .map(|(p, q)| {
                    (0..64)
                        .filter(|bit| (p >> bit) & 1 != (q >> bit) & 1)
                        .count() as u32
                })
                .sum();
            assert_eq!(hamming(&x, &y), ham_ref, "hamming words={words}");
            assert_eq!(portable::hamming(&x, &y), ham_ref);
            let p4: Vec<u64> = (0..words * 4).map(|_| rng.random()).collect();
            let p8: Vec<u64> = (0..words * 8).map(|_| rng.random()).collect();
            let weighted_ref = |planes: &[u64], bits: usize| -> u32 {
                (0..words * 64)
                    .map(|i| {
                        let stored = (x[i / 64] >> (i % 64)) & 1;
                        let level: u64 = (0..bits)
                            .map(|b| ((planes[(i / 64) * bits + b] >> (i % 64)) & 1) << b)
                            .sum();
                        // Each of the level's bits XOR the stored bit, weighted by its place.
                        let flipped = if stored == 1 {
                            (1 << bits) - 1 - level
                        } else {
                            level
                        };
                        flipped as u32
                    })
                    .sum()
            };
            assert_eq!(weighted_hamming::<4>(&x, &p4), weighted_ref(&p4, 4));
            assert_eq!(weighted_hamming::<8>(&x, &p8), weighted_ref(&p8, 8));
            assert_eq!(
                portable::weighted_hamming::<8>(&x, &p8),
                weighted_ref(&p8, 8)
            );
        }
        // The extremes: every component 127 (largest pair sums) and 0 against 127.
        let top = vec![127u8; 70];
        let zero = vec![0u8; 70];
        assert_eq!(u8_dot(&top, &top), 70 * 127 * 127);
        assert_eq!(u8_l2(&top, &zero), 70 * 127 * 127);
        assert_eq!(hamming(&[u64::MAX], &[0]), 64);
    }
}
