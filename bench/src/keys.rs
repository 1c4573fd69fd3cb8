//! What each request is about: which key (by pattern), what size of value, and
//! the value's bytes, derived from the key and a version number so a GET's
//! reply can be checked without keeping the values themselves.

use crate::options::{DataSize, KeyPattern};

/// A Zipf distribution over ranks `0 .. n`, sampled by rejection-inversion
/// (Hörmann and Derflinger, "Rejection-inversion to generate variates from
/// monotone discrete distributions", 1996): O(1) time and memory per sample
/// whatever `n`, so a key space of a billion costs no table.
#[derive(Debug, Clone)]
pub struct Zipf {
    s: f64,
    t: f64,
    q: f64,
}

impl Zipf {
    /// A distribution over `n` ranks (n >= 1) with exponent `s` > 0.
    pub fn new(n: u64, s: f64) -> Zipf {
        debug_assert!(n >= 1 && s > 0.0);
        let n = n.max(1) as f64;
        let (t, q) = if s == 1.0 { (1.0 + n.ln(), 0.0) } else { ((n.powf(1.0 - s) - s) / (1.0 - s), 1.0 / (1.0 - s)) };
        Zipf { s, t, q }
    }

    fn inverse_cdf(&self, p: f64) -> f64 {
        let pt = p * self.t;
        if pt <= 1.0 {
            pt
        } else if self.s == 1.0 {
            (pt - 1.0).exp()
        } else {
            (pt * (1.0 - self.s) + self.s).powf(self.q)
        }
    }

    /// A rank in `0 .. n`; rank 0 is the most frequent.
    pub fn sample(&self, rng: &mut fastrand::Rng) -> u64 {
        loop {
            let inv = self.inverse_cdf(rng.f64());
            let x = (inv + 1.0).floor();
            let mut ratio = x.powf(-self.s);
            if x > 1.0 {
                ratio *= inv.powf(self.s);
            }
            if rng.f64() < ratio {
                return x as u64 - 1;
            }
        }
    }
}

/// The keys one connection uses: indexes `first + k * stride` for
/// `k in 0 .. count`. Without --verify every connection gets all keys
/// (stride 1); with it, connection c of C gets the indexes congruent to c
/// modulo C, so no two connections race on a key and the last SET sent on a
/// key is the one a later GET must see.
#[derive(Debug, Clone)]
pub struct KeyChooser {
    first: u64,
    stride: u64,
    count: u64,
    pattern: Pattern,
    next: u64,
}

#[derive(Debug, Clone)]
enum Pattern {
    Uniform,
    Sequential,
    Zipf(Zipf),
}

impl KeyChooser {
    /// Keys for connection `conn` of `conns` over `key_space` keys; when
    /// `partition` is false every connection uses every key, and sequential
    /// walks start at staggered offsets.
    pub fn new(pattern: KeyPattern, key_space: u64, conn: u64, conns: u64, partition: bool) -> KeyChooser {
        debug_assert!(conn < conns && key_space >= 1);
        let (first, stride, count, next) = if partition {
            debug_assert!(key_space >= conns);
            (conn, conns, (key_space - conn).div_ceil(conns), 0)
        } else {
            (0, 1, key_space, (key_space / conns.max(1)) * conn)
        };
        let pattern = match pattern {
            KeyPattern::Uniform => Pattern::Uniform,
            KeyPattern::Sequential => Pattern::Sequential,
            KeyPattern::Zipf(s) => Pattern::Zipf(Zipf::new(count, s)),
        };
        KeyChooser { first, stride, count, pattern, next }
    }

    /// How many keys this chooser picks from.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The position of `key` (one this chooser returned) among its keys, `0 .. count`.
    pub fn position(&self, key: u64) -> usize {
        debug_assert!(key >= self.first && (key - self.first) % self.stride == 0);
        ((key - self.first) / self.stride) as usize
    }

    /// The next key index.
    pub fn next(&mut self, rng: &mut fastrand::Rng) -> u64 {
        let k = match &self.pattern {
            Pattern::Uniform => rng.u64(0..self.count),
            Pattern::Sequential => {
                let k = self.next % self.count;
                self.next = k + 1;
                k
            }
            Pattern::Zipf(z) => z.sample(rng).min(self.count - 1),
        };
        self.first + k * self.stride
    }
}

/// 64-bit mix (SplitMix64's finaliser): consecutive inputs give unrelated outputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn seed(key: u64, version: u32) -> u64 {
    mix(key ^ (version as u64).rotate_left(40))
}

/// The size of version `version` of key `key`'s value.
pub fn value_len(key: u64, version: u32, size: DataSize) -> usize {
    let span = (size.max - size.min) as u64 + 1;
    size.min + (mix(seed(key, version)) % span) as usize
}

/// Appends the value of version `version` of key `key`, `len` bytes of
/// lowercase letters derived from both.
pub fn push_value(out: &mut Vec<u8>, key: u64, version: u32, len: usize) {
    let mut state = seed(key, version);
    let mut left = len;
    while left > 0 {
        state = mix(state);
        let take = left.min(8);
        out.extend(state.to_le_bytes()[..take].iter().map(|b| b'a' + b % 26));
        left -= take;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_follows_its_law() {
        let (n, s) = (1000u64, 0.99);
        let zipf = Zipf::new(n, s);
        let mut rng = fastrand::Rng::with_seed(7);
        let samples = 400_000;
        let mut counts = vec![0u64; n as usize];
        for _ in 0..samples {
            let r = zipf.sample(&mut rng);
            assert!(r < n);
            counts[r as usize] += 1;
        }
        let harmonic: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
        for rank in [0usize, 1, 9, 99] {
            let expected = samples as f64 * ((rank + 1) as f64).powf(-s) / harmonic;
            let got = counts[rank] as f64;
            assert!(
                (got - expected).abs() < expected * 0.1 + 30.0,
                "rank {rank}: {got} samples, expected about {expected:.0}"
            );
        }
        // Rank 0 is about 2^s times as frequent as rank 1.
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((ratio - 2f64.powf(s)).abs() < 0.1, "rank 0 / rank 1 = {ratio}");
        // The exponent-1 branch too.
        let z1 = Zipf::new(10, 1.0);
        let mut c = [0u64; 10];
        for _ in 0..100_000 {
            c[z1.sample(&mut rng) as usize] += 1;
        }
        assert!(c[0] > c[4] * 4 && c[4] > c[9], "{c:?}");
    }

    #[test]
    fn partitioned_keys_stay_with_their_connection() {
        let mut rng = fastrand::Rng::with_seed(1);
        for pattern in [KeyPattern::Uniform, KeyPattern::Sequential, KeyPattern::Zipf(0.9)] {
            let mut seen = std::collections::HashSet::new();
            for conn in 0..3 {
                let mut chooser = KeyChooser::new(pattern, 10, conn, 3, true);
                for _ in 0..200 {
                    let k = chooser.next(&mut rng);
                    assert!(k < 10 && k % 3 == conn, "{pattern:?}: key {k} for connection {conn}");
                    seen.insert(k);
                }
            }
            assert_eq!(seen.len(), 10, "{pattern:?} reaches every key");
        }
        let mut seq = KeyChooser::new(KeyPattern::Sequential, 5, 1, 2, false);
        let walk: Vec<u64> = (0..6).map(|_| seq.next(&mut rng)).collect();
        assert_eq!(walk, [2, 3, 4, 0, 1, 2]);
    }

    #[test]
    fn values_are_deterministic_and_sized() {
        let size = DataSize { min: 3, max: 40 };
        let mut lens = std::collections::HashSet::new();
        for key in 0..200 {
            let len = value_len(key, 1, size);
            assert!((3..=40).contains(&len));
            lens.insert(len);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            push_value(&mut a, key, 1, len);
            push_value(&mut b, key, 1, len);
            assert_eq!(a, b);
            assert_eq!(a.len(), len);
            let mut other = Vec::new();
            push_value(&mut other, key, 2, len);
            assert!(len < 4 || other != a, "versions differ");
        }
        assert!(lens.len() > 20, "sizes spread over the range");
        assert_eq!(value_len(5, 9, DataSize { min: 32, max: 32 }), 32);
    }
}
