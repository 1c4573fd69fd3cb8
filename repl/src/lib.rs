//! Replication, cluster slots and migration for coreshard (to come: see the
//! project's issues). It builds on `coreshard-net`'s command table and shard
//! loop; nothing in `net` depends on it.
//!
//! ```text
//!   tools ──▶ repl ──▶ net ──▶ engine
//! ```

pub use coreshard_net as net;
