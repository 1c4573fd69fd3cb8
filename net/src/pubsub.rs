//! Pub/Sub: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB.
//!
//! A subscription lives on the shard of the subscribing connection, in that
//! shard's [`Registry`]. PUBLISH runs on every shard as a part: each delivers
//! to its own subscribers and counts them, and the counts are added up, so a
//! subscriber on any shard receives a message published on any other.
//! Messages are pushes (`>` in RESP3, arrays in RESP2).

use crate::batch::Op;
use crate::commands::{check_subcommand, help};
use crate::conn::{Closing, Conn};
use crate::shard::Shard;
use coreshard_engine::cmd::Merge;
use coreshard_engine::glob::glob_match;
use coreshard_engine::{Args, Proto, Reply};
use hashbrown::{HashMap, HashSet};

/// Output a subscriber may have pending before it is disconnected (Redis's
/// `client-output-buffer-limit pubsub` hard limit).
pub const SUBSCRIBER_OUTPUT_BYTES_MAX: usize = 32 * 1024 * 1024;

/// One connection's subscriptions.
#[derive(Default, Debug)]
pub struct Subscriptions {
    /// Channels subscribed to.
    pub channels: HashSet<Vec<u8>>,
    /// Patterns subscribed to.
    pub patterns: HashSet<Vec<u8>>,
}

impl Subscriptions {
    /// Channels and patterns together, as Redis counts them in its replies.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// This shard's subscribers: connection slots by channel and by pattern.
#[derive(Default)]
pub struct Registry {
    channels: HashMap<Vec<u8>, Vec<u32>>,
    patterns: HashMap<Vec<u8>, Vec<u32>>,
}

impl Registry {
    fn map(&mut self, pattern: bool) -> &mut HashMap<Vec<u8>, Vec<u32>> {
        if pattern { &mut self.patterns } else { &mut self.channels }
    }

    fn add(&mut self, pattern: bool, name: &[u8], conn: u32) {
        self.map(pattern).entry(name.to_vec()).or_default().push(conn);
    }

    fn remove(&mut self, pattern: bool, name: &[u8], conn: u32) {
        let map = self.map(pattern);
        if let Some(conns) = map.get_mut(name) {
            conns.retain(|&c| c != conn);
            if conns.is_empty() {
                map.remove(name);
            }
        }
    }

    /// The receivers of a message on `channel`: (connection, matching pattern if by pattern).
    fn receivers(&self, channel: &[u8]) -> Vec<(u32, Option<Vec<u8>>)> {
        let mut out: Vec<(u32, Option<Vec<u8>>)> = Vec::new();
        if let Some(conns) = self.channels.get(channel) {
            out.extend(conns.iter().map(|&c| (c, None)));
        }
        for (pattern, conns) in &self.patterns {
            if glob_match(pattern, channel, false) {
                out.extend(conns.iter().map(|&c| (c, Some(pattern.clone()))));
            }
        }
        out
    }
}

/// SUBSCRIBE channel [channel ...] and PSUBSCRIBE pattern [pattern ...]
pub(crate) fn subscribe(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args, pattern: bool) {
    let kind: &[u8] = if pattern { b"psubscribe" } else { b"subscribe" };
    for name in args.iter_from(1) {
        let subs = conn.subs.get_or_insert_with(Box::default);
        let set = if pattern { &mut subs.patterns } else { &mut subs.channels };
        if set.insert(name.to_vec()) {
            shard.pubsub.add(pattern, name, idx);
        }
        let count = subs.count() as i64;
        let mut r = conn.reply();
        r.push(3);
        r.bulk(kind);
        r.bulk(name);
        r.int(count);
    }
}

/// UNSUBSCRIBE [channel ...] and PUNSUBSCRIBE [pattern ...]: with no names, all of them.
pub(crate) fn unsubscribe(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args, pattern: bool) {
    let kind: &[u8] = if pattern { b"punsubscribe" } else { b"unsubscribe" };
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args.iter_from(1).map(<[u8]>::to_vec).collect()
    } else {
        let subs = conn.subs.as_deref();
        let set = subs.map(|s| if pattern { &s.patterns } else { &s.channels });
        set.map(|s| s.iter().cloned().collect()).unwrap_or_default()
    };
    if names.is_empty() {
        let count = conn.subs.as_ref().map_or(0, |s| s.count()) as i64;
        let mut r = conn.reply();
        r.push(3);
        r.bulk(kind);
        r.null();
        r.int(count);
        return;
    }
    for name in names {
        let mut count = 0;
        if let Some(subs) = conn.subs.as_mut() {
            let set = if pattern { &mut subs.patterns } else { &mut subs.channels };
            if set.remove(&name) {
                shard.pubsub.remove(pattern, &name, idx);
            }
            count = subs.count() as i64;
        }
        let mut r = conn.reply();
        r.push(3);
        r.bulk(kind);
        r.bulk(&name);
        r.int(count);
    }
    if conn.subs.as_ref().is_some_and(|s| s.count() == 0) {
        conn.subs = None;
    }
}

/// Forgets every subscription of connection `idx` (it closed, or RESET).
pub(crate) fn drop_all(shard: &mut Shard, idx: u32, subs: Option<Box<Subscriptions>>) {
    let Some(subs) = subs else { return };
    for ch in &subs.channels {
        shard.pubsub.remove(false, ch, idx);
    }
    for p in &subs.patterns {
        shard.pubsub.remove(true, p, idx);
    }
}

/// PUBLISH channel message
pub(crate) fn publish(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args) {
    shard.run_on_all(idx, conn, args, Op::Publish, Merge::Sum);
}

fn write_message(r: &mut Reply, pattern: Option<&[u8]>, channel: &[u8], message: &[u8]) {
    match pattern {
        Some(p) => {
            r.push(4);
            r.bulk(b"pmessage");
            r.bulk(p);
        }
        None => {
            r.push(3);
            r.bulk(b"message");
        }
    }
    r.bulk(channel);
    r.bulk(message);
}

/// Delivers a message to this shard's subscribers of `channel`; returns how
/// many received it. `caller` is the executing connection (taken out of the
/// slot table while it runs), which may itself be subscribed in RESP3.
pub(crate) fn deliver_local(
    shard: &mut Shard,
    caller: Option<(u32, &mut Conn)>,
    channel: &[u8],
    message: &[u8],
) -> i64 {
    let receivers = shard.pubsub.receivers(channel);
    let (caller_idx, mut caller_conn) = match caller {
        Some((i, c)) => (Some(i), Some(c)),
        None => (None, None),
    };
    for (idx, pattern) in &receivers {
        if Some(*idx) == caller_idx {
            if let Some(c) = caller_conn.as_deref_mut() {
                let proto = c.proto;
                write_message(&mut Reply::new(&mut c.out, proto), pattern.as_deref(), channel, message);
            }
            continue;
        }
        let Some(c) = shard.conns[*idx as usize].as_mut() else { continue };
        let proto = c.proto;
        write_message(&mut Reply::new(&mut c.out, proto), pattern.as_deref(), channel, message);
        if c.output_pending() > SUBSCRIBER_OUTPUT_BYTES_MAX {
            tracing::warn!(client = c.id, addr = %c.addr, "closing subscriber over the pubsub output limit");
            c.closing = Closing::Now;
            shard.begin_close(*idx);
        } else {
            shard.send_output(*idx);
        }
    }
    receivers.len() as i64
}

const PUBSUB_SUBCOMMANDS: &[(&str, i32)] =
    &[("CHANNELS", -2), ("NUMSUB", -2), ("NUMPAT", 2), ("SHARDCHANNELS", -2), ("SHARDNUMSUB", -2), ("HELP", 2)];

const PUBSUB_HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
];

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT
pub(crate) fn pubsub(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args) {
    if !check_subcommand(conn, "pubsub", PUBSUB_SUBCOMMANDS, &args) {
        return;
    }
    match args.get(1).to_ascii_uppercase().as_slice() {
        b"CHANNELS" if args.len() <= 3 => shard.run_on_all(idx, conn, args, Op::PubsubChannels, Merge::ConcatUnique),
        b"NUMSUB" => shard.run_on_all(idx, conn, args, Op::PubsubNumsub, Merge::PairsSum),
        b"NUMPAT" => shard.run_on_all(idx, conn, args, Op::PubsubPatterns, Merge::CountUnique),
        // Sharded channels are not supported: no shard channel has subscribers.
        b"SHARDCHANNELS" if args.len() <= 3 => conn.reply().array(0),
        b"SHARDNUMSUB" => {
            let mut r = conn.reply();
            r.array((args.len() - 2) * 2);
            for ch in args.iter_from(2) {
                r.bulk(ch);
                r.int(0);
            }
        }
        b"HELP" => help(conn, "PUBSUB", PUBSUB_HELP),
        // CHANNELS and SHARDCHANNELS with more than one pattern.
        _ => conn.reply().error(&coreshard_engine::cmd::subcommand_syntax_error("pubsub", args.get(1))),
    }
}

/// The part of a PUBSUB subcommand on this shard, as reply items.
pub(crate) fn pubsub_part(shard: &Shard, op: Op, args: Args, out: &mut coreshard_engine::cmd::Items) {
    let reg = &shard.pubsub;
    match op {
        Op::PubsubChannels => {
            let pattern = args.try_get(2);
            for ch in reg.channels.keys() {
                if pattern.is_none_or(|p| glob_match(p, ch, false)) {
                    out.item(|r| r.bulk(ch));
                }
            }
        }
        Op::PubsubNumsub => {
            for ch in args.iter_from(2) {
                let n = reg.channels.get(ch).map_or(0, |c| c.len()) as i64;
                out.item(|r| r.bulk(ch));
                out.item(|r| r.int(n));
            }
        }
        Op::PubsubPatterns => {
            for p in reg.patterns.keys() {
                out.item(|r| r.bulk(p));
            }
        }
        _ => debug_assert!(false, "not a PUBSUB part"),
    }
}

/// The reply to PING from a RESP2 connection in subscribed mode.
pub(crate) fn subscribed_ping(conn: &mut Conn, args: &Args) {
    let mut r = conn.reply();
    r.array(2);
    r.bulk(b"pong");
    r.bulk(args.try_get(1).unwrap_or(b""));
}

/// True when the connection is in RESP2 subscribed mode, where only the
/// Pub/Sub commands, PING, QUIT and RESET may run.
pub(crate) fn restricted(conn: &Conn) -> bool {
    conn.proto == Proto::Resp2 && conn.subs.as_ref().is_some_and(|s| s.count() > 0)
}
