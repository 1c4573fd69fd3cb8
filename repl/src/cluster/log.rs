//! The control log: the cluster configuration replicated by Raft over the
//! 3 or 5 designated nodes (docs/decisions/0006-control-log.md). It wraps
//! raft-rs's `RawNode` and does no I/O: the control thread calls
//! [`ControlLog::tick`] every [`TICK_MS`], hands it the peers' messages
//! with [`ControlLog::step`] and proposals with [`ControlLog::propose`],
//! and carries out what [`ControlLog::ready`] returns, in order: make
//! [`Output::persist`] durable, then send [`Output::messages`], then
//! install the last of [`Output::installed`].
//!
//! Entries are [`ConfigChange`]s as JSON. A committed entry is applied to
//! the log's own [`ClusterConfig`] with the epoch one above the last one,
//! so every node applies the same changes in the same order and computes
//! the same epochs; a change that does not apply (an unknown node, say) is
//! skipped the same way everywhere. Ownership therefore moves only with a
//! committed epoch, which only a majority of the voters can make.
//!
//! The log is compacted as etcd and TiKV do it. Once the applied index is
//! more than [`Compaction::entries`] past the log's first index, the log
//! takes a snapshot: the applied configuration (JSON) with the index and
//! term of the last entry it covers and the voters (the `ConfState`). The
//! in-memory log then drops everything but the last [`Compaction::keep`]
//! entries the snapshot covers (so a follower slightly behind still gets
//! appends), and the durable state keeps only the snapshot and the
//! entries after it, so the log file stops growing. A follower whose log
//! ends before the leader's first index gets the snapshot in a
//! `MsgSnapshot` instead of entries; it installs the snapshot's
//! configuration the way it installs a committed entry's (through
//! [`Output::installed`], with the epoch the configuration carries) and
//! goes on from the index after it. A restart loads the snapshot and the
//! entries after it. A snapshot from a peer is checked before Raft sees
//! it (size, voters, a configuration that parses and validates); a
//! malformed one is dropped with a warning.

use super::config::{ClusterConfig, ConfigChange};
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot};
use raft::{Config, RaftState, RawNode, SnapshotStatus, StateRole, Storage, StorageError};
use serde::{Deserialize, Serialize};

/// How often the control thread ticks the log.
pub const TICK_MS: u64 = 100;
/// Ticks without a leader before a follower campaigns (about one second).
pub const ELECTION_TICKS: usize = 10;
/// Ticks between the leader's heartbeats.
pub const HEARTBEAT_TICKS: usize = 2;
/// The largest message accepted from a peer.
pub const MESSAGE_BYTES_MAX: usize = 4 << 20;
/// The largest change accepted as a proposal.
pub const CHANGE_BYTES_MAX: usize = 1 << 20;
/// The most voters a control log has.
pub const VOTERS_MAX: usize = 5;
/// The most append messages in flight to one follower.
const APPENDS_IN_FLIGHT_MAX: usize = 64;
/// Applied entries past the log's first index that make a snapshot.
pub const COMPACT_ENTRIES: u64 = 1024;
/// Entries a snapshot covers that stay in memory after compaction.
pub const COMPACT_KEEP: u64 = 16;
/// The largest configuration a snapshot carries: half a message, so the
/// message with its metadata stays under [`MESSAGE_BYTES_MAX`]. A larger
/// one is not taken (the log is then not compacted) and a larger one from
/// a peer is refused.
pub const SNAPSHOT_BYTES_MAX: usize = MESSAGE_BYTES_MAX / 2;

/// The highest index or term a snapshot from a peer may carry (far beyond
/// any real log, far enough from `u64::MAX` that raft-rs's `index + 1`
/// cannot overflow).
const INDEX_MAX: u64 = u64::MAX / 2;

/// When the log is compacted.
#[derive(Clone, Copy, Debug)]
pub struct Compaction {
    /// A snapshot is taken once the applied index is more than this many
    /// entries past the log's first index.
    pub entries: u64,
    /// How many of the entries a snapshot covers stay in memory (fewer
    /// than `entries`), for followers slightly behind.
    pub keep: u64,
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction { entries: COMPACT_ENTRIES, keep: COMPACT_KEEP }
    }
}

impl Compaction {
    /// A snapshot every `entries` applied entries (at least 2), keeping
    /// [`COMPACT_KEEP`] of them or, for a small `entries`, half of them.
    pub fn every(entries: u64) -> Compaction {
        let entries = entries.max(2);
        Compaction { entries, keep: COMPACT_KEEP.min(entries / 2) }
    }
}

/// Election timing. raft-rs draws each election timeout from
/// `election_ticks..max_election_ticks` with a random source of its own,
/// so a seeded test sets `max_election_ticks = election_ticks + 1` and
/// jitters the ticks it delivers instead.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The shortest election timeout, in ticks.
    pub election_ticks: usize,
    /// One past the longest election timeout, in ticks.
    pub max_election_ticks: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { election_ticks: ELECTION_TICKS, max_election_ticks: 2 * ELECTION_TICKS }
    }
}

/// What the node must keep across restarts: Raft's hard state, the last
/// snapshot and the log after it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durable {
    /// The current term.
    pub term: u64,
    /// Whom this node voted for in `term` (0: nobody).
    pub vote: u64,
    /// The highest index known committed.
    pub commit: u64,
    /// The last snapshot taken or received (None before the first; files
    /// written before compaction existed have none).
    #[serde(default)]
    pub snapshot: Option<DurableSnapshot>,
    /// The log after the snapshot (from index 1 without one).
    pub entries: Vec<DurableEntry>,
}

/// A snapshot as kept on disk: the configuration after the entry at
/// `index`, which stands for every entry up to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableSnapshot {
    /// The index of the last entry it covers.
    pub index: u64,
    /// That entry's term.
    pub term: u64,
    /// The voters (Raft's `ConfState`).
    pub voters: Vec<u64>,
    /// The configuration applied up to `index`.
    pub config: ClusterConfig,
}

/// One log entry as kept on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableEntry {
    /// Its index.
    pub index: u64,
    /// The term it was proposed in.
    pub term: u64,
    /// The change, as JSON (empty for a new leader's first entry).
    pub data: Vec<u8>,
    /// Who proposed it ([`ProposalId`] as bytes), or empty.
    pub context: Vec<u8>,
}

/// A proposal's identity, chosen by the proposer (at random, so that it is
/// not reused across restarts), so the proposer learns the outcome when
/// the entry commits.
pub type ProposalId = u64;

/// The most proposals awaiting their outcome; the oldest is forgotten
/// (its caller has given up on it long before).
pub const PROPOSALS_PENDING_MAX: usize = 256;

/// What the driver has to do after a step; see the module's doc for the order.
#[derive(Debug, Default)]
pub struct Output {
    /// The whole durable state, when it changed: write it before sending.
    pub persist: Option<Durable>,
    /// Messages for peers (each names its `to`).
    pub messages: Vec<Message>,
    /// The configurations committed by this step, in log order; the
    /// driver installs the last one.
    pub installed: Vec<ClusterConfig>,
    /// This node's proposals that committed: the epoch they made, or why
    /// the change did not apply.
    pub results: Vec<(ProposalId, Result<u64, String>)>,
    /// The index of a snapshot from the leader that this step applied.
    pub restored: Option<u64>,
    /// The index of a snapshot this step took (the log was compacted).
    pub compacted: Option<u64>,
}

/// Why a proposal was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// No leader is known (an election is going on, or this node is cut off).
    NoLeader,
    /// The change is larger than [`CHANGE_BYTES_MAX`].
    TooLarge,
    /// Raft refused it (a leader transfer, say).
    Refused(String),
}

impl std::fmt::Display for ProposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProposeError::NoLeader => f.write_str("no control log leader is known"),
            ProposeError::TooLarge => write!(f, "the change is larger than {CHANGE_BYTES_MAX} bytes"),
            ProposeError::Refused(e) => write!(f, "the control log refused the change: {e}"),
        }
    }
}

/// The log as Raft reads it: the hard state, the voters, the entries after
/// the last one dropped, and the last snapshot (whose configuration is
/// what a lagging follower is sent). raft-rs's `MemStorage` cannot serve
/// a snapshot with data, nor answer the term of the last dropped entry
/// while keeping a tail, hence this one.
struct LogStore {
    hard: HardState,
    conf: ConfState,
    /// The index and term of the last entry dropped ((0, 0): none).
    dropped: (u64, u64),
    /// The log from index `dropped.0 + 1` on.
    entries: Vec<Entry>,
    /// The last snapshot taken or received (empty: none).
    snapshot: Snapshot,
}

impl LogStore {
    fn first_index(&self) -> u64 {
        self.dropped.0 + 1
    }

    fn last_index(&self) -> u64 {
        self.dropped.0 + self.entries.len() as u64
    }

    fn term_of(&self, index: u64) -> raft::Result<u64> {
        if index == self.dropped.0 {
            return Ok(self.dropped.1);
        }
        if index < self.dropped.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let at = usize::try_from(index - self.first_index()).map_err(|_| StorageError::Unavailable)?;
        self.entries.get(at).map(|e| e.term).ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    /// Appends `entries`, replacing whatever the log has from their first index on.
    fn append(&mut self, entries: &[Entry]) -> Result<(), String> {
        let Some(first) = entries.first() else { return Ok(()) };
        if first.index <= self.dropped.0 || first.index > self.last_index() + 1 {
            return Err(format!(
                "entries from {} do not follow the log ({}..={})",
                first.index,
                self.first_index(),
                self.last_index()
            ));
        }
        self.entries.truncate((first.index - self.first_index()) as usize);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Makes `snapshot` (from the leader) the whole log: every entry goes,
    /// and the log goes on from the index after it.
    fn apply_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.get_metadata();
        self.dropped = (meta.index, meta.term);
        self.entries.clear();
        self.hard.term = self.hard.term.max(meta.term);
        self.hard.commit = self.hard.commit.max(meta.index);
        self.conf = meta.get_conf_state().clone();
        self.snapshot = snapshot;
    }

    /// Keeps `snapshot` (taken here, at an applied index) and drops the
    /// entries it covers but the last `keep`.
    fn compact(&mut self, snapshot: Snapshot, keep: u64) -> Result<(), String> {
        let index = snapshot.get_metadata().index;
        if index > self.last_index() {
            return Err(format!("snapshot at {index} beyond the log's last index {}", self.last_index()));
        }
        let drop_to = index.saturating_sub(keep);
        if drop_to > self.dropped.0 {
            let term = self.term_of(drop_to).map_err(|e| e.to_string())?;
            self.entries.drain(..(drop_to - self.dropped.0) as usize);
            self.dropped = (drop_to, term);
        }
        self.snapshot = snapshot;
        Ok(())
    }
}

/// The store as raft-rs sees it, behind a handle so that [`ControlLog`]
/// can reach it through `RawNode::mut_store`.
struct Store(LogStore);

impl Storage for Store {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.0.hard.clone(), self.0.conf.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: raft::GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let log = &self.0;
        if low < log.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > log.last_index() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let from = (low - log.first_index()) as usize;
        let to = (high - log.first_index()) as usize;
        let mut entries = log.entries[from..to].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        self.0.term_of(index)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.0.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.0.last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let snapshot = &self.0.snapshot;
        // Raft asks only once entries it needs are gone, and they go only
        // with a snapshot taken; a newer one than kept is not made on demand.
        if snapshot.get_metadata().index == 0 || snapshot.get_metadata().index < request_index {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(snapshot.clone())
    }
}

/// One voter's control log.
pub struct ControlLog {
    id: u64,
    raw: RawNode<Store>,
    /// The voters, sorted: the `ConfState` every snapshot must carry.
    voters: Vec<u64>,
    /// The configuration after the last applied entry.
    applied: ClusterConfig,
    /// The index of the last applied entry (or snapshot).
    applied_index: u64,
    /// A snapshot's configuration loaded at restart, installed by the
    /// first [`ready`](Self::ready).
    loaded: Option<ClusterConfig>,
    compaction: Compaction,
    /// Whether a configuration too large to snapshot was reported already.
    too_large_reported: bool,
    durable: Durable,
    /// This node's proposals not yet seen committed, oldest first.
    pending: std::collections::VecDeque<ProposalId>,
}

impl ControlLog {
    /// A voter `id` (1-based, in `voters`) with the state it kept, or
    /// `Durable::default()` the first time. The snapshot kept, if any, is
    /// loaded and the committed entries after it are applied again, so the
    /// first [`ready`](Self::ready) installs the newest committed
    /// configuration. Compacts with [`Compaction::default`] until
    /// [`set_compaction`](Self::set_compaction).
    pub fn restore(id: u64, voters: &[u64], durable: Durable, timing: Timing) -> Result<ControlLog, String> {
        if !voters.contains(&id) || voters.len() > VOTERS_MAX || voters.contains(&0) {
            return Err(format!("control log id {id} with voters {voters:?}: ids are 1.., at most {VOTERS_MAX}"));
        }
        let mut sorted = voters.to_vec();
        sorted.sort_unstable();
        let conf = ConfState::from((sorted.clone(), Vec::new()));
        let mut log = LogStore {
            hard: HardState::default(),
            conf: conf.clone(),
            dropped: (0, 0),
            entries: Vec::new(),
            snapshot: Snapshot::default(),
        };
        let mut applied = ClusterConfig { epoch: 0, nodes: Vec::new(), migrations: Vec::new() };
        let mut applied_index = 0;
        let mut loaded = None;
        if let Some(snap) = &durable.snapshot {
            let mut kept = snap.voters.clone();
            kept.sort_unstable();
            if kept != sorted {
                return Err(format!("control log: the snapshot's voters {kept:?} are not {sorted:?}"));
            }
            log.apply_snapshot(snapshot_of(snap, &conf)?);
            applied = snap.config.clone();
            applied_index = snap.index;
            // Epoch 0 is the empty configuration before the first change.
            loaded = Some(snap.config.clone()).filter(|c| c.epoch > 0);
        }
        let entries: Vec<Entry> = durable.entries.iter().map(entry_of).collect();
        log.append(&entries).map_err(|e| format!("control log: stored entries do not follow: {e}"))?;
        let last = log.last_index();
        log.hard = HardState {
            term: durable.term.max(log.dropped.1),
            vote: durable.vote,
            commit: durable.commit.max(log.dropped.0).min(last),
            ..HardState::default()
        };
        let config = Config {
            id,
            election_tick: timing.election_ticks,
            heartbeat_tick: HEARTBEAT_TICKS,
            min_election_tick: timing.election_ticks,
            max_election_tick: timing.max_election_ticks,
            pre_vote: true,
            check_quorum: true,
            max_size_per_msg: MESSAGE_BYTES_MAX as u64 / 2,
            max_inflight_msgs: APPENDS_IN_FLIGHT_MAX,
            applied: 0,
            ..Config::default()
        };
        config.validate().map_err(|e| format!("control log settings: {e}"))?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&config, Store(log), &logger).map_err(|e| format!("control log: {e}"))?;
        Ok(ControlLog {
            id,
            raw,
            voters: sorted,
            applied,
            applied_index,
            loaded,
            compaction: Compaction::default(),
            too_large_reported: false,
            durable,
            pending: Default::default(),
        })
    }

    /// Sets when the log is compacted.
    pub fn set_compaction(&mut self, compaction: Compaction) {
        self.compaction = compaction;
    }

    /// This voter's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The leader this node knows of (0: none).
    pub fn leader(&self) -> u64 {
        self.raw.raft.leader_id
    }

    /// True when this node leads.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The configuration after the last applied entry (epoch 0, no nodes,
    /// before the first one).
    pub fn applied(&self) -> &ClusterConfig {
        &self.applied
    }

    /// The index of the last entry applied (or of the snapshot applied last).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// One tick of [`TICK_MS`].
    pub fn tick(&mut self) {
        self.raw.tick();
    }

    /// A message from a peer. Messages of another cluster or stale terms
    /// are Raft's to ignore; an error only says this one was dropped. A
    /// snapshot is checked first ([`check_snapshot`](Self::check_snapshot)):
    /// raft-rs trusts its voters and data, so a malformed one never
    /// reaches it.
    pub fn step(&mut self, message: Message) -> Result<(), String> {
        if message.to != self.id {
            return Err(format!("message for {} reached {}", message.to, self.id));
        }
        if message.get_msg_type() == MessageType::MsgSnapshot {
            if let Err(e) = self.check_snapshot(message.get_snapshot()) {
                tracing::warn!("cluster: control log snapshot from {} refused: {e}", message.from);
                return Err(format!("snapshot refused: {e}"));
            }
        }
        self.raw.step(message).map_err(|e| e.to_string())
    }

    /// A snapshot from a peer is acceptable: not empty, the voters this
    /// log has (and nothing else in its `ConfState`), and a configuration
    /// of at most [`SNAPSHOT_BYTES_MAX`] that parses and validates.
    fn check_snapshot(&self, snapshot: &Snapshot) -> Result<ClusterConfig, String> {
        let meta = snapshot.get_metadata();
        if meta.index == 0 || meta.term == 0 {
            return Err(format!("empty snapshot (index {}, term {})", meta.index, meta.term));
        }
        // raft-rs counts on from the index; one near the end of u64 would overflow.
        if meta.index > INDEX_MAX || meta.term > INDEX_MAX {
            return Err(format!("snapshot index {} or term {} out of range", meta.index, meta.term));
        }
        let cs = meta.get_conf_state();
        let mut voters = cs.voters.clone();
        voters.sort_unstable();
        if voters != self.voters
            || !cs.learners.is_empty()
            || !cs.voters_outgoing.is_empty()
            || !cs.learners_next.is_empty()
            || cs.auto_leave
        {
            return Err(format!("voters {:?} (and learners {:?}), not {:?}", cs.voters, cs.learners, self.voters));
        }
        config_of(&snapshot.data)
    }

    /// Proposes `change`; a follower forwards it to the leader. The
    /// outcome comes back in [`Output::results`] under `id` if
    /// it commits; a proposal lost in a leader change never does, so the
    /// caller gives up after a deadline and may propose it again.
    pub fn propose(&mut self, change: &ConfigChange, id: ProposalId) -> Result<(), ProposeError> {
        let data = serde_json::to_vec(change).map_err(|e| ProposeError::Refused(e.to_string()))?;
        if data.len() > CHANGE_BYTES_MAX {
            return Err(ProposeError::TooLarge);
        }
        if self.leader() == 0 {
            return Err(ProposeError::NoLeader);
        }
        match self.raw.propose(id.to_be_bytes().to_vec(), data) {
            Ok(()) => {
                if self.pending.len() == PROPOSALS_PENDING_MAX {
                    self.pending.pop_front();
                }
                self.pending.push_back(id);
                Ok(())
            }
            Err(raft::Error::ProposalDropped) => Err(ProposeError::NoLeader),
            Err(e) => Err(ProposeError::Refused(e.to_string())),
        }
    }

    /// Collects what the driver must do now (see [`Output`]).
    pub fn ready(&mut self) -> Result<Output, String> {
        let mut out = Output::default();
        if let Some(config) = self.loaded.take() {
            out.installed.push(config);
        }
        if !self.raw.has_ready() {
            return Ok(out);
        }
        let mut rd = self.raw.ready();
        out.messages.extend(rd.take_messages());
        let mut changed = false;
        if !rd.snapshot().is_empty() {
            // Checked by `step` on its way in; checked again rather than trusted.
            let snapshot = rd.snapshot().clone();
            let config = self.check_snapshot(&snapshot).map_err(|e| format!("control log snapshot: {e}"))?;
            let meta = snapshot.get_metadata();
            let index = meta.index;
            self.durable.snapshot =
                Some(DurableSnapshot { index, term: meta.term, voters: self.voters.clone(), config: config.clone() });
            self.durable.entries.clear();
            self.durable.commit = self.durable.commit.max(index);
            self.raw.mut_store().0.apply_snapshot(snapshot);
            // Installed as a committed entry's configuration is: only a
            // newer epoch (the entries it covers may have changed nothing).
            if config.epoch > self.applied.epoch {
                out.installed.push(config.clone());
            }
            self.applied = config;
            self.applied_index = index;
            out.restored = Some(index);
            changed = true;
        }
        self.apply(rd.take_committed_entries(), &mut out);
        let entries = rd.take_entries();
        if !entries.is_empty() {
            self.raw.mut_store().0.append(&entries).map_err(|e| format!("control log append: {e}"))?;
            let first = entries[0].index;
            self.durable.entries.retain(|e| e.index < first);
            self.durable.entries.extend(entries.iter().map(durable_of));
            changed = true;
        }
        if let Some(hs) = rd.hs() {
            self.raw.mut_store().0.hard = hs.clone();
            self.durable.term = hs.term;
            self.durable.vote = hs.vote;
            self.durable.commit = hs.commit;
            changed = true;
        }
        out.messages.extend(rd.take_persisted_messages());
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().0.hard.commit = commit;
            self.durable.commit = commit;
            changed = true;
        }
        out.messages.extend(light.take_messages());
        self.apply(light.take_committed_entries(), &mut out);
        self.raw.advance_apply();
        if self.compact(&mut out)? {
            changed = true;
        }
        // The transport is best effort: a snapshot is reported sent at
        // once. The leader then probes the follower from the index after
        // it, and sends the snapshot again if the follower lacks it.
        for m in &out.messages {
            if m.get_msg_type() == MessageType::MsgSnapshot {
                self.raw.report_snapshot(m.to, SnapshotStatus::Finish);
            }
        }
        if changed {
            out.persist = Some(self.durable.clone());
        }
        Ok(out)
    }

    /// Takes a snapshot at the applied index and compacts the log once it
    /// is more than [`Compaction::entries`] past the first index; true
    /// when it did.
    fn compact(&mut self, out: &mut Output) -> Result<bool, String> {
        let store = &self.raw.store().0;
        if self.applied_index <= store.first_index() + self.compaction.entries {
            return Ok(false);
        }
        let index = self.applied_index;
        let term = store.term_of(index).map_err(|e| format!("control log: no term at applied index {index}: {e}"))?;
        let data = serde_json::to_vec(&self.applied).map_err(|e| format!("control log snapshot: {e}"))?;
        if data.len() > SNAPSHOT_BYTES_MAX {
            if !self.too_large_reported {
                tracing::warn!(
                    "cluster: control log not compacted: the configuration is {} bytes, a snapshot at most {}",
                    data.len(),
                    SNAPSHOT_BYTES_MAX
                );
                self.too_large_reported = true;
            }
            return Ok(false);
        }
        let mut snapshot = Snapshot { data: data.into(), ..Snapshot::default() };
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(ConfState::from((self.voters.clone(), Vec::new())));
        let keep = self.compaction.keep.min(self.compaction.entries.saturating_sub(1));
        self.raw.mut_store().0.compact(snapshot, keep).map_err(|e| format!("control log compaction: {e}"))?;
        self.durable.snapshot =
            Some(DurableSnapshot { index, term, voters: self.voters.clone(), config: self.applied.clone() });
        self.durable.entries.retain(|e| e.index > index);
        out.compacted = Some(index);
        Ok(true)
    }

    /// Applies committed entries in log order.
    fn apply(&mut self, entries: Vec<Entry>, out: &mut Output) {
        for entry in entries {
            self.applied_index = entry.index;
            if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
                continue;
            }
            let epoch = self.applied.epoch + 1;
            let result = match serde_json::from_slice::<ConfigChange>(&entry.data) {
                Ok(change) => {
                    // The log, not the proposer, numbers the epochs.
                    let change = match change {
                        ConfigChange::Replace(config) => ConfigChange::Replace(ClusterConfig { epoch, ..config }),
                        other => other,
                    };
                    match self.applied.apply(epoch, &change) {
                        Ok(next) => {
                            debug_assert!(next.epoch > self.applied.epoch, "epochs only grow");
                            self.applied = next;
                            out.installed.push(self.applied.clone());
                            Ok(epoch)
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(format!("undecodable change: {e}")),
            };
            if let Ok(bytes) = <[u8; 8]>::try_from(&entry.context[..]) {
                let proposal = u64::from_be_bytes(bytes);
                if let Some(at) = self.pending.iter().position(|&p| p == proposal) {
                    self.pending.remove(at);
                    out.results.push((proposal, result));
                }
            }
        }
    }
}

/// A kept snapshot as Raft's, its configuration as JSON.
fn snapshot_of(kept: &DurableSnapshot, conf: &ConfState) -> Result<Snapshot, String> {
    let data = serde_json::to_vec(&kept.config).map_err(|e| format!("control log snapshot: {e}"))?;
    let mut snapshot = Snapshot { data: data.into(), ..Snapshot::default() };
    let meta = snapshot.mut_metadata();
    meta.index = kept.index;
    meta.term = kept.term;
    meta.set_conf_state(conf.clone());
    Ok(snapshot)
}

/// A snapshot's configuration from its data: at most
/// [`SNAPSHOT_BYTES_MAX`] of JSON that parses and validates.
fn config_of(data: &[u8]) -> Result<ClusterConfig, String> {
    if data.len() > SNAPSHOT_BYTES_MAX {
        return Err(format!("configuration of {} bytes (at most {SNAPSHOT_BYTES_MAX})", data.len()));
    }
    let config: ClusterConfig = serde_json::from_slice(data).map_err(|e| format!("undecodable configuration: {e}"))?;
    config.validate().map_err(|e| format!("invalid configuration: {e}"))?;
    Ok(config)
}

fn entry_of(e: &DurableEntry) -> Entry {
    let mut entry = Entry::default();
    entry.set_entry_type(EntryType::EntryNormal);
    entry.index = e.index;
    entry.term = e.term;
    entry.data = e.data.clone().into();
    entry.context = e.context.clone().into();
    entry
}

fn durable_of(e: &Entry) -> DurableEntry {
    DurableEntry { index: e.index, term: e.term, data: e.data.to_vec(), context: e.context.to_vec() }
}

/// A message as bytes for the wire (protobuf, raft-rs's own encoding).
pub fn encode_message(message: &Message) -> Result<Vec<u8>, String> {
    message.write_to_bytes().map_err(|e| e.to_string())
}

/// A message from a peer's bytes. The bytes are checked first for the
/// protobuf group tags that protobuf 2's parser skips by recursion
/// (RUSTSEC-2024-0437): Raft's messages have no groups, so any is refused
/// before the parser sees it, and no input can make it recurse.
pub fn decode_message(bytes: &[u8]) -> Result<Message, String> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(format!("message of {} bytes (at most {MESSAGE_BYTES_MAX})", bytes.len()));
    }
    check_wire(bytes, Shape::Message)?;
    Message::parse_from_bytes(bytes).map_err(|e| e.to_string())
}

/// The nested messages of raft's `Message`, by field number.
#[derive(Clone, Copy)]
enum Shape {
    Message,
    Entry,
    Snapshot,
    SnapshotMetadata,
    ConfState,
}

impl Shape {
    fn nested(self, field: u64) -> Option<Shape> {
        match (self, field) {
            (Shape::Message, 7) => Some(Shape::Entry),
            (Shape::Message, 9) => Some(Shape::Snapshot),
            (Shape::Snapshot, 2) => Some(Shape::SnapshotMetadata),
            (Shape::SnapshotMetadata, 1) => Some(Shape::ConfState),
            _ => None,
        }
    }
}

/// Walks protobuf wire format, refusing group tags (wire types 3 and 4)
/// at every level raft's schema nests messages. Nesting is at most four
/// deep by the schema, so this recursion is bounded.
fn check_wire(mut bytes: &[u8], shape: Shape) -> Result<(), String> {
    while !bytes.is_empty() {
        let tag = varint(&mut bytes)?;
        let field = tag >> 3;
        match tag & 7 {
            0 => {
                varint(&mut bytes)?;
            }
            1 => bytes = bytes.get(8..).ok_or("truncated fixed64")?,
            5 => bytes = bytes.get(4..).ok_or("truncated fixed32")?,
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).map_err(|_| "length too large")?;
                let inner = bytes.get(..len).ok_or("truncated field")?;
                if let Some(nested) = shape.nested(field) {
                    check_wire(inner, nested)?;
                }
                bytes = &bytes[len..];
            }
            other => return Err(format!("wire type {other} (groups are refused) in field {field}")),
        }
    }
    Ok(())
}

fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or("truncated varint")?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::config::{Node, NodeId, SLOTS, SlotRange};

    const TIMING: Timing = Timing { election_ticks: 10, max_election_ticks: 11 };
    const STEPS_MAX: usize = 2000;

    fn node_id(n: usize) -> NodeId {
        NodeId::parse(&format!("{:040x}", n + 1)).unwrap()
    }

    fn initial() -> ConfigChange {
        let nodes = SlotRange::split_even(3, SLOTS)
            .into_iter()
            .enumerate()
            .map(|(i, range)| Node { slots: vec![range], ..Node::primary(node_id(i), "127.0.0.1", 7000 + i as u16) })
            .collect();
        ConfigChange::Replace(ClusterConfig { epoch: 0, nodes, migrations: Vec::new() })
    }

    fn assign(n: u64) -> ConfigChange {
        let slot = (n % SLOTS as u64) as u16;
        ConfigChange::AssignSlots { node: node_id((n % 3) as usize), ranges: vec![SlotRange::new(slot, slot)] }
    }

    /// Voters 1..=size on a lossless network; `up[i]` false cuts node i off.
    struct Net {
        logs: Vec<ControlLog>,
        disk: Vec<Durable>,
        up: Vec<bool>,
        queue: Vec<Message>,
        installed: Vec<Option<ClusterConfig>>,
        restored: Vec<u64>,
        results: std::collections::HashMap<ProposalId, Result<u64, String>>,
        /// Jitters the ticks so that elections do not split for ever.
        rng: fastrand::Rng,
    }

    impl Net {
        fn new(size: u64, compaction: Compaction) -> Net {
            let voters: Vec<u64> = (1..=size).collect();
            let logs = voters
                .iter()
                .map(|&id| {
                    let mut log = ControlLog::restore(id, &voters, Durable::default(), TIMING).unwrap();
                    log.set_compaction(compaction);
                    log
                })
                .collect();
            let n = size as usize;
            Net {
                logs,
                disk: vec![Durable::default(); n],
                up: vec![true; n],
                queue: Vec::new(),
                installed: vec![None; n],
                restored: vec![0; n],
                results: Default::default(),
                rng: fastrand::Rng::with_seed(size),
            }
        }

        fn step(&mut self) {
            for log in &mut self.logs {
                if self.rng.u32(0..10) < 9 {
                    log.tick();
                }
            }
            for m in std::mem::take(&mut self.queue) {
                let (from, to) = (m.from as usize - 1, m.to as usize - 1);
                if self.up[from] && self.up[to] {
                    let _ = self.logs[to].step(m);
                }
            }
            for i in 0..self.logs.len() {
                self.drive(i);
            }
        }

        fn drive(&mut self, i: usize) {
            let out = self.logs[i].ready().unwrap();
            if let Some(d) = out.persist {
                self.disk[i] = d;
            }
            self.queue.extend(out.messages);
            if let Some(c) = out.installed.last() {
                self.installed[i] = Some(c.clone());
            }
            if let Some(index) = out.restored {
                self.restored[i] = index;
            }
            self.results.extend(out.results);
        }

        fn leader(&self) -> Option<usize> {
            self.logs.iter().position(|l| l.is_leader())
        }

        /// Commits `change` through the leader; the epoch it made.
        fn commit(&mut self, change: &ConfigChange) -> u64 {
            for _ in 0..STEPS_MAX {
                if let Some(l) = self.leader().filter(|&l| self.up[l]) {
                    let id = fastrand::u64(..);
                    if self.logs[l].propose(change, id).is_ok() {
                        for _ in 0..STEPS_MAX {
                            self.drive(l);
                            if let Some(r) = self.results.remove(&id) {
                                return r.unwrap();
                            }
                            self.step();
                        }
                    }
                }
                self.step();
            }
            panic!("no commit");
        }
    }

    fn json_len(d: &Durable) -> usize {
        serde_json::to_vec(d).unwrap().len()
    }

    #[test]
    fn the_log_compacts_past_the_threshold_and_the_durable_state_stops_growing() {
        let mut net = Net::new(1, Compaction { entries: 20, keep: 4 });
        net.commit(&initial());
        let mut sizes = Vec::new();
        for n in 0..200 {
            net.commit(&assign(n));
            // The log part: the snapshot's configuration grows with the
            // assignments themselves, as the configuration in force does.
            let log_part = Durable { snapshot: None, ..net.disk[0].clone() };
            sizes.push((net.disk[0].entries.len(), json_len(&log_part)));
        }
        let disk = &net.disk[0];
        let snap = disk.snapshot.as_ref().expect("a snapshot was taken");
        assert_eq!(&snap.config, net.logs[0].applied(), "the snapshot holds the applied configuration");
        assert!(snap.index > 150, "snapshots keep being taken: the last at {}", snap.index);
        assert!(disk.entries.iter().all(|e| e.index > snap.index), "only entries after the snapshot are kept");
        // Without compaction the file would hold 200+ entries.
        assert!(sizes.iter().all(|&(entries, _)| entries <= 22), "{sizes:?}");
        let early = sizes[20..60].iter().map(|&(_, bytes)| bytes).max().unwrap();
        let late = sizes[60..].iter().map(|&(_, bytes)| bytes).max().unwrap();
        assert!(late * 5 <= early * 6, "the log stops growing: at most {early} bytes, then {late}");
        // The in-memory log keeps a tail of the entries the snapshot covers.
        let store = &net.logs[0].raw.store().0;
        assert_eq!(store.first_index(), snap.index - 4 + 1);
        assert_eq!(store.snapshot.get_metadata().index, snap.index);
    }

    #[test]
    fn a_restart_from_the_snapshot_and_the_tail_reproduces_the_configuration() {
        let mut net = Net::new(1, Compaction { entries: 10, keep: 3 });
        net.commit(&initial());
        // 37 entries (the leader's empty one, then 36 changes): snapshots
        // at 12, 21 and 30, and a tail after the last.
        for n in 0..35 {
            net.commit(&assign(n));
        }
        let before = net.logs[0].applied().clone();
        let disk = net.disk[0].clone();
        let snap = disk.snapshot.clone().expect("a snapshot was taken");
        assert!(!disk.entries.is_empty() && snap.config.epoch < before.epoch, "a tail after the snapshot");
        let mut restarted = ControlLog::restore(1, &[1], disk.clone(), TIMING).unwrap();
        let out = restarted.ready().unwrap();
        assert_eq!(out.installed.last(), Some(&before), "the first ready installs the newest configuration");
        assert_eq!(restarted.applied(), &before);
        assert_eq!(restarted.applied().epoch, before.epoch);
        // Epochs go on from there.
        let mut net = Net { logs: vec![restarted], ..Net::new(1, Compaction::default()) };
        assert_eq!(net.commit(&assign(99)), before.epoch + 1);
        // A snapshot alone (no tail) restores too.
        let only = Durable { entries: Vec::new(), ..disk };
        let mut restarted = ControlLog::restore(1, &[1], only, TIMING).unwrap();
        assert_eq!(restarted.ready().unwrap().installed, vec![snap.config.clone()]);
        // Entries that do not follow the snapshot are refused, not trusted.
        let gap = Durable {
            entries: vec![DurableEntry {
                index: snap.index + 2,
                term: snap.term,
                data: Vec::new(),
                context: Vec::new(),
            }],
            ..net.disk[0].clone()
        };
        assert!(ControlLog::restore(1, &[1], gap, TIMING).is_err());
    }

    #[test]
    fn a_log_file_from_before_compaction_loads() {
        let mut net = Net::new(1, Compaction::default());
        net.commit(&initial());
        let epoch = net.commit(&assign(1));
        let mut json: serde_json::Value = serde_json::to_value(&net.disk[0]).unwrap();
        json.as_object_mut().unwrap().remove("snapshot");
        let old: Durable = serde_json::from_value(json).unwrap();
        assert_eq!(old, net.disk[0]);
        let mut restarted = ControlLog::restore(1, &[1], old, TIMING).unwrap();
        assert_eq!(restarted.ready().unwrap().installed.last().map(|c| c.epoch), Some(epoch));
    }

    #[test]
    fn a_follower_behind_the_first_index_catches_up_by_snapshot() {
        let mut net = Net::new(3, Compaction { entries: 8, keep: 2 });
        net.commit(&initial());
        let leader = net.leader().unwrap();
        let behind = (leader + 1) % 3;
        net.up[behind] = false;
        for n in 0..30 {
            net.commit(&assign(n));
        }
        let first = net.logs[leader].raw.store().0.first_index();
        assert!(first > net.logs[behind].applied_index + 1, "the follower is behind the leader's first index");
        net.up[behind] = true;
        let want = net.logs[leader].applied().clone();
        for _ in 0..STEPS_MAX {
            if net.logs[behind].applied() == &want {
                break;
            }
            net.step();
        }
        assert_eq!(net.logs[behind].applied(), &want);
        assert!(net.restored[behind] > 0, "it caught up by snapshot");
        assert_eq!(net.installed[behind].as_ref(), Some(&want));
        let kept = net.disk[behind].snapshot.as_ref().unwrap();
        assert_eq!(kept.index, net.restored[behind]);
        // It then follows by appends again.
        let epoch = net.commit(&assign(1000));
        for _ in 0..STEPS_MAX {
            if net.logs[behind].applied().epoch == epoch {
                break;
            }
            net.step();
        }
        assert_eq!(net.logs[behind].applied(), net.logs[leader].applied());
    }

    #[test]
    fn a_malformed_snapshot_from_a_peer_is_refused() {
        let mut net = Net::new(3, Compaction { entries: 8, keep: 2 });
        net.commit(&initial());
        for n in 0..20 {
            net.commit(&assign(n));
        }
        let leader = net.leader().unwrap();
        let follower = (leader + 1) % 3;
        let good = net.logs[leader].raw.store().0.snapshot.clone();
        assert!(good.get_metadata().index > 0);
        let before = net.logs[follower].applied().clone();
        let term = net.logs[leader].term();
        let message = |snapshot: Snapshot| Message {
            msg_type: MessageType::MsgSnapshot,
            to: follower as u64 + 1,
            from: leader as u64 + 1,
            term,
            snapshot: Some(snapshot).into(),
            ..Message::default()
        };
        let mut bad_data = good.clone();
        bad_data.data = b"{not json".to_vec().into();
        let mut invalid = good.clone();
        let mut config: ClusterConfig = serde_json::from_slice(&good.data).unwrap();
        config.nodes[1].port = config.nodes[0].port;
        invalid.data = serde_json::to_vec(&config).unwrap().into();
        let mut voters = good.clone();
        voters.mut_metadata().mut_conf_state().voters = vec![1, 2, 9];
        let mut no_voters = good.clone();
        no_voters.mut_metadata().mut_conf_state().voters.clear();
        let mut learners = good.clone();
        learners.mut_metadata().mut_conf_state().learners = vec![7];
        let mut huge = good.clone();
        huge.data = vec![b' '; SNAPSHOT_BYTES_MAX + 1].into();
        let mut empty = good.clone();
        empty.mut_metadata().index = 0;
        let mut far = good.clone();
        far.mut_metadata().index = u64::MAX;
        for (what, snapshot) in [
            ("bad data", bad_data),
            ("invalid config", invalid),
            ("other voters", voters),
            ("no voters", no_voters),
            ("learners", learners),
            ("too large", huge),
            ("empty", empty),
            ("index at the end of u64", far),
        ] {
            let m = message(snapshot);
            assert!(net.logs[follower].step(m).is_err(), "{what} refused");
            net.drive(follower);
            assert_eq!(net.logs[follower].applied(), &before, "{what} changed nothing");
        }
        // Through the wire decoder as well: bytes a peer sends.
        let bytes = encode_message(&message(good)).unwrap();
        assert!(decode_message(&bytes).is_ok());
    }
}
