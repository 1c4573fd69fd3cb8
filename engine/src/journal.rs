//! The journal: one shard's writes, in order, as the byte stream its replicas
//! apply.
//!
//! Each entry is a command in RESP (an array of bulk strings), the form a
//! replica executes and Redis's replication stream takes; a `SELECT db` entry
//! goes before an entry whose database differs from the previous one's. An
//! entry's LSN is the byte offset of its end since the journal began, so LSNs
//! only grow and the sum over shards is the one offset Redis shows
//! (`master_repl_offset`).
//!
//! The journal keeps the last `backlog_bytes` of the stream (the backlog), so
//! a replica that reconnects with an LSN still inside it gets only the tail
//! it missed. It records nothing until it is enabled (the first replica), so a
//! server without replicas pays one branch per write.
//!
//! It also keeps, past the backlog, what a reader still has to send (its
//! floor, [`Journal::set_floor`]): a replica or a migration target that
//! takes a snapshot reads the journal from where the snapshot was taken,
//! which may be many backlogs ago by the time the snapshot is sent. This is
//! Redis 7's shared replication buffer: the readers' output limit
//! (`client-output-buffer-limit replica`), not `repl-backlog-size`, bounds
//! what a full sync may fall behind, and the bytes kept beyond the backlog
//! are not counted for maxmemory ([`Journal::retained_beyond_backlog`]).

use std::collections::VecDeque;

/// A position in a shard's journal: bytes since the journal began.
pub type Lsn = u64;

/// The smallest backlog a journal keeps, whatever `repl-backlog-size` says
/// (Redis's minimum is 16 KiB).
pub const BACKLOG_BYTES_MIN: usize = 16 * 1024;

/// Appends `args` as a RESP array of bulk strings to `out`.
pub fn encode_command<'a, I>(out: &mut Vec<u8>, args: I)
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: ExactSizeIterator,
{
    let args = args.into_iter();
    let mut n = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(n.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(n.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Where a transaction's `MULTI` stands (see [`Journal::begin_multi`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multi {
    None,
    Pending,
    Open,
}

/// The position asked for is no longer in the backlog (or not yet written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBacklog;

/// One shard's journal; see the module comment.
#[derive(Debug)]
pub struct Journal {
    /// The backlog: the bytes from `start` to `end`.
    ring: VecDeque<u8>,
    start: Lsn,
    backlog_bytes: usize,
    /// The oldest position a reader still has to send: bytes from it on
    /// are kept even past the backlog.
    floor: Option<Lsn>,
    enabled: bool,
    /// A replica's copy of its primary's stream: only [`Journal::append_raw`] records.
    mirror: bool,
    /// A transaction of this shard alone runs: its first entry opens a
    /// `MULTI`, [`Journal::end_multi`] closes it with `EXEC`.
    multi: Multi,
    /// The database of the last entry (`usize::MAX`: the next entry selects).
    selected: usize,
    /// The multi-shard transaction whose share of work is being logged (0:
    /// none): its entries are wrapped as `REPLCONF tx-cmd` (see
    /// [`Journal::set_tx_tag`]).
    tx_tag: u64,
    scratch: Vec<u8>,
    tagged: Vec<u8>,
}

impl Journal {
    /// A disabled journal at LSN 0 that will keep `backlog_bytes` once enabled.
    pub fn new(backlog_bytes: usize) -> Self {
        Journal {
            ring: VecDeque::new(),
            start: 0,
            backlog_bytes: backlog_bytes.max(BACKLOG_BYTES_MIN),
            floor: None,
            enabled: false,
            mirror: false,
            multi: Multi::None,
            selected: usize::MAX,
            tx_tag: 0,
            scratch: Vec::new(),
            tagged: Vec::new(),
        }
    }

    /// True once writes are recorded.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Starts recording (the backlog begins empty at the current LSN) or
    /// stops and drops the backlog. The LSN is kept either way.
    pub fn set_enabled(&mut self, on: bool) {
        if on == self.enabled {
            return;
        }
        self.enabled = on;
        self.start = self.end_lsn();
        self.ring = VecDeque::new();
        self.selected = usize::MAX;
    }

    /// True while the journal mirrors a primary's stream.
    pub fn mirroring(&self) -> bool {
        self.mirror
    }

    /// Makes the journal a copy of the stream of the primary shard with the
    /// same slots (a replica with its primary's shard count), so that after a
    /// promotion the other replicas can continue from it (PSYNC2): while on,
    /// the shard's own entries are not recorded, only the primary's bytes.
    /// Turning it off makes the next own entry select its database.
    pub fn set_mirroring(&mut self, on: bool) {
        self.mirror = on;
        self.selected = usize::MAX;
    }

    /// Records bytes of the primary's stream as they came (mirroring only).
    pub fn append_raw(&mut self, bytes: &[u8]) {
        if self.enabled && self.mirror {
            self.push_bytes(bytes);
        }
    }

    /// Enables the journal, empty from `lsn` on (a mirror's stream starts
    /// there: after a full sync, or from a position this journal lacks).
    pub fn restart_at(&mut self, lsn: Lsn) {
        debug_assert!(self.mirror, "only a mirror moves its position");
        self.enabled = true;
        self.ring = VecDeque::new();
        self.start = lsn;
        self.selected = usize::MAX;
    }

    /// Drops what follows `lsn` (a mirror whose copy ran into a primary's
    /// transaction that was cut short, and will come again whole).
    pub fn truncate_to(&mut self, lsn: Lsn) {
        if lsn >= self.start && lsn <= self.end_lsn() {
            self.ring.truncate((lsn - self.start) as usize);
            self.selected = usize::MAX;
        }
    }

    /// The bound on the backlog (`repl-backlog-size`).
    pub fn backlog_bytes(&self) -> usize {
        self.backlog_bytes
    }

    /// Changes the bound, dropping the oldest bytes past a smaller one.
    pub fn set_backlog_bytes(&mut self, bytes: usize) {
        self.backlog_bytes = bytes.max(BACKLOG_BYTES_MIN);
        self.trim();
    }

    /// Keeps the bytes from `lsn` on (the oldest position a reader still
    /// has to send), even past the backlog; `None` keeps only the backlog.
    /// A floor older than what the journal holds keeps nothing extra (that
    /// reader already fell behind). Raising or clearing it drops what no
    /// reader needs any more, and gives the memory back once the journal
    /// held much more than its backlog.
    pub fn set_floor(&mut self, lsn: Option<Lsn>) {
        if self.floor == lsn {
            return;
        }
        self.floor = lsn;
        self.trim();
        let keep = self.ring.len().max(self.backlog_bytes);
        if self.ring.capacity() > 2 * keep && self.ring.capacity() > 4 * BACKLOG_BYTES_MIN {
            self.ring.shrink_to(keep);
        }
    }

    /// Bytes held for readers beyond the backlog (Redis's replication
    /// buffer past `repl_backlog_histlen`): not counted for maxmemory.
    pub fn retained_beyond_backlog(&self) -> usize {
        self.ring.len().saturating_sub(self.backlog_bytes)
    }

    /// The oldest position still in the backlog.
    #[inline]
    pub fn start_lsn(&self) -> Lsn {
        self.start
    }

    /// The position after the last entry.
    #[inline]
    pub fn end_lsn(&self) -> Lsn {
        self.start + self.ring.len() as Lsn
    }

    /// Bytes in the backlog now.
    pub fn backlog_len(&self) -> usize {
        self.ring.len()
    }

    /// The next entry carries a `SELECT` even if its database is the last
    /// one's: a reader that starts at the current end (after a snapshot)
    /// then learns the database from the stream itself.
    pub fn force_select(&mut self) {
        self.selected = usize::MAX;
    }

    /// Records `args` run against database `db` (nothing while disabled).
    pub fn append<'a, I>(&mut self, db: usize, args: I)
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: ExactSizeIterator,
    {
        if !self.enabled || self.mirror {
            return;
        }
        if self.tx_tag != 0 {
            let mut inner = std::mem::take(&mut self.tagged);
            inner.clear();
            encode_command(&mut inner, args);
            self.push_tagged(db, &inner);
            self.tagged = inner;
            return;
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        self.select_into(db, &mut buf);
        encode_command(&mut buf, args);
        self.push_bytes(&buf);
        self.scratch = buf;
    }

    /// Records entries already encoded with [`encode_command`] (one or
    /// more, all run against database `db`; nothing while disabled).
    pub fn append_encoded(&mut self, db: usize, entries: &[u8]) {
        if !self.enabled || self.mirror {
            return;
        }
        debug_assert!(entries.first() == Some(&b'*'), "entries are RESP arrays");
        if self.tx_tag != 0 {
            return self.push_tagged(db, entries);
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        self.select_into(db, &mut buf);
        self.push_bytes(&buf);
        self.push_bytes(entries);
        self.scratch = buf;
    }

    /// Logs what follows, until `set_tx_tag(0)`, as this shard's share of
    /// the multi-shard transaction `txid`: each entry becomes `REPLCONF
    /// tx-cmd <txid> <db> <entries>`, so that a replica keeps it aside until
    /// every participant's share arrived and then applies them as one step.
    /// Such an entry carries its database and selects none.
    pub fn set_tx_tag(&mut self, txid: u64) {
        self.tx_tag = txid;
    }

    fn push_tagged(&mut self, db: usize, entries: &[u8]) {
        let mut n = itoa::Buffer::new();
        let txid = n.format(self.tx_tag).to_owned();
        let db = n.format(db);
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        encode_command(&mut buf, [&b"REPLCONF"[..], b"tx-cmd", txid.as_bytes(), db.as_bytes(), entries]);
        self.push_bytes(&buf);
        self.scratch = buf;
    }

    /// Marks the end of this shard's share of transaction `txid`, the
    /// `seq`-th to take all its locks, whose shares are logged by the
    /// shards `writers`: `REPLCONF tx-end <txid> <seq> <shard>...`.
    pub fn append_tx_end(&mut self, txid: u64, seq: u64, writers: &[u16]) {
        if !self.enabled || self.mirror {
            return;
        }
        let mut n = itoa::Buffer::new();
        let mut args: Vec<Vec<u8>> = vec![b"REPLCONF".to_vec(), b"tx-end".to_vec()];
        args.push(n.format(txid).as_bytes().to_vec());
        args.push(n.format(seq).as_bytes().to_vec());
        args.extend(writers.iter().map(|w| n.format(*w).as_bytes().to_vec()));
        self.append_unselected(args.iter().map(Vec::as_slice));
    }

    /// Marks where a full sync's journal starts: every transaction that took
    /// all its locks before the `seq`-th, other than `open` (those holding
    /// locks here now), ended its share here before this point, so the
    /// snapshot holds it: `REPLCONF tx-fence <seq> <txid>...`.
    pub fn append_tx_fence(&mut self, seq: u64, open: &[u64]) {
        if !self.enabled || self.mirror {
            return;
        }
        let mut n = itoa::Buffer::new();
        let mut args: Vec<Vec<u8>> = vec![b"REPLCONF".to_vec(), b"tx-fence".to_vec()];
        args.push(n.format(seq).as_bytes().to_vec());
        args.extend(open.iter().map(|t| n.format(*t).as_bytes().to_vec()));
        self.append_unselected(args.iter().map(Vec::as_slice));
    }

    /// Marks transactions that will never be whole (a promoted replica
    /// dropped them): `REPLCONF tx-abort <txid>...`.
    pub fn append_tx_abort(&mut self, txids: &[u64]) {
        if !self.enabled || self.mirror || txids.is_empty() {
            return;
        }
        let mut n = itoa::Buffer::new();
        let mut args: Vec<Vec<u8>> = vec![b"REPLCONF".to_vec(), b"tx-abort".to_vec()];
        args.extend(txids.iter().map(|t| n.format(*t).as_bytes().to_vec()));
        self.append_unselected(args.iter().map(Vec::as_slice));
    }

    fn append_unselected<'a>(&mut self, args: impl ExactSizeIterator<Item = &'a [u8]>) {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        encode_command(&mut buf, args);
        self.push_bytes(&buf);
        self.scratch = buf;
    }

    /// Records a PING (a primary's sign of life on an idle stream; it needs no database).
    pub fn append_ping(&mut self) {
        if self.enabled && !self.mirror {
            self.push_bytes(b"*1\r\n$4\r\nPING\r\n");
        }
    }

    /// Appends a `SELECT db` to `buf` when `db` is not the last entry's,
    /// and the `MULTI` of a transaction whose first entry this is.
    fn select_into(&mut self, db: usize, buf: &mut Vec<u8>) {
        if db != self.selected {
            let mut n = itoa::Buffer::new();
            encode_command(buf, [&b"SELECT"[..], n.format(db).as_bytes()]);
            self.selected = db;
        }
        if self.multi == Multi::Pending {
            encode_command(buf, [&b"MULTI"[..]]);
            self.multi = Multi::Open;
        }
    }

    /// A transaction that runs on this shard alone (EXEC) begins: if it logs
    /// anything, its entries go between `MULTI` and `EXEC`, so a replica
    /// applies them as one step, as Redis propagates a transaction.
    pub fn begin_multi(&mut self) {
        if self.enabled && !self.mirror {
            self.multi = Multi::Pending;
        }
    }

    /// The transaction begun with [`Journal::begin_multi`] ended.
    pub fn end_multi(&mut self) {
        if self.multi == Multi::Open {
            self.push_bytes(b"*1\r\n$4\r\nEXEC\r\n");
        }
        self.multi = Multi::None;
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        let before = self.end_lsn();
        self.ring.extend(bytes);
        self.trim();
        debug_assert_eq!(self.end_lsn(), before + bytes.len() as Lsn, "LSNs only grow");
    }

    fn trim(&mut self) {
        let keep = match self.floor {
            Some(f) if f >= self.start => self.backlog_bytes.max((self.end_lsn() - f) as usize),
            _ => self.backlog_bytes,
        };
        let excess = self.ring.len().saturating_sub(keep);
        if excess > 0 {
            self.ring.drain(..excess);
            self.start += excess as Lsn;
        }
    }

    /// True when a reader at `lsn` can continue from the backlog.
    pub fn contains(&self, lsn: Lsn) -> bool {
        self.enabled && lsn >= self.start && lsn <= self.end_lsn()
    }

    /// Appends to `out` at most `max_bytes` of the stream from `lsn`, and
    /// returns how many bytes it appended.
    pub fn copy_from(&self, lsn: Lsn, max_bytes: usize, out: &mut Vec<u8>) -> Result<usize, OutOfBacklog> {
        if !self.contains(lsn) {
            return Err(OutOfBacklog);
        }
        let from = (lsn - self.start) as usize;
        let n = (self.ring.len() - from).min(max_bytes);
        let (a, b) = self.ring.as_slices();
        if from < a.len() {
            let take_a = n.min(a.len() - from);
            out.extend_from_slice(&a[from..from + take_a]);
            out.extend_from_slice(&b[..n - take_a]);
        } else {
            let from_b = from - a.len();
            out.extend_from_slice(&b[from_b..from_b + n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_command(&mut out, args.iter().map(|a| a.as_bytes()));
        out
    }

    #[test]
    fn entries_are_resp_with_a_select_when_the_database_changes() {
        let mut j = Journal::new(1 << 20);
        j.append(0, [&b"SET"[..], b"k", b"v"]);
        assert_eq!(j.end_lsn(), 0, "a disabled journal records nothing");
        j.set_enabled(true);
        j.append(0, [&b"SET"[..], b"k", b"v"]);
        j.append(0, [&b"DEL"[..], b"k"]);
        j.append(3, [&b"DEL"[..], b"k"]);
        let mut want = cmd(&["SELECT", "0"]);
        want.extend(cmd(&["SET", "k", "v"]));
        want.extend(cmd(&["DEL", "k"]));
        want.extend(cmd(&["SELECT", "3"]));
        want.extend(cmd(&["DEL", "k"]));
        let mut got = Vec::new();
        assert_eq!(j.copy_from(0, usize::MAX, &mut got), Ok(want.len()));
        assert_eq!(got, want);
        assert_eq!(j.end_lsn(), want.len() as Lsn);
        j.force_select();
        j.append(3, [&b"DEL"[..], b"k"]);
        let mut tail = Vec::new();
        j.copy_from(want.len() as Lsn, usize::MAX, &mut tail).expect("in backlog");
        assert!(tail.starts_with(&cmd(&["SELECT", "3"])));
    }

    #[test]
    fn tagged_entries_carry_their_transaction_and_database_and_select_nothing() {
        let mut j = Journal::new(1 << 20);
        j.set_tx_tag(7);
        j.append_encoded(1, &cmd(&["DEL", "k"]));
        j.append_tx_end(7, 1, &[0, 2]);
        assert_eq!(j.end_lsn(), 0, "a disabled journal records nothing");
        j.set_enabled(true);
        let txid = (3u64 << 48) | 42;
        j.set_tx_tag(txid);
        let mut two = cmd(&["SREM", "s", "a"]);
        two.extend(cmd(&["SREM", "s", "b"]));
        j.append_encoded(1, &two);
        j.append(1, [&b"DEL"[..], b"k"]);
        j.set_tx_tag(0);
        j.append(1, [&b"DEL"[..], b"other"]);
        j.append_tx_end(txid, 9, &[0, 3, 5]);
        j.append_tx_fence(12, &[txid]);
        j.append_tx_abort(&[5, 6]);
        let mut want = Vec::new();
        encode_command(&mut want, [&b"REPLCONF"[..], b"tx-cmd", b"844424930132010", b"1", &two]);
        encode_command(&mut want, [&b"REPLCONF"[..], b"tx-cmd", b"844424930132010", b"1", &cmd(&["DEL", "k"])]);
        want.extend(cmd(&["SELECT", "1"]));
        want.extend(cmd(&["DEL", "other"]));
        want.extend(cmd(&["REPLCONF", "tx-end", "844424930132010", "9", "0", "3", "5"]));
        want.extend(cmd(&["REPLCONF", "tx-fence", "12", "844424930132010"]));
        want.extend(cmd(&["REPLCONF", "tx-abort", "5", "6"]));
        let mut got = Vec::new();
        j.copy_from(0, usize::MAX, &mut got).expect("in backlog");
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
    }

    #[test]
    fn a_transaction_that_logs_goes_between_multi_and_exec() {
        let mut j = Journal::new(1 << 20);
        j.set_enabled(true);
        j.begin_multi();
        j.end_multi();
        assert_eq!(j.end_lsn(), 0, "a transaction that changed nothing logs nothing");
        j.begin_multi();
        j.append(2, [&b"INCR"[..], b"a"]);
        j.append(2, [&b"INCR"[..], b"b"]);
        j.end_multi();
        j.append(2, [&b"DEL"[..], b"c"]);
        let mut want = cmd(&["SELECT", "2"]);
        want.extend(cmd(&["MULTI"]));
        want.extend(cmd(&["INCR", "a"]));
        want.extend(cmd(&["INCR", "b"]));
        want.extend(cmd(&["EXEC"]));
        want.extend(cmd(&["DEL", "c"]));
        let mut got = Vec::new();
        j.copy_from(0, usize::MAX, &mut got).expect("in backlog");
        assert_eq!(got, want);
    }

    #[test]
    fn the_backlog_keeps_its_bound_and_refuses_positions_outside_it() {
        let mut j = Journal::new(BACKLOG_BYTES_MIN);
        j.set_enabled(true);
        let value = vec![b'x'; 1000];
        let mut stream = Vec::new();
        for i in 0..100 {
            let key = format!("key:{i}");
            j.append(0, [&b"SET"[..], key.as_bytes(), &value]);
        }
        assert_eq!(j.backlog_len(), BACKLOG_BYTES_MIN);
        assert_eq!(j.start_lsn() + BACKLOG_BYTES_MIN as Lsn, j.end_lsn());
        assert_eq!(j.copy_from(0, 10, &mut stream), Err(OutOfBacklog));
        assert_eq!(j.copy_from(j.end_lsn() + 1, 10, &mut stream), Err(OutOfBacklog));
        assert_eq!(j.copy_from(j.end_lsn(), 10, &mut stream), Ok(0));
        // Reading in small pieces across the ring's wrap gives the same bytes as one read.
        let mut whole = Vec::new();
        j.copy_from(j.start_lsn(), usize::MAX, &mut whole).expect("in backlog");
        let mut pieces = Vec::new();
        let mut at = j.start_lsn();
        while at < j.end_lsn() {
            at += j.copy_from(at, 777, &mut pieces).expect("in backlog") as Lsn;
        }
        assert_eq!(pieces, whole);
        assert!(whole.ends_with(&cmd(&["SET", "key:99", std::str::from_utf8(&value).expect("ascii")])));
        j.set_backlog_bytes(0);
        assert_eq!(j.backlog_len(), BACKLOG_BYTES_MIN, "the minimum holds");
        let end = j.end_lsn();
        j.set_enabled(false);
        assert_eq!(j.end_lsn(), end, "the LSN survives disabling");
        assert!(!j.contains(end));
    }

    #[test]
    fn a_floor_keeps_what_a_reader_still_needs_past_the_backlog_and_no_more() {
        let mut j = Journal::new(BACKLOG_BYTES_MIN);
        j.set_enabled(true);
        let value = vec![b'v'; 1000];
        let set = |j: &mut Journal, i: usize| j.append(0, [&b"SET"[..], format!("k{i}").as_bytes(), &value[..]]);
        for i in 0..10 {
            set(&mut j, i);
        }
        // A reader (a snapshot taken now) will read from here.
        let reader = j.end_lsn();
        j.set_floor(Some(reader));
        for i in 10..200 {
            set(&mut j, i);
        }
        assert!(j.backlog_len() > 10 * BACKLOG_BYTES_MIN, "everything since the floor is kept");
        assert_eq!(j.retained_beyond_backlog(), j.backlog_len() - BACKLOG_BYTES_MIN);
        let mut got = Vec::new();
        let mut at = reader;
        while at < j.end_lsn() {
            at += j.copy_from(at, 4096, &mut got).expect("kept for the reader") as Lsn;
        }
        assert!(got.starts_with(&cmd(&["SET", "k10", std::str::from_utf8(&value).expect("ascii")])));
        // The reader moves on: what it sent goes, the backlog stays.
        j.set_floor(Some(at - 100));
        assert_eq!(j.backlog_len(), BACKLOG_BYTES_MIN);
        assert_eq!(j.retained_beyond_backlog(), 0);
        j.set_floor(None);
        assert_eq!(j.backlog_len(), BACKLOG_BYTES_MIN);
        assert!(j.ring.capacity() <= 4 * BACKLOG_BYTES_MIN, "the memory went back");
        // A floor the journal no longer holds keeps nothing extra.
        j.set_floor(Some(0));
        for i in 200..300 {
            set(&mut j, i);
        }
        assert_eq!(j.backlog_len(), BACKLOG_BYTES_MIN);
    }
}
