//! Work crossing shards: a batch of requests for one destination, carried
//! over the SPSC ring of that ordered pair of shards, executed there, and
//! carried back with the replies in the same buffers. One batch per
//! destination per loop turn, however many commands of how many clients it
//! holds.

use coreshard_engine::cmd::{Handler, PartFn};
use coreshard_engine::{Proto, Span};
use std::ops::Range;

/// Commands queued for one destination before a batch is pushed even within one turn.
pub const BATCH_REQUESTS_MAX: usize = 4096;
/// Messages one ring holds; a full ring keeps batches back in the sender's overflow queue.
pub const RING_MESSAGES: usize = 1024;

/// What a request runs on the destination shard.
#[derive(Clone, Copy)]
pub enum Op {
    /// A whole command: its reply is one RESP value.
    Whole(Handler),
    /// A command's share: its results are items.
    Part(PartFn),
    /// CLIENT LIST on that shard's connections (one bulk item of lines).
    ClientList,
    /// CLIENT KILL with the filter in the arguments (one integer item: clients killed).
    ClientKill,
    /// PUBLISH to that shard's subscribers (one integer item: receivers).
    Publish,
    /// PUBSUB CHANNELS: that shard's active channels.
    PubsubChannels,
    /// PUBSUB NUMSUB: (channel, subscribers) pairs.
    PubsubNumsub,
    /// PUBSUB NUMPAT: that shard's patterns.
    PubsubPatterns,
    /// Take a transaction's locks on that shard (arguments: see
    /// `tx::LockRequest`); one integer item: 1 granted, 0 refused.
    TxLock,
    /// Release a transaction's locks on that shard (no reply item); with a
    /// client id argument, also forget that client's watches (EXEC).
    TxUnlock,
    /// WATCH: register client `args[0]`'s watch of keys `args[1..]` (item `+OK`).
    Watch,
    /// Forget client `args[0]`'s watches (no reply item).
    Unwatch,
    /// The part of a read-only multi-key command sent with its transaction's
    /// first lock request: runs only when that lock was granted.
    TxRead(PartFn),
    /// A gather's fetch: one item per key in `args`, its value and TTL
    /// (`tx::encode_entry`) as a bulk, or null when missing.
    TxFetch,
    /// A gather's write-back: `args[0]` becomes the `tx::encode_entry` value
    /// `args[1]` (empty: deleted). No reply item.
    TxStore,
    /// A blocking command (BLPOP ...) for the shard owning its keys: the
    /// reply, or nothing when the client now waits there (blocking.rs).
    Block(crate::blocking::BlockRequest),
    /// CLIENT UNBLOCK on that shard's connections (one integer item: unblocked).
    ClientUnblock,
    /// `REPLCONF flush-slots` (repl/flush.rs): remove every key of the
    /// slots it names (item `+OK`); with `journal`, log what this shard
    /// dropped (a migration target's flush, which its replicas must see).
    FlushSlots { journal: bool },
}

/// One command sent to another shard.
pub struct Request {
    /// The connection's slot on the origin shard.
    pub conn: u32,
    /// The reply hole in that connection.
    pub hole: u32,
    /// Which part of the hole this is.
    pub part: u16,
    /// The selected database.
    pub db: u16,
    /// The connection's protocol.
    pub proto: Proto,
    /// What to run.
    pub op: Op,
    /// The arguments: a range of `Batch::spans`.
    pub args: Range<usize>,
    /// Filled by the executor: the reply bytes, a range of `Batch::out`.
    pub out: Range<usize>,
    /// Filled by the executor: item ends (relative to `out.start`), a range of `Batch::ends`.
    pub ends: Range<usize>,
    /// The transaction this request runs for (0: none). A request of a
    /// transaction that holds its keys' locks runs past them.
    pub txid: u64,
    /// Set by the executor when the request waits on the destination for
    /// locks: its reply comes later in a batch of its own, and this one
    /// carries none.
    pub deferred: bool,
}

/// Requests for one destination, and later their replies.
#[derive(Default)]
pub struct Batch {
    /// The requests.
    pub reqs: Vec<Request>,
    /// Argument bytes.
    pub data: Vec<u8>,
    /// Argument spans into `data`.
    pub spans: Vec<Span>,
    /// Reply bytes.
    pub out: Vec<u8>,
    /// Item ends for part replies.
    pub ends: Vec<usize>,
}

impl Batch {
    /// Empties the batch, keeping its allocations for reuse.
    pub fn clear(&mut self) {
        self.reqs.clear();
        self.data.clear();
        self.spans.clear();
        self.out.clear();
        self.ends.clear();
    }

    /// True when no request is queued.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Copies the arguments `spans` of `src` in and returns their span range.
    pub fn push_args<'a>(&mut self, src: &[u8], spans: impl Iterator<Item = &'a Span>) -> Range<usize> {
        let first = self.spans.len();
        for s in spans {
            let start = self.data.len();
            self.data.extend_from_slice(&src[s.clone()]);
            self.spans.push(start..self.data.len());
        }
        first..self.spans.len()
    }
}

/// A message on a shard-to-shard ring.
pub enum Msg {
    /// Requests for the receiver to execute.
    Request(Batch),
    /// The receiver's earlier requests, executed, with replies.
    Reply(Batch),
    /// Blocked clients' replies and cancellations (blocking.rs).
    Blocking(Vec<crate::blocking::Event>),
}
