//! State every shard can read: published counters, identities, wake-up
//! handles. Each shard writes only its own counters (relaxed stores at the end
//! of a loop turn, before its replies are submitted), so readers see values at
//! least as new as any reply they could have received, without locks.

use crate::config::Config;
use crossbeam_channel::Sender;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// One shard's published counters.
#[derive(Default)]
#[repr(align(128))]
pub struct ShardStats {
    /// Open client connections.
    pub connected_clients: AtomicU64,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections refused because maxclients was reached.
    pub rejected_connections: AtomicU64,
    /// Commands executed since start (parts of cross-shard commands excluded).
    pub total_commands: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
    /// Successful key lookups.
    pub keyspace_hits: AtomicU64,
    /// Failed key lookups.
    pub keyspace_misses: AtomicU64,
    /// Keys removed by expiry.
    pub expired_keys: AtomicU64,
    /// Writes since start.
    pub dirty: AtomicU64,
    /// Commands answered with an error.
    pub errors: AtomicU64,
    /// Keys per database.
    pub keys: Vec<AtomicU64>,
    /// Keys with a TTL per database.
    pub expires: Vec<AtomicU64>,
    /// Bytes this shard's thread allocated minus bytes it freed. Signed:
    /// memory allocated on one shard is sometimes freed on another, so one
    /// shard's figure can be negative; only the sum over shards is meaningful.
    pub used_memory: std::sync::atomic::AtomicI64,
    /// Bytes the journal holds past the backlog for flows that still have
    /// to send them: in `used_memory`, but not counted for maxmemory
    /// (Redis's `mem_not_counted_for_evict`).
    pub mem_not_counted_for_evict: AtomicU64,
    /// Keys evicted for maxmemory.
    pub evicted_keys: AtomicU64,
    /// Commands per second over the last housekeeping tick.
    pub ops_per_sec: AtomicU64,
    /// Largest output a client had pending, over the last housekeeping tick.
    pub recent_max_output: AtomicU64,
    /// Largest input a client held unexecuted, over the last housekeeping tick.
    pub recent_max_input: AtomicU64,
    /// Clients blocked on this shard's keys (BLPOP ...).
    pub blocked_clients: AtomicU64,
    /// Of those, the ones with a timeout.
    pub clients_in_timeout_table: AtomicU64,
}

impl ShardStats {
    /// Counters for a shard with `databases` databases.
    pub fn new(databases: usize) -> Self {
        ShardStats {
            keys: (0..databases).map(|_| AtomicU64::new(0)).collect(),
            expires: (0..databases).map(|_| AtomicU64::new(0)).collect(),
            ..Default::default()
        }
    }
}

/// A control message to a shard (rare, not on the data path).
#[derive(Debug, Clone)]
pub enum Control {
    /// CONFIG SET was applied on one shard; apply the same pairs here.
    ConfigSet(Vec<(String, String)>),
    /// A replica's connection moves here from the shard that accepted it:
    /// run its PSYNC (`args`) for this shard's flow.
    Adopt {
        /// The socket, now this shard's.
        fd: i32,
        /// Its CLIENT ID.
        id: u64,
        /// Peer address.
        addr: String,
        /// Local address.
        laddr: String,
        /// REPLCONF listening-port it gave.
        replica_port: u16,
        /// The PSYNC command.
        args: Vec<Vec<u8>>,
        /// Bytes it sent after the PSYNC, not yet run.
        input: Vec<u8>,
    },
    /// The link thread connected a flow from primary shard `primary_shard`:
    /// apply its stream here.
    /// The migration link connected a flow of a slot migration from the
    /// source's shard `source_shard`: apply its stream here.
    AdoptMigration {
        /// The socket, past its PSYNC reply line.
        fd: i32,
        /// The source's address.
        addr: String,
        /// Which source shard, as the slots it owns (its index and the
        /// source's shard count).
        source: coreshard_engine::slot::ShardSlots,
        /// The snapshot's journal position (the filtered stream counts from it).
        lsn: u64,
        /// The migration's slots (end exclusive); the flow carries those of
        /// them that `source` owns.
        range: std::ops::Range<usize>,
        /// The migration it belongs to.
        id: u64,
    },
    AdoptMaster {
        /// The socket, past its PSYNC reply line.
        fd: i32,
        /// The primary's address.
        addr: String,
        /// Which primary shard.
        primary_shard: usize,
        /// How many shards the primary has.
        primary_shards: usize,
        /// The link it belongs to.
        epoch: u64,
        /// A snapshot comes first.
        full: bool,
        /// The journal position the stream continues from (or the snapshot's end).
        lsn: u64,
    },
    /// A primary's stream on connection `idx` (CLIENT ID `id`) waited for a
    /// transaction that is now applied: run it again.
    ResumeStream {
        /// The connection's slot.
        idx: u32,
        /// Its id (the slot may have been reused).
        id: u64,
    },
    /// This replica diverged from its primary: close every connection of
    /// the link (each flow then syncs in full).
    CloseMasterLinks,
    /// The reply of a CLUSTER command that waited off the shard
    /// (CORESHARD-PROPOSE) for connection `idx`.
    ClusterReply {
        /// The connection's slot.
        idx: u32,
        /// Its id (the slot may have been reused).
        id: u64,
        /// The whole reply, RESP.
        bytes: Vec<u8>,
        /// The routing the command put in force (already published).
        routing: Option<Box<crate::cluster::Routing>>,
    },
    /// The replication link changed (REPLICAOF): drop connections of links
    /// before `epoch`.
    DropReplication {
        /// The current link.
        epoch: u64,
        /// REPLICAOF NO ONE: the shard's mirror of the old primary's
        /// journal becomes its own journal.
        promoted: bool,
    },
}

/// Server-wide shared state.
pub struct Shared {
    /// Per-shard counters.
    pub stats: Vec<ShardStats>,
    /// The next client id (CLIENT ID).
    pub next_client_id: AtomicU64,
    /// Unix seconds at start.
    pub start_unix: u64,
    /// A random 40-hex-digit id of this run (INFO run_id).
    pub run_id: String,
    /// Set once shutdown begins.
    pub shutdown: AtomicBool,
    /// Shards whose clients are all closed during shutdown.
    pub shards_drained: AtomicUsize,
    /// Shards that have bound their listeners.
    pub shards_listening: AtomicUsize,
    /// Each shard's ring fd, for IORING_OP_MSG_RING wake-ups (-1 until set).
    pub ring_fds: Vec<AtomicI32>,
    /// Each shard's eventfd, for wake-ups from threads without a ring.
    pub event_fds: Vec<AtomicI32>,
    /// Control channels to each shard.
    pub control: Vec<Sender<Control>>,
    /// The configuration as last set (the master copy CONFIG SET updates;
    /// each shard also keeps its own copy for its hot path).
    pub config: Mutex<Config>,
    /// Highest used memory seen (sampled on the shards' ticks).
    pub peak_memory: AtomicU64,
    /// The TCP port actually bound.
    pub port: AtomicU64,
    /// Path of the config file, when one was given.
    pub config_file: Option<String>,
    /// The executable path (INFO executable).
    pub executable: String,
    /// Replication state.
    pub repl: crate::repl::Repl,
    /// Cluster mode's state (None outside cluster mode).
    pub cluster: Option<std::sync::Arc<crate::cluster::Cluster>>,
    /// Slot migration's node-wide state (cluster mode).
    pub migration: crate::repl::migrate::Migration,
}

impl Shared {
    /// Wakes shard `shard` from a thread that has no ring (eventfd write).
    pub fn wake(&self, shard: usize) {
        let fd = self.event_fds[shard].load(Relaxed);
        if fd >= 0 {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd this process owns.
            let _ = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
        }
    }

    /// Wakes every shard.
    pub fn wake_all(&self) {
        (0..self.stats.len()).for_each(|s| self.wake(s));
    }

    /// Sum of one counter over all shards.
    pub fn sum(&self, f: impl Fn(&ShardStats) -> &AtomicU64) -> u64 {
        self.stats.iter().map(|s| f(s).load(Relaxed)).sum()
    }
}
