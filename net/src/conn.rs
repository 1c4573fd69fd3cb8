//! One client connection: its buffers, protocol state, and the holes its
//! replies keep for results still on other shards.
//!
//! Replies go out in request order. A command served by this shard writes
//! its reply straight into `out`; one served elsewhere leaves a hole at the
//! current end of `out`, and later replies are written after it. Nothing is
//! sent while a hole is open; when the last result arrives the holes are
//! filled in one pass and the whole pipeline's replies go out in one write.

use crate::resp::RequestParser;
use coreshard_engine::cmd::Merge;
use coreshard_engine::digest::Digest;
use coreshard_engine::{Proto, Reply};

/// Pending output past which the connection stops executing more of its
/// pipeline until the output drains.
pub const OUTPUT_PAUSE_BYTES: usize = 4 * 1024 * 1024;

/// Why and how a connection is closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// Open.
    No,
    /// Close once the pending replies are written (QUIT, protocol error).
    AfterReply,
    /// Close now; unwritten replies are dropped (peer gone, CLIENT KILL).
    Now,
}

/// Results of one part of a cross-shard command.
#[derive(Default, Debug)]
pub struct PartResult {
    /// The items' bytes.
    pub bytes: Vec<u8>,
    /// Each item's end in `bytes`.
    pub ends: Vec<usize>,
}

impl PartResult {
    fn items(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let item = &self.bytes[start..end];
            start = end;
            item
        })
    }
}

/// What a hole will be filled with.
#[derive(Debug)]
pub enum Acc {
    /// One whole reply from one shard.
    Single(Vec<u8>),
    /// Parts to merge.
    Parts {
        /// How to merge.
        merge: Merge,
        /// Protocol of the final reply.
        proto: Proto,
        /// For `Interleave`: the part serving each key, in key order.
        order: Vec<u16>,
        /// Results, by part number.
        parts: Vec<PartResult>,
    },
}

/// A place in the output waiting for results from other shards.
#[derive(Debug)]
pub struct Hole {
    /// Offset in `Conn::out` where the reply belongs.
    pub pos: usize,
    /// Results still to come.
    pub pending: u32,
    /// What has arrived.
    pub acc: Acc,
}

/// A client connection.
pub struct Conn {
    /// The socket.
    pub fd: i32,
    /// CLIENT ID.
    pub id: u64,
    /// Peer address (`ip:port`, or the unix socket path).
    pub addr: String,
    /// Local address.
    pub laddr: String,
    /// Unix-socket connection.
    pub unix: bool,
    /// Received bytes not yet executed (`rpos..len()`): an incomplete frame,
    /// or commands held while the pipeline waits. Empty (no allocation) for
    /// an idle connection: reads land in the shard's receive buffers.
    pub rbuf: Vec<u8>,
    /// Start of the unparsed bytes.
    pub rpos: usize,
    /// Parser state for the frame at `rpos`.
    pub parser: RequestParser,
    /// Bytes the frame at `rpos` needs, when known.
    pub need: usize,
    /// Replies not yet handed to the kernel.
    pub out: Vec<u8>,
    /// Replies the kernel is sending; `send_off` bytes are done.
    pub sending: Vec<u8>,
    /// Progress in `sending`.
    pub send_off: usize,
    /// A multishot recv is armed.
    pub recv_inflight: bool,
    /// A send is in flight.
    pub send_inflight: bool,
    /// Holes of the pipeline being executed.
    pub holes: Vec<Hole>,
    /// Holes still waiting.
    pub holes_open: u32,
    /// SELECTed database.
    pub db: usize,
    /// Protocol version.
    pub proto: Proto,
    /// AUTH done (or no password set).
    pub authenticated: bool,
    /// CLIENT SETNAME.
    pub name: Vec<u8>,
    /// CLIENT SETINFO lib-name / lib-ver.
    pub lib_name: Vec<u8>,
    /// CLIENT SETINFO lib-ver.
    pub lib_ver: Vec<u8>,
    /// Closing state.
    pub closing: Closing,
    /// Monotonic ns at accept.
    pub created_ns: u64,
    /// Monotonic ns of the last command.
    pub last_ns: u64,
    /// Name of the last command.
    pub last_cmd: &'static str,
    /// Its subcommand, for container commands (CLIENT LIST shows `client|list`).
    pub last_sub: Option<&'static str>,
    /// Queued in the shard's list of connections to process.
    pub queued: bool,
    /// Pub/Sub subscriptions (none for most connections).
    pub subs: Option<Box<crate::pubsub::Subscriptions>>,
    /// The transaction whose commands are being dispatched (0: none); its
    /// requests run past the locks it holds.
    pub txid: u64,
    /// Waiting for a transaction's locks: nothing further runs meanwhile.
    pub tx_wait: bool,
    /// A primary's stream waits until a transaction it must not pass is
    /// applied (repl/txapply.rs): nothing further runs meanwhile.
    pub stream_paused: bool,
    /// A stream's connection used its share of this loop turn with input
    /// left: it continues next turn (shard.rs `run_stream`).
    pub stream_yielded: bool,
    /// EXEC is running this connection's queued commands.
    pub in_exec: bool,
    /// Monotonic ns of the first try of a blocking command over keys of
    /// several shards that is still waiting (its timeout counts from there).
    pub blocked_since_ns: Option<u64>,
    /// Commands queued since MULTI.
    pub(crate) multi: Option<Box<crate::multi::Queued>>,
    /// Shards holding WATCHed keys of this connection, as a bit set.
    pub watching: Vec<u16>,
    /// A blocking command waits for its answer: nothing more of the
    /// pipeline runs until it comes (blocking.rs).
    pub blocked: Option<crate::blocking::Blocked>,
    /// Streams a shard's journal to a replica (PSYNC).
    pub(crate) flow: Option<Box<crate::repl::primary::FlowOut>>,
    /// Brings one primary shard's stream to this replica.
    pub(crate) master: Option<Box<crate::repl::replica::MasterIn>>,
    /// Moving to the shard its PSYNC names; nothing runs meanwhile.
    pub(crate) handoff: Option<Box<crate::repl::primary::HandOff>>,
    /// Blocked in WAIT.
    pub(crate) wait: Option<Box<crate::repl::WaitFor>>,
    /// Waits for the reply of a CLUSTER command running off the shard
    /// (CORESHARD-PROPOSE); nothing more of it runs meanwhile.
    pub(crate) cluster_wait: bool,
    /// The CLUSTER RESET being waited for is a replica's: once it is in
    /// force, the data is flushed (FLUSHALL answers for it). A connection
    /// closed meanwhile is kept until then, so the flush happens anyway.
    pub(crate) reset_flush: bool,
    /// REPLCONF listening-port.
    pub replica_port: u16,
    /// READONLY was sent: in cluster mode a replica serves this
    /// connection's reads of its primary's slots.
    pub readonly: bool,
}

impl Conn {
    /// A new connection on `fd`.
    pub fn new(fd: i32, id: u64, addr: String, laddr: String, unix: bool, authenticated: bool, now_ns: u64) -> Self {
        Conn {
            fd,
            id,
            addr,
            laddr,
            unix,
            rbuf: Vec::new(),
            rpos: 0,
            parser: RequestParser::new(),
            need: 0,
            out: Vec::new(),
            sending: Vec::new(),
            send_off: 0,
            recv_inflight: false,
            send_inflight: false,
            holes: Vec::new(),
            holes_open: 0,
            db: 0,
            proto: Proto::Resp2,
            authenticated,
            name: Vec::new(),
            lib_name: Vec::new(),
            lib_ver: Vec::new(),
            closing: Closing::No,
            created_ns: now_ns,
            last_ns: now_ns,
            last_cmd: "NULL",
            last_sub: None,
            queued: false,
            subs: None,
            txid: 0,
            tx_wait: false,
            stream_paused: false,
            stream_yielded: false,
            in_exec: false,
            blocked_since_ns: None,
            multi: None,
            watching: Vec::new(),
            blocked: None,
            flow: None,
            master: None,
            handoff: None,
            wait: None,
            cluster_wait: false,
            reset_flush: false,
            replica_port: 0,
            readonly: false,
        }
    }

    /// A reply writer at the end of the output.
    #[inline]
    pub fn reply(&mut self) -> Reply<'_> {
        Reply::new(&mut self.out, self.proto)
    }

    /// Opens a hole for `pending` results and returns its number.
    pub fn open_hole(&mut self, pending: u32, acc: Acc) -> u32 {
        self.holes.push(Hole { pos: self.out.len(), pending, acc });
        self.holes_open += 1;
        (self.holes.len() - 1) as u32
    }

    /// Records the result of one part of hole `hole`. Returns true when every
    /// hole is complete and the output was assembled.
    pub fn fill(&mut self, hole: u32, part: u16, bytes: &[u8], ends: &[usize], rng: &mut fastrand::Rng) -> bool {
        let Some(h) = self.holes.get_mut(hole as usize) else {
            debug_assert!(false, "reply for an unknown hole");
            return false;
        };
        match &mut h.acc {
            Acc::Single(buf) => buf.extend_from_slice(bytes),
            Acc::Parts { parts, .. } => {
                let p = &mut parts[part as usize];
                let base = p.bytes.len();
                p.bytes.extend_from_slice(bytes);
                p.ends.extend(ends.iter().map(|e| base + e));
            }
        }
        debug_assert!(h.pending > 0);
        h.pending -= 1;
        if h.pending == 0 {
            self.holes_open -= 1;
            if self.holes_open == 0 {
                self.assemble(rng);
                return true;
            }
        }
        false
    }

    /// Fills every hole into the output, in order.
    fn assemble(&mut self, rng: &mut fastrand::Rng) {
        let holes = std::mem::take(&mut self.holes);
        let extra: usize = holes.iter().map(|h| if let Acc::Single(b) = &h.acc { b.len() } else { 64 }).sum();
        let mut out = Vec::with_capacity(self.out.len() + extra);
        let mut copied = 0;
        for h in holes {
            out.extend_from_slice(&self.out[copied..h.pos]);
            copied = h.pos;
            match h.acc {
                Acc::Single(bytes) => out.extend_from_slice(&bytes),
                Acc::Parts { merge, proto, order, parts } => {
                    merge_parts(merge, &order, &parts, &mut Reply::new(&mut out, proto), rng)
                }
            }
        }
        out.extend_from_slice(&self.out[copied..]);
        self.out = out;
    }

    /// Bytes of output not yet acknowledged by the kernel.
    pub fn output_pending(&self) -> usize {
        self.out.len() + self.sending.len() - self.send_off
    }
}

/// Reads the integer of a `:n\r\n` item.
fn item_int(item: &[u8]) -> Option<i64> {
    if item.len() < 3 || item[0] != b':' {
        return None;
    }
    coreshard_engine::num::parse_i64(&item[1..item.len() - 2])
}

/// Combines part results into the final reply.
pub fn merge_parts(merge: Merge, order: &[u16], parts: &[PartResult], r: &mut Reply, rng: &mut fastrand::Rng) {
    // An error from any part is the reply (every part checks the same arguments).
    if merge != Merge::Interleave
        && merge != Merge::Scan
        && let Some(err) = parts.iter().flat_map(|p| p.items()).find(|i| i.first() == Some(&b'-'))
    {
        return r.raw(err);
    }
    match merge {
        Merge::Interleave => {
            r.array(order.len());
            let mut iters: Vec<_> = parts.iter().map(|p| p.items()).collect();
            for &p in order {
                match iters[p as usize].next() {
                    Some(item) => r.raw(item),
                    None => r.null(),
                }
            }
        }
        Merge::Sum => r.int(parts.iter().flat_map(|p| p.items()).filter_map(item_int).sum()),
        Merge::Ok => r.ok(),
        Merge::Concat => {
            r.array(parts.iter().map(|p| p.ends.len()).sum());
            for p in parts {
                r.raw(&p.bytes);
            }
        }
        Merge::Scan => {
            let mut keys: Vec<&[u8]> = Vec::new();
            let mut cursor = 0usize;
            for p in parts {
                let mut it = p.items();
                let Some(next) = it.next().and_then(item_int) else {
                    continue;
                };
                if next < 0 {
                    continue;
                }
                let (Some(end), Some(count)) = (it.next().and_then(item_int), it.next().and_then(item_int)) else {
                    continue;
                };
                keys.extend(it);
                if next < end {
                    cursor = next as usize;
                    break;
                }
                if keys.len() as i64 >= count {
                    cursor = coreshard_engine::cmd::keys::scan_merge_cursor(end as usize);
                    break;
                }
            }
            r.array(2);
            r.bulk_int(cursor as i64);
            r.array(keys.len());
            for k in keys {
                r.raw(k);
            }
        }
        Merge::ConcatUnique => {
            let mut seen = hashbrown::HashSet::new();
            let unique: Vec<&[u8]> = parts.iter().flat_map(|p| p.items()).filter(|i| seen.insert(*i)).collect();
            r.array(unique.len());
            for item in unique {
                r.raw(item);
            }
        }
        Merge::CountUnique => {
            let seen: hashbrown::HashSet<&[u8]> = parts.iter().flat_map(|p| p.items()).collect();
            r.int(seen.len() as i64);
        }
        Merge::PairsSum => {
            let Some(first) = parts.iter().find(|p| !p.ends.is_empty()) else { return r.array(0) };
            let names: Vec<&[u8]> = first.items().step_by(2).collect();
            let mut sums = vec![0i64; names.len()];
            for p in parts {
                for (i, item) in p.items().skip(1).step_by(2).enumerate() {
                    if let Some(s) = sums.get_mut(i) {
                        *s += item_int(item).unwrap_or(0);
                    }
                }
            }
            r.array(names.len() * 2);
            for (name, n) in names.into_iter().zip(sums) {
                r.raw(name);
                r.int(n);
            }
        }
        Merge::Text => {
            let mut text = Vec::new();
            for item in parts.iter().flat_map(|p| p.items()) {
                // A bulk item: `$len\r\n` payload `\r\n`.
                if let Some(nl) = item.iter().position(|&b| b == b'\n')
                    && item.len() >= nl + 3
                {
                    text.extend_from_slice(&item[nl + 1..item.len() - 2]);
                }
            }
            r.verbatim(&text);
        }
        Merge::Found => {
            if parts.iter().flat_map(|p| p.items()).filter_map(item_int).sum::<i64>() > 0 {
                r.ok()
            } else {
                r.error("ERR No such client")
            }
        }
        Merge::Digest => {
            let digest_of = |item: &[u8]| {
                let text = item.strip_prefix(b"+")?.strip_suffix(b"\r\n")?;
                Digest::parse_hex(text)
            };
            let Some((first, rest)) = parts.split_first() else { return r.simple(&Digest::ZERO.hex()) };
            let mut others: Vec<_> = rest.iter().map(|p| p.items()).collect();
            for item in first.items() {
                let same_place = others.iter_mut().filter_map(|it| it.next());
                match digest_of(item) {
                    Some(d) => {
                        let sum = same_place.filter_map(digest_of).fold(d, Digest::combine);
                        r.simple(&sum.hex());
                    }
                    None => {
                        same_place.for_each(drop);
                        r.raw(item);
                    }
                }
            }
        }
        Merge::RandomKey => {
            // Each part: (count, key-or-null). Choose a part with weight by its count.
            let candidates: Vec<(i64, &[u8])> = parts
                .iter()
                .filter_map(|p| {
                    let mut it = p.items();
                    let n = item_int(it.next()?)?;
                    let key = it.next()?;
                    (n > 0 && key.first() == Some(&b'$')).then_some((n, key))
                })
                .collect();
            let total: i64 = candidates.iter().map(|c| c.0).sum();
            if total == 0 {
                return r.null();
            }
            let mut pick = rng.i64(0..total);
            for (n, key) in candidates {
                if pick < n {
                    return r.raw(key);
                }
                pick -= n;
            }
            r.null();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(items: &[&[u8]]) -> PartResult {
        let mut p = PartResult::default();
        for i in items {
            p.bytes.extend_from_slice(i);
            p.ends.push(p.bytes.len());
        }
        p
    }

    fn merged(merge: Merge, order: &[u16], parts: &[PartResult]) -> String {
        let mut out = Vec::new();
        merge_parts(merge, order, parts, &mut Reply::new(&mut out, Proto::Resp2), &mut fastrand::Rng::with_seed(1));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn interleave_restores_key_order() {
        let parts = [part(&[b"$1\r\na\r\n", b"$-1\r\n"]), part(&[b"$1\r\nb\r\n"])];
        assert_eq!(merged(Merge::Interleave, &[0, 1, 0], &parts), "*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n");
    }

    #[test]
    fn sum_ok_concat_and_errors() {
        assert_eq!(merged(Merge::Sum, &[], &[part(&[b":2\r\n"]), part(&[b":3\r\n"])]), ":5\r\n");
        assert_eq!(merged(Merge::Ok, &[], &[part(&[b"+OK\r\n"]), part(&[b"+OK\r\n"])]), "+OK\r\n");
        assert_eq!(
            merged(Merge::Concat, &[], &[part(&[b"$1\r\na\r\n"]), part(&[]), part(&[b"$1\r\nb\r\n"])]),
            "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        assert_eq!(merged(Merge::Ok, &[], &[part(&[b"+OK\r\n"]), part(&[b"-ERR x\r\n"])]), "-ERR x\r\n");
    }

    #[test]
    fn digests_add_up_position_by_position() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let status = |d: Digest| format!("+{}\r\n", d.hex()).into_bytes();
        let zero = status(Digest::ZERO);
        let (sa, sb) = (status(a), status(b));
        let got = merged(Merge::Digest, &[], &[part(&[&sa]), part(&[&sb]), part(&[&zero])]);
        assert_eq!(got.as_bytes(), status(a.combine(b)).as_slice());
        // DIGEST-VALUE: the array header once, each key from the shard that has it.
        let got = merged(Merge::Digest, &[], &[part(&[b"*2\r\n", &sa, &zero]), part(&[b"*2\r\n", &zero, &sb])]);
        assert_eq!(got.into_bytes(), [&b"*2\r\n"[..], &sa, &sb].concat());
        let got = merged(Merge::Digest, &[], &[part(&[b"*1\r\n", b"+HELP\r\n"]), part(&[b"*1\r\n", b"+HELP\r\n"])]);
        assert_eq!(got, "*1\r\n+HELP\r\n");
    }

    #[test]
    fn random_key_picks_a_present_key_or_null() {
        let parts = [part(&[b":0\r\n", b"$-1\r\n"]), part(&[b":4\r\n", b"$1\r\nk\r\n"])];
        assert_eq!(merged(Merge::RandomKey, &[], &parts), "$1\r\nk\r\n");
        assert_eq!(merged(Merge::RandomKey, &[], &[part(&[b":0\r\n", b"$-1\r\n"])]), "$-1\r\n");
    }

    #[test]
    fn holes_are_filled_in_order() {
        let mut c = Conn::new(-1, 1, String::new(), String::new(), false, true, 0);
        let mut rng = fastrand::Rng::with_seed(1);
        c.out.extend_from_slice(b"+A\r\n");
        let h1 = c.open_hole(1, Acc::Single(Vec::new()));
        c.out.extend_from_slice(b"+B\r\n");
        let h2 = c.open_hole(
            2,
            Acc::Parts {
                merge: Merge::Sum,
                proto: Proto::Resp2,
                order: vec![],
                parts: vec![PartResult::default(), PartResult::default()],
            },
        );
        c.out.extend_from_slice(b"+C\r\n");
        assert!(!c.fill(h2, 1, b":1\r\n", &[4], &mut rng));
        assert!(!c.fill(h1, 0, b"$1\r\nx\r\n", &[], &mut rng));
        assert!(c.fill(h2, 0, b":2\r\n", &[4], &mut rng));
        assert_eq!(String::from_utf8(c.out.clone()).unwrap(), "+A\r\n$1\r\nx\r\n+B\r\n:3\r\n+C\r\n");
        assert!(c.holes.is_empty());
    }
}
