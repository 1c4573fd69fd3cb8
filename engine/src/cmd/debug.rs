//! DEBUG: the subcommands that compare datasets (DIGEST, DIGEST-VALUE) and
//! HELP. The rest of Redis's DEBUG (crashes, reloads, sleeps, ...) is not
//! offered and answers Redis's error for an unknown subcommand.
//!
//! DEBUG runs on every shard ([`Kind::AllShards`]): each part reports the
//! digest of the keys its shard owns, and [`Merge::Digest`] adds the parts up
//! position by position. A key lives on exactly one shard, so the sum is the
//! same for any shard count. Like KEYS, one call walks every key of the
//! shard; it is meant for tests and for comparing nodes, not for a busy
//! production path.

use super::flags::*;
use super::{CommandSpec, Ctx, Items, Kind, Merge, spec};
use crate::args::Args;
use crate::digest::{Digest, key_digest, value_digest};

const NONE: (i32, i32, i32) = (0, 0, 0);

/// DEBUG HELP's lines after its header (Redis's wording for what we offer).
const HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "HELP",
    "    Prints this help.",
];

/// DEBUG DIGEST | DIGEST-VALUE key [key ...] | HELP: refuses anything else
/// with Redis 7.0's error, which names the subcommand whether it is unknown
/// or given the wrong number of arguments.
fn debug_check(args: &Args) -> Result<(), String> {
    let n = args.len();
    let known = (args.is(1, "DIGEST") && n == 2) || args.is(1, "DIGEST-VALUE") || (args.is(1, "HELP") && n == 2);
    if known { Ok(()) } else { Err(super::subcommand_syntax_error("debug", args.get(1))) }
}

/// DEBUG on one shard. DIGEST: one item, the sum of the key digests of every
/// live key this shard holds, in every database. DIGEST-VALUE: the array
/// header, then one digest per key (zeros for a key this shard does not
/// own, or that is missing or expired). HELP: the help, once per shard.
fn debug_part(ctx: &mut Ctx, items: &mut Items) {
    let now = ctx.now;
    if ctx.args.is(1, "DIGEST") {
        let mut sum = Digest::ZERO;
        for i in 0..ctx.ks.databases() {
            let db = ctx.ks.db_ref(i);
            if db.is_empty() {
                continue;
            }
            for slot in db.owned().iter() {
                db.for_each_in_slot(slot, |e| {
                    if !e.is_expired(now) {
                        sum = sum.combine(key_digest(i, e.key(), value_digest(e.value(), e.expire_at())));
                    }
                });
            }
        }
        return items.item(|r| r.simple(&sum.hex()));
    }
    if ctx.args.is(1, "DIGEST-VALUE") {
        let keys = ctx.args.len() - 2;
        items.item(|r| r.array(keys));
        let db = ctx.ks.db_ref(ctx.db);
        for i in 2..ctx.args.len() {
            let key = ctx.args.get(i);
            let owned = db.owned().contains(crate::slot::key_slot(key) as usize);
            let found = if owned { db.peek(key, now) } else { None };
            let d = found.map_or(Digest::ZERO, |e| value_digest(e.value(), e.expire_at()));
            items.item(|r| r.simple(&d.hex()));
        }
        return;
    }
    items.item(|r| r.array(HELP.len()));
    for line in HELP {
        items.item(|r| r.simple(line));
    }
}

/// The DEBUG registration.
pub static COMMANDS: &[CommandSpec] = &[spec(
    "debug",
    -2,
    ADMIN | NOSCRIPT | LOADING | STALE,
    NONE,
    Kind::AllShards { check: debug_check, part: debug_part, merge: Merge::Digest },
    "server",
    "1.0.0",
    "A container for debugging commands.",
)];
