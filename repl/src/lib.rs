//! Cluster slots and migration for coreshard (to come: see the project's
//! issues). It builds on `coreshard-net`'s command table and shard loop;
//! nothing in `net` depends on it. Replication's data path (flows, the
//! snapshot stream, acks) runs inside the shard loop and lives in
//! `coreshard_net::repl`; docs/decisions/0003-replication.md says why.
//!
//! ```text
//!   tools ──▶ repl ──▶ net ──▶ engine
//! ```

pub use coreshard_net as net;
