//! The data plane of one coreshard shard: its keyspace, the value types,
//! expiry and the execution of commands. Nothing here knows about sockets or
//! threads; the network layer calls in with a parsed command and a buffer for
//! the reply.
//!
//! ```text
//!   net (one shard thread)                 engine (same thread, no awaits)
//!   ─────────────────────                  ───────────────────────────────
//!   parsed command ──lookup──▶ CommandSpec ──Kind::Keyed(handler)──▶ handler(Ctx, Reply)
//!                                                       │
//!                             Ctx { ks: &mut Keyspace ──┴─▶ Db (SELECT index)
//!                                   db, now, args }          └▶ one table per owned slot
//!                                                                 └▶ Entry: one block of
//!                                                                    header, [TTL], key, value
//! ```
//!
//! Commands whose keys span shards are split by the network layer into
//! per-shard parts ([`cmd::Kind::MultiKey`], [`cmd::Kind::AllShards`]) whose
//! results are merged as [`cmd::Merge`] says.

pub mod args;
pub mod cmd;
pub mod db;
pub mod digest;
pub mod dump;
pub mod entry;
pub mod glob;
pub mod hash;
pub mod journal;
pub mod keyspace;
pub mod list;
pub mod memory;
pub mod num;
pub mod reply;
pub mod set;
pub mod slot;
pub mod snapshot;
pub mod value;
pub mod zset;

pub use args::{Args, OwnedArgs, Span};
pub use cmd::{CommandSpec, CommandTable, ConnCmd, Ctx, Kind, Merge};
pub use db::{Db, ExpiryMode, UnixMs};
pub use keyspace::Keyspace;
pub use reply::{Proto, Reply};

/// Milliseconds since the Unix epoch, from the system clock.
pub fn unix_ms() -> UnixMs {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as UnixMs).unwrap_or(0)
}
