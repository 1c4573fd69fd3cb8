//! coreshard's configuration: one typed [`Config`], read from text in `redis.conf`
//! syntax, changed at run time by `CONFIG SET` and shown by `CONFIG GET`.
//!
//! Setting names, value syntax, limits and error texts follow Redis 7
//! (`src/config.c`, `redis.conf`):
//!
//! - Lines are split the way `sdssplitargs` splits them; `#` starts a comment only at
//!   the start of a line; directive names are case-insensitive.
//! - Booleans are `yes`/`no` in any case; `CONFIG GET` prints `yes`/`no`.
//! - Memory values take Redis's `memtoull` units (`b`, `k`=1000, `kb`=1024, `m`, `mb`,
//!   `g`, `gb`, any case); `CONFIG GET` prints the plain byte count.
//! - Integers are parsed as strictly as Redis's `string2ll` (no `+`, no leading zeros,
//!   no blanks) and checked against Redis's limits with Redis's wording.
//! - Redis directives that mean nothing to coreshard (persistence, encodings, ...) are
//!   listed in one table, [`IGNORED`]. Their values are validated as Redis would, kept
//!   as text so `CONFIG GET` shows them, and setting one yields a warning for the caller
//!   to log.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Redis's `INT_MAX` bound, used by most integer settings.
const INT_MAX: i64 = i32::MAX as i64;
/// Redis's `LONG_MAX` bound (64-bit Linux), used by size settings.
const LONG_MAX: u64 = i64::MAX as u64;
/// The most `bind` addresses Redis accepts (`CONFIG_BINDADDR_MAX`).
pub const MAX_BIND_ADDRESSES: usize = 16;
/// Lowest `hz`; smaller values are raised to it, as Redis does.
pub const MIN_HZ: u32 = 1;
/// Highest `hz`; larger values are lowered to it, as Redis does.
pub const MAX_HZ: u32 = 500;
/// Highest value of coreshard's own `threads` setting.
pub const MAX_THREADS: usize = 1024;
/// How deep `include` directives may nest before loading gives up.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Redis's wording for a directive it does not know.
const BAD_DIRECTIVE: &str = "Bad directive or wrong number of arguments";
/// Smallest `repl-backlog-size`; smaller values are raised to it, as Redis's
/// `CONFIG SET` does (`CONFIG_REPL_BACKLOG_MIN_SIZE`).
pub const REPL_BACKLOG_MIN_BYTES: u64 = 16 * 1024;

// ---------------------------------------------------------------------------
// Enumerated settings
// ---------------------------------------------------------------------------

/// `loglevel`: how much the server logs. Ordered from most to least verbose, so a
/// message at level `m` is logged when `m >= config.loglevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Everything, including per-request detail.
    Debug,
    /// Rarely useful detail.
    Verbose,
    /// Moderately verbose; the default.
    #[default]
    Notice,
    /// Only important messages.
    Warning,
    /// Nothing at all.
    Nothing,
}

impl LogLevel {
    /// The Redis names, in the order Redis lists them in its error text.
    pub const NAMES: [&'static str; 5] = ["debug", "verbose", "notice", "warning", "nothing"];
    const ALL: [LogLevel; 5] =
        [LogLevel::Debug, LogLevel::Verbose, LogLevel::Notice, LogLevel::Warning, LogLevel::Nothing];

    /// The Redis name of this level.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The level named `name` (any case), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        enum_index(&Self::NAMES, name).map(|i| Self::ALL[i])
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `maxmemory-policy`: what happens when `maxmemory` is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MaxmemoryPolicy {
    /// Evict approximately least recently used keys among those with an expire.
    VolatileLru,
    /// Evict approximately least frequently used keys among those with an expire.
    VolatileLfu,
    /// Evict random keys among those with an expire.
    VolatileRandom,
    /// Evict the keys with the nearest expire time.
    VolatileTtl,
    /// Evict approximately least recently used keys.
    AllkeysLru,
    /// Evict approximately least frequently used keys.
    AllkeysLfu,
    /// Evict random keys.
    AllkeysRandom,
    /// Evict nothing; refuse writes that need memory. The default.
    #[default]
    Noeviction,
}

impl MaxmemoryPolicy {
    /// The Redis names, in the order Redis lists them in its error text.
    pub const NAMES: [&'static str; 8] = [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "noeviction",
    ];
    const ALL: [MaxmemoryPolicy; 8] = [
        MaxmemoryPolicy::VolatileLru,
        MaxmemoryPolicy::VolatileLfu,
        MaxmemoryPolicy::VolatileRandom,
        MaxmemoryPolicy::VolatileTtl,
        MaxmemoryPolicy::AllkeysLru,
        MaxmemoryPolicy::AllkeysLfu,
        MaxmemoryPolicy::AllkeysRandom,
        MaxmemoryPolicy::Noeviction,
    ];

    /// The Redis name of this policy.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The policy named `name` (any case), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        enum_index(&Self::NAMES, name).map(|i| Self::ALL[i])
    }

    /// Whether only keys with an expire may be evicted.
    pub fn volatile_only(self) -> bool {
        matches!(self, Self::VolatileLru | Self::VolatileLfu | Self::VolatileRandom | Self::VolatileTtl)
    }

    /// Whether the policy evicts at all.
    pub fn evicts(self) -> bool {
        self != Self::Noeviction
    }
}

impl fmt::Display for MaxmemoryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn enum_index(names: &[&str], value: &str) -> Option<usize> {
    names.iter().position(|n| n.eq_ignore_ascii_case(value))
}

/// One client class's `client-output-buffer-limit`: Redis syntax `<class> <hard>
/// <soft> <soft-seconds>`, the sizes as memory values. A client whose pending output
/// reaches `hard_bytes`, or stays above `soft_bytes` for more than `soft_secs`
/// seconds, is disconnected; a size of 0 means no such limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObufLimit {
    /// The hard limit in bytes; 0 means none.
    pub hard_bytes: u64,
    /// The soft limit in bytes; 0 means none.
    pub soft_bytes: u64,
    /// How many seconds the output may stay above the soft limit.
    pub soft_secs: u64,
}

impl ObufLimit {
    /// No limit at all (`0 0 0`).
    pub const NONE: ObufLimit = ObufLimit { hard_bytes: 0, soft_bytes: 0, soft_secs: 0 };
}

// ---------------------------------------------------------------------------
// The configuration
// ---------------------------------------------------------------------------

/// The server's configuration: one field per setting. The doc of each field names the
/// setting as `CONFIG GET`/`CONFIG SET` and the configuration file know it, and gives
/// its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `bind` (immutable): addresses to listen on, default `127.0.0.1`. Redis syntax: a
    /// space-separated list; an address written with a leading `-` is optional (failing
    /// to bind it is not fatal): it is stored here without the `-`, with `true` at the
    /// same index of [`Config::bind_optional`]. A single empty argument gives an empty
    /// list, as in Redis.
    pub bind: Vec<String>,
    /// Parallel to [`Config::bind`]: whether each address was given with a `-` prefix.
    pub bind_optional: Vec<bool>,
    /// `port` (immutable): TCP port, default 6379; 0 means no TCP listener.
    pub port: u16,
    /// `unixsocket` (immutable): path of a Unix socket to listen on; `None` (shown as
    /// `""`) by default.
    pub unixsocket: Option<String>,
    /// `unixsocketperm` (immutable): the socket's permission bits, octal, default 0
    /// (leave them to the umask).
    pub unixsocketperm: u32,
    /// `tcp-backlog` (immutable): `listen(2)` backlog, default 511.
    pub tcp_backlog: u32,
    /// `timeout`: close a client idle this many seconds; 0 (default) never.
    pub timeout: u64,
    /// `tcp-keepalive`: TCP keepalive period in seconds, default 300; 0 disables it.
    pub tcp_keepalive: u64,
    /// `protected-mode`: default yes. Accepted and stored.
    pub protected_mode: bool,
    /// `disable-thp` (immutable): default yes, as in Redis: at startup the process
    /// asks the kernel for no transparent huge pages, whatever the system's THP
    /// mode. The allocator marks its arenas for huge pages, so a growing heap
    /// would otherwise take 2 MiB page faults, each stalling the shard that
    /// touches it for milliseconds.
    pub disable_thp: bool,
    /// `threads` (immutable, coreshard's own): shards to run; 0 (default) means one per
    /// CPU in the process's affinity mask.
    pub threads: usize,
    /// `requirepass`: the default user's password; `None` (shown as `""`) by default.
    /// Setting it to `""` removes it.
    pub requirepass: Option<String>,
    /// `databases` (immutable): number of logical databases, default 16.
    pub databases: usize,
    /// `maxclients`: most simultaneous clients, default 10000.
    pub maxclients: u64,
    /// `proto-max-bulk-len`: largest bulk string a request may carry, default 512mb,
    /// at least 1mb.
    pub proto_max_bulk_len: u64,
    /// `client-query-buffer-limit`: largest query buffer of one client, default 1gb,
    /// at least 1mb.
    pub client_query_buffer_limit: u64,
    /// `shutdown-timeout`: seconds to wait on shutdown, default 10.
    pub shutdown_timeout: u64,
    /// `hz`: background task frequency, default 10; values outside 1..=500 are
    /// clamped into it, as Redis does.
    pub hz: u32,
    /// `loglevel`: default `notice`.
    pub loglevel: LogLevel,
    /// `logfile` (immutable, as in Redis): log file path; `""` (default) is stdout.
    pub logfile: String,
    /// `pidfile` (immutable, as in Redis): where to write the pid; `""` (default) none.
    pub pidfile: String,
    /// `dir`: working directory, default `./`. Stored only: coreshard does not
    /// `chdir`, and `CONFIG GET dir` shows the stored text, not the absolute path.
    pub dir: String,
    /// `maxmemory`: memory limit in bytes; 0 (default) means none.
    pub maxmemory: u64,
    /// `maxmemory-policy`: default `noeviction`.
    pub maxmemory_policy: MaxmemoryPolicy,
    /// `maxmemory-samples`: keys sampled per eviction, default 5.
    pub maxmemory_samples: u32,
    /// `replicaof` (alias `slaveof`; immutable, as in Redis): the master to replicate
    /// from, as (host, port); `None` (shown as `""`) by default. Redis syntax:
    /// `replicaof <host> <port>`, or `replicaof no one` (any case) for none; a file or
    /// command line may also give both in one argument (`--replicaof "host 6379"`).
    /// `CONFIG GET` shows `host port`. `CONFIG SET` refuses it with `can't set
    /// immutable config`, as Redis 7 does (there only the `REPLICAOF` command changes
    /// it at run time). Errors: `wrong number of arguments`, `Invalid master port`.
    /// The port is read as C's `strtol` reads it (leading blanks and a sign are
    /// allowed), within 0..=65535; unlike Redis, an empty port (which Redis takes as
    /// 0) and one beyond 32 bits (which Redis wraps) are refused.
    pub replicaof: Option<(String, u16)>,
    /// `masterauth`: the password a replica sends to its master (`AUTH`); `None`
    /// (shown as `""`) by default. Setting it to `""` removes it. Like Redis 7,
    /// `CONFIG GET` shows the value.
    pub masterauth: Option<String>,
    /// `masteruser`: the user name a replica authenticates as, with `masterauth`
    /// (`AUTH <masteruser> <masterauth>`); `None` (shown as `""`) by default, meaning
    /// the old one-argument `AUTH`.
    pub masteruser: Option<String>,
    /// `replica-read-only` (alias `slave-read-only`): a replica refuses writes from
    /// its clients; default yes.
    pub replica_read_only: bool,
    /// `replica-serve-stale-data` (alias `slave-serve-stale-data`): a replica whose
    /// link to its master is down, or that is still syncing, keeps answering with the
    /// data it has; `no` makes it answer most commands with a `-MASTERDOWN` error
    /// instead. Default yes.
    pub replica_serve_stale_data: bool,
    /// `repl-backlog-size`: bytes of the master's replication stream kept for partial
    /// resynchronisation, default 1mb, a memory value at least 1 and at most
    /// 9223372036854775807. Values below [`REPL_BACKLOG_MIN_BYTES`] (16kb) are raised
    /// to it. (Redis raises them on `CONFIG SET` only and keeps a smaller value read
    /// from a file; coreshard raises them everywhere, so the field is always usable.)
    pub repl_backlog_size: u64,
    /// `repl-backlog-ttl`: seconds a master without replicas keeps its backlog before
    /// freeing it, default 3600; 0 means never free it.
    pub repl_backlog_ttl: u64,
    /// `repl-timeout`: seconds without data or ping after which a replication link is
    /// taken as broken, on either side, default 60, at least 1.
    pub repl_timeout: u64,
    /// `repl-ping-replica-period` (alias `repl-ping-slave-period`): seconds between
    /// the pings a master sends its replicas, default 10, at least 1.
    pub repl_ping_replica_period: u64,
    /// `min-replicas-to-write` (alias `min-slaves-to-write`): a master refuses writes
    /// unless at least this many replicas lag no more than `min-replicas-max-lag`
    /// seconds; 0 (default) turns the check off.
    pub min_replicas_to_write: u32,
    /// `min-replicas-max-lag` (alias `min-slaves-max-lag`): the largest lag, in
    /// seconds since a replica's last acknowledgement, for it to count towards
    /// `min-replicas-to-write`; default 10; 0 turns the check off.
    pub min_replicas_max_lag: u64,
    /// `replica-announce-ip` (alias `slave-announce-ip`): the address a replica tells
    /// its master to show for it; `None` (shown as `""`, the connection's address) by
    /// default.
    pub replica_announce_ip: Option<String>,
    /// `replica-announce-port` (alias `slave-announce-port`): the port a replica tells
    /// its master to show for it; 0 (default) means its own `port`.
    pub replica_announce_port: u16,
    /// `client-output-buffer-limit`, replica class (written `replica` or `slave`,
    /// shown as `slave`): the output limits of a master's connection to a replica,
    /// default `256mb 64mb 60`.
    pub obuf_replica: ObufLimit,
    /// `client-output-buffer-limit`, normal class, default `0 0 0`: accepted, checked
    /// and shown by `CONFIG GET`, but coreshard does not apply it; setting it warns.
    pub obuf_normal: ObufLimit,
    /// `client-output-buffer-limit`, pubsub class, default `32mb 8mb 60`: accepted,
    /// checked and shown by `CONFIG GET`, but coreshard bounds a subscriber's output
    /// by [`crate::pubsub::SUBSCRIBER_OUTPUT_BYTES_MAX`] instead; setting it warns.
    pub obuf_pubsub: ObufLimit,
    /// `debug-multi-shard-atomic` (test-only, default yes): `no` runs
    /// commands over several shards without their transaction, so that tests
    /// can show that they catch a non-atomic server.
    pub debug_multi_shard_atomic: bool,
    /// `debug-shard-hop-delay-us` (test-only, default 0): each batch from
    /// another shard waits this long before it runs, widening the window in
    /// which a non-atomic multi-shard command would show half done.
    pub debug_shard_hop_delay_us: u64,
    /// `debug-replica-tx-atomic` (test-only, default yes): `no` makes a
    /// replica apply each primary shard's share of a multi-shard
    /// transaction as it ends, without waiting for the others, so that
    /// tests can show that they catch a replica that applies them apart.
    pub debug_replica_tx_atomic: bool,
    /// `debug-repl-flow-delay-ms` (test-only, default 0): a primary's odd
    /// shards hold each batch of their journal this long before sending it,
    /// so a replica gets one shard's share of a transaction well before
    /// another's.
    pub debug_repl_flow_delay_ms: u64,
    /// `debug-migration-cleanup-keys-per-turn` (test-only, default 256):
    /// how many keys of the slots this node gave away a shard deletes per
    /// loop turn after a switch; 0 holds the deletion where it is (it goes
    /// on once set back), so that tests can move slots back to a node
    /// whose deletion of them has not finished.
    pub debug_migration_cleanup_keys_per_turn: u64,
    /// `debug-control-log-compact-entries` (test-only, default 0: the
    /// control log's own threshold, 1024): a control log voter snapshots
    /// its log once this many applied entries are past its first index, so
    /// that tests can make a real cluster compact after a few changes.
    /// Read when the control thread starts.
    pub debug_control_log_compact_entries: u64,
    /// `cluster-migration-bytes-per-sec` (default 0: unlimited): the most a
    /// slot migration sends per second from this node (snapshot and journal,
    /// all its flows together), so that moving slots leaves room for clients.
    pub cluster_migration_bytes_per_sec: u64,
    /// `cluster-enabled` (immutable): run as a node of a Redis Cluster
    /// compatible cluster (slots served by other nodes answer `-MOVED`);
    /// default no.
    pub cluster_enabled: bool,
    /// `cluster-config-file` (immutable): where a cluster node keeps its
    /// node id and the cluster configuration, relative to the working
    /// directory; default `nodes.conf`. Written by the server, never by hand.
    pub cluster_config_file: String,
    /// `cluster-announce-ip`: the address other nodes and clients are told
    /// to use for this node; `None` (shown as `""`, the first `bind`
    /// address) by default.
    pub cluster_announce_ip: Option<String>,
    /// `cluster-announce-port`: the port announced for this node; 0
    /// (default) means its own `port`.
    pub cluster_announce_port: u16,
    /// `cluster-port`: where the control log's voters talk to each other
    /// (docs/decisions/0006-control-log.md); 0 (the default) means the
    /// client port + 10000, Redis's cluster bus convention.
    pub cluster_port: u16,
    /// `cluster-require-full-coverage` (immutable here, read at start): with
    /// yes (default), the cluster is down (`cluster_state:fail`,
    /// `-CLUSTERDOWN`) while any slot has no node.
    pub cluster_require_full_coverage: bool,
    /// The Redis directives coreshard accepts but ignores (see [`IGNORED`]), by name.
    pub ignored: IgnoredSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec!["127.0.0.1".to_string()],
            bind_optional: vec![false],
            port: 6379,
            unixsocket: None,
            unixsocketperm: 0,
            tcp_backlog: 511,
            timeout: 0,
            tcp_keepalive: 300,
            protected_mode: true,
            disable_thp: true,
            threads: 0,
            requirepass: None,
            databases: 16,
            maxclients: 10_000,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            shutdown_timeout: 10,
            hz: 10,
            loglevel: LogLevel::Notice,
            logfile: String::new(),
            pidfile: String::new(),
            dir: "./".to_string(),
            maxmemory: 0,
            maxmemory_policy: MaxmemoryPolicy::Noeviction,
            maxmemory_samples: 5,
            replicaof: None,
            masterauth: None,
            masteruser: None,
            replica_read_only: true,
            replica_serve_stale_data: true,
            repl_backlog_size: ONE_MB,
            repl_backlog_ttl: 3600,
            repl_timeout: 60,
            repl_ping_replica_period: 10,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
            replica_announce_ip: None,
            replica_announce_port: 0,
            obuf_replica: ObufLimit { hard_bytes: 256 * ONE_MB, soft_bytes: 64 * ONE_MB, soft_secs: 60 },
            obuf_normal: ObufLimit::NONE,
            obuf_pubsub: ObufLimit { hard_bytes: 32 * ONE_MB, soft_bytes: 8 * ONE_MB, soft_secs: 60 },
            debug_multi_shard_atomic: true,
            debug_shard_hop_delay_us: 0,
            debug_replica_tx_atomic: true,
            debug_repl_flow_delay_ms: 0,
            debug_migration_cleanup_keys_per_turn: crate::repl::migrate::CLEANUP_KEYS_PER_TURN as u64,
            debug_control_log_compact_entries: 0,
            cluster_migration_bytes_per_sec: 0,
            cluster_enabled: false,
            cluster_config_file: "nodes.conf".to_string(),
            cluster_announce_ip: None,
            cluster_announce_port: 0,
            cluster_port: 0,
            cluster_require_full_coverage: true,
            ignored: IgnoredSettings::default(),
        }
    }
}

/// The current values of the accepted-but-ignored Redis directives, as the text
/// `CONFIG GET` shows (normalised the way Redis normalises it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredSettings {
    values: BTreeMap<&'static str, String>,
}

impl Default for IgnoredSettings {
    fn default() -> Self {
        let values = IGNORED
            .iter()
            .filter_map(|spec| match spec.slot {
                Slot::Ignored(default) => Some((spec.name, default.to_string())),
                Slot::Field(_) => None,
            })
            .collect();
        IgnoredSettings { values }
    }
}

impl IgnoredSettings {
    /// The value of the ignored directive `name` (any case, alias or not).
    pub fn get(&self, name: &str) -> Option<&str> {
        let spec = IGNORED.iter().find(|s| s.is_named(name))?;
        self.value(spec.name)
    }

    /// All (canonical name, value) pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }

    fn value(&self, canonical: &str) -> Option<&str> {
        self.values.get(canonical).map(String::as_str)
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why `CONFIG SET` (or [`Config::set`]) refused a setting. [`SetError::redis_text`]
/// gives the exact error line Redis 7 replies with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// No setting has this name (as given).
    UnknownOption {
        /// The name as the caller wrote it.
        name: String,
    },
    /// The setting cannot change while the server runs.
    Immutable {
        /// The name as the caller wrote it.
        name: String,
    },
    /// The same setting appears twice in one `CONFIG SET`.
    Duplicate {
        /// The name of the second occurrence, as the caller wrote it.
        name: String,
    },
    /// The value was refused.
    InvalidValue {
        /// The setting's name in lower case: the alias when the caller used the alias,
        /// as Redis 7 reports it.
        name: String,
        /// Redis's wording, e.g. `argument must be a memory value`.
        reason: String,
    },
}

impl SetError {
    /// The error reply, exactly as Redis words it (including the `ERR ` prefix).
    pub fn redis_text(&self) -> String {
        format!("ERR {self}")
    }

    /// The setting name the error is about.
    pub fn name(&self) -> &str {
        match self {
            SetError::UnknownOption { name }
            | SetError::Immutable { name }
            | SetError::Duplicate { name }
            | SetError::InvalidValue { name, .. } => name,
        }
    }

    fn invalid(name: &str, reason: impl Into<String>) -> Self {
        SetError::InvalidValue { name: name.to_string(), reason: reason.into() }
    }

    /// The message for the configuration file, where Redis gives no `CONFIG SET`
    /// framing, only the reason.
    fn file_message(&self) -> String {
        match self {
            SetError::UnknownOption { .. } => BAD_DIRECTIVE.to_string(),
            SetError::Immutable { .. } => "can't set immutable config".to_string(),
            SetError::Duplicate { .. } => "duplicate parameter".to_string(),
            SetError::InvalidValue { reason, .. } => reason.clone(),
        }
    }
}

impl fmt::Display for SetError {
    /// The Redis wording without the `ERR ` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetError::UnknownOption { name } => {
                write!(f, "Unknown option or number of arguments for CONFIG SET - '{name}'")
            }
            SetError::Immutable { name } => {
                write!(f, "CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config")
            }
            SetError::Duplicate { name } => {
                write!(f, "CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter")
            }
            SetError::InvalidValue { name, reason } => {
                write!(f, "CONFIG SET failed (possibly related to argument '{name}') - {reason}")
            }
        }
    }
}

impl std::error::Error for SetError {}

/// A configuration file (or text) that could not be applied. Nothing of it was
/// applied: [`Config::apply_file_text`] and [`Config::load_file`] are all-or-nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or other origin) the bad line is in.
    pub origin: String,
    /// The 1-based line number, when the error is about a line.
    pub line: Option<usize>,
    /// The offending line, trimmed, when the error is about a line.
    pub text: Option<String>,
    /// What is wrong, in Redis's wording where Redis has one.
    pub message: String,
}

impl ConfigError {
    fn at(origin: &str, line: usize, text: &str, message: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.to_string(),
            line: Some(line),
            text: Some(text.to_string()),
            message: message.into(),
        }
    }

    fn whole(origin: &str, message: impl Into<String>) -> Self {
        ConfigError { origin: origin.to_string(), line: None, text: None, message: message.into() }
    }

    /// The error in the multi-line shape Redis prints before exiting.
    pub fn redis_text(&self) -> String {
        let version = env!("CARGO_PKG_VERSION");
        let location = match (self.line, &self.text) {
            (Some(line), Some(text)) => format!(", at line {line}\n>>> '{text}'"),
            _ => String::new(),
        };
        format!(
            "*** FATAL CONFIG FILE ERROR (coreshard {version}) ***\n\
             Reading the configuration file {}{location}\n{}",
            self.origin, self.message
        )
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, &self.text) {
            (Some(line), Some(text)) => write!(f, "{}: line {line}: '{text}': {}", self.origin, self.message),
            _ => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------
// The settings tables
// ---------------------------------------------------------------------------

/// How a setting's arguments are parsed and checked.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `yes` / `no`.
    Bool,
    /// `yes` / `no`, where `yes` is refused with the given reason.
    BoolOnlyNo(&'static str),
    /// A `string2ll` integer within the bounds.
    Int { min: i64, max: i64 },
    /// A `memtoull` memory value within the bounds.
    Mem { min: u64, max: u64 },
    /// An octal number within 0..=max.
    Octal { max: u32 },
    /// One of the names, any case.
    Enum(&'static [&'static str]),
    /// Any text.
    Str,
    /// Any non-empty text (`dir`).
    NonEmpty,
    /// A file name without a directory part; `what` names it in the error.
    FileName { what: &'static str, allow_empty: bool },
    /// `bind`: a list of addresses (multi-argument).
    Bind,
    /// `save`: seconds/changes pairs (multi-argument).
    Save,
    /// `notify-keyspace-events` class letters.
    KeyspaceEvents,
    /// `client-output-buffer-limit`: class hard soft seconds ... (multi-argument).
    ObufLimit,
    /// `oom-score-adj-values`: three integers (multi-argument).
    OomValues,
    /// `replicaof`: `<host> <port>` or `no one` (multi-argument).
    ReplicaOf,
}

impl Kind {
    /// Whether the setting takes any number of arguments (Redis's `MULTI_ARG_CONFIG`;
    /// `CONFIG SET` splits its value on spaces for these).
    fn multi_arg(self) -> bool {
        matches!(self, Kind::Bind | Kind::Save | Kind::ObufLimit | Kind::OomValues | Kind::ReplicaOf)
    }
}

/// The typed fields of [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Bind,
    Port,
    UnixSocket,
    UnixSocketPerm,
    TcpBacklog,
    Timeout,
    TcpKeepalive,
    ProtectedMode,
    DisableThp,
    Threads,
    RequirePass,
    Databases,
    MaxClients,
    ProtoMaxBulkLen,
    ClientQueryBufferLimit,
    ShutdownTimeout,
    Hz,
    LogLevel,
    LogFile,
    PidFile,
    Dir,
    MaxMemory,
    MaxMemoryPolicy,
    MaxMemorySamples,
    ReplicaOf,
    MasterAuth,
    MasterUser,
    ReplicaReadOnly,
    ReplicaServeStaleData,
    ReplBacklogSize,
    ReplBacklogTtl,
    ReplTimeout,
    ReplPingReplicaPeriod,
    MinReplicasToWrite,
    MinReplicasMaxLag,
    ReplicaAnnounceIp,
    ReplicaAnnouncePort,
    ClientOutputBufferLimit,
    DebugMultiShardAtomic,
    DebugShardHopDelayUs,
    DebugReplicaTxAtomic,
    DebugReplFlowDelayMs,
    DebugMigrationCleanupKeysPerTurn,
    DebugControlLogCompactEntries,
    ClusterMigrationBytesPerSec,
    ClusterEnabled,
    ClusterConfigFile,
    ClusterAnnounceIp,
    ClusterAnnouncePort,
    ClusterPort,
    ClusterRequireFullCoverage,
}

/// Where a setting's value lives.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// In a typed field of [`Config`].
    Field(Field),
    /// In [`Config::ignored`]; the text is the default, as `CONFIG GET` shows it.
    Ignored(&'static str),
}

/// One setting: its Redis name, optional alias, value syntax, mutability and home.
#[derive(Debug)]
pub struct Spec {
    name: &'static str,
    alias: Option<&'static str>,
    kind: Kind,
    immutable: bool,
    slot: Slot,
}

impl Spec {
    fn is_named(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name) || self.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
    }

    /// Which of the setting's names `name` is (any case): the alias or the canonical
    /// name. Redis keeps an alias as a setting entry of its own, so its errors name the
    /// alias when the alias was used.
    fn name_as_used(&self, name: &str) -> &'static str {
        match self.alias {
            Some(alias) if alias.eq_ignore_ascii_case(name) => alias,
            _ => self.name,
        }
    }

    /// The setting's canonical Redis name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The setting's alternative (older) Redis name, if any.
    pub fn alias_name(&self) -> Option<&'static str> {
        self.alias
    }

    /// Whether `CONFIG SET` refuses to change it.
    pub fn is_immutable(&self) -> bool {
        self.immutable
    }
}

const fn setting(name: &'static str, field: Field, kind: Kind) -> Spec {
    Spec { name, alias: None, kind, immutable: false, slot: Slot::Field(field) }
}

const fn ignored(name: &'static str, kind: Kind, default: &'static str) -> Spec {
    Spec { name, alias: None, kind, immutable: false, slot: Slot::Ignored(default) }
}

impl Spec {
    const fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }

    const fn alias(mut self, alias: &'static str) -> Self {
        self.alias = Some(alias);
        self
    }
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

const fn mem(min: u64, max: u64) -> Kind {
    Kind::Mem { min, max }
}

const BOOL: Kind = Kind::Bool;
const ONE_MB: u64 = 1024 * 1024;
const INT_NONNEG: Kind = int(0, INT_MAX);
const LONG_NONNEG: Kind = int(0, i64::MAX);
const MEM_LONG: Kind = mem(0, LONG_MAX);

/// The settings coreshard implements, each backed by a field of [`Config`].
const SETTINGS: &[Spec] = &[
    setting("bind", Field::Bind, Kind::Bind).immutable(),
    setting("port", Field::Port, int(0, 65535)).immutable(),
    setting("unixsocket", Field::UnixSocket, Kind::Str).immutable(),
    setting("unixsocketperm", Field::UnixSocketPerm, Kind::Octal { max: 0o777 }).immutable(),
    setting("tcp-backlog", Field::TcpBacklog, INT_NONNEG).immutable(),
    setting("timeout", Field::Timeout, INT_NONNEG),
    setting("tcp-keepalive", Field::TcpKeepalive, INT_NONNEG),
    setting("protected-mode", Field::ProtectedMode, BOOL),
    setting("disable-thp", Field::DisableThp, BOOL).immutable(),
    setting("threads", Field::Threads, int(0, MAX_THREADS as i64)).immutable(),
    setting("requirepass", Field::RequirePass, Kind::Str),
    setting("databases", Field::Databases, int(1, INT_MAX)).immutable(),
    setting("maxclients", Field::MaxClients, int(1, u32::MAX as i64)),
    setting("proto-max-bulk-len", Field::ProtoMaxBulkLen, mem(ONE_MB, LONG_MAX)),
    setting("client-query-buffer-limit", Field::ClientQueryBufferLimit, mem(ONE_MB, LONG_MAX)),
    setting("shutdown-timeout", Field::ShutdownTimeout, INT_NONNEG),
    setting("hz", Field::Hz, INT_NONNEG),
    setting("loglevel", Field::LogLevel, Kind::Enum(&LogLevel::NAMES)),
    setting("logfile", Field::LogFile, Kind::Str).immutable(),
    setting("pidfile", Field::PidFile, Kind::Str).immutable(),
    setting("dir", Field::Dir, Kind::NonEmpty),
    setting("maxmemory", Field::MaxMemory, mem(0, u64::MAX)),
    setting("maxmemory-policy", Field::MaxMemoryPolicy, Kind::Enum(&MaxmemoryPolicy::NAMES)),
    setting("maxmemory-samples", Field::MaxMemorySamples, int(1, INT_MAX)),
    setting("client-output-buffer-limit", Field::ClientOutputBufferLimit, Kind::ObufLimit),
    // Replication.
    setting("replicaof", Field::ReplicaOf, Kind::ReplicaOf).alias("slaveof").immutable(),
    setting("masterauth", Field::MasterAuth, Kind::Str),
    setting("masteruser", Field::MasterUser, Kind::Str),
    setting("replica-read-only", Field::ReplicaReadOnly, BOOL).alias("slave-read-only"),
    setting("replica-serve-stale-data", Field::ReplicaServeStaleData, BOOL).alias("slave-serve-stale-data"),
    setting("repl-backlog-size", Field::ReplBacklogSize, mem(1, LONG_MAX)),
    setting("repl-backlog-ttl", Field::ReplBacklogTtl, LONG_NONNEG),
    setting("repl-timeout", Field::ReplTimeout, int(1, INT_MAX)),
    setting("repl-ping-replica-period", Field::ReplPingReplicaPeriod, int(1, INT_MAX)).alias("repl-ping-slave-period"),
    setting("min-replicas-to-write", Field::MinReplicasToWrite, INT_NONNEG).alias("min-slaves-to-write"),
    setting("min-replicas-max-lag", Field::MinReplicasMaxLag, INT_NONNEG).alias("min-slaves-max-lag"),
    setting("replica-announce-ip", Field::ReplicaAnnounceIp, Kind::Str).alias("slave-announce-ip"),
    setting("replica-announce-port", Field::ReplicaAnnouncePort, int(0, 65535)).alias("slave-announce-port"),
    setting("debug-multi-shard-atomic", Field::DebugMultiShardAtomic, BOOL),
    setting("debug-shard-hop-delay-us", Field::DebugShardHopDelayUs, int(0, 1_000_000)),
    setting("debug-replica-tx-atomic", Field::DebugReplicaTxAtomic, BOOL),
    setting("debug-repl-flow-delay-ms", Field::DebugReplFlowDelayMs, int(0, 60_000)),
    setting("debug-migration-cleanup-keys-per-turn", Field::DebugMigrationCleanupKeysPerTurn, int(0, 1 << 20)),
    setting("debug-control-log-compact-entries", Field::DebugControlLogCompactEntries, int(0, 1 << 40)).immutable(),
    setting("cluster-migration-bytes-per-sec", Field::ClusterMigrationBytesPerSec, int(0, i64::MAX)),
    // Cluster mode.
    setting("cluster-enabled", Field::ClusterEnabled, BOOL).immutable(),
    setting("cluster-config-file", Field::ClusterConfigFile, Kind::NonEmpty).immutable(),
    setting("cluster-announce-ip", Field::ClusterAnnounceIp, Kind::Str),
    setting("cluster-announce-port", Field::ClusterAnnouncePort, int(0, 65535)),
    setting("cluster-port", Field::ClusterPort, int(0, 65535)).immutable(),
    setting("cluster-require-full-coverage", Field::ClusterRequireFullCoverage, BOOL).immutable(),
];

const APPENDFSYNC: Kind = Kind::Enum(&["everysec", "always", "no"]);
const DEBUG_COMMAND: Kind = Kind::Enum(&["no", "yes", "local"]);
const SUPERVISED: Kind = Kind::Enum(&["upstart", "systemd", "auto", "no"]);
const OOM_SCORE_ADJ: Kind = Kind::Enum(&["no", "yes", "relative", "absolute"]);
const REPL_DISKLESS_LOAD: Kind = Kind::Enum(&["disabled", "on-empty-db", "swapdb"]);
const SYSLOG_FACILITY: Kind =
    Kind::Enum(&["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]);
const AOF_FILE: Kind = Kind::FileName { what: "appendfilename", allow_empty: false };
const AOF_DIR: Kind = Kind::FileName { what: "appenddirname", allow_empty: false };
const RDB_FILE: Kind = Kind::FileName { what: "dbfilename", allow_empty: true };
const DAEMONIZE: Kind = Kind::BoolOnlyNo("coreshard does not daemonize; run it under systemd");

/// The Redis directives coreshard accepts and ignores: value syntax, limits, defaults
/// (as `CONFIG GET` prints them) and mutability are Redis 7's, so a file written for
/// Redis loads and `CONFIG GET` answers as Redis would. Setting any of them returns a
/// warning.
pub const IGNORED: &[Spec] = &[
    // Persistence.
    ignored("save", Kind::Save, "3600 1 300 100 60 10000"),
    ignored("appendonly", BOOL, "no"),
    ignored("appendfsync", APPENDFSYNC, "everysec"),
    ignored("appendfilename", AOF_FILE, "appendonly.aof").immutable(),
    ignored("appenddirname", AOF_DIR, "appendonlydir").immutable(),
    ignored("dbfilename", RDB_FILE, "dump.rdb"),
    ignored("rdbcompression", BOOL, "yes"),
    ignored("rdbchecksum", BOOL, "yes").immutable(),
    ignored("rdb-del-sync-files", BOOL, "no"),
    ignored("stop-writes-on-bgsave-error", BOOL, "yes"),
    ignored("no-appendfsync-on-rewrite", BOOL, "no"),
    ignored("auto-aof-rewrite-percentage", INT_NONNEG, "100"),
    ignored("auto-aof-rewrite-min-size", MEM_LONG, "67108864"),
    ignored("aof-load-truncated", BOOL, "yes"),
    ignored("aof-use-rdb-preamble", BOOL, "yes"),
    ignored("aof-timestamp-enabled", BOOL, "no"),
    ignored("aof-rewrite-incremental-fsync", BOOL, "yes"),
    ignored("rdb-save-incremental-fsync", BOOL, "yes"),
    // Process management.
    ignored("daemonize", DAEMONIZE, "no").immutable(),
    ignored("supervised", SUPERVISED, "no").immutable(),
    ignored("always-show-logo", BOOL, "no").immutable(),
    ignored("set-proc-title", BOOL, "yes").immutable(),
    ignored("proc-title-template", Kind::Str, "{title} {listen-addr} {server-mode}"),
    ignored("syslog-enabled", BOOL, "no").immutable(),
    ignored("syslog-ident", Kind::Str, "redis").immutable(),
    ignored("syslog-facility", SYSLOG_FACILITY, "local0").immutable(),
    ignored("oom-score-adj", OOM_SCORE_ADJ, "no"),
    ignored("oom-score-adj-values", Kind::OomValues, "0 200 800"),
    ignored("jemalloc-bg-thread", BOOL, "yes"),
    ignored("crash-log-enabled", BOOL, "yes"),
    ignored("crash-memcheck-enabled", BOOL, "yes"),
    // Threads and background work.
    ignored("io-threads", int(1, 128), "1").immutable(),
    ignored("io-threads-do-reads", BOOL, "no").immutable(),
    ignored("lazyfree-lazy-eviction", BOOL, "no"),
    ignored("lazyfree-lazy-expire", BOOL, "no"),
    ignored("lazyfree-lazy-server-del", BOOL, "no"),
    ignored("lazyfree-lazy-user-del", BOOL, "no"),
    ignored("lazyfree-lazy-user-flush", BOOL, "no"),
    ignored("activerehashing", BOOL, "yes"),
    ignored("activedefrag", BOOL, "no"),
    ignored("dynamic-hz", BOOL, "yes"),
    ignored("active-expire-effort", int(1, 10), "1"),
    // Replication.
    ignored("replica-lazy-flush", BOOL, "no").alias("slave-lazy-flush"),
    // Only Sentinel reads a replica's priority.
    ignored("replica-priority", INT_NONNEG, "100").alias("slave-priority"),
    ignored("repl-disable-tcp-nodelay", BOOL, "no"),
    // coreshard's full sync is always diskless, on both sides.
    ignored("repl-diskless-sync", BOOL, "yes"),
    ignored("repl-diskless-sync-delay", INT_NONNEG, "5"),
    ignored("repl-diskless-sync-max-replicas", INT_NONNEG, "0"),
    ignored("repl-diskless-load", REPL_DISKLESS_LOAD, "disabled"),
    // Monitoring.
    ignored("latency-monitor-threshold", LONG_NONNEG, "0"),
    ignored("latency-tracking", BOOL, "yes"),
    ignored("slowlog-log-slower-than", int(-1, i64::MAX), "10000"),
    ignored("slowlog-max-len", LONG_NONNEG, "128"),
    ignored("acllog-max-len", LONG_NONNEG, "128"),
    ignored("notify-keyspace-events", Kind::KeyspaceEvents, ""),
    // Encodings.
    ignored("hash-max-listpack-entries", LONG_NONNEG, "512").alias("hash-max-ziplist-entries"),
    ignored("hash-max-listpack-value", MEM_LONG, "64").alias("hash-max-ziplist-value"),
    ignored("list-max-listpack-size", int(i32::MIN as i64, INT_MAX), "-2").alias("list-max-ziplist-size"),
    ignored("list-compress-depth", INT_NONNEG, "0"),
    ignored("set-max-intset-entries", LONG_NONNEG, "512"),
    ignored("zset-max-listpack-entries", LONG_NONNEG, "128").alias("zset-max-ziplist-entries"),
    ignored("zset-max-listpack-value", MEM_LONG, "64").alias("zset-max-ziplist-value"),
    ignored("hll-sparse-max-bytes", MEM_LONG, "3000"),
    ignored("stream-node-max-bytes", MEM_LONG, "4096"),
    ignored("stream-node-max-entries", LONG_NONNEG, "100"),
    // Eviction tuning.
    ignored("lfu-log-factor", INT_NONNEG, "10"),
    ignored("lfu-decay-time", INT_NONNEG, "1"),
    ignored("maxmemory-eviction-tenacity", int(0, 100), "10"),
    // Cluster mode: coreshard has no cluster bus and no failure detection
    // yet (docs/decisions/0004-cluster.md).
    ignored("cluster-announce-bus-port", int(0, 65535), "0"),
    ignored("cluster-node-timeout", LONG_NONNEG, "15000"),
    ignored("cluster-replica-validity-factor", INT_NONNEG, "10").alias("cluster-slave-validity-factor"),
    ignored("cluster-migration-barrier", INT_NONNEG, "1"),
    ignored("cluster-allow-replica-migration", BOOL, "yes"),
    ignored("cluster-replica-no-failover", BOOL, "no").alias("cluster-slave-no-failover"),
    ignored("cluster-allow-reads-when-down", BOOL, "no"),
    // Security. coreshard's DEBUG has only read-only subcommands (DIGEST,
    // DIGEST-VALUE, HELP), so it is always allowed.
    ignored("enable-debug-command", DEBUG_COMMAND, "no").immutable(),
];

/// Directives Redis 7 still reads from a file (with exactly one argument) but no
/// longer knows otherwise; accepted from files with a warning.
const DEPRECATED_FILE_ONLY: &[&str] = &["list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands"];

fn specs() -> impl Iterator<Item = &'static Spec> {
    SETTINGS.iter().chain(IGNORED.iter())
}

fn lookup(name: &str) -> Option<&'static Spec> {
    specs().find(|s| s.is_named(name))
}

// ---------------------------------------------------------------------------
// Value parsing
// ---------------------------------------------------------------------------

/// A parsed, checked value, before it is stored.
enum Parsed {
    Bool(bool),
    Num(i128),
    Enum(usize),
    Str(String),
    Bind(Vec<(String, bool)>),
    Save(Vec<(i64, i64)>),
    Obuf(Vec<(usize, ObufLimit)>),
    ReplicaOf(Option<(String, u16)>),
}

/// `client-output-buffer-limit` classes, in the order `CONFIG GET` prints them.
const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];
/// The index of each class in [`OBUF_CLASSES`].
const OBUF_NORMAL: usize = 0;
const OBUF_REPLICA: usize = 1;
const OBUF_PUBSUB: usize = 2;

/// Parses an integer the way Redis's `string2ll` does: optional `-`, no `+`, no
/// leading zeros (except `0` itself), no blanks, within `i64`.
fn parse_strict_i64(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let bytes = digits.as_bytes();
    if !matches!(bytes.first(), Some(b'1'..=b'9')) || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude: u64 = digits.parse().ok()?;
    if negative { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() }
}

/// Parses a memory value the way Redis's `memtoull` does: digits followed by an
/// optional unit (`b`, `k`, `kb`, `m`, `mb`, `g`, `gb`, any case). As in Redis, no
/// digits count as 0. Unlike Redis, a value that overflows 64 bits is refused rather
/// than wrapped.
pub fn parse_memory(s: &str) -> Option<u64> {
    let split = s.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let number: u64 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    number.checked_mul(multiplier)
}

fn parse_yes_no(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

fn range_error(min: impl fmt::Display, max: impl fmt::Display) -> String {
    format!("argument must be between {min} and {max} inclusive")
}

/// Checks `args` against `kind`; the error is Redis's wording.
fn parse_value(kind: Kind, args: &[&str]) -> Result<Parsed, String> {
    if !kind.multi_arg() && args.len() != 1 {
        return Err("wrong number of arguments".to_string());
    }
    let first = args.first().copied().unwrap_or("");
    match kind {
        Kind::Bool => parse_yes_no(first).map(Parsed::Bool).ok_or_else(|| "argument must be 'yes' or 'no'".to_string()),
        Kind::BoolOnlyNo(refusal) => match parse_yes_no(first) {
            Some(false) => Ok(Parsed::Bool(false)),
            Some(true) => Err(refusal.to_string()),
            None => Err("argument must be 'yes' or 'no'".to_string()),
        },
        Kind::Int { min, max } => {
            let v = parse_strict_i64(first).ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
            if v < min || v > max {
                return Err(range_error(min, max));
            }
            Ok(Parsed::Num(i128::from(v)))
        }
        Kind::Mem { min, max } => {
            let v = parse_memory(first).ok_or_else(|| "argument must be a memory value".to_string())?;
            if v < min || v > max {
                return Err(range_error(min, max));
            }
            Ok(Parsed::Num(i128::from(v)))
        }
        Kind::Octal { max } => {
            let v = i64::from_str_radix(first, 8)
                .map_err(|_| "argument couldn't be parsed as an octal number".to_string())?;
            if v < 0 || v > i64::from(max) {
                return Err(format!("argument must be between {:o} and {:o} inclusive", 0, max));
            }
            Ok(Parsed::Num(i128::from(v)))
        }
        Kind::Enum(names) => enum_index(names, first)
            .map(Parsed::Enum)
            .ok_or_else(|| format!("argument(s) must be one of the following: {}", names.join(", "))),
        Kind::Str => Ok(Parsed::Str(first.to_string())),
        Kind::NonEmpty => {
            if first.is_empty() {
                Err("No such file or directory".to_string())
            } else {
                Ok(Parsed::Str(first.to_string()))
            }
        }
        Kind::FileName { what, allow_empty } => {
            if first.is_empty() && !allow_empty {
                Err(format!("{what} can't be empty"))
            } else if first.contains('/') {
                if what == "appenddirname" {
                    Err(format!("{what} can't be a path, just a dirname"))
                } else {
                    Err(format!("{what} can't be a path, just a filename"))
                }
            } else {
                Ok(Parsed::Str(first.to_string()))
            }
        }
        Kind::Bind => parse_bind(args),
        Kind::Save => parse_save(args),
        Kind::KeyspaceEvents => parse_keyspace_events(first).map(Parsed::Str),
        Kind::ObufLimit => parse_obuf_limits(args),
        Kind::OomValues => parse_oom_values(args),
        Kind::ReplicaOf => parse_replicaof(args),
    }
}

/// Redis reads the single argument of a multi-argument setting in a file or on the
/// command line (`--save "900 1"`, `replicaof "host 6379"`) as a line of its own,
/// split as `sdssplitargs` splits it. An empty argument stays one argument (`save
/// ""`); one that does not split (unbalanced quotes) becomes no arguments, as in
/// Redis. Returns `None` when `args` are to be used as they are.
fn split_lone_arg(kind: Kind, args: &[&str]) -> Option<Vec<String>> {
    match args {
        [lone] if kind.multi_arg() && !lone.is_empty() => Some(split_args(lone).unwrap_or_default()),
        _ => None,
    }
}

fn parse_bind(args: &[&str]) -> Result<Parsed, String> {
    if args.len() > MAX_BIND_ADDRESSES {
        return Err("Too many bind addresses specified.".to_string());
    }
    // A single empty argument means no address at all.
    let args = if args.len() == 1 && args[0].is_empty() { &[][..] } else { args };
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        match arg.strip_prefix('-') {
            Some(addr) => out.push((addr.to_string(), true)),
            None => out.push((arg.to_string(), false)),
        }
    }
    Ok(Parsed::Bind(out))
}

fn parse_save(args: &[&str]) -> Result<Parsed, String> {
    const INVALID: &str = "Invalid save parameters";
    // A single empty argument means "no save points".
    let args = if args.len() == 1 && args[0].is_empty() { &[][..] } else { args };
    if args.len() % 2 != 0 {
        return Err(INVALID.to_string());
    }
    let mut points = Vec::with_capacity(args.len() / 2);
    for pair in args.chunks_exact(2) {
        let seconds: i64 = pair[0].parse().map_err(|_| INVALID.to_string())?;
        let changes: i64 = pair[1].parse().map_err(|_| INVALID.to_string())?;
        if seconds < 1 || changes < 0 {
            return Err(INVALID.to_string());
        }
        points.push((seconds, changes));
    }
    Ok(Parsed::Save(points))
}

fn format_save(points: &[(i64, i64)]) -> String {
    points.iter().map(|(s, c)| format!("{s} {c}")).collect::<Vec<_>>().join(" ")
}

/// Parses `notify-keyspace-events` classes and prints them back the way Redis does.
fn parse_keyspace_events(s: &str) -> Result<String, String> {
    // Class letters in Redis's output order; `A` is the first ten.
    const CLASSES: &[u8] = b"g$lshzxetd";
    const ALL: u32 = (1 << 10) - 1;
    const NEW: u32 = 1 << 10;
    const KEYSPACE: u32 = 1 << 11;
    const KEYEVENT: u32 = 1 << 12;
    const MISS: u32 = 1 << 13;
    let mut flags = 0u32;
    for c in s.bytes() {
        flags |= match c {
            b'A' => ALL,
            b'n' => NEW,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b'm' => MISS,
            _ => match CLASSES.iter().position(|&x| x == c) {
                Some(bit) => 1 << bit,
                None => return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
            },
        };
    }
    let mut out = String::new();
    if flags & ALL == ALL {
        // Redis prints `A` alone here, dropping `n`; so do we.
        out.push('A');
    } else {
        for (bit, &c) in CLASSES.iter().enumerate() {
            if flags & (1 << bit) != 0 {
                out.push(char::from(c));
            }
        }
        if flags & NEW != 0 {
            out.push('n');
        }
    }
    if flags & KEYSPACE != 0 {
        out.push('K');
    }
    if flags & KEYEVENT != 0 {
        out.push('E');
    }
    if flags & MISS != 0 {
        out.push('m');
    }
    Ok(out)
}

fn parse_obuf_limits(args: &[&str]) -> Result<Parsed, String> {
    if args.len() % 4 != 0 {
        return Err("Wrong number of arguments in buffer limit configuration.".to_string());
    }
    let mut out = Vec::with_capacity(args.len() / 4);
    for group in args.chunks_exact(4) {
        let class = group[0];
        let index =
            if class.eq_ignore_ascii_case("replica") { Some(OBUF_REPLICA) } else { enum_index(&OBUF_CLASSES, class) };
        let Some(index) = index else {
            return Err("Invalid client class specified in buffer limit configuration.".to_string());
        };
        let hard = parse_memory(group[1]);
        let soft = parse_memory(group[2]);
        let seconds = group[3].parse::<i64>().ok().and_then(|s| u64::try_from(s).ok());
        match (hard, soft, seconds) {
            (Some(hard_bytes), Some(soft_bytes), Some(soft_secs)) => {
                out.push((index, ObufLimit { hard_bytes, soft_bytes, soft_secs }));
            }
            _ => {
                return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string());
            }
        }
    }
    Ok(Parsed::Obuf(out))
}

/// `replicaof <host> <port>` or `replicaof no one`, checked as Redis checks it.
fn parse_replicaof(args: &[&str]) -> Result<Parsed, String> {
    let [host, port] = args else {
        return Err("wrong number of arguments".to_string());
    };
    if host.eq_ignore_ascii_case("no") && port.eq_ignore_ascii_case("one") {
        return Ok(Parsed::ReplicaOf(None));
    }
    let port = parse_master_port(port).ok_or_else(|| "Invalid master port".to_string())?;
    Ok(Parsed::ReplicaOf(Some((host.to_string(), port))))
}

/// A port as C's `strtol` reads it (leading blanks, an optional sign, then decimal
/// digits to the end), within 0..=65535. Unlike Redis, which keeps `strtol`'s result
/// in an `int`, no digits at all (Redis: port 0) and values beyond 32 bits (Redis:
/// wrapped, so `4294967297` is port 1) are refused.
fn parse_master_port(s: &str) -> Option<u16> {
    let s = s.trim_start_matches(|c: char| u8::try_from(c).is_ok_and(is_c_space));
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let value: u16 = digits.parse().ok()?;
    // `-0` is 0; any other negative port is out of range.
    if negative && value != 0 { None } else { Some(value) }
}

fn parse_oom_values(args: &[&str]) -> Result<Parsed, String> {
    if args.len() != 3 {
        return Err("wrong number of arguments".to_string());
    }
    let mut values = Vec::with_capacity(3);
    for arg in args {
        match arg.parse::<i64>() {
            Ok(v) if (-2000..=2000).contains(&v) => values.push(v.to_string()),
            _ => {
                return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".to_string());
            }
        }
    }
    Ok(Parsed::Str(values.join(" ")))
}

/// Converts a checked number to the field's type. The bounds in [`SETTINGS`] keep
/// every value representable; the error is only a guard.
fn to_field<T: TryFrom<i128>>(name: &str, v: i128) -> Result<T, SetError> {
    T::try_from(v).map_err(|_| SetError::invalid(name, "argument is out of range"))
}

// ---------------------------------------------------------------------------
// Setting and getting
// ---------------------------------------------------------------------------

impl Config {
    /// Parses redis.conf syntax text: one directive per line, `name arg...`, `#`
    /// comments (at the start of a line), blank lines; arguments split the way Redis's
    /// `sdssplitargs` does (double quotes with `\n \r \t \b \a \\ \" \xHH` escapes,
    /// single quotes with `\'`; unbalanced quotes are an error). Directive names are
    /// case-insensitive. `include path` is followed (relative to the current working
    /// directory, as Redis does; a `*`, `?` or `[` in the file name part makes it a
    /// pattern, which may match nothing), and include loops are refused. `origin`
    /// names the text in errors and warnings, and is taken as its path for loop
    /// detection when it names a file.
    ///
    /// Returns the warnings for accepted-but-ignored directives.
    ///
    /// # Errors
    ///
    /// The first bad line (unknown directive, bad value, unbalanced quotes, include
    /// that cannot be read or loops), with its origin and number. On error nothing is
    /// applied.
    pub fn apply_file_text(&mut self, text: &str, origin: &str) -> Result<Vec<String>, ConfigError> {
        let mut loader = Loader::new(self.clone());
        if let Ok(path) = std::fs::canonicalize(origin) {
            loader.stack.push(path);
        }
        loader.text(text, origin)?;
        *self = loader.config;
        Ok(loader.warnings)
    }

    /// Reads the file at `path` and applies it as [`Config::apply_file_text`] does.
    /// Comment lines need not be UTF-8; other lines must be.
    ///
    /// # Errors
    ///
    /// As [`Config::apply_file_text`], and when the file cannot be read.
    pub fn load_file(&mut self, path: &Path) -> Result<Vec<String>, ConfigError> {
        let mut loader = Loader::new(self.clone());
        loader.file(path)?;
        *self = loader.config;
        Ok(loader.warnings)
    }

    /// Sets one setting from its Redis name (any case, aliases too) and argument
    /// strings; multi-argument settings (`save 900 1`, `bind a b`) take several, or
    /// all in one argument (`"900 1"`), split as a configuration line is, as Redis
    /// does for its command line. `runtime` true means `CONFIG SET`: immutable
    /// settings are refused. Returns a warning when the setting is accepted but
    /// ignored by coreshard.
    ///
    /// # Errors
    ///
    /// Unknown name, immutable setting at run time, wrong number of arguments or bad
    /// value; nothing is changed then.
    pub fn set(&mut self, name: &str, args: &[&str], runtime: bool) -> Result<Option<String>, SetError> {
        let Some(spec) = lookup(name) else {
            return Err(SetError::UnknownOption { name: name.to_string() });
        };
        if runtime && spec.immutable {
            return Err(SetError::Immutable { name: name.to_string() });
        }
        let split = split_lone_arg(spec.kind, args);
        let split_refs: Vec<&str> = split.iter().flatten().map(String::as_str).collect();
        self.apply(spec, name, if split.is_some() { &split_refs } else { args }, false)
    }

    /// `CONFIG SET name value [name value ...]`, all or nothing, as Redis 7 does it:
    /// first every name is checked (unknown, immutable, given twice), then every value
    /// is applied in order to a copy, which replaces `self` only if all succeed. As in
    /// Redis, an alias and its canonical name are not the same name: given both, the
    /// later value wins. The value of a multi-argument setting (`save`, `bind`, ...) is
    /// split on single spaces, as Redis splits it. Returns the warnings for ignored
    /// settings.
    ///
    /// # Errors
    ///
    /// The first problem, in Redis's order (names first, then values); nothing is
    /// changed then.
    pub fn set_many(&mut self, pairs: &[(&str, &str)]) -> Result<Vec<String>, SetError> {
        let mut seen: Vec<(&'static Spec, &'static str)> = Vec::with_capacity(pairs.len());
        for (name, _) in pairs {
            let Some(spec) = lookup(name) else {
                return Err(SetError::UnknownOption { name: name.to_string() });
            };
            if spec.immutable {
                return Err(SetError::Immutable { name: name.to_string() });
            }
            let used = spec.name_as_used(name);
            if seen.iter().any(|(s, u)| std::ptr::eq(*s, spec) && *u == used) {
                return Err(SetError::Duplicate { name: name.to_string() });
            }
            seen.push((spec, used));
        }
        let mut next = self.clone();
        let mut warnings = Vec::new();
        for ((spec, used), (_, value)) in seen.iter().zip(pairs) {
            let args: Vec<&str> = if spec.kind.multi_arg() {
                if value.is_empty() { Vec::new() } else { value.split(' ').collect() }
            } else {
                vec![*value]
            };
            if let Some(w) = next.apply(spec, used, &args, false)? {
                warnings.push(w);
            }
        }
        *self = next;
        Ok(warnings)
    }

    /// `CONFIG GET pattern`: the (name, value) pairs whose name matches the Redis glob
    /// `pattern` (any case), sorted by name, each name once. Aliases are names too, as
    /// in Redis (`*` lists both `replica-lazy-flush` and `slave-lazy-flush`). A pattern
    /// without `*`, `?` or `[` is an exact lookup, answered under the name as written,
    /// as Redis does. Values are printed as Redis prints them.
    pub fn get_matching(&self, pattern: &str) -> Vec<(String, String)> {
        if !pattern.contains(['*', '?', '[']) {
            return match lookup(pattern) {
                Some(spec) => vec![(pattern.to_string(), self.value_of(spec))],
                None => Vec::new(),
            };
        }
        let mut out = BTreeMap::new();
        for spec in specs() {
            for name in std::iter::once(spec.name).chain(spec.alias) {
                if glob_match(pattern.as_bytes(), name.as_bytes(), true) {
                    out.entry(name).or_insert_with(|| self.value_of(spec));
                }
            }
        }
        out.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The `CONFIG GET` value of one setting, by name (any case, aliases too).
    pub fn get(&self, name: &str) -> Option<String> {
        lookup(name).map(|spec| self.value_of(spec))
    }

    /// The addresses to listen on, each with whether it is optional (`-` prefix).
    pub fn bind_addrs(&self) -> impl Iterator<Item = (&str, bool)> + '_ {
        self.bind
            .iter()
            .enumerate()
            .map(|(i, addr)| (addr.as_str(), self.bind_optional.get(i).copied().unwrap_or(false)))
    }

    /// Every setting coreshard knows: canonical name, alias, mutability.
    pub fn specs() -> impl Iterator<Item = &'static Spec> {
        specs()
    }

    /// Checks and stores one setting, given by the name `used` (errors name the alias
    /// if that is what was used). `append_save` makes `save` add to the current save
    /// points instead of replacing them (a config file's second `save` line).
    fn apply(
        &mut self,
        spec: &'static Spec,
        used: &str,
        args: &[&str],
        append_save: bool,
    ) -> Result<Option<String>, SetError> {
        let name = spec.name;
        let used = spec.name_as_used(used);
        let parsed = parse_value(spec.kind, args).map_err(|reason| SetError::invalid(used, reason))?;
        match spec.slot {
            Slot::Field(field) => {
                // Of the output buffer limits only the replica class has an effect.
                let unapplied_obuf =
                    matches!(&parsed, Parsed::Obuf(updates) if updates.iter().any(|(i, _)| *i != OBUF_REPLICA));
                self.store_field(field, used, parsed)?;
                Ok(unapplied_obuf.then(|| {
                    format!(
                        "'{name}' has no effect in coreshard for the normal and pubsub classes; accepted and ignored"
                    )
                }))
            }
            Slot::Ignored(default) => {
                let current = self.ignored.value(name).unwrap_or(default).to_string();
                let text = match parsed {
                    Parsed::Bool(b) => yes_no(b).to_string(),
                    Parsed::Num(n) => n.to_string(),
                    Parsed::Enum(i) => match spec.kind {
                        Kind::Enum(names) => names.get(i).copied().unwrap_or_default().to_string(),
                        _ => current,
                    },
                    Parsed::Str(s) => s,
                    Parsed::Save(points) => {
                        let new = format_save(&points);
                        if append_save && !current.is_empty() && !new.is_empty() {
                            format!("{current} {new}")
                        } else if append_save && new.is_empty() {
                            current
                        } else {
                            new
                        }
                    }
                    Parsed::Bind(_) | Parsed::Obuf(_) | Parsed::ReplicaOf(_) => current,
                };
                self.ignored.values.insert(name, text);
                Ok(Some(format!("'{name}' has no effect in coreshard; accepted and ignored")))
            }
        }
    }

    fn store_field(&mut self, field: Field, name: &str, parsed: Parsed) -> Result<(), SetError> {
        let mismatch = || SetError::invalid(name, "internal error: unexpected value type");
        match (field, parsed) {
            (Field::Bind, Parsed::Bind(list)) => {
                let (addrs, optional) = list.into_iter().unzip();
                self.bind = addrs;
                self.bind_optional = optional;
            }
            (Field::UnixSocket, Parsed::Str(s)) => self.unixsocket = non_empty(s),
            (Field::RequirePass, Parsed::Str(s)) => self.requirepass = non_empty(s),
            (Field::LogFile, Parsed::Str(s)) => self.logfile = s,
            (Field::PidFile, Parsed::Str(s)) => self.pidfile = s,
            (Field::Dir, Parsed::Str(s)) => self.dir = s,
            (Field::ProtectedMode, Parsed::Bool(b)) => self.protected_mode = b,
            (Field::DisableThp, Parsed::Bool(b)) => self.disable_thp = b,
            (Field::LogLevel, Parsed::Enum(i)) => {
                self.loglevel = *LogLevel::ALL.get(i).ok_or_else(mismatch)?;
            }
            (Field::MaxMemoryPolicy, Parsed::Enum(i)) => {
                self.maxmemory_policy = *MaxmemoryPolicy::ALL.get(i).ok_or_else(mismatch)?;
            }
            (Field::Hz, Parsed::Num(n)) => {
                self.hz = to_field(name, n.clamp(i128::from(MIN_HZ), i128::from(MAX_HZ)))?;
            }
            (Field::Port, Parsed::Num(n)) => self.port = to_field(name, n)?,
            (Field::UnixSocketPerm, Parsed::Num(n)) => self.unixsocketperm = to_field(name, n)?,
            (Field::TcpBacklog, Parsed::Num(n)) => self.tcp_backlog = to_field(name, n)?,
            (Field::Timeout, Parsed::Num(n)) => self.timeout = to_field(name, n)?,
            (Field::TcpKeepalive, Parsed::Num(n)) => self.tcp_keepalive = to_field(name, n)?,
            (Field::Threads, Parsed::Num(n)) => self.threads = to_field(name, n)?,
            (Field::Databases, Parsed::Num(n)) => self.databases = to_field(name, n)?,
            (Field::MaxClients, Parsed::Num(n)) => self.maxclients = to_field(name, n)?,
            (Field::ProtoMaxBulkLen, Parsed::Num(n)) => self.proto_max_bulk_len = to_field(name, n)?,
            (Field::ClientQueryBufferLimit, Parsed::Num(n)) => {
                self.client_query_buffer_limit = to_field(name, n)?;
            }
            (Field::ShutdownTimeout, Parsed::Num(n)) => self.shutdown_timeout = to_field(name, n)?,
            (Field::MaxMemory, Parsed::Num(n)) => self.maxmemory = to_field(name, n)?,
            (Field::MaxMemorySamples, Parsed::Num(n)) => self.maxmemory_samples = to_field(name, n)?,
            (Field::ReplicaOf, Parsed::ReplicaOf(master)) => self.replicaof = master,
            (Field::MasterAuth, Parsed::Str(s)) => self.masterauth = non_empty(s),
            (Field::MasterUser, Parsed::Str(s)) => self.masteruser = non_empty(s),
            (Field::ReplicaReadOnly, Parsed::Bool(b)) => self.replica_read_only = b,
            (Field::ReplicaServeStaleData, Parsed::Bool(b)) => self.replica_serve_stale_data = b,
            (Field::ReplBacklogSize, Parsed::Num(n)) => {
                self.repl_backlog_size = to_field(name, n.max(i128::from(REPL_BACKLOG_MIN_BYTES)))?;
            }
            (Field::ReplBacklogTtl, Parsed::Num(n)) => self.repl_backlog_ttl = to_field(name, n)?,
            (Field::ReplTimeout, Parsed::Num(n)) => self.repl_timeout = to_field(name, n)?,
            (Field::ReplPingReplicaPeriod, Parsed::Num(n)) => self.repl_ping_replica_period = to_field(name, n)?,
            (Field::MinReplicasToWrite, Parsed::Num(n)) => self.min_replicas_to_write = to_field(name, n)?,
            (Field::MinReplicasMaxLag, Parsed::Num(n)) => self.min_replicas_max_lag = to_field(name, n)?,
            (Field::ReplicaAnnounceIp, Parsed::Str(s)) => self.replica_announce_ip = non_empty(s),
            (Field::ReplicaAnnouncePort, Parsed::Num(n)) => self.replica_announce_port = to_field(name, n)?,
            (Field::ClientOutputBufferLimit, Parsed::Obuf(updates)) => {
                for (index, limit) in updates {
                    *self.obuf_class_mut(index).ok_or_else(mismatch)? = limit;
                }
            }
            (Field::DebugMultiShardAtomic, Parsed::Bool(b)) => self.debug_multi_shard_atomic = b,
            (Field::DebugShardHopDelayUs, Parsed::Num(n)) => self.debug_shard_hop_delay_us = to_field(name, n)?,
            (Field::DebugReplicaTxAtomic, Parsed::Bool(b)) => self.debug_replica_tx_atomic = b,
            (Field::DebugReplFlowDelayMs, Parsed::Num(n)) => self.debug_repl_flow_delay_ms = to_field(name, n)?,
            (Field::DebugMigrationCleanupKeysPerTurn, Parsed::Num(n)) => {
                self.debug_migration_cleanup_keys_per_turn = to_field(name, n)?
            }
            (Field::DebugControlLogCompactEntries, Parsed::Num(n)) => {
                self.debug_control_log_compact_entries = to_field(name, n)?
            }
            (Field::ClusterMigrationBytesPerSec, Parsed::Num(n)) => {
                self.cluster_migration_bytes_per_sec = to_field(name, n)?
            }
            (Field::ClusterEnabled, Parsed::Bool(b)) => self.cluster_enabled = b,
            (Field::ClusterConfigFile, Parsed::Str(s)) => self.cluster_config_file = s,
            (Field::ClusterAnnounceIp, Parsed::Str(s)) => self.cluster_announce_ip = non_empty(s),
            (Field::ClusterAnnouncePort, Parsed::Num(n)) => self.cluster_announce_port = to_field(name, n)?,
            (Field::ClusterPort, Parsed::Num(n)) => self.cluster_port = to_field(name, n)?,
            (Field::ClusterRequireFullCoverage, Parsed::Bool(b)) => self.cluster_require_full_coverage = b,
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    /// The value of `spec` as `CONFIG GET` prints it.
    fn value_of(&self, spec: &Spec) -> String {
        let field = match spec.slot {
            Slot::Field(field) => field,
            Slot::Ignored(default) => {
                return self.ignored.value(spec.name).unwrap_or(default).to_string();
            }
        };
        match field {
            Field::Bind => self
                .bind_addrs()
                .map(|(addr, optional)| if optional { format!("-{addr}") } else { addr.to_string() })
                .collect::<Vec<_>>()
                .join(" "),
            Field::Port => self.port.to_string(),
            Field::UnixSocket => self.unixsocket.clone().unwrap_or_default(),
            Field::UnixSocketPerm => format!("{:o}", self.unixsocketperm),
            Field::TcpBacklog => self.tcp_backlog.to_string(),
            Field::Timeout => self.timeout.to_string(),
            Field::TcpKeepalive => self.tcp_keepalive.to_string(),
            Field::ProtectedMode => yes_no(self.protected_mode).to_string(),
            Field::DisableThp => yes_no(self.disable_thp).to_string(),
            Field::Threads => self.threads.to_string(),
            Field::RequirePass => self.requirepass.clone().unwrap_or_default(),
            Field::Databases => self.databases.to_string(),
            Field::MaxClients => self.maxclients.to_string(),
            Field::ProtoMaxBulkLen => self.proto_max_bulk_len.to_string(),
            Field::ClientQueryBufferLimit => self.client_query_buffer_limit.to_string(),
            Field::ShutdownTimeout => self.shutdown_timeout.to_string(),
            Field::Hz => self.hz.to_string(),
            Field::LogLevel => self.loglevel.as_str().to_string(),
            Field::LogFile => self.logfile.clone(),
            Field::PidFile => self.pidfile.clone(),
            Field::Dir => self.dir.clone(),
            Field::MaxMemory => self.maxmemory.to_string(),
            Field::MaxMemoryPolicy => self.maxmemory_policy.as_str().to_string(),
            Field::MaxMemorySamples => self.maxmemory_samples.to_string(),
            Field::ReplicaOf => match &self.replicaof {
                Some((host, port)) => format!("{host} {port}"),
                None => String::new(),
            },
            Field::MasterAuth => self.masterauth.clone().unwrap_or_default(),
            Field::MasterUser => self.masteruser.clone().unwrap_or_default(),
            Field::ReplicaReadOnly => yes_no(self.replica_read_only).to_string(),
            Field::ReplicaServeStaleData => yes_no(self.replica_serve_stale_data).to_string(),
            Field::ReplBacklogSize => self.repl_backlog_size.to_string(),
            Field::ReplBacklogTtl => self.repl_backlog_ttl.to_string(),
            Field::ReplTimeout => self.repl_timeout.to_string(),
            Field::ReplPingReplicaPeriod => self.repl_ping_replica_period.to_string(),
            Field::MinReplicasToWrite => self.min_replicas_to_write.to_string(),
            Field::MinReplicasMaxLag => self.min_replicas_max_lag.to_string(),
            Field::ReplicaAnnounceIp => self.replica_announce_ip.clone().unwrap_or_default(),
            Field::ReplicaAnnouncePort => self.replica_announce_port.to_string(),
            Field::ClientOutputBufferLimit => [self.obuf_normal, self.obuf_replica, self.obuf_pubsub]
                .iter()
                .zip(OBUF_CLASSES)
                .map(|(l, class)| format!("{class} {} {} {}", l.hard_bytes, l.soft_bytes, l.soft_secs))
                .collect::<Vec<_>>()
                .join(" "),
            Field::DebugMultiShardAtomic => yes_no(self.debug_multi_shard_atomic).to_string(),
            Field::DebugShardHopDelayUs => self.debug_shard_hop_delay_us.to_string(),
            Field::DebugReplicaTxAtomic => yes_no(self.debug_replica_tx_atomic).to_string(),
            Field::DebugReplFlowDelayMs => self.debug_repl_flow_delay_ms.to_string(),
            Field::DebugMigrationCleanupKeysPerTurn => self.debug_migration_cleanup_keys_per_turn.to_string(),
            Field::DebugControlLogCompactEntries => self.debug_control_log_compact_entries.to_string(),
            Field::ClusterMigrationBytesPerSec => self.cluster_migration_bytes_per_sec.to_string(),
            Field::ClusterEnabled => yes_no(self.cluster_enabled).to_string(),
            Field::ClusterConfigFile => self.cluster_config_file.clone(),
            Field::ClusterAnnounceIp => self.cluster_announce_ip.clone().unwrap_or_default(),
            Field::ClusterAnnouncePort => self.cluster_announce_port.to_string(),
            Field::ClusterPort => self.cluster_port.to_string(),
            Field::ClusterRequireFullCoverage => yes_no(self.cluster_require_full_coverage).to_string(),
        }
    }
}

impl Config {
    /// The `client-output-buffer-limit` class at `index` in [`OBUF_CLASSES`].
    fn obuf_class_mut(&mut self, index: usize) -> Option<&mut ObufLimit> {
        match index {
            OBUF_NORMAL => Some(&mut self.obuf_normal),
            OBUF_REPLICA => Some(&mut self.obuf_replica),
            OBUF_PUBSUB => Some(&mut self.obuf_pubsub),
            _ => None,
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

// ---------------------------------------------------------------------------
// Configuration files
// ---------------------------------------------------------------------------

/// State of one load: the configuration being built, the warnings so far, the files
/// being read (for loop detection) and whether a `save` line was seen (the first one
/// replaces the default save points, later ones add to them, as in Redis).
struct Loader {
    config: Config,
    warnings: Vec<String>,
    stack: Vec<PathBuf>,
    save_seen: bool,
}

impl Loader {
    fn new(config: Config) -> Self {
        Loader { config, warnings: Vec::new(), stack: Vec::new(), save_seen: false }
    }

    fn text(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        for (index, raw) in text.split('\n').enumerate() {
            let number = index + 1;
            let line = raw.trim_matches([' ', '\t', '\r', '\n']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let args = match split_args(line) {
                Ok(args) => args,
                Err(SplitError::Unbalanced) => {
                    return Err(ConfigError::at(origin, number, line, "Unbalanced quotes in configuration line"));
                }
                Err(SplitError::NotUtf8) => {
                    return Err(ConfigError::at(
                        origin,
                        number,
                        line,
                        "an argument is not valid UTF-8 after unescaping",
                    ));
                }
            };
            let Some((directive, rest)) = args.split_first() else {
                continue;
            };
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            self.directive(directive, &rest, origin, number, line)?;
        }
        Ok(())
    }

    fn directive(
        &mut self,
        directive: &str,
        args: &[&str],
        origin: &str,
        number: usize,
        line: &str,
    ) -> Result<(), ConfigError> {
        let at = |message: String| ConfigError::at(origin, number, line, message);
        if let Some(spec) = lookup(directive) {
            let is_save = matches!(spec.kind, Kind::Save);
            let split = split_lone_arg(spec.kind, args);
            let split_refs: Vec<&str> = split.iter().flatten().map(String::as_str).collect();
            let args = if split.is_some() { &split_refs } else { args };
            let warning = self
                .config
                .apply(spec, directive, args, is_save && self.save_seen)
                .map_err(|e| at(e.file_message()))?;
            if is_save {
                self.save_seen = true;
            }
            if let Some(w) = warning {
                self.warnings.push(format!("{origin}:{number}: {w}"));
            }
            return Ok(());
        }
        if directive.eq_ignore_ascii_case("include") && args.len() == 1 {
            return self.include(args[0]).map_err(|e| match e {
                // Opening the file failed, or it is a loop: blame the include line.
                IncludeError::Nested(inner) if inner.line.is_none() => at(inner.message),
                IncludeError::Nested(inner) => inner,
                IncludeError::Here(message) => at(message),
            });
        }
        if args.len() == 1 && DEPRECATED_FILE_ONLY.iter().any(|d| d.eq_ignore_ascii_case(directive)) {
            self.warnings.push(format!(
                "{origin}:{number}: '{}' is deprecated; accepted and ignored",
                directive.to_ascii_lowercase()
            ));
            return Ok(());
        }
        Err(at(BAD_DIRECTIVE.to_string()))
    }

    fn include(&mut self, target: &str) -> Result<(), IncludeError> {
        let path = Path::new(target);
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !target.contains(['*', '?', '[']) {
            return self.file(path).map_err(IncludeError::Nested);
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = parent.unwrap_or(Path::new("."));
        if dir.to_string_lossy().contains(['*', '?', '[']) {
            return Err(IncludeError::Here("include patterns may only use wildcards in the file name".to_string()));
        }
        // As glob(3): no match (or no such directory) is not an error; names starting
        // with a dot match only a pattern starting with a dot; results are sorted.
        let mut matches: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let hidden_ok = !name.starts_with('.') || file_name.starts_with('.');
                    (hidden_ok && glob_match(file_name.as_bytes(), name.as_bytes(), false)).then(|| match parent {
                        Some(p) => p.join(&name),
                        None => PathBuf::from(&name),
                    })
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        matches.sort();
        for m in matches {
            self.file(&m).map_err(IncludeError::Nested)?;
        }
        Ok(())
    }

    fn file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let origin = path.display().to_string();
        let cant_open =
            |e: std::io::Error| ConfigError::whole(&origin, format!("can't open config file '{origin}': {e}"));
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::whole(&origin, format!("includes nested more than {MAX_INCLUDE_DEPTH} deep")));
        }
        let canonical = std::fs::canonicalize(path).map_err(cant_open)?;
        if self.stack.contains(&canonical) {
            return Err(ConfigError::whole(&origin, format!("include loop: '{origin}' is already being read")));
        }
        let bytes = std::fs::read(path).map_err(cant_open)?;
        let text = utf8_text(&bytes)
            .map_err(|(number, line)| ConfigError::at(&origin, number, &line, "line is not valid UTF-8"))?;
        self.stack.push(canonical);
        let result = self.text(&text, &origin);
        self.stack.pop();
        result
    }
}

enum IncludeError {
    /// An error inside an included file (or opening it), reported as is.
    Nested(ConfigError),
    /// An error about the include line itself.
    Here(String),
}

/// The file's text. Comment lines that are not UTF-8 become empty comments; any other
/// such line is an error, returned as (line number, lossy text).
fn utf8_text(bytes: &[u8]) -> Result<String, (usize, String)> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(bytes.len());
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        match std::str::from_utf8(raw) {
            Ok(line) => out.push_str(line),
            Err(_) => {
                let lossy = String::from_utf8_lossy(raw);
                let trimmed = lossy.trim_matches([' ', '\t', '\r', '\n']);
                if trimmed.starts_with('#') {
                    out.push('#');
                } else {
                    return Err((index + 1, trimmed.to_string()));
                }
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// sdssplitargs
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum SplitError {
    /// A quote is not closed, or a closing quote is followed by something other than
    /// a blank.
    Unbalanced,
    /// A `\xHH` escape made an argument that is not UTF-8.
    NotUtf8,
}

/// C's `isspace` in the "C" locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Splits a line into arguments the way Redis's `sdssplitargs` does.
fn split_args(line: &str) -> Result<Vec<String>, SplitError> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && is_c_space(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            return Ok(out);
        }
        let mut current: Vec<u8> = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = b.get(i).copied();
            if in_double {
                match c {
                    None => return Err(SplitError::Unbalanced),
                    Some(b'\\') => {
                        let hex =
                            b.get(i + 2).copied().and_then(hex_value).zip(b.get(i + 3).copied().and_then(hex_value));
                        match (b.get(i + 1).copied(), hex) {
                            (Some(b'x'), Some((hi, lo))) => {
                                current.push(hi * 16 + lo);
                                i += 4;
                            }
                            (Some(e), _) => {
                                current.push(match e {
                                    b'n' => b'\n',
                                    b'r' => b'\r',
                                    b't' => b'\t',
                                    b'b' => 0x08,
                                    b'a' => 0x07,
                                    other => other,
                                });
                                i += 2;
                            }
                            (None, _) => {
                                current.push(b'\\');
                                i += 1;
                            }
                        }
                    }
                    Some(b'"') => {
                        if b.get(i + 1).is_some_and(|&n| !is_c_space(n)) {
                            return Err(SplitError::Unbalanced);
                        }
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        current.push(other);
                        i += 1;
                    }
                }
            } else if in_single {
                match c {
                    None => return Err(SplitError::Unbalanced),
                    Some(b'\\') if b.get(i + 1) == Some(&b'\'') => {
                        current.push(b'\'');
                        i += 2;
                    }
                    Some(b'\'') => {
                        if b.get(i + 1).is_some_and(|&n| !is_c_space(n)) {
                            return Err(SplitError::Unbalanced);
                        }
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        current.push(other);
                        i += 1;
                    }
                }
            } else {
                match c {
                    None => break,
                    Some(b' ' | b'\n' | b'\r' | b'\t' | 0) => {
                        i += 1;
                        break;
                    }
                    Some(b'"') => {
                        in_double = true;
                        i += 1;
                    }
                    Some(b'\'') => {
                        in_single = true;
                        i += 1;
                    }
                    Some(other) => {
                        current.push(other);
                        i += 1;
                    }
                }
            }
        }
        out.push(String::from_utf8(current).map_err(|_| SplitError::NotUtf8)?);
    }
}

// ---------------------------------------------------------------------------
// Glob matching
// ---------------------------------------------------------------------------

/// Redis's `stringmatchlen` glob: `*`, `?`, `[...]` (with `^` and ranges; an
/// unterminated class ends at the end of the pattern), `\` escapes.
fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    glob_inner(pattern, text, nocase) == Glob::Match
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glob {
    Match,
    NoMatch,
    /// A `*` tried every suffix of the text and failed: an enclosing `*` trying a
    /// shorter suffix cannot do better, so give up (Redis's `skipLongerMatches`, which
    /// keeps patterns like `*a*a*a*b` from taking exponential time).
    Exhausted,
}

fn glob_inner(pattern: &[u8], text: &[u8], nocase: bool) -> Glob {
    let same = |a: u8, b: u8| {
        if nocase { a.eq_ignore_ascii_case(&b) } else { a == b }
    };
    let mut p = pattern;
    let mut s = text;
    loop {
        let Some((&pc, p_rest)) = p.split_first() else {
            return if s.is_empty() { Glob::Match } else { Glob::NoMatch };
        };
        if pc == b'*' {
            let mut rest = p_rest;
            while let Some((&b'*', r)) = rest.split_first() {
                rest = r;
            }
            if rest.is_empty() {
                return Glob::Match;
            }
            for start in 0..s.len() {
                match glob_inner(rest, &s[start..], nocase) {
                    Glob::NoMatch => {}
                    done => return done,
                }
            }
            return Glob::Exhausted;
        }
        let Some((&sc, s_rest)) = s.split_first() else {
            return Glob::NoMatch;
        };
        match pc {
            b'?' => p = p_rest,
            b'[' => match glob_class(p_rest, sc, nocase) {
                (true, after) => p = after,
                (false, _) => return Glob::NoMatch,
            },
            b'\\' if !p_rest.is_empty() => {
                if !same(p_rest[0], sc) {
                    return Glob::NoMatch;
                }
                p = &p_rest[1..];
            }
            _ => {
                if !same(pc, sc) {
                    return Glob::NoMatch;
                }
                p = p_rest;
            }
        }
        s = s_rest;
    }
}

/// Matches `c` against the class that starts right after `[`; returns whether it
/// matched and the pattern after the closing `]`.
fn glob_class(pattern: &[u8], c: u8, nocase: bool) -> (bool, &[u8]) {
    let mut p = pattern;
    let negate = p.first() == Some(&b'^');
    if negate {
        p = &p[1..];
    }
    let fold = |x: u8| if nocase { x.to_ascii_lowercase() } else { x };
    let mut matched = false;
    loop {
        match p {
            [b'\\', escaped, rest @ ..] => {
                if *escaped == c {
                    matched = true;
                }
                p = rest;
            }
            [b']', rest @ ..] => {
                p = rest;
                break;
            }
            [] => break,
            [start, b'-', end, rest @ ..] => {
                let (lo, hi) = if start <= end { (*start, *end) } else { (*end, *start) };
                if (fold(lo)..=fold(hi)).contains(&fold(c)) {
                    matched = true;
                }
                p = rest;
            }
            [x, rest @ ..] => {
                if fold(*x) == fold(c) {
                    matched = true;
                }
                p = rest;
            }
        }
    }
    (matched != negate, p)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn get(c: &Config, name: &str) -> String {
        c.get(name).unwrap_or_else(|| panic!("no setting {name}"))
    }

    fn apply(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let mut c = Config::default();
        let w = c.apply_file_text(text, "test.conf")?;
        Ok((c, w))
    }

    fn set_err(name: &str, value: &str) -> String {
        let mut c = Config::default();
        match c.set_many(&[(name, value)]) {
            Ok(_) => panic!("{name} {value} was accepted"),
            Err(e) => e.redis_text(),
        }
    }

    /// A fresh, empty directory for file tests.
    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("coreshard-config-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.bind, vec!["127.0.0.1"]);
        assert_eq!(c.port, 6379);
        assert_eq!(c.unixsocket, None);
        assert_eq!(c.unixsocketperm, 0);
        assert_eq!(c.tcp_backlog, 511);
        assert_eq!(c.timeout, 0);
        assert_eq!(c.tcp_keepalive, 300);
        assert!(c.protected_mode);
        assert!(c.disable_thp);
        assert_eq!(c.threads, 0);
        assert_eq!(c.requirepass, None);
        assert_eq!(c.databases, 16);
        assert_eq!(c.maxclients, 10_000);
        assert_eq!(c.proto_max_bulk_len, 512 << 20);
        assert_eq!(c.client_query_buffer_limit, 1 << 30);
        assert_eq!(c.shutdown_timeout, 10);
        assert_eq!(c.hz, 10);
        assert_eq!(c.loglevel, LogLevel::Notice);
        assert_eq!(c.logfile, "");
        assert_eq!(c.pidfile, "");
        assert_eq!(c.dir, "./");
        assert_eq!(c.maxmemory, 0);
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::Noeviction);
        assert_eq!(c.maxmemory_samples, 5);
        assert_eq!(get(&c, "requirepass"), "");
        assert_eq!(get(&c, "unixsocket"), "");
        assert_eq!(get(&c, "unixsocketperm"), "0");
        assert_eq!(get(&c, "save"), "3600 1 300 100 60 10000");
        assert_eq!(get(&c, "appendonly"), "no");
        assert_eq!(get(&c, "proto-max-bulk-len"), "536870912");
        assert_eq!(
            get(&c, "client-output-buffer-limit"),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
    }

    #[test]
    fn every_ignored_default_is_valid_and_normalised() {
        // Setting each ignored directive to its own default must succeed and leave the
        // value unchanged, i.e. the defaults are written the way CONFIG GET prints them.
        for spec in IGNORED {
            let Slot::Ignored(default) = spec.slot else {
                panic!("{} is not ignored", spec.name);
            };
            let mut c = Config::default();
            let args: Vec<&str> = if spec.kind.multi_arg() { default.split(' ').collect() } else { vec![default] };
            c.set(spec.name, &args, false).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
            assert_eq!(get(&c, spec.name), default, "{}", spec.name);
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = specs().flat_map(|s| std::iter::once(s.name).chain(s.alias)).collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), total);
        assert!(names.iter().all(|n| *n == n.to_ascii_lowercase()));
    }

    #[test]
    fn split_args_like_sdssplitargs() {
        let ok = |s: &str| split_args(s).expect("split");
        assert_eq!(ok("  a  b\tc "), vec!["a", "b", "c"]);
        assert_eq!(ok(""), Vec::<String>::new());
        assert_eq!(ok("   "), Vec::<String>::new());
        assert_eq!(ok(r#"a "b c" d"#), vec!["a", "b c", "d"]);
        assert_eq!(ok(r#""\n\r\t\b\a\\\"\x41\x4a\q""#), vec!["\n\r\t\u{8}\u{7}\\\"AJq"]);
        // \x without two hex digits is just x.
        assert_eq!(ok(r#""\xZ1""#), vec!["xZ1"]);
        assert_eq!(ok(r"'it\'s' 'a\nb'"), vec!["it's", r"a\nb"]);
        assert_eq!(ok(r#""""#), vec![""]);
        assert_eq!(ok(r#"''"#), vec![""]);
        // A quote can open in the middle of a word.
        assert_eq!(ok(r#"foo"bar baz""#), vec!["foobar baz"]);
        assert_eq!(split_args(r#""abc"#), Err(SplitError::Unbalanced));
        assert_eq!(split_args("'abc"), Err(SplitError::Unbalanced));
        assert_eq!(split_args(r#""a"b"#), Err(SplitError::Unbalanced));
        assert_eq!(split_args("'a'b"), Err(SplitError::Unbalanced));
        assert_eq!(split_args(r#""\xff""#), Err(SplitError::NotUtf8));
        assert_eq!(ok(r#""\xc3\xa9""#), vec!["é"]);
    }

    #[test]
    fn file_basic_comments_quotes_units() {
        let text = "# a comment\n\
                    \n\
                    \t  # indented comment\n\
                    PORT 7000\r\n\
                    bind 0.0.0.0 -::1\n\
                    maxmemory 2GB\n\
                    proto-max-bulk-len 2mb\n\
                    client-query-buffer-limit 2000k\n\
                    requirepass \"p@ss word\\x21\"\n\
                    logfile ''\n\
                    loglevel WARNING\n\
                    maxmemory-policy allkeys-LRU\n\
                    protected-mode No\n\
                    unixsocket /tmp/cs.sock\n\
                    unixsocketperm 700\n\
                    threads 4\n\
                    hz 100\n";
        let (c, warnings) = apply(text).expect("apply");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.port, 7000);
        assert_eq!(c.bind, vec!["0.0.0.0", "::1"]);
        assert_eq!(c.bind_optional, vec![false, true]);
        assert_eq!(get(&c, "bind"), "0.0.0.0 -::1");
        assert_eq!(c.maxmemory, 2 << 30);
        assert_eq!(get(&c, "maxmemory"), "2147483648");
        assert_eq!(c.proto_max_bulk_len, 2 << 20);
        assert_eq!(c.client_query_buffer_limit, 2_000_000);
        assert_eq!(c.requirepass.as_deref(), Some("p@ss word!"));
        assert_eq!(c.logfile, "");
        assert_eq!(c.loglevel, LogLevel::Warning);
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::AllkeysLru);
        assert!(!c.protected_mode);
        assert_eq!(c.unixsocket.as_deref(), Some("/tmp/cs.sock"));
        assert_eq!(c.unixsocketperm, 0o700);
        assert_eq!(get(&c, "unixsocketperm"), "700");
        assert_eq!(c.threads, 4);
        assert_eq!(c.hz, 100);
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("0"), Some(0));
        assert_eq!(parse_memory("123"), Some(123));
        assert_eq!(parse_memory("5b"), Some(5));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1K"), Some(1000));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1Kb"), Some(1024));
        assert_eq!(parse_memory("3m"), Some(3_000_000));
        assert_eq!(parse_memory("3mb"), Some(3 << 20));
        assert_eq!(parse_memory("2g"), Some(2_000_000_000));
        assert_eq!(parse_memory("2gb"), Some(2 << 30));
        assert_eq!(parse_memory(""), Some(0));
        assert_eq!(parse_memory("1x"), None);
        assert_eq!(parse_memory("1 mb"), None);
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("+1"), None);
        assert_eq!(parse_memory("1.5gb"), None);
        assert_eq!(parse_memory("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_memory("18446744073709551616"), None);
        assert_eq!(parse_memory("20000000000gb"), None);
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_strict_i64("0"), Some(0));
        assert_eq!(parse_strict_i64("42"), Some(42));
        assert_eq!(parse_strict_i64("-42"), Some(-42));
        assert_eq!(parse_strict_i64("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_strict_i64("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_strict_i64("9223372036854775808"), None);
        for bad in ["", "-", "+5", "05", "-0", " 5", "5 ", "1e3", "0x10"] {
            assert_eq!(parse_strict_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn file_unknown_directive_names_the_line() {
        let err = apply("port 7000\n\n# x\nfoo bar\n").expect_err("must fail");
        assert_eq!(err.line, Some(4));
        assert_eq!(err.text.as_deref(), Some("foo bar"));
        assert_eq!(err.message, BAD_DIRECTIVE);
        assert_eq!(err.to_string(), "test.conf: line 4: 'foo bar': Bad directive or wrong number of arguments");
        assert!(err.redis_text().starts_with("*** FATAL CONFIG FILE ERROR (coreshard "));
        assert!(err.redis_text().ends_with(
            "Reading the configuration file test.conf, at line 4\n>>> 'foo bar'\n\
             Bad directive or wrong number of arguments"
        ));
    }

    #[test]
    fn file_errors_use_redis_wording() {
        let msg = |text: &str| apply(text).expect_err(text).message;
        assert_eq!(msg("port 1 2"), "wrong number of arguments");
        assert_eq!(msg("port"), "wrong number of arguments");
        assert_eq!(msg("port \"12"), "Unbalanced quotes in configuration line");
        assert_eq!(msg("port '1'2"), "Unbalanced quotes in configuration line");
        assert_eq!(msg("maxmemory 1x"), "argument must be a memory value");
        assert_eq!(msg("save 0 1"), "Invalid save parameters");
        assert_eq!(msg("port 70000"), "argument must be between 0 and 65535 inclusive");
        assert_eq!(msg("daemonize yes"), "coreshard does not daemonize; run it under systemd");
        let many = format!("bind {}", vec!["1.2.3.4"; 17].join(" "));
        assert_eq!(msg(&many), "Too many bind addresses specified.");
        // A trailing comment is not a comment in Redis: it is extra arguments.
        assert_eq!(msg("port 1 # comment"), "wrong number of arguments");
        // Runtime-only or unsupported directives.
        assert_eq!(msg("rename-command FLUSHALL \"\""), BAD_DIRECTIVE);
        assert_eq!(msg("include"), BAD_DIRECTIVE);
    }

    #[test]
    fn file_error_applies_nothing() {
        let mut c = Config::default();
        let before = c.clone();
        assert!(c.apply_file_text("port 7000\nbogus 1\n", "x").is_err());
        assert_eq!(c, before);
    }

    #[test]
    fn hz_is_clamped() {
        let (c, _) = apply("hz 1000").expect("apply");
        assert_eq!(c.hz, 500);
        let (c, _) = apply("hz 0").expect("apply");
        assert_eq!(c.hz, 1);
        assert_eq!(
            set_err("hz", "-1"),
            "ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be between 0 and 2147483647 inclusive"
        );
        let mut c = Config::default();
        c.set_many(&[("hz", "1000")]).expect("set");
        assert_eq!(get(&c, "hz"), "500");
    }

    #[test]
    fn ignored_directives_warn_and_are_kept() {
        let text = "appendonly no\n\
                    appendfsync ALWAYS\n\
                    hash-max-ziplist-entries 100\n\
                    hash-max-listpack-value 1kb\n\
                    daemonize no\n\
                    supervised systemd\n\
                    notify-keyspace-events KEA\n\
                    list-max-ziplist-value 64\n\
                    client-output-buffer-limit pubsub 32mb 8mb 60\n";
        let (c, warnings) = apply(text).expect("apply");
        assert_eq!(warnings.len(), 9, "{warnings:?}");
        assert!(warnings[0].starts_with("test.conf:1: 'appendonly'"));
        assert!(warnings[2].contains("'hash-max-listpack-entries'"));
        assert!(warnings[7].contains("deprecated"));
        // The replica class of the output buffer limits is applied; the others are not.
        assert!(warnings[8].contains("'client-output-buffer-limit' has no effect in coreshard for the normal"));
        assert_eq!(get(&c, "appendfsync"), "always");
        assert_eq!(get(&c, "hash-max-listpack-entries"), "100");
        assert_eq!(c.ignored.get("hash-max-ziplist-entries"), Some("100"));
        assert_eq!(get(&c, "hash-max-listpack-value"), "1024");
        assert_eq!(get(&c, "supervised"), "systemd");
        assert_eq!(get(&c, "notify-keyspace-events"), "AKE");
        // An ignored directive's value is still checked as Redis checks it.
        assert_eq!(apply("appendonly maybe").expect_err("bad").message, "argument must be 'yes' or 'no'");
    }

    #[test]
    fn save_lines_accumulate_in_files_and_replace_at_runtime() {
        let (c, _) = apply("save 900 1\nsave 300 10 60 10000\n").expect("apply");
        assert_eq!(get(&c, "save"), "900 1 300 10 60 10000");
        let (c, _) = apply("save \"\"\n").expect("apply");
        assert_eq!(get(&c, "save"), "");
        let (c, _) = apply("save \"\"\nsave 100 1\n").expect("apply");
        assert_eq!(get(&c, "save"), "100 1");
        let (mut c, _) = apply("save 900 1\n").expect("apply");
        c.set_many(&[("save", "100 1 200 2")]).expect("set");
        assert_eq!(get(&c, "save"), "100 1 200 2");
        c.set("save", &["5", "6"], true).expect("set");
        assert_eq!(get(&c, "save"), "5 6");
        c.set_many(&[("save", "")]).expect("set");
        assert_eq!(get(&c, "save"), "");
        for bad in ["100 1 200", "100 1 ", "100  1", "0 1", "a 1", "100 -1"] {
            assert_eq!(
                set_err("save", bad),
                "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keyspace_events_are_normalised_like_redis() {
        let norm = |s: &str| parse_keyspace_events(s).expect(s);
        assert_eq!(norm("KEA"), "AKE");
        assert_eq!(norm("nmEKdtxg"), "gxtdnKEm");
        assert_eq!(norm("g$lshzxetd"), "A");
        assert_eq!(norm("AnKE"), "AKE");
        assert_eq!(norm(""), "");
        assert_eq!(
            set_err("notify-keyspace-events", "Z"),
            "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
        );
    }

    #[test]
    fn client_output_buffer_limit_updates_classes() {
        let mut c = Config::default();
        c.set_many(&[("client-output-buffer-limit", "replica 1mb 2mb 3 PUBSUB 1 2 3")]).expect("set");
        assert_eq!(get(&c, "client-output-buffer-limit"), "normal 0 0 0 slave 1048576 2097152 3 pubsub 1 2 3");
        let prefix = "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - ";
        assert_eq!(
            set_err("client-output-buffer-limit", "master 1 1 1"),
            format!("{prefix}Invalid client class specified in buffer limit configuration.")
        );
        assert_eq!(
            set_err("client-output-buffer-limit", "normal 1x 1 1"),
            format!("{prefix}Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        );
        assert_eq!(
            set_err("client-output-buffer-limit", "normal 1 1"),
            format!("{prefix}Wrong number of arguments in buffer limit configuration.")
        );
    }

    #[test]
    fn client_output_buffer_limit_replica_class_is_typed() {
        let c = Config::default();
        assert_eq!(c.obuf_replica, ObufLimit { hard_bytes: 256 << 20, soft_bytes: 64 << 20, soft_secs: 60 });
        assert_eq!(c.obuf_normal, ObufLimit::NONE);
        assert_eq!(c.obuf_pubsub, ObufLimit { hard_bytes: 32 << 20, soft_bytes: 8 << 20, soft_secs: 60 });
        // The replica class is applied: no warning. It may be written `slave` too.
        let (c, warnings) = apply("client-output-buffer-limit replica 1gb 100mb 30\n").expect("apply");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.obuf_replica, ObufLimit { hard_bytes: 1 << 30, soft_bytes: 100 << 20, soft_secs: 30 });
        assert_eq!(c.obuf_pubsub, Config::default().obuf_pubsub);
        let mut c = Config::default();
        let warnings = c.set_many(&[("client-output-buffer-limit", "SLAVE 0 0 0")]).expect("set");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.obuf_replica, ObufLimit::NONE);
        assert_eq!(get(&c, "client-output-buffer-limit"), "normal 0 0 0 slave 0 0 0 pubsub 33554432 8388608 60");
        // Naming another class still warns; the classes all keep their values.
        let warnings = c.set_many(&[("client-output-buffer-limit", "normal 1 2 3 replica 4 5 6")]).expect("set");
        assert_eq!(warnings.len(), 1);
        assert_eq!(c.obuf_normal, ObufLimit { hard_bytes: 1, soft_bytes: 2, soft_secs: 3 });
        assert_eq!(c.obuf_replica, ObufLimit { hard_bytes: 4, soft_bytes: 5, soft_secs: 6 });
        // A bad group changes nothing, as in Redis.
        let before = c.clone();
        assert!(c.set_many(&[("client-output-buffer-limit", "replica 9 9 9 normal 1 1 -1")]).is_err());
        assert_eq!(c, before);
    }

    #[test]
    fn replication_defaults_match_redis() {
        // `CONFIG GET` of a fresh redis-server 7.0.15, aliases included.
        let c = Config::default();
        for (name, shown) in [
            ("replicaof", ""),
            ("slaveof", ""),
            ("masterauth", ""),
            ("masteruser", ""),
            ("replica-read-only", "yes"),
            ("slave-read-only", "yes"),
            ("replica-serve-stale-data", "yes"),
            ("slave-serve-stale-data", "yes"),
            ("repl-backlog-size", "1048576"),
            ("repl-backlog-ttl", "3600"),
            ("repl-timeout", "60"),
            ("repl-ping-replica-period", "10"),
            ("repl-ping-slave-period", "10"),
            ("min-replicas-to-write", "0"),
            ("min-slaves-to-write", "0"),
            ("min-replicas-max-lag", "10"),
            ("min-slaves-max-lag", "10"),
            ("replica-announce-ip", ""),
            ("slave-announce-ip", ""),
            ("replica-announce-port", "0"),
            ("slave-announce-port", "0"),
            ("replica-priority", "100"),
            ("repl-diskless-sync", "yes"),
            ("repl-diskless-sync-delay", "5"),
        ] {
            assert_eq!(get(&c, name), shown, "{name}");
        }
        assert_eq!(c.replicaof, None);
        assert_eq!(c.masterauth, None);
        assert_eq!(c.masteruser, None);
        assert!(c.replica_read_only);
        assert!(c.replica_serve_stale_data);
        assert_eq!(c.repl_backlog_size, 1 << 20);
        assert_eq!(c.repl_backlog_ttl, 3600);
        assert_eq!(c.repl_timeout, 60);
        assert_eq!(c.repl_ping_replica_period, 10);
        assert_eq!(c.min_replicas_to_write, 0);
        assert_eq!(c.min_replicas_max_lag, 10);
        assert_eq!(c.replica_announce_ip, None);
        assert_eq!(c.replica_announce_port, 0);
        let names = |p: &str| c.get_matching(p).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(names("*of"), vec!["replicaof", "slaveof"]);
        assert_eq!(
            names("min-*"),
            vec!["min-replicas-max-lag", "min-replicas-to-write", "min-slaves-max-lag", "min-slaves-to-write"]
        );
        assert_eq!(names("master*"), vec!["masterauth", "masteruser"]);
    }

    #[test]
    fn replicaof_forms() {
        let master = |c: &Config| c.replicaof.clone().map(|(h, p)| format!("{h}:{p}"));
        let (c, warnings) = apply("replicaof 10.0.0.1 6380\n").expect("apply");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.replicaof, Some(("10.0.0.1".to_string(), 6380)));
        assert_eq!(get(&c, "replicaof"), "10.0.0.1 6380");
        assert_eq!(get(&c, "slaveof"), "10.0.0.1 6380");
        // The alias, `no one` in any case, the last line winning.
        let (c, _) = apply("SLAVEOF db.example 1\n").expect("apply");
        assert_eq!(master(&c).as_deref(), Some("db.example:1"));
        let (c, _) = apply("replicaof db 1\nreplicaof NO One\n").expect("apply");
        assert_eq!(c.replicaof, None);
        assert_eq!(get(&c, "replicaof"), "");
        // One argument holding both, from a file or the command line (`--replicaof "h 7"`).
        let (c, _) = apply("replicaof \"h 7\"\n").expect("apply");
        assert_eq!(master(&c).as_deref(), Some("h:7"));
        let mut c = Config::default();
        c.set("replicaof", &["h 8"], false).expect("set");
        assert_eq!(master(&c).as_deref(), Some("h:8"));
        c.set("slaveof", &["no", "one"], false).expect("set");
        assert_eq!(c.replicaof, None);
        // The port as strtol reads it.
        for (port, read) in [("+5", 5), (" 5", 5), ("-0", 0), ("007", 7), ("65535", 65535), ("0", 0)] {
            let mut c = Config::default();
            c.set("replicaof", &["h", port], false).unwrap_or_else(|e| panic!("{port:?}: {e}"));
            assert_eq!(c.replicaof, Some(("h".to_string(), read)), "{port:?}");
        }
        // redis-server 7.0.15's errors; the empty port and the 33-bit one Redis takes
        // as 0 and 1.
        let msg = |text: &str| apply(text).expect_err(text).message;
        assert_eq!(msg("replicaof h"), "wrong number of arguments");
        assert_eq!(msg("replicaof h 1 2"), "wrong number of arguments");
        assert_eq!(msg("replicaof \"h\\\"x 12\""), "wrong number of arguments");
        for port in ["70000", "-1", "x", "5x", "5 ", "+", "", "4294967297"] {
            assert_eq!(msg(&format!("replicaof h '{port}'")), "Invalid master port", "{port:?}");
        }
        let err = apply("port 1\nreplicaof h 70000\n").expect_err("bad port");
        assert!(err.redis_text().ends_with("at line 2\n>>> 'replicaof h 70000'\nInvalid master port"), "{err}");
        // CONFIG SET refuses it, under the name as written, whatever the value.
        for name in ["replicaof", "slaveof", "SLAVEOF"] {
            for value in ["127.0.0.1 6380", "no one", "a"] {
                assert_eq!(
                    set_err(name, value),
                    format!(
                        "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                    )
                );
            }
        }
        let mut c = Config::default();
        assert!(matches!(c.set("replicaof", &["no", "one"], true), Err(SetError::Immutable { .. })));
    }

    #[test]
    fn replication_settings_set_and_limits() {
        let mut c = Config::default();
        let cases = [
            ("slave-read-only", "no", "no"),
            ("replica-serve-stale-data", "NO", "no"),
            ("masterauth", "sekrit", "sekrit"),
            ("masteruser", "repl", "repl"),
            ("repl-backlog-size", "1gb", "1073741824"),
            ("repl-backlog-ttl", "0", "0"),
            ("repl-timeout", "1", "1"),
            ("repl-ping-slave-period", "1", "1"),
            ("min-slaves-to-write", "2147483647", "2147483647"),
            ("min-replicas-max-lag", "0", "0"),
            ("replica-announce-ip", "10.1.2.3", "10.1.2.3"),
            ("slave-announce-port", "65535", "65535"),
        ];
        for (name, value, shown) in cases {
            let warnings = c.set_many(&[(name, value)]).unwrap_or_else(|e| panic!("{name} {value}: {e}"));
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            assert_eq!(get(&c, name), shown, "{name} {value}");
        }
        assert!(!c.replica_read_only);
        assert!(!c.replica_serve_stale_data);
        assert_eq!(c.masterauth.as_deref(), Some("sekrit"));
        assert_eq!(c.masteruser.as_deref(), Some("repl"));
        assert_eq!(c.repl_backlog_size, 1 << 30);
        assert_eq!(c.repl_backlog_ttl, 0);
        assert_eq!(c.repl_timeout, 1);
        assert_eq!(c.repl_ping_replica_period, 1);
        assert_eq!(c.min_replicas_to_write, 2_147_483_647);
        assert_eq!(c.min_replicas_max_lag, 0);
        assert_eq!(c.replica_announce_ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(c.replica_announce_port, 65535);
        c.set_many(&[("masterauth", ""), ("masteruser", ""), ("replica-announce-ip", "")]).expect("set");
        assert_eq!((c.masterauth.clone(), c.masteruser.clone(), c.replica_announce_ip.clone()), (None, None, None));
        c.set_many(&[("repl-backlog-ttl", "9223372036854775807")]).expect("set");
        assert_eq!(c.repl_backlog_ttl, i64::MAX as u64);

        // A backlog smaller than 16kb is raised to it, as Redis's CONFIG SET does.
        for small in ["1", "16383", "1k", "16kb"] {
            c.set_many(&[("repl-backlog-size", small)]).expect("set");
            assert_eq!(get(&c, "repl-backlog-size"), "16384", "{small}");
        }
        let (c, _) = apply("repl-backlog-size 100\nrepl-timeout 5\nmin-replicas-to-write 1\n").expect("apply");
        assert_eq!((c.repl_backlog_size, c.repl_timeout, c.min_replicas_to_write), (REPL_BACKLOG_MIN_BYTES, 5, 1));

        // redis-server 7.0.15's errors.
        let p = |name: &str| format!("ERR CONFIG SET failed (possibly related to argument '{name}') - ");
        let cases = [
            ("repl-backlog-size", "0", "argument must be between 1 and 9223372036854775807 inclusive"),
            ("repl-backlog-size", "", "argument must be between 1 and 9223372036854775807 inclusive"),
            (
                "repl-backlog-size",
                "9223372036854775808",
                "argument must be between 1 and 9223372036854775807 inclusive",
            ),
            ("repl-backlog-size", "-1", "argument must be a memory value"),
            ("repl-backlog-size", "1x", "argument must be a memory value"),
            ("repl-backlog-ttl", "-1", "argument must be between 0 and 9223372036854775807 inclusive"),
            ("repl-backlog-ttl", "x", "argument couldn't be parsed into an integer"),
            ("repl-timeout", "0", "argument must be between 1 and 2147483647 inclusive"),
            ("repl-timeout", "2147483648", "argument must be between 1 and 2147483647 inclusive"),
            ("repl-ping-replica-period", "0", "argument must be between 1 and 2147483647 inclusive"),
            ("min-replicas-to-write", "-1", "argument must be between 0 and 2147483647 inclusive"),
            ("min-replicas-max-lag", "2147483648", "argument must be between 0 and 2147483647 inclusive"),
            ("replica-read-only", "maybe", "argument must be 'yes' or 'no'"),
            ("replica-serve-stale-data", "1", "argument must be 'yes' or 'no'"),
            ("replica-announce-port", "65536", "argument must be between 0 and 65535 inclusive"),
            ("replica-announce-port", "-1", "argument must be between 0 and 65535 inclusive"),
        ];
        for (name, value, reason) in cases {
            assert_eq!(set_err(name, value), format!("{}{reason}", p(name)), "{name} {value:?}");
        }
        assert_eq!(
            apply("repl-timeout 0").expect_err("bad").message,
            "argument must be between 1 and 2147483647 inclusive"
        );
        assert_eq!(apply("masterauth a b").expect_err("bad").message, "wrong number of arguments");
    }

    #[test]
    fn multi_arg_settings_take_one_argument_from_files_and_flags() {
        // As Redis reads `--save "900 1"` and `bind "a b"`.
        let (c, _) = apply("save \"900 1 300 10\"\nbind \"10.0.0.1 -::1\"\n").expect("apply");
        assert_eq!(get(&c, "save"), "900 1 300 10");
        assert_eq!(get(&c, "bind"), "10.0.0.1 -::1");
        let mut c = Config::default();
        c.set("client-output-buffer-limit", &["replica 1mb 1mb 0"], false).expect("set");
        assert_eq!(c.obuf_replica, ObufLimit { hard_bytes: 1 << 20, soft_bytes: 1 << 20, soft_secs: 0 });
        // An empty argument is still one (no save points).
        let (c, _) = apply("save \"\"\n").expect("apply");
        assert_eq!(get(&c, "save"), "");
        // A single-argument setting is not split.
        let (c, _) = apply("masterauth \"a b\"\n").expect("apply");
        assert_eq!(c.masterauth.as_deref(), Some("a b"));
    }

    #[test]
    fn include_follows_files_and_refuses_loops() {
        let dir = scratch_dir("include");
        let a = dir.join("a.conf");
        let b = dir.join("b.conf");
        std::fs::write(&b, "port 7001\nappendonly no\n").expect("write");
        std::fs::write(&a, format!("port 7000\ninclude {}\nhz 20\n", b.display())).expect("write");
        let mut c = Config::default();
        let warnings = c.load_file(&a).expect("load");
        assert_eq!(c.port, 7001);
        assert_eq!(c.hz, 20);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("b.conf:2:"), "{warnings:?}");

        // a includes b includes a.
        std::fs::write(&b, format!("include {}\n", a.display())).expect("write");
        let err = Config::default().load_file(&a).expect_err("loop");
        assert!(err.message.contains("include loop"), "{err}");

        // Including itself, from text whose origin is the file.
        let self_text = format!("include {}\n", a.display());
        std::fs::write(&a, &self_text).expect("write");
        let err = Config::default().apply_file_text(&self_text, &a.display().to_string()).expect_err("loop");
        assert!(err.message.contains("include loop"), "{err}");

        // A missing file.
        let err = apply(&format!("include {}\n", dir.join("none.conf").display())).expect_err("missing");
        assert!(err.message.contains("can't open config file"), "{err}");
        assert_eq!(err.line, Some(1));
        assert_eq!(err.origin, "test.conf");

        // An error inside an included file names that file and its line.
        std::fs::write(&b, "\nbogus\n").expect("write");
        let err = apply(&format!("include {}\n", b.display())).expect_err("bad");
        assert_eq!(err.line, Some(2));
        assert!(err.origin.ends_with("b.conf"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn include_patterns() {
        let dir = scratch_dir("glob");
        let confd = dir.join("conf.d");
        std::fs::create_dir_all(&confd).expect("mkdir");
        std::fs::write(confd.join("10-port.conf"), "port 7100\n").expect("write");
        std::fs::write(confd.join("20-port.conf"), "port 7200\n").expect("write");
        std::fs::write(confd.join("notes.txt"), "garbage\n").expect("write");
        std::fs::write(confd.join(".hidden.conf"), "garbage\n").expect("write");
        let (c, _) = apply(&format!("include {}/*.conf\n", confd.display())).expect("apply");
        assert_eq!(c.port, 7200);
        // No match is fine, as in Redis.
        let (c, _) = apply(&format!("include {}/*.none\n", confd.display())).expect("apply");
        assert_eq!(c.port, 6379);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn load_file_tolerates_non_utf8_comments_only() {
        let dir = scratch_dir("utf8");
        let path = dir.join("r.conf");
        std::fs::write(&path, b"# caf\xe9\nport 7000\n").expect("write");
        let mut c = Config::default();
        c.load_file(&path).expect("load");
        assert_eq!(c.port, 7000);
        std::fs::write(&path, b"port 7000\nrequirepass caf\xe9\n").expect("write");
        let err = Config::default().load_file(&path).expect_err("bad");
        assert_eq!(err.line, Some(2));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stock_redis_conf_lines_load() {
        let text = r#"bind 127.0.0.1 -::1
protected-mode yes
port 6379
tcp-backlog 511
timeout 0
tcp-keepalive 300
daemonize no
pidfile /run/redis/redis-server.pid
loglevel notice
logfile /var/log/redis/redis-server.log
databases 16
always-show-logo no
set-proc-title yes
proc-title-template "{title} {listen-addr} {server-mode}"
stop-writes-on-bgsave-error yes
rdbcompression yes
rdbchecksum yes
dbfilename dump.rdb
rdb-del-sync-files no
dir /var/lib/redis
replica-serve-stale-data yes
replica-read-only yes
repl-diskless-sync yes
repl-diskless-sync-delay 5
repl-diskless-sync-max-replicas 0
repl-diskless-load disabled
repl-disable-tcp-nodelay no
replica-priority 100
acllog-max-len 128
lazyfree-lazy-eviction no
lazyfree-lazy-expire no
lazyfree-lazy-server-del no
replica-lazy-flush no
lazyfree-lazy-user-del no
lazyfree-lazy-user-flush no
oom-score-adj no
oom-score-adj-values 0 200 800
disable-thp yes
appendonly no
appendfilename "appendonly.aof"
appenddirname "appendonlydir"
appendfsync everysec
no-appendfsync-on-rewrite no
auto-aof-rewrite-percentage 100
auto-aof-rewrite-min-size 64mb
aof-load-truncated yes
aof-use-rdb-preamble yes
aof-timestamp-enabled no
slowlog-log-slower-than 10000
slowlog-max-len 128
latency-monitor-threshold 0
notify-keyspace-events ""
hash-max-listpack-entries 512
hash-max-listpack-value 64
list-max-listpack-size -2
list-compress-depth 0
set-max-intset-entries 512
zset-max-listpack-entries 128
zset-max-listpack-value 64
hll-sparse-max-bytes 3000
stream-node-max-bytes 4096
stream-node-max-entries 100
activerehashing yes
client-output-buffer-limit normal 0 0 0
client-output-buffer-limit replica 256mb 64mb 60
client-output-buffer-limit pubsub 32mb 8mb 60
hz 10
dynamic-hz yes
aof-rewrite-incremental-fsync yes
rdb-save-incremental-fsync yes
jemalloc-bg-thread yes
"#;
        let (c, warnings) = apply(text).expect("stock redis.conf");
        assert_eq!(c.pidfile, "/run/redis/redis-server.pid");
        assert_eq!(c.logfile, "/var/log/redis/redis-server.log");
        assert_eq!(c.dir, "/var/lib/redis");
        assert_eq!(get(&c, "bind"), "127.0.0.1 -::1");
        assert_eq!(c.bind_addrs().collect::<Vec<_>>(), vec![("127.0.0.1", false), ("::1", true)]);
        assert!(warnings.len() > 40);
    }

    #[test]
    fn set_round_trips() {
        let mut c = Config::default();
        let cases = [
            ("maxmemory", "100mb", "104857600"),
            ("maxmemory", "1Gb", "1073741824"),
            ("maxmemory", "10b", "10"),
            ("maxmemory-policy", "VOLATILE-TTL", "volatile-ttl"),
            ("maxmemory-samples", "10", "10"),
            ("loglevel", "nothing", "nothing"),
            ("timeout", "30", "30"),
            ("tcp-keepalive", "0", "0"),
            ("protected-mode", "NO", "no"),
            ("requirepass", "secret", "secret"),
            ("requirepass", "", ""),
            ("maxclients", "4294967295", "4294967295"),
            ("proto-max-bulk-len", "1mb", "1048576"),
            ("client-query-buffer-limit", "2gb", "2147483648"),
            ("shutdown-timeout", "0", "0"),
            ("dir", "/data", "/data"),
            ("appendonly", "yes", "yes"),
            ("slave-lazy-flush", "yes", "yes"),
            ("list-max-ziplist-size", "-1", "-1"),
            ("dbfilename", "x.rdb", "x.rdb"),
        ];
        for (name, value, shown) in cases {
            c.set_many(&[(name, value)]).unwrap_or_else(|e| panic!("{name} {value}: {e}"));
            assert_eq!(get(&c, name), shown, "{name} {value}");
        }
        assert_eq!(c.maxmemory, 10);
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::VolatileTtl);
        assert_eq!(c.loglevel, LogLevel::Nothing);
        assert_eq!(c.requirepass, None);
        assert_eq!(get(&c, "replica-lazy-flush"), "yes");
        // set() with already-split arguments, at startup, may change immutables.
        assert_eq!(c.set("Port", &["7000"], false), Ok(None));
        assert_eq!(c.port, 7000);
        assert!(c.set("appendonly", &["no"], true).expect("set").is_some());
    }

    #[test]
    fn set_errors_use_redis_wording() {
        let p = |name: &str| format!("ERR CONFIG SET failed (possibly related to argument '{name}') - ");
        assert_eq!(set_err("foo", "1"), "ERR Unknown option or number of arguments for CONFIG SET - 'foo'");
        assert_eq!(set_err("maxmemory", "1x"), format!("{}argument must be a memory value", p("maxmemory")));
        assert_eq!(set_err("maxmemory", "1 mb"), format!("{}argument must be a memory value", p("maxmemory")));
        assert_eq!(
            set_err("protected-mode", "maybe"),
            format!("{}argument must be 'yes' or 'no'", p("protected-mode"))
        );
        assert_eq!(
            set_err("maxmemory-policy", "x"),
            format!(
                "{}argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction",
                p("maxmemory-policy")
            )
        );
        assert_eq!(
            set_err("loglevel", "foo"),
            format!(
                "{}argument(s) must be one of the following: debug, verbose, notice, warning, nothing",
                p("loglevel")
            )
        );
        for bad in ["abc", "+5", " 5", "05", ""] {
            assert_eq!(set_err("timeout", bad), format!("{}argument couldn't be parsed into an integer", p("timeout")));
        }
        assert_eq!(
            set_err("proto-max-bulk-len", "10"),
            format!("{}argument must be between 1048576 and 9223372036854775807 inclusive", p("proto-max-bulk-len"))
        );
        assert_eq!(
            set_err("client-query-buffer-limit", "1000k"),
            format!(
                "{}argument must be between 1048576 and 9223372036854775807 inclusive",
                p("client-query-buffer-limit")
            )
        );
        assert_eq!(
            set_err("maxclients", "0"),
            format!("{}argument must be between 1 and 4294967295 inclusive", p("maxclients"))
        );
        assert_eq!(
            set_err("maxmemory-samples", "0"),
            format!("{}argument must be between 1 and 2147483647 inclusive", p("maxmemory-samples"))
        );
        assert_eq!(
            set_err("tcp-keepalive", "-1"),
            format!("{}argument must be between 0 and 2147483647 inclusive", p("tcp-keepalive"))
        );
        assert_eq!(
            set_err("dbfilename", "a/b"),
            format!("{}dbfilename can't be a path, just a filename", p("dbfilename"))
        );
        // A bad value is reported under the name used, alias or not, in lower case, as
        // redis-server 7.0.15 does.
        assert_eq!(
            set_err("HASH-max-ziplist-value", "x"),
            format!("{}argument must be a memory value", p("hash-max-ziplist-value"))
        );
        assert_eq!(
            set_err("Hash-Max-Listpack-Value", "x"),
            format!("{}argument must be a memory value", p("hash-max-listpack-value"))
        );
        assert_eq!(
            set_err("slave-read-only", "maybe"),
            format!("{}argument must be 'yes' or 'no'", p("slave-read-only"))
        );
        assert_eq!(
            set_err("repl-ping-slave-period", "0"),
            format!("{}argument must be between 1 and 2147483647 inclusive", p("repl-ping-slave-period"))
        );
        assert_eq!(
            set_err("MIN-slaves-to-write", "-1"),
            format!("{}argument must be between 0 and 2147483647 inclusive", p("min-slaves-to-write"))
        );
        // Octal bounds are printed in octal.
        let mut c = Config::default();
        assert_eq!(
            c.set("unixsocketperm", &["1000"], false).expect_err("range").redis_text(),
            format!("{}argument must be between 0 and 777 inclusive", p("unixsocketperm"))
        );
        assert_eq!(
            c.set("unixsocketperm", &["9"], false).expect_err("octal").redis_text(),
            format!("{}argument couldn't be parsed as an octal number", p("unixsocketperm"))
        );
        assert_eq!(
            c.set("port", &["1", "2"], false).expect_err("arity").redis_text(),
            format!("{}wrong number of arguments", p("port"))
        );
    }

    #[test]
    fn immutable_settings_are_refused_at_runtime() {
        for name in [
            "bind",
            "port",
            "unixsocket",
            "unixsocketperm",
            "tcp-backlog",
            "databases",
            "threads",
            "daemonize",
            "supervised",
            "logfile",
            "pidfile",
        ] {
            let mut c = Config::default();
            let e = c.set(name, &["1"], true).expect_err(name);
            assert_eq!(
                e.redis_text(),
                format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config")
            );
            assert_eq!(c, Config::default());
        }
        assert_eq!(
            set_err("DATABASES", "3"),
            "ERR CONFIG SET failed (possibly related to argument 'DATABASES') - can't set immutable config"
        );
    }

    #[test]
    fn set_many_is_all_or_nothing() {
        let mut c = Config::default();
        let before = c.clone();
        let e = c.set_many(&[("maxmemory", "1mb"), ("maxmemory-policy", "bad")]).expect_err("bad policy");
        assert!(matches!(e, SetError::InvalidValue { ref name, .. } if name == "maxmemory-policy"));
        assert_eq!(c, before);

        let e = c.set_many(&[("port", "1"), ("PORT", "2")]).expect_err("dup");
        // port is immutable: that is found first, as in Redis.
        assert!(matches!(e, SetError::Immutable { .. }));
        let e = c.set_many(&[("timeout", "1"), ("TIMEOUT", "2")]).expect_err("dup");
        assert_eq!(
            e.redis_text(),
            "ERR CONFIG SET failed (possibly related to argument 'TIMEOUT') - duplicate parameter"
        );
        // An alias and its canonical name are two names, as in Redis: the later value
        // wins. The same name twice, in any case, is a duplicate.
        let mut both = c.clone();
        both.set_many(&[("replica-lazy-flush", "yes"), ("slave-lazy-flush", "no")]).expect("alias and name");
        assert_eq!(get(&both, "replica-lazy-flush"), "no");
        both.set_many(&[("slave-read-only", "no"), ("replica-read-only", "yes")]).expect("alias and name");
        assert!(both.replica_read_only);
        let e = c.set_many(&[("slave-lazy-flush", "yes"), ("SLAVE-lazy-flush", "no")]).expect_err("dup");
        assert!(matches!(e, SetError::Duplicate { ref name } if name == "SLAVE-lazy-flush"));
        // Names are all checked before any value: the unknown name wins.
        let e = c.set_many(&[("maxmemory", "bad"), ("foo", "1")]).expect_err("unknown");
        assert!(matches!(e, SetError::UnknownOption { ref name } if name == "foo"));
        // The first name problem in order wins.
        let e = c.set_many(&[("maxmemory", "1"), ("databases", "2"), ("foo", "3")]).expect_err("immutable");
        assert!(matches!(e, SetError::Immutable { ref name } if name == "databases"));
        assert_eq!(c, before);

        let warnings =
            c.set_many(&[("maxmemory", "1mb"), ("maxmemory-policy", "allkeys-lfu"), ("appendonly", "no")]).expect("ok");
        assert_eq!(c.maxmemory, 1 << 20);
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::AllkeysLfu);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("appendonly"));
    }

    #[test]
    fn get_matching_patterns() {
        let c = Config::default();
        let names = |p: &str| c.get_matching(p).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(
            names("maxmemory*"),
            vec!["maxmemory", "maxmemory-eviction-tenacity", "maxmemory-policy", "maxmemory-samples"]
        );
        assert_eq!(c.get_matching("MAXMEM*-policy"), vec![("maxmemory-policy".to_string(), "noeviction".to_string())]);
        // Exact lookups answer under the name as written.
        assert_eq!(c.get_matching("MaxMemory"), vec![("MaxMemory".to_string(), "0".to_string())]);
        assert_eq!(
            c.get_matching("hash-max-ziplist-entries"),
            vec![("hash-max-ziplist-entries".to_string(), "512".to_string())]
        );
        assert!(c.get_matching("nosuch").is_empty());
        assert!(c.get_matching("nosuch*").is_empty());
        assert_eq!(names("po?t"), vec!["port"]);
        assert_eq!(names("[pq]ort"), vec!["port"]);
        assert_eq!(names("[^a-o]ort"), vec!["port"]);
        assert_eq!(names("[o-p]ORT"), vec!["port"]);
        assert_eq!(
            names("*ziplist*"),
            vec![
                "hash-max-ziplist-entries",
                "hash-max-ziplist-value",
                "list-max-ziplist-size",
                "zset-max-ziplist-entries",
                "zset-max-ziplist-value"
            ]
        );
        let all = c.get_matching("*");
        let total = specs().map(|s| 1 + usize::from(s.alias.is_some())).sum::<usize>();
        assert_eq!(all.len(), total);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(all.iter().any(|(n, v)| n == "requirepass" && v.is_empty()));
        assert!(all.iter().any(|(n, v)| n == "bind" && v == "127.0.0.1"));
    }

    #[test]
    fn glob_like_stringmatchlen() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        let mi = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), true);
        assert!(m("*", "anything"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("a**", "a"));
        assert!(m("?", "x"));
        assert!(!m("?", ""));
        assert!(!m("?", "xy"));
        assert!(m("h[ae]llo", "hello"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-f]llo", "hello"));
        assert!(m("h[f-a]llo", "hello"));
        assert!(m(r"h\*llo", "h*llo"));
        assert!(!m(r"h\*llo", "hello"));
        assert!(m(r"[\]]", "]"));
        assert!(m("[abc", "c"));
        assert!(!m("abc", "ABC"));
        assert!(mi("abc", "ABC"));
        assert!(mi("[A-C]x", "bX"));
        assert!(m("a\\", "a\\"));
        // Many stars against a long text that almost matches stays fast.
        let text = "a".repeat(200);
        let pattern = format!("{}b", "*a".repeat(30));
        assert!(!m(&pattern, &text));
    }

    #[test]
    fn enums_parse_any_case() {
        assert_eq!(LogLevel::from_name("DeBuG"), Some(LogLevel::Debug));
        assert_eq!(LogLevel::from_name("loud"), None);
        assert!(LogLevel::Warning > LogLevel::Notice);
        assert_eq!(MaxmemoryPolicy::from_name("ALLKEYS-random"), Some(MaxmemoryPolicy::AllkeysRandom));
        assert!(MaxmemoryPolicy::VolatileTtl.volatile_only());
        assert!(!MaxmemoryPolicy::Noeviction.evicts());
        for (i, name) in MaxmemoryPolicy::NAMES.iter().enumerate() {
            assert_eq!(MaxmemoryPolicy::ALL[i].as_str(), *name);
        }
        for (i, name) in LogLevel::NAMES.iter().enumerate() {
            assert_eq!(LogLevel::ALL[i].to_string(), *name);
        }
    }

    #[test]
    fn bind_forms() {
        let mut c = Config::default();
        c.set("bind", &["*", "-::*"], false).expect("set");
        assert_eq!(get(&c, "bind"), "* -::*");
        c.set("bind", &[""], false).expect("set");
        assert!(c.bind.is_empty());
        assert_eq!(get(&c, "bind"), "");
        c.set("bind", &["10.0.0.1"], false).expect("set");
        assert_eq!(c.bind, vec!["10.0.0.1"]);
        assert_eq!(c.bind_optional, vec![false]);
    }
}
