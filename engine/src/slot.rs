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

/// How the 16384 slots are spread over the shards of one node: contiguous,
/// near-equal ranges, so shard `i` owns `range(i)` and a slot's owner is one
/// multiplication away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotMap {
    shards: usize,
}

impl SlotMap {
    /// A map over `shards` shards (at least one, at most `SLOTS`).
    pub fn new(shards: usize) -> Self {
        assert!((1..=SLOTS).contains(&shards), "shard count must be in 1..=16384");
        SlotMap { shards }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The shard that owns `slot`.
    #[inline]
    pub fn owner(&self, slot: u16) -> usize {
        slot as usize * self.shards / SLOTS
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

    /// The slots owned by `shard`, as a half-open range.
    pub fn range(&self, shard: usize) -> std::ops::Range<usize> {
        let lo = (shard * SLOTS).div_ceil(self.shards);
        let hi = ((shard + 1) * SLOTS).div_ceil(self.shards);
        lo..hi
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

    #[test]
    fn slot_ranges_partition_all_slots_and_agree_with_owner() {
        for shards in [1, 2, 3, 4, 7, 8, 16, 64, 16384] {
            let map = SlotMap::new(shards);
            let mut next = 0;
            for shard in 0..shards {
                let r = map.range(shard);
                assert_eq!(r.start, next);
                assert!(!r.is_empty());
                for slot in [r.start, r.end - 1] {
                    assert_eq!(map.owner(slot as u16), shard, "{shards} shards, slot {slot}");
                }
                next = r.end;
            }
            assert_eq!(next, SLOTS);
        }
    }
}
