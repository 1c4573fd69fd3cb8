//! `REPLCONF flush-slots <first> <end> [<shard> <shards>]...`: drop every
//! key in the slots `first..end` that belong to each named shard's slots
//! (shard `i` of `n` owns the slots `i, i + n, ...`, 0004).
//!
//! Written by a replica at the start of a primary shard's full sync (one
//! pair: that primary shard), by a migration source for a FLUSHALL in the
//! range (one pair: its shard), by the migration target at the start of
//! each flow (one pair: the source shard), by the source's deletion of
//! the slots it gave away (no pair: one slot, which one shard holds), and
//! journaled by the migration target for what each of its shards dropped
//! of a flow's flush or of an abort: the pairs it ran with plus the
//! shard's own. The target's replica (of any shard count) applies the
//! entry of its flow for primary shard `j` on all of its shards, and the
//! last pair keeps it to shard `j`'s slots: with the source's pair alone
//! it would also drop keys of that source shard that another of the
//! target's shards, and so another flow of the replica, already delivered.
//! Forms with 0 and 1 pair are the older ones and stay as they were.

use coreshard_engine::Args;
use coreshard_engine::journal::Journal;
use coreshard_engine::slot::ShardSlots;
use std::ops::Range;

/// Most `<shard> <shards>` pairs an entry may carry: this node writes at
/// most two (a source's pair and its shard's own); the bound keeps what a
/// peer may send, and what a target journals of it, small.
const PAIRS_MAX: usize = 4;

/// A parsed `REPLCONF flush-slots`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FlushSlots {
    /// The slots `first..end` (`end` may be [`coreshard_engine::slot::SLOTS`]).
    pub range: Range<usize>,
    /// Only the slots among every one of these (none: the whole range).
    pub of: Vec<ShardSlots>,
}

impl FlushSlots {
    /// Parses `REPLCONF flush-slots <first> <end> [<shard> <shards>]...`
    /// (`args[0]` is `REPLCONF`); `None` for a malformed entry, which
    /// drops nothing.
    pub(crate) fn parse(args: &Args) -> Option<FlushSlots> {
        let n = args.len();
        if n < 4 || n % 2 != 0 || (n - 4) / 2 > PAIRS_MAX {
            return None;
        }
        let num = |i: usize| std::str::from_utf8(args.get(i)).ok()?.parse::<usize>().ok();
        let range = num(2)?..num(3)?;
        let of = (4..n).step_by(2).map(|i| ShardSlots::new(num(i)?, num(i + 1)?)).collect::<Option<Vec<_>>>()?;
        Some(FlushSlots { range, of })
    }

    /// Parses a flush this node will journal ([`FlushSlots::log`]): one
    /// with room for a further pair, else `None` (dropping nothing, so that
    /// the node and its replicas agree).
    pub(crate) fn parse_to_log(args: &Args) -> Option<FlushSlots> {
        Self::parse(args).filter(|f| f.of.len() < PAIRS_MAX)
    }

    /// The entry's arguments, `REPLCONF` first.
    pub(crate) fn args(&self) -> Vec<Vec<u8>> {
        let mut out = vec![b"REPLCONF".to_vec(), b"flush-slots".to_vec()];
        out.push(self.range.start.to_string().into_bytes());
        out.push(self.range.end.to_string().into_bytes());
        for o in &self.of {
            out.push(o.shard().to_string().into_bytes());
            out.push(o.shards().to_string().into_bytes());
        }
        out
    }

    /// True when some slot of the range is among every restriction and
    /// `owned` (the flush can drop something there).
    pub(crate) fn meets(&self, owned: ShardSlots) -> bool {
        owned.within(self.range.clone()).any(|s| self.of.iter().all(|o| o.contains(s)))
    }

    /// What a shard owning `owned` dropped of this flush, as the entry its
    /// replicas apply: this one restricted to `owned` too. `None` when it
    /// can have dropped nothing there.
    pub(crate) fn on_shard(&self, owned: ShardSlots) -> Option<FlushSlots> {
        if !self.meets(owned) {
            return None;
        }
        let mut of = self.of.clone();
        // A pair that already keeps it to `owned` or fewer slots makes a
        // further one redundant (an abort's or a one-slot flush has none).
        if !of.iter().any(|o| o.shards() % owned.shards() == 0 && o.shard() % owned.shards() == owned.shard()) {
            of.push(owned);
        }
        debug_assert!(of.len() <= PAIRS_MAX, "parse_to_log leaves room for a pair");
        Some(FlushSlots { range: self.range.clone(), of })
    }

    /// Journals the flush a shard owning `owned` just ran (see
    /// [`FlushSlots::on_shard`]), so that its replicas, and any full sync
    /// that starts later, drop the same keys at the same point of its
    /// stream. Nothing when it can have dropped nothing.
    pub(crate) fn log(&self, journal: &mut Journal, owned: ShardSlots) {
        if !journal.enabled() {
            return;
        }
        if let Some(entry) = self.on_shard(owned) {
            let args = entry.args();
            journal.append(0, args.iter().map(Vec::as_slice));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coreshard_engine::OwnedArgs;
    use coreshard_engine::slot::{SLOTS, SlotMap};

    fn parse(parts: &[&str]) -> Option<FlushSlots> {
        let owned = OwnedArgs::from_parts(parts.iter().map(|p| p.as_bytes()));
        FlushSlots::parse(&owned.view())
    }

    #[test]
    fn every_form_parses() {
        let all = parse(&["REPLCONF", "flush-slots", "0", "16384"]).unwrap();
        assert_eq!(all, FlushSlots { range: 0..SLOTS, of: vec![] });
        let one = parse(&["REPLCONF", "flush-slots", "100", "200", "1", "3"]).unwrap();
        assert_eq!(one, FlushSlots { range: 100..200, of: vec![SlotMap::new(3).slots(1)] });
        let two = parse(&["replconf", "FLUSH-SLOTS", "100", "200", "1", "3", "0", "2"]).unwrap();
        assert_eq!(two.of, vec![SlotMap::new(3).slots(1), SlotMap::new(2).slots(0)]);
        for o in [&all, &one, &two] {
            let args = o.args();
            let owned = OwnedArgs::from_parts(args.iter().map(Vec::as_slice));
            assert_eq!(FlushSlots::parse(&owned.view()).as_ref(), Some(o));
        }
    }

    #[test]
    fn a_flush_to_journal_leaves_room_for_its_shards_pair() {
        let three = ["REPLCONF", "flush-slots", "0", "16384", "0", "2", "0", "3", "0", "5"];
        let owned = OwnedArgs::from_parts(three);
        assert_eq!(FlushSlots::parse_to_log(&owned.view()).map(|f| f.of.len()), Some(3));
        let four = ["REPLCONF", "flush-slots", "0", "16384", "0", "2", "0", "3", "0", "5", "0", "7"];
        let owned = OwnedArgs::from_parts(four);
        assert!(FlushSlots::parse(&owned.view()).is_some());
        assert_eq!(FlushSlots::parse_to_log(&owned.view()), None);
    }

    #[test]
    fn malformed_entries_drop_nothing() {
        for bad in [
            &["REPLCONF", "flush-slots", "0"][..],
            &["REPLCONF", "flush-slots", "0", "16384", "1"],
            &["REPLCONF", "flush-slots", "x", "16384"],
            &["REPLCONF", "flush-slots", "0", "-1"],
            &["REPLCONF", "flush-slots", "0", "16384", "3", "3"],
            &["REPLCONF", "flush-slots", "0", "16384", "0", "0"],
            &["REPLCONF", "flush-slots", "0", "16384", "0", "16385"],
            &["REPLCONF", "flush-slots", "0", "16384", "1", "2", "0", "x"],
            &["REPLCONF", "flush-slots", "0", "16384", "0", "1", "0", "1", "0", "1", "0", "1", "0", "1"],
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    /// A target of 2 shards pulls from a source of 3; its replica has 5.
    /// Each target shard journals what it dropped of each flow's flush;
    /// the replica, applying them all on each of its shards, drops exactly
    /// what the target dropped, and each entry no key of another target
    /// shard (which the replica gets through another flow).
    #[test]
    fn a_journaled_flush_drops_on_a_replica_what_its_shard_dropped() {
        let range = 1000..1400;
        let (source, target, replica) = (SlotMap::new(3), SlotMap::new(2), SlotMap::new(5));
        for k in 0..3 {
            let flush = FlushSlots { range: range.clone(), of: vec![source.slots(k)] };
            for j in 0..2 {
                let own = target.slots(j);
                let entry = flush.on_shard(own).unwrap();
                assert_eq!(entry.of, vec![source.slots(k), own]);
                // Through the journal's encoding and back.
                let args = entry.args();
                let entry = FlushSlots::parse(&OwnedArgs::from_parts(args.iter().map(Vec::as_slice)).view()).unwrap();
                for r in 0..5 {
                    for slot in replica.slots(r).within(0..SLOTS) {
                        let dropped = entry.range.contains(&slot) && entry.of.iter().all(|o| o.contains(slot));
                        let target_dropped =
                            own.contains(slot) && flush.range.contains(&slot) && source.slots(k).contains(slot);
                        assert_eq!(dropped, target_dropped, "slot {slot}, flow {k}, target shard {j}");
                        assert!(!dropped || own.contains(slot), "slot {slot} is another flow's");
                    }
                }
            }
        }
    }

    #[test]
    fn a_shard_that_can_drop_nothing_journals_nothing() {
        // Equal shard counts: source shard 1's slots are target shard 1's.
        let flush = FlushSlots { range: 0..SLOTS, of: vec![SlotMap::new(2).slots(1)] };
        assert_eq!(flush.on_shard(SlotMap::new(2).slots(0)), None);
        // And need no second pair there.
        assert_eq!(flush.on_shard(SlotMap::new(2).slots(1)), Some(flush.clone()));
        // One slot, which one shard of three holds.
        let one = FlushSlots { range: 7..8, of: vec![] };
        assert_eq!(one.on_shard(SlotMap::new(3).slots(0)), None);
        assert_eq!(one.on_shard(SlotMap::new(3).slots(1)).unwrap().of, vec![SlotMap::new(3).slots(1)]);
        // An abort's flush of a range on a shard of four.
        let abort = FlushSlots { range: 10..12, of: vec![] };
        assert_eq!(abort.on_shard(SlotMap::new(4).slots(1)), None);
        assert_eq!(abort.on_shard(SlotMap::new(4).slots(2)).unwrap().of, vec![SlotMap::new(4).slots(2)]);
        // A source pair of 4 shards covers a target of 2 (slot % 4 == 3 is odd).
        let fine = FlushSlots { range: 0..SLOTS, of: vec![SlotMap::new(4).slots(3)] };
        assert_eq!(fine.on_shard(SlotMap::new(2).slots(1)), Some(fine.clone()));
        assert_eq!(fine.on_shard(SlotMap::new(2).slots(0)), None);
    }
}
