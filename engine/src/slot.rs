//! Redis Cluster key slots: CRC16 (XMODEM) of the key, or of its `{hash tag}`,
//! modulo 16384, and the mapping of slots onto the shards of one node.

/// Number of hash slots, as in Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM), polynomial 0x1021, as Redis's `crc16.c`, with 16
/// tables so that a short key costs one step per 16 bytes instead of a
/// dependent table look-up per byte: every keyed command computes it at
/// least once (its owner), and a replica applying a full sync does so for
/// each of a million keys, where the byte-at-a-time loop was a quarter of
/// the replica's CPU time.
static CRC16: crc::Crc<u16, crc::Table<16>> = crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_XMODEM);

/// CRC16 (XMODEM) of `data`.
#[inline]
pub fn crc16(data: &[u8]) -> u16 {
    CRC16.checksum(data)
}

/// The slot of `key`. When the key holds a non-empty `{...}` section, only
/// the bytes between the first `{` and the next `}` are hashed, so related keys
/// can be kept in one slot (Redis's `keyHashSlot`).
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(0) | None => key,
            Some(len) => &key[open + 1..open + 1 + len],
        },
        None => key,
    };
    crc16(hashed) & (SLOTS as u16 - 1)
}

/// How the 16384 slots are spread over the shards of one node: interleaved,
/// so shard `i` of `n` owns the slots `i, i + n, i + 2n, ...` (`slot % n`).
///
/// # Why interleaved
///
/// A node in cluster mode serves only some slots: a third of them in a
/// 3-node cluster, and after migrations any union of ranges. With
/// contiguous ranges per shard, a node serving slots 0-5460 on 4 shards
/// kept every key on shards 0 and 1, and its other cores idle. Interleaved,
/// any `k * n` consecutive slots give each shard exactly `k` of them, so
/// any range of slots, and any union of ranges of a few dozen slots each,
/// spreads within one slot per range over the shards (unit tests check
/// ranges of 128+ slots for 1 to 16 shards). The mapping depends on the
/// shard count alone, so a change of ownership moves no key between a
/// node's shards: nothing is rehomed when a migration lands or leaves.
///
/// A map of the node's own ranges (rebuilt on every configuration) would
/// balance exactly, but every change of ownership would move keys between
/// the node's shards, and a replica or a migration peer could not tell
/// which of its shards holds a slot without the configuration.
///
/// Finding the owner is a division by a count known only at start: it is
/// done as one multiplication and a shift by a precomputed reciprocal
/// (exact for every slot and every shard count, see [`SlotMap::div`]),
/// about the cost of the multiplication the contiguous map used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotMap {
    shards: u32,
    /// `floor(2^32 / shards) + 1`, the reciprocal [`SlotMap::div`] multiplies by.
    reciprocal: u64,
}

impl SlotMap {
    /// A map over `shards` shards (at least one, at most `SLOTS`).
    pub const fn new(shards: usize) -> Self {
        assert!(shards >= 1 && shards <= SLOTS, "shard count must be in 1..=16384");
        SlotMap { shards: shards as u32, reciprocal: (1u64 << 32) / shards as u64 + 1 }
    }

    /// Number of shards.
    #[inline]
    pub fn shards(&self) -> usize {
        self.shards as usize
    }

    /// `x / shards` for `x <= SLOTS`, without a division instruction.
    ///
    /// With `m = 2^32 / n + e` (`0 < e <= 1`) and `x = q * n + r`
    /// (`r <= n - 1`): `x * m / 2^32 = x / n + x * e / 2^32`, which lies in
    /// `[q, q + (n - 1) / n + x / 2^32)`; that is below `q + 1` when
    /// `x * n < 2^32`, true for `x, n <= 2^14`. So the floor is `q`.
    #[inline]
    pub fn div(&self, x: usize) -> usize {
        debug_assert!(x <= SLOTS);
        ((x as u64 * self.reciprocal) >> 32) as usize
    }

    /// The shard that owns `slot`: `slot % shards`.
    #[inline]
    pub fn owner(&self, slot: u16) -> usize {
        let slot = slot as usize;
        slot - self.div(slot) * self.shards as usize
    }

    /// The shard that owns `key`.
    #[inline]
    pub fn key_owner(&self, key: &[u8]) -> usize {
        // One shard owns every key: no need to hash it (the keyspace hashes
        // it anyway to find its slot's table).
        if self.shards == 1 {
            return 0;
        }
        self.owner(key_slot(key))
    }

    /// The slots owned by `shard`.
    #[inline]
    pub fn slots(&self, shard: usize) -> ShardSlots {
        debug_assert!(shard < self.shards as usize);
        ShardSlots { map: *self, shard: shard as u32 }
    }
}

/// The slots of shard `i` of `n` ([`SlotMap`]): the progression
/// `i, i + n, i + 2n, ...` below [`SLOTS`]. Each slot has a local index,
/// `slot / n`, which numbers the shard's slots `0..len()` in slot order:
/// per-slot tables are indexed by it, so a shard keeps `16384 / n` of them
/// whatever the shard count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSlots {
    map: SlotMap,
    shard: u32,
}

impl ShardSlots {
    /// Every slot: the one shard of a one-shard node.
    pub const fn all() -> Self {
        ShardSlots { map: SlotMap::new(1), shard: 0 }
    }

    /// The slots of shard `shard` of `shards`; `None` unless
    /// `shard < shards <= SLOTS` (the numbers may come from a peer).
    pub fn new(shard: usize, shards: usize) -> Option<Self> {
        (shard < shards && shards <= SLOTS).then(|| SlotMap::new(shards).slots(shard))
    }

    /// Which shard.
    pub fn shard(&self) -> usize {
        self.shard as usize
    }

    /// Of how many.
    pub fn shards(&self) -> usize {
        self.map.shards()
    }

    /// True when `slot` is one of these.
    #[inline]
    pub fn contains(&self, slot: usize) -> bool {
        slot < SLOTS && self.map.owner(slot as u16) == self.shard as usize
    }

    /// The local index of `slot`, one of these: `slot / n`.
    #[inline]
    pub fn local(&self, slot: usize) -> usize {
        debug_assert!(self.contains(slot), "slot {slot} is not shard {}'s of {}", self.shard, self.map.shards);
        self.map.div(slot)
    }

    /// The slot of local index `local`.
    #[inline]
    pub fn slot(&self, local: usize) -> usize {
        local * self.map.shards as usize + self.shard as usize
    }

    /// How many slots.
    pub fn len(&self) -> usize {
        (SLOTS - self.shard as usize).div_ceil(self.map.shards as usize)
    }

    /// Never empty (a shard owns at least one slot); for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The local indices of these slots inside `range` (which may reach
    /// past [`SLOTS`]): an arithmetic progression meets a range in a run of
    /// consecutive terms.
    pub fn locals(&self, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let (shard, n) = (self.shard as usize, self.map.shards as usize);
        let first = |bound: usize| bound.min(SLOTS).saturating_sub(shard).div_ceil(n);
        let lo = first(range.start);
        lo..first(range.end).max(lo)
    }

    /// These slots inside `range`, in order.
    pub fn within(self, range: std::ops::Range<usize>) -> impl DoubleEndedIterator<Item = usize> + Clone {
        self.locals(range).map(move |l| self.slot(l))
    }

    /// All these slots, in order.
    pub fn iter(self) -> impl DoubleEndedIterator<Item = usize> + Clone {
        self.within(0..SLOTS)
    }

    /// True when one of these slots lies in `range`.
    pub fn meets(&self, range: std::ops::Range<usize>) -> bool {
        !self.locals(range).is_empty()
    }

    /// Where these slots lie when the node's slots are laid out shard after
    /// shard (shard 0's in slot order, then shard 1's, ...): positions
    /// `0..SLOTS`, contiguous per shard, in shard order. SCAN's cursor
    /// counts in this order, so that shards can be scanned one after the
    /// other as when they owned contiguous ranges.
    pub fn scan_span(&self) -> std::ops::Range<usize> {
        let (shard, n) = (self.shard as usize, self.map.shards as usize);
        // The first `SLOTS % n` shards own one slot more than the others.
        let start = shard * (SLOTS / n) + shard.min(SLOTS % n);
        start..start + self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_redis_reference_values() {
        // The check value of CRC16/XMODEM and slots Redis documents.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"hello"), 866);
    }

    /// CRC16/XMODEM bit by bit, as its definition reads.
    fn crc16_bitwise(data: &[u8]) -> u16 {
        let mut crc = 0u16;
        for &b in data {
            crc ^= (b as u16) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
        }
        crc
    }

    #[test]
    fn crc16_agrees_with_its_definition_at_every_length() {
        // Lengths around the 16-byte step of the sliced tables, and longer.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..300)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for len in 0..data.len() {
            for start in [0, 1, 7] {
                let bytes = &data[start..start + len.min(data.len() - start)];
                assert_eq!(crc16(bytes), crc16_bitwise(bytes), "{} bytes from {start}", bytes.len());
            }
        }
    }

    #[test]
    fn hash_tags_select_the_hashed_part() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"{user1000}.following"));
        // An empty tag hashes the whole key; only the first tag counts.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & 16383);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"{unclosed"), crc16(b"{unclosed") & 16383);
    }

    /// Shard counts the property tests try: every count up to 16 (the
    /// cores of a large node), and a few far ones.
    fn shard_counts() -> impl Iterator<Item = usize> {
        (1..=16).chain([17, 31, 64, 100, 1000, 5461, 8191, 16383, 16384])
    }

    #[test]
    fn the_fast_division_is_exact_for_every_slot_and_shard_count() {
        // Every shard count against every slot near its multiples (where an
        // inexact reciprocal would first fail), and every slot for the
        // small counts.
        for n in 1..=SLOTS {
            let map = SlotMap::new(n);
            let mut xs: Vec<usize> = (1..=SLOTS / n).flat_map(|q| [q * n - 1, q * n]).collect();
            xs.extend([0, SLOTS - 1, SLOTS]);
            if n <= 64 {
                xs.extend(0..=SLOTS);
            }
            for x in xs {
                assert_eq!(map.div(x), x / n, "{x} / {n}");
                if x < SLOTS {
                    assert_eq!(map.owner(x as u16), x % n, "{x} % {n}");
                }
            }
        }
    }

    #[test]
    fn every_slot_has_exactly_one_owner_and_local_indices_are_a_bijection() {
        for n in shard_counts() {
            let map = SlotMap::new(n);
            let mut seen = vec![false; SLOTS];
            for shard in 0..n {
                let slots = map.slots(shard);
                let listed: Vec<usize> = slots.iter().collect();
                assert_eq!(listed.len(), slots.len());
                for (local, &slot) in listed.iter().enumerate() {
                    assert!(!std::mem::replace(&mut seen[slot], true), "slot {slot} owned twice ({n} shards)");
                    assert_eq!(map.owner(slot as u16), shard);
                    assert!(slots.contains(slot));
                    assert_eq!(slots.local(slot), local, "local indices run 0..len in slot order");
                    assert_eq!(slots.slot(local), slot);
                }
                assert!(!slots.contains(SLOTS) && !slots.contains(usize::MAX));
            }
            assert!(seen.iter().all(|&s| s), "{n} shards leave a slot unowned");
        }
    }

    #[test]
    fn intersections_with_ranges_are_exact() {
        let mut rng = fastrand::Rng::with_seed(0x5107);
        for n in shard_counts() {
            let map = SlotMap::new(n);
            for _ in 0..200 {
                let shard = rng.usize(..n);
                let slots = map.slots(shard);
                let lo = rng.usize(..=SLOTS + 2);
                let hi = if rng.bool() { lo + rng.usize(..300) } else { rng.usize(..=SLOTS + 2) };
                let want: Vec<usize> = (lo..hi.min(SLOTS)).filter(|&s| s % n == shard).collect();
                let got: Vec<usize> = slots.within(lo..hi).collect();
                assert_eq!(got, want, "shard {shard} of {n} within {lo}..{hi}");
                assert_eq!(slots.meets(lo..hi), !want.is_empty());
                let locals = slots.locals(lo..hi);
                assert_eq!(locals.len(), want.len());
                assert_eq!(want.first().map(|&s| slots.local(s)), (!locals.is_empty()).then_some(locals.start));
            }
        }
    }

    #[test]
    fn any_range_of_128_slots_or_more_splits_within_one_per_shard() {
        let mut rng = fastrand::Rng::with_seed(0xba1a);
        for n in 1..=16 {
            let map = SlotMap::new(n);
            for _ in 0..500 {
                let len = rng.usize(128..=SLOTS);
                let lo = rng.usize(..=SLOTS - len);
                let counts: Vec<usize> = (0..n).map(|s| map.slots(s).locals(lo..lo + len).len()).collect();
                let (min, max) = (counts.iter().min().copied(), counts.iter().max().copied());
                assert_eq!(counts.iter().sum::<usize>(), len);
                assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{lo}..{} over {n}: {counts:?}", lo + len);
            }
        }
        // A 3-node cluster's first node, 0-5460, on 4 shards: 1365 or 1366 each.
        let map = SlotMap::new(4);
        let counts: Vec<usize> = (0..4).map(|s| map.slots(s).locals(0..5461).len()).collect();
        assert_eq!(counts, [1366, 1365, 1365, 1365]);
    }

    #[test]
    fn scan_spans_lay_the_shards_out_one_after_the_other() {
        for n in shard_counts() {
            let map = SlotMap::new(n);
            let mut next = 0;
            for shard in 0..n {
                let span = map.slots(shard).scan_span();
                assert_eq!((span.start, span.len()), (next, map.slots(shard).len()), "shard {shard} of {n}");
                next = span.end;
            }
            assert_eq!(next, SLOTS);
        }
    }

    #[test]
    fn shard_slots_from_a_peer_are_checked() {
        assert_eq!(ShardSlots::new(1, 3), Some(SlotMap::new(3).slots(1)));
        assert_eq!(ShardSlots::new(3, 3), None);
        assert_eq!(ShardSlots::new(0, SLOTS + 1), None);
        assert_eq!(ShardSlots::all().len(), SLOTS);
        assert!(ShardSlots::all().iter().eq(0..SLOTS));
    }
}
