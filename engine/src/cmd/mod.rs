//! The command table: every command registered once, with its arity, flags,
//! key positions and how it runs across shards. Routing, COMMAND INFO and
//! (later) replication and OOM checks read these fields instead of keeping
//! their own lists.

pub mod debug;
pub mod hash;
pub mod keys;
pub mod list;
pub mod server;
pub mod set;
pub mod sort;
pub mod string;
pub mod zset;

use crate::args::Args;
use crate::db::{Db, UnixMs};
use crate::keyspace::Keyspace;
use crate::reply::Reply;
use hashbrown::HashMap;
use std::sync::OnceLock;

/// Command flags, as COMMAND INFO names them.
pub mod flags {
    /// May change the keyspace.
    pub const WRITE: u32 = 1 << 0;
    /// Only reads.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory use.
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// O(1) or O(log n).
    pub const FAST: u32 = 1 << 4;
    /// Allowed before AUTH.
    pub const NO_AUTH: u32 = 1 << 5;
    /// Not allowed from scripts.
    pub const NOSCRIPT: u32 = 1 << 6;
    /// Allowed while loading.
    pub const LOADING: u32 = 1 << 7;
    /// Allowed on a stale replica.
    pub const STALE: u32 = 1 << 8;
    /// Its keys are found by reading its arguments: a count of keys at
    /// `first_key - 1`, then that many keys (LMPOP). COMMAND INFO shows no
    /// key positions for it, as Redis does.
    pub const MOVABLEKEYS: u32 = 1 << 9;
    /// May block the client until a key is ready (BLPOP, BZPOPMIN, ...).
    pub const BLOCKING: u32 = 1 << 10;
    /// A Pub/Sub command.
    pub const PUBSUB: u32 = 1 << 11;
    /// Internal, not in COMMAND INFO: the handler reads keys beyond its key
    /// positions (ZUNIONSTORE's sources, SORT's STORE destination), which the
    /// dispatcher must find to place the command.
    pub const EXTRA_KEYS: u32 = 1 << 12;

    /// The COMMAND INFO names of the flags, in the order Redis lists them
    /// (its `commandFlagsName` table, movable keys last).
    pub const NAMES: [(u32, &str); 12] = [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}

/// What a shard-local command runs against.
pub struct Ctx<'a> {
    /// The shard's keyspace.
    pub ks: &'a mut Keyspace,
    /// The selected database.
    pub db: usize,
    /// The current time.
    pub now: UnixMs,
    /// The command's arguments; argument 0 is its name.
    pub args: Args<'a>,
}

impl<'a> Ctx<'a> {
    /// The selected database.
    #[inline]
    pub fn db(&mut self) -> &mut Db {
        self.ks.db(self.db)
    }

    /// Argument `i`.
    #[inline]
    pub fn arg(&self, i: usize) -> &'a [u8] {
        self.args.get(i)
    }

    /// Records a write that changed the keyspace.
    #[inline]
    pub fn dirty(&mut self, n: u64) {
        self.ks.stats.dirty += n;
    }

    /// Logs `args` in the journal for this command instead of its own
    /// arguments, once it ran (Redis's `rewriteClientCommandVector` and
    /// `alsoPropagate`): for a command whose effect depends on the clock or
    /// on chance, its deterministic effect (EXPIRE as PEXPIREAT, SPOP as
    /// SREM). Several calls log several entries, in order. Nothing is
    /// logged unless the command changed the keyspace ([`Ctx::dirty`]);
    /// while the journal is off this does nothing.
    #[inline]
    pub fn propagate(&mut self, args: &[&[u8]]) {
        self.ks.propagate(args);
    }

    /// Logs what the command just run in this context did, once it ran:
    /// [`Keyspace::log_command`] with this context's database and
    /// arguments. Taking them from the context, where they already are,
    /// keeps the call a branch while the journal is off (passing a copy of
    /// the arguments costs a caller some ten instructions more per command).
    #[inline]
    pub fn log(&mut self, dirty_before: u64) {
        self.ks.log_command(self.db, &self.args, dirty_before);
    }

    /// True while the journal records: a rewrite that costs something to
    /// build can be skipped otherwise.
    #[inline]
    pub fn logging(&self) -> bool {
        self.ks.journal.enabled()
    }

    /// True when the absolute time `at` has passed, so a command setting it
    /// deletes the key instead (Redis's `checkAlreadyExpired`). Never on a
    /// replica, which applies the time its primary sent whatever its clock.
    #[inline]
    pub fn already_expired(&self, at: UnixMs) -> bool {
        at != crate::db::NO_EXPIRE && at <= self.now && self.ks.expiry_mode() == crate::db::ExpiryMode::Delete
    }

    /// Records a read lookup's outcome.
    #[inline]
    pub fn hit(&mut self, found: bool) {
        if found {
            self.ks.stats.hits += 1;
        } else {
            self.ks.stats.misses += 1;
        }
    }
}

/// A shard-local command.
pub type Handler = fn(&mut Ctx, &mut Reply);

/// A command's share on one shard: the command restricted to that shard's keys
/// (or run whole on every shard), writing one reply item per result into
/// [`Items`].
pub type PartFn = fn(&mut Ctx, &mut Items);

/// Result items of a part, with their boundaries.
pub struct Items<'a> {
    out: &'a mut Vec<u8>,
    ends: &'a mut Vec<usize>,
    proto: crate::reply::Proto,
}

impl<'a> Items<'a> {
    /// Items appended to `out`, each one's end offset pushed on `ends`.
    pub fn new(out: &'a mut Vec<u8>, ends: &'a mut Vec<usize>, proto: crate::reply::Proto) -> Self {
        Items { out, ends, proto }
    }

    /// Writes one item with `f`.
    #[inline]
    pub fn item(&mut self, f: impl FnOnce(&mut Reply)) {
        f(&mut Reply::new(self.out, self.proto));
        self.ends.push(self.out.len());
    }
}

/// How the parts of a command spread over shards are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// One item per key, put back in the keys' order in an array (MGET).
    Interleave,
    /// Integers added up (DEL, EXISTS, DBSIZE).
    Sum,
    /// `+OK` once every part succeeded (MSET, FLUSHDB).
    Ok,
    /// Every part's items in one array (KEYS).
    Concat,
    /// Each part gives (count, key); one key chosen with weight by count (RANDOMKEY).
    RandomKey,
    /// SCAN: shards in order, each giving (next cursor position, end of its
    /// span of positions, COUNT, keys...); keys are taken until a shard stops
    /// inside its span or COUNT keys were gathered at a shard boundary.
    Scan,
    /// Every part's items in one array, each distinct item once (PUBSUB CHANNELS).
    ConcatUnique,
    /// The number of distinct items over all parts (PUBSUB NUMPAT).
    CountUnique,
    /// Parts give the same (name, integer) pairs; the integers are added up
    /// position by position (PUBSUB NUMSUB).
    PairsSum,
    /// Each part's one bulk item joined into one text reply (CLIENT LIST).
    Text,
    /// `+OK` when the parts' integers add up to more than zero, else
    /// `ERR No such client` (the old CLIENT KILL addr form).
    Found,
    /// Parts give the same items in the same order (DEBUG): an item that is
    /// a 40-hex-digit status is a digest, and the parts' digests at that
    /// position are added up ([`crate::digest::Digest::combine`]); any other
    /// item (an array header, a HELP line) is written once.
    Digest,
}

/// Connection and server commands, run by the network layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ConnCmd {
    Ping,
    Echo,
    Hello,
    Auth,
    Select,
    Quit,
    Reset,
    Client,
    Command,
    Config,
    Info,
    Time,
    Shutdown,
    Lastsave,
    Subscribe,
    Unsubscribe,
    Psubscribe,
    Punsubscribe,
    Publish,
    Pubsub,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Replicaof,
    Role,
    Wait,
    Replconf,
    Psync,
    Sync,
    Cluster,
    Readonly,
    Readwrite,
}

/// How a command is executed.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Runs on the shard owning its key (`first_key`), or on the connection's
    /// shard when it has none.
    Keyed(Handler),
    /// Keys spread over shards: `whole` when they share one shard, else `part`
    /// per shard over its keys (`step` arguments per key), merged by `merge`.
    MultiKey {
        /// The command on one shard.
        whole: Handler,
        /// The command restricted to one shard's keys.
        part: PartFn,
        /// How parts combine.
        merge: Merge,
    },
    /// Runs on every shard; `check` validates arguments once, first.
    AllShards {
        /// Argument validation, giving the error reply text.
        check: fn(&Args) -> Result<(), String>,
        /// The command on one shard.
        part: PartFn,
        /// How parts combine.
        merge: Merge,
    },
    /// A blocking command: runs on the shard owning its keys (all of them
    /// on one shard, as for [`Kind::Keyed`] over several keys), and when none
    /// of them has anything to give, the client waits there until one does
    /// or its timeout passes.
    Blocking(Blocking),
    /// A connection or server command.
    Conn(ConnCmd),
}

/// How a blocking command (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN
/// BZPOPMAX BZMPOP) is served.
///
/// The network layer runs `attempt` when the command arrives and again,
/// while the client waits, each time one of its keys becomes ready (holds
/// the type `on` names) — Redis 7.2 re-executes a blocked command the same
/// way. A served call changes the keyspace exactly as the non-blocking form
/// it mirrors (LPOP, RPOP, LMOVE, LMPOP, ZPOPMIN, ZPOPMAX, ZMPOP, with the key
/// that was served), so the journal will log it as that plain pop, as Redis
/// propagates blocking pops (DESIGN.md).
#[derive(Clone, Copy)]
pub struct Blocking {
    /// Serves the command if one of its keys has something, or says how long to wait.
    pub attempt: BlockingFn,
    /// The type a key must hold for a waiting client to be retried.
    pub on: BlockOn,
    /// True when only the first key is waited on (BLMOVE's source; its
    /// destination is written, not watched).
    pub first_key_only: bool,
}

/// One try of a blocking command.
pub type BlockingFn = fn(&mut Ctx, &mut Reply) -> Attempt;

/// What one try of a blocking command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// It wrote its reply: served, or an error.
    Replied,
    /// Every key it waits on is empty: it wrote nothing, and the client
    /// waits up to `timeout_ms` (0: for ever).
    Block {
        /// The timeout in milliseconds.
        timeout_ms: u64,
    },
}

/// The value type a blocked client waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOn {
    /// A list (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP).
    List,
    /// A sorted set (BZPOPMIN BZPOPMAX BZMPOP).
    ZSet,
}

impl BlockOn {
    /// True when `value` is of this type, so a client blocked for it may be served.
    pub fn accepts(self, value: crate::value::ValueRef) -> bool {
        use crate::value::ValueRef;
        matches!((self, value), (BlockOn::List, ValueRef::List(_)) | (BlockOn::ZSet, ValueRef::ZSet(_)))
    }
}

/// Parses a blocking command's timeout as Redis's `getTimeoutFromObjectOrReply`
/// does: seconds as a long double (`string2ld`), truncated to milliseconds
/// by a C cast. A magnitude the cast cannot hold comes out as `LLONG_MIN` on
/// x86-64, so Redis reports it (and infinity) as negative; a small negative
/// value truncates to 0, which waits for ever. Texts whose `f64` overflows
/// or underflows but which a long double holds are read as Redis reads them
/// (huge, or 0).
pub(crate) fn parse_timeout(text: &[u8]) -> Result<u64, &'static str> {
    const NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
    const NEGATIVE: &str = "ERR timeout is negative";
    /// 2^63 milliseconds: the first value a C `long long` cannot hold.
    const LLONG_LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let secs = match crate::num::parse_f64(text) {
        Some(s) => s,
        // parse_f64 refuses what leaves the f64 range; a long double holds it.
        None => std::str::from_utf8(text)
            .ok()
            .filter(|t| t.len() < crate::num::MAX_LONG_DOUBLE_CHARS)
            .filter(|t| !t.starts_with(|c: char| c.is_ascii_whitespace()))
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|v| !v.is_nan())
            .ok_or(NOT_FLOAT)?,
    };
    let ms = (secs * 1000.0).trunc();
    if !(0.0..LLONG_LIMIT).contains(&ms) {
        return Err(NEGATIVE);
    }
    Ok(ms as u64)
}

/// One command's registration.
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments, `-n` at least n (the name counts).
    pub arity: i32,
    /// [`flags`] bits.
    pub flags: u32,
    /// Position of the first key (0: none).
    pub first_key: i32,
    /// Position of the last key (-1: the last argument).
    pub last_key: i32,
    /// Distance between keys.
    pub step: i32,
    /// How it runs.
    pub kind: Kind,
    /// COMMAND DOCS group.
    pub group: &'static str,
    /// COMMAND DOCS summary.
    pub summary: &'static str,
    /// The Redis version that introduced it.
    pub since: &'static str,
}

impl CommandSpec {
    /// True when `n` arguments (the name included) satisfy the arity.
    #[inline]
    pub fn arity_ok(&self, n: usize) -> bool {
        if self.arity >= 0 { n == self.arity as usize } else { n >= (-self.arity) as usize }
    }

    /// True when the command has flag `f`.
    #[inline]
    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// Positions of the keys among `n` arguments.
    pub fn key_positions(&self, n: usize) -> std::iter::StepBy<std::ops::Range<usize>> {
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 { n as i64 + self.last_key as i64 } else { self.last_key as i64 };
        let step = self.step.max(1) as usize;
        let end = if first == 0 { 0 } else { (last.max(-1) + 1) as usize };
        (first..end.min(n)).step_by(step)
    }

    /// Positions of the keys in `args`. For a [`flags::MOVABLEKEYS`] command
    /// they are the count at `first_key - 1` of arguments from `first_key`;
    /// none when that count is not a positive integer or runs past the end
    /// (the command itself then answers with its error). This is how Redis
    /// Cluster finds them, so CROSSSLOT answers agree with it.
    pub fn keys(&self, args: &Args) -> std::iter::StepBy<std::ops::Range<usize>> {
        if !self.has(flags::MOVABLEKEYS) {
            return self.key_positions(args.len());
        }
        let first = self.first_key.max(1) as usize;
        let count = args
            .try_get(first - 1)
            .and_then(crate::num::parse_i64)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n >= 1 && first.checked_add(*n).is_some_and(|end| end <= args.len()));
        match count {
            Some(n) => (first..first + n).step_by(1),
            None => (0..0).step_by(1),
        }
    }
}

/// Shorthand used by the family tables.
#[allow(clippy::too_many_arguments)]
pub(crate) const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    kind: Kind,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
) -> CommandSpec {
    CommandSpec { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2, kind, group, summary, since }
}

/// The table of all commands.
pub struct CommandTable {
    by_name: HashMap<&'static str, &'static CommandSpec>,
    all: Vec<&'static CommandSpec>,
}

impl CommandTable {
    /// The process-wide table.
    pub fn get() -> &'static CommandTable {
        static TABLE: OnceLock<CommandTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            let all: Vec<&'static CommandSpec> = [
                string::COMMANDS,
                keys::COMMANDS,
                hash::COMMANDS,
                list::COMMANDS,
                set::COMMANDS,
                zset::COMMANDS,
                sort::COMMANDS,
                server::COMMANDS,
                debug::COMMANDS,
            ]
            .into_iter()
            .flat_map(|family| family.iter())
            .collect();
            let by_name = all.iter().map(|c| (c.name, *c)).collect();
            CommandTable { by_name, all }
        })
    }

    /// The command named `name`, in any letter case.
    #[inline]
    pub fn lookup(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        const NAME_BYTES_MAX: usize = 32;
        if name.len() > NAME_BYTES_MAX {
            return None;
        }
        let mut lower = [0u8; NAME_BYTES_MAX];
        let lower = &mut lower[..name.len()];
        for (d, s) in lower.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        let lower = std::str::from_utf8(lower).ok()?;
        self.by_name.get(lower).copied()
    }

    /// Every command.
    pub fn all(&self) -> &[&'static CommandSpec] {
        &self.all
    }
}

/// The error for an unknown command, as Redis words it: the name and the
/// first arguments quoted, raw bytes kept (CR and LF become spaces when written).
pub fn unknown_command_error(args: &Args) -> Vec<u8> {
    const ARGS_BYTES_MAX: usize = 128;
    let mut msg = b"ERR unknown command '".to_vec();
    let name = args.get(0);
    msg.extend_from_slice(&name[..name.len().min(ARGS_BYTES_MAX)]);
    msg.extend_from_slice(b"', with args beginning with: ");
    let mut listed = 0usize;
    for a in args.iter_from(1) {
        if listed >= ARGS_BYTES_MAX {
            break;
        }
        let room = ARGS_BYTES_MAX - listed;
        let take = &a[..a.len().min(room)];
        msg.push(b'\'');
        msg.extend_from_slice(take);
        msg.extend_from_slice(b"' ");
        listed += take.len() + 3;
    }
    msg
}

/// The options of HSCAN, SSCAN and ZSCAN: `[MATCH pattern] [COUNT count]`,
/// and `[NOVALUES]` where `novalues` allows it. A MATCH of `*` is no filter.
pub(crate) struct ScanOptions<'a> {
    pub count: usize,
    pub pattern: Option<&'a [u8]>,
    pub no_values: bool,
}

/// Parses scan options from argument `from` on, with Redis's errors.
pub(crate) fn scan_options<'a>(args: &Args<'a>, from: usize, novalues: bool) -> Result<ScanOptions<'a>, &'static str> {
    let mut o = ScanOptions { count: 10, pattern: None, no_values: false };
    let mut i = from;
    while i < args.len() {
        if novalues && args.is(i, "NOVALUES") {
            o.no_values = true;
            i += 1;
            continue;
        }
        let value = args.try_get(i + 1).ok_or(crate::reply::SYNTAX)?;
        if args.is(i, "COUNT") {
            match crate::num::parse_i64(value) {
                Some(n) if n >= 1 => o.count = n as usize,
                Some(_) => return Err(crate::reply::SYNTAX),
                None => return Err(crate::reply::NOT_INTEGER),
            }
        } else if args.is(i, "MATCH") {
            o.pattern = Some(value).filter(|p| *p != b"*");
        } else {
            return Err(crate::reply::SYNTAX);
        }
        i += 2;
    }
    Ok(o)
}

/// One page of a hash table walked in hash order, for HSCAN, SSCAN and ZSCAN
/// on tables. Each item comes with its hash; the cursor is the 63-bit hash + 1
/// to resume from (0: start, and end), so an item present for the whole scan
/// is returned whatever the table does meanwhile. Returns at most `count`
/// items (items sharing the boundary's hash go together into the next page)
/// and the next cursor. One O(n) pass per call.
pub(crate) fn hash_order_page<T>(items: impl Iterator<Item = (u64, T)>, cursor: u64, count: usize) -> (Vec<T>, u64) {
    let order = |hash: u64| (hash >> 1) + 1;
    let mut ahead: Vec<(u64, T)> = items.map(|(h, t)| (order(h), t)).filter(|(o, _)| *o >= cursor).collect();
    let next = if ahead.len() > count {
        ahead.select_nth_unstable_by_key(count, |(o, _)| *o);
        let boundary = ahead[count].0;
        ahead.retain(|(o, _)| *o < boundary);
        boundary
    } else {
        0
    };
    (ahead.into_iter().map(|(_, t)| t).collect(), next)
}

/// The error for a command whose keys live on different shards, where it
/// must run on one: the dispatcher's guard, and the handlers that find
/// further keys themselves (BY/GET/STORE of SORT, ZUNIONSTORE's sources).
pub const CROSS_SHARD: &str =
    "CROSSSLOT Keys in request don't hash to the same shard (use a {hash tag} to keep them together)";

/// The error for a subcommand given the wrong number of arguments.
pub fn subcommand_arity_error(container: &str, sub: &[u8]) -> String {
    format!(
        "ERR wrong number of arguments for '{container}|{}' command",
        String::from_utf8_lossy(sub).to_ascii_lowercase()
    )
}

/// The error for a known subcommand whose arguments its handler refuses
/// (Redis's addReplySubcommandSyntaxError), as PUBSUB CHANNELS with two
/// patterns.
pub fn subcommand_syntax_error(container: &str, sub: &[u8]) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        printable(sub, 128),
        container.to_ascii_uppercase()
    )
}

/// The error for an unknown subcommand.
pub fn unknown_subcommand_error(container: &str, sub: &[u8]) -> String {
    format!("ERR unknown subcommand '{}'. Try {} HELP.", printable(sub, 128), container.to_ascii_uppercase())
}

/// Up to `max` bytes of `b` as text, with non-printable bytes replaced.
pub fn printable(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(max)]).chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_order_pages_return_every_item_once() {
        let mut rng = fastrand::Rng::with_seed(3);
        let items: Vec<(u64, u32)> = (0..1000).map(|i| (rng.u64(..), i)).collect();
        let (mut cursor, mut seen) = (0u64, Vec::new());
        loop {
            let (page, next) = hash_order_page(items.iter().copied(), cursor, 37);
            assert!(page.len() <= 37);
            seen.extend(page);
            if next == 0 {
                break;
            }
            assert!(next > cursor, "the cursor only moves forward");
            cursor = next;
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<u32>>());
    }

    #[test]
    fn timeouts_parse_as_redis_reads_them() {
        const NOT_FLOAT: Result<u64, &str> = Err("ERR timeout is not a float or out of range");
        const NEGATIVE: Result<u64, &str> = Err("ERR timeout is negative");
        let cases: &[(&str, Result<u64, &str>)] = &[
            ("0", Ok(0)),
            ("1", Ok(1000)),
            ("0.1", Ok(100)),
            ("0.0005", Ok(0)),
            ("1.9999", Ok(1999)),
            ("0x10", Ok(16_000)),
            ("1e15", Ok(1_000_000_000_000_000_000)),
            ("1e-400", Ok(0)),
            // A small negative value truncates to 0 ms: it waits for ever.
            ("-0.0001", Ok(0)),
            ("-1", NEGATIVE),
            ("inf", NEGATIVE),
            ("-inf", NEGATIVE),
            ("1e16", NEGATIVE),
            ("1e400", NEGATIVE),
            ("9223372036854775807", NEGATIVE),
            ("abc", NOT_FLOAT),
            ("", NOT_FLOAT),
            (" 1", NOT_FLOAT),
            ("1 ", NOT_FLOAT),
            ("nan", NOT_FLOAT),
        ];
        for (text, want) in cases {
            assert_eq!(parse_timeout(text.as_bytes()), *want, "timeout {text:?}");
        }
    }

    #[test]
    fn blocking_commands_wait_on_their_types() {
        let t = CommandTable::get();
        for (name, on, first_only) in [
            ("blpop", BlockOn::List, false),
            ("brpop", BlockOn::List, false),
            ("blmove", BlockOn::List, true),
            ("brpoplpush", BlockOn::List, true),
            ("blmpop", BlockOn::List, false),
            ("bzpopmin", BlockOn::ZSet, false),
            ("bzpopmax", BlockOn::ZSet, false),
            ("bzmpop", BlockOn::ZSet, false),
        ] {
            let spec = t.lookup(name.as_bytes()).unwrap();
            assert!(spec.has(flags::BLOCKING), "{name}");
            let Kind::Blocking(b) = spec.kind else { panic!("{name} is not blocking") };
            assert_eq!((b.on, b.first_key_only), (on, first_only), "{name}");
        }
        let owned = crate::args::OwnedArgs::from_parts(["BLMPOP", "0", "2", "a", "b", "LEFT"]);
        let blmpop = t.lookup(b"blmpop").unwrap();
        assert_eq!(blmpop.keys(&owned.view()).collect::<Vec<_>>(), vec![3, 4]);
        let owned = crate::args::OwnedArgs::from_parts(["BLPOP", "a", "b", "0"]);
        assert_eq!(t.lookup(b"blpop").unwrap().keys(&owned.view()).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn table_names_are_unique_lowercase_and_lookup_ignores_case() {
        let t = CommandTable::get();
        assert_eq!(t.all().len(), t.by_name.len(), "a command is registered twice");
        for c in t.all() {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
        }
        assert_eq!(t.lookup(b"GeT").map(|c| c.name), Some("get"));
        assert!(t.lookup(b"nosuchcommand").is_none());
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let t = CommandTable::get();
        let mset = t.lookup(b"mset").unwrap();
        assert_eq!(mset.key_positions(5).collect::<Vec<_>>(), vec![1, 3]);
        let get = t.lookup(b"get").unwrap();
        assert_eq!(get.key_positions(2).collect::<Vec<_>>(), vec![1]);
        let ping = t.lookup(b"ping").unwrap();
        assert_eq!(ping.key_positions(1).count(), 0);
    }

    #[test]
    fn movable_keys_follow_numkeys() {
        fn nothing(_: &mut Ctx, _: &mut Reply) {}
        let mpop = spec("mpop", -4, flags::WRITE | flags::MOVABLEKEYS, (2, -1, 1), Kind::Keyed(nothing), "t", "0", "");
        let keys = |parts: &[&str]| {
            let owned = crate::args::OwnedArgs::from_parts(parts.iter().map(|p| p.as_bytes()));
            mpop.keys(&owned.view()).collect::<Vec<_>>()
        };
        assert_eq!(keys(&["MPOP", "2", "a", "b", "LEFT", "COUNT", "3"]), vec![2, 3]);
        assert_eq!(keys(&["MPOP", "1", "a", "LEFT"]), vec![2]);
        // As Redis Cluster counts them: numkeys may reach the last argument.
        assert_eq!(keys(&["MPOP", "2", "a", "LEFT"]), vec![2, 3]);
        assert_eq!(keys(&["MPOP", "0", "a", "LEFT"]), Vec::<usize>::new());
        assert_eq!(keys(&["MPOP", "-1", "a", "LEFT"]), Vec::<usize>::new());
        assert_eq!(keys(&["MPOP", "3", "a", "LEFT"]), Vec::<usize>::new());
        assert_eq!(keys(&["MPOP", "x", "a", "LEFT"]), Vec::<usize>::new());
        assert_eq!(keys(&["MPOP", "9223372036854775807", "a", "LEFT"]), Vec::<usize>::new());
        let mv = spec("mv", 3, flags::WRITE, (1, 2, 1), Kind::Keyed(nothing), "t", "0", "");
        let owned = crate::args::OwnedArgs::from_parts(["MV", "a", "b"]);
        assert_eq!(mv.keys(&owned.view()).collect::<Vec<_>>(), vec![1, 2]);
    }
}
