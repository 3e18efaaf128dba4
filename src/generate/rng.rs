//! A small deterministic generator (SplitMix64). Not `rand`: a seed must give the same tenant
//! across versions of ca-replay, and `rand` does not promise stable streams across releases.

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// An independent stream for one part of the output (a day, a chunk).
    pub fn fork(&self, stream: u64) -> Rng {
        let mut r = Rng(self.0 ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [0, n); n must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Index by weight.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// A random (version 4 layout) GUID, lower-case.
    pub fn guid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        // `{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}` of these fields, without `format!` (two GUIDs
        // per generated sign-in).
        let fields: [(u64, usize); 5] = [
            (a >> 32, 8),
            ((a >> 16) & 0xffff, 4),
            (0x4000 | a & 0xfff, 4),
            (0x8000 | (b >> 48) & 0x3fff, 4),
            (b & 0xffff_ffff_ffff, 12),
        ];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 36];
        let mut at = 0;
        for (i, (v, width)) in fields.into_iter().enumerate() {
            if i > 0 {
                out[at] = b'-';
                at += 1;
            }
            for d in 0..width {
                out[at + d] = HEX[(v >> (4 * (width - 1 - d)) & 0xf) as usize];
            }
            at += width;
        }
        // Hex digits and dashes: always UTF-8.
        std::str::from_utf8(&out).unwrap_or_default().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = Rng::new(1);
        assert!((0..1000).all(|_| r.below(7) < 7));
        let g = r.guid();
        assert_eq!(g.len(), 36);
        assert!(crate::directory::parse_guid(&g).is_some());
        // The same text as the `format!` it replaces.
        let mut r = Rng::new(3);
        for _ in 0..1000 {
            let (mut c, mut d) = (r.clone(), r.clone());
            let (a, b) = (c.next_u64(), c.next_u64());
            let want = format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                0x8000 | (b >> 48) & 0x3fff,
                b & 0xffff_ffff_ffff
            );
            assert_eq!(d.guid(), want);
            r.next_u64();
        }
        assert_ne!(
            Rng::new(1).fork(1).next_u64(),
            Rng::new(1).fork(2).next_u64()
        );
    }
}
