//! The RESP protocol and the thread-per-core server: listeners, connections,
//! and the dispatch of commands to the shard that owns their keys.
//!
//! ```text
//!            SO_REUSEPORT: the kernel spreads connections over the shards' listeners
//!                 │                        │                        │
//!          ┌──────▼──────┐          ┌──────▼──────┐          ┌──────▼──────┐
//!          │  shard 0    │  rtrb    │  shard 1    │  rtrb    │  shard 2    │
//!          │  pinned     │◀────────▶│  pinned     │◀────────▶│  pinned     │   one SPSC ring per
//!          │  io_uring   │ batches  │  io_uring   │ batches  │  io_uring   │   ordered pair of shards;
//!          │  conns      │+MSG_RING │  conns      │+MSG_RING │  conns      │   MSG_RING wakes the peer
//!          │  Keyspace   │          │  Keyspace   │          │  Keyspace   │
//!          └─────────────┘          └─────────────┘          └─────────────┘
//!                 ▲  control (crossbeam-channel + eventfd): CONFIG SET, shutdown
//!                 └── main thread: signals, systemd notifications
//! ```
//!
//! A connection lives on the shard that accepted it. Each of its commands
//! runs inline when the key belongs to that shard, or travels in that turn's
//! batch to the owner and back; replies leave in request order.

pub mod batch;
pub mod blocking;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod conn;
pub mod info;
pub(crate) mod multi;
pub mod pubsub;
pub mod recvbuf;
pub mod repl;
pub mod resp;
pub mod runtime;
pub mod server;
pub mod shard;
pub mod shared;
pub(crate) mod tx;

pub use config::Config;
pub use server::{Hooks, ServerHandle, Stopper, shard_count, start, start_with};
