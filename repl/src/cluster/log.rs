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
//! term of the last entry it covers and the members (the `ConfState`, and
//! their ids, node ids and addresses beside the configuration). The
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
//! it (size, members, a configuration that parses and validates); a
//! malformed one is dropped with a warning.
//!
//! The members change one at a time ([`ControlLog::propose_change`]): a
//! node is added as a learner under a raft id never used before, promoted
//! to voter once it holds the log, and any member can be removed, the
//! leader too. Each change is a raft-rs `ConfChange` entry whose context
//! names the member; every node applies it under the same checks and then
//! takes a snapshot, so a member added later starts from a snapshot that
//! lists every member (docs/decisions/0006-control-log.md).

use super::config::{ClusterConfig, ConfigChange, NodeId};
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot,
};
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
/// The most removed members a log remembers (so that a removed node that
/// comes back can be told it was removed).
pub const REMOVED_KEPT: usize = 16;
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
    /// The voters' raft ids (Raft's `ConfState`; kept for files written
    /// before membership changes, which have no `peers`).
    pub voters: Vec<u64>,
    /// The configuration applied up to `index`.
    pub config: ClusterConfig,
    /// The members (voters and learners) as of `index`, with addresses.
    #[serde(default)]
    pub peers: Vec<Voter>,
    /// The raft id the next member added gets (ids are never reused).
    #[serde(default)]
    pub next_id: u64,
    /// The members removed last, newest last (at most [`REMOVED_KEPT`]).
    #[serde(default)]
    pub removed: Vec<Voter>,
}

/// One member of the control log: a voter, or a learner being added
/// (it gets the log but does not vote until promoted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voter {
    /// Its raft id (1-based, never reused).
    pub id: u64,
    /// Its cluster node id.
    pub node: NodeId,
    /// Where its control thread listens: `ip:port`.
    pub addr: String,
    /// True while it is a learner (not yet promoted to voter).
    #[serde(default)]
    pub learner: bool,
}

/// A change of the log's members, one at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoterChange {
    /// Add `node` (control address `addr`) as a learner, under a fresh raft id.
    AddLearner {
        /// Its cluster node id.
        node: NodeId,
        /// Its control address.
        addr: String,
    },
    /// Make learner `id` a voter.
    Promote(u64),
    /// Remove the member that is cluster node `node` (a voter or a learner).
    Remove(NodeId),
}

/// What a membership entry's context carries: the proposal (so the
/// proposer learns the outcome) and the member it concerns, as it is
/// after the change (for a removal, as it was), so every node knows its
/// address.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ChangeContext {
    proposal: ProposalId,
    peer: Voter,
}

/// A snapshot's data on the wire: the configuration and the members.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SnapshotData {
    config: ClusterConfig,
    peers: Vec<Voter>,
    next_id: u64,
    #[serde(default)]
    removed: Vec<Voter>,
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
    /// Who proposed it ([`ProposalId`] as bytes), or empty; for a
    /// membership change, its context as JSON.
    pub context: Vec<u8>,
    /// True for a membership change (raft's `EntryConfChange`; `data` is
    /// its `ConfChange` as protobuf).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conf_change: bool,
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
    /// The members, when this step changed them (a membership entry
    /// applied, or a snapshot restored).
    pub peers: Option<Vec<Voter>>,
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
    /// A membership change is made on the leader only; this node follows
    /// the leader given (0: none known).
    NotLeader(u64),
}

impl std::fmt::Display for ProposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProposeError::NoLeader => f.write_str("no control log leader is known"),
            ProposeError::TooLarge => write!(f, "the change is larger than {CHANGE_BYTES_MAX} bytes"),
            ProposeError::Refused(e) => write!(f, "the control log refused the change: {e}"),
            ProposeError::NotLeader(_) => f.write_str("this voter is not the control log leader"),
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

/// One member's control log.
pub struct ControlLog {
    id: u64,
    raw: RawNode<Store>,
    /// The members (voters and learners) as of the applied index, by raft id.
    peers: Vec<Voter>,
    /// The raft id the next member added gets.
    next_id: u64,
    /// The members removed last, newest last.
    removed: Vec<Voter>,
    /// A membership entry was applied since the last snapshot: take one
    /// now, so that a member added later starts from a snapshot that lists
    /// every member (never from the first entries, which do not).
    membership_changed: bool,
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

/// Raft's `ConfState` for `peers`.
fn conf_state_of(peers: &[Voter]) -> ConfState {
    let mut voters: Vec<u64> = peers.iter().filter(|p| !p.learner).map(|p| p.id).collect();
    let mut learners: Vec<u64> = peers.iter().filter(|p| p.learner).map(|p| p.id).collect();
    voters.sort_unstable();
    learners.sort_unstable();
    ConfState::from((voters, learners))
}

/// Checks a member list: ids 1.. and below `next_id`, each id and node
/// once, 1 to [`VOTERS_MAX`] voters.
fn check_peers(peers: &[Voter], next_id: u64) -> Result<(), String> {
    let voters = peers.iter().filter(|p| !p.learner).count();
    if voters == 0 || voters > VOTERS_MAX || peers.len() > VOTERS_MAX + 1 {
        return Err(format!("{voters} voters and {} learners (1 to {VOTERS_MAX} voters)", peers.len() - voters));
    }
    for (i, p) in peers.iter().enumerate() {
        if p.id == 0 || p.id >= next_id {
            return Err(format!("member id {} (ids are 1..{next_id})", p.id));
        }
        if peers[..i].iter().any(|q| q.id == p.id || q.node == p.node) {
            return Err(format!("member {} ({}) listed twice", p.id, p.node));
        }
    }
    Ok(())
}

impl ControlLog {
    /// Member `id` (1-based, in `peers`) with the state it kept, or
    /// `Durable::default()` the first time. The members are the kept
    /// snapshot's when there is one, else `peers` (the voters the log was
    /// created with, or, for a node being added, the members as of its
    /// addition). The snapshot kept, if any, is loaded and the committed
    /// entries after it are applied again (membership changes among them),
    /// so the first [`ready`](Self::ready) installs the newest committed
    /// configuration. Compacts with [`Compaction::default`] until
    /// [`set_compaction`](Self::set_compaction).
    pub fn restore(id: u64, peers: &[Voter], durable: Durable, timing: Timing) -> Result<ControlLog, String> {
        let mut next_id = peers.iter().map(|p| p.id).max().unwrap_or(0) + 1;
        check_peers(peers, next_id).map_err(|e| format!("control log members: {e}"))?;
        let mut members = peers.to_vec();
        let mut removed = Vec::new();
        let mut log = LogStore {
            hard: HardState::default(),
            conf: ConfState::default(),
            dropped: (0, 0),
            entries: Vec::new(),
            snapshot: Snapshot::default(),
        };
        let mut applied = ClusterConfig { epoch: 0, nodes: Vec::new(), migrations: Vec::new() };
        let mut applied_index = 0;
        let mut loaded = None;
        if let Some(snap) = &durable.snapshot {
            if snap.peers.is_empty() {
                // Written before membership changes: the voters then are
                // the ones the log was created with.
                let mut kept = snap.voters.clone();
                kept.sort_unstable();
                let mut ids: Vec<u64> = peers.iter().map(|p| p.id).collect();
                ids.sort_unstable();
                if kept != ids {
                    return Err(format!("control log: the snapshot's voters {kept:?} are not {ids:?}"));
                }
            } else {
                next_id = next_id.max(snap.next_id);
                check_peers(&snap.peers, next_id).map_err(|e| format!("control log snapshot's members: {e}"))?;
                members = snap.peers.clone();
                removed = snap.removed.clone();
            }
            log.apply_snapshot(snapshot_of(snap, &members, next_id, &removed)?);
            applied = snap.config.clone();
            applied_index = snap.index;
            // Epoch 0 is the empty configuration before the first change.
            loaded = Some(snap.config.clone()).filter(|c| c.epoch > 0);
        }
        if !members.iter().any(|p| p.id == id) {
            return Err(format!("control log id {id} is not among its members"));
        }
        members.sort_by_key(|p| p.id);
        log.conf = conf_state_of(&members);
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
            peers: members,
            next_id,
            removed,
            membership_changed: false,
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

    /// The members (voters and learners) as of the applied index.
    pub fn peers(&self) -> &[Voter] {
        &self.peers
    }

    /// The members removed last, newest last.
    pub fn removed(&self) -> &[Voter] {
        &self.removed
    }

    /// True while this node is a member (a voter or a learner): false once
    /// it applied (or learned by snapshot) its own removal.
    pub fn is_member(&self) -> bool {
        self.peers.iter().any(|p| p.id == self.id)
    }

    /// The highest index known committed.
    pub fn commit(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// On the leader, the highest index member `id` is known to hold.
    pub fn matched(&self, id: u64) -> Option<u64> {
        self.is_leader().then(|| self.raw.raft.prs().get(id).map(|p| p.matched)).flatten()
    }

    /// True while a membership change is proposed and not yet applied (on
    /// the leader; a new leader counts its whole log as pending until it
    /// applied it), or a learner waits to be promoted.
    pub fn has_pending_change(&self) -> bool {
        self.raw.raft.has_pending_conf() || self.peers.iter().any(|p| p.learner)
    }

    /// A leader that is no longer a voter (it applied its own removal)
    /// hands leadership to the voter that holds the most of its log: that
    /// voter campaigns at once when it holds all of it, else on its
    /// election timeout (this node takes no more messages).
    pub fn hand_over(&mut self) {
        if !self.is_leader() {
            return;
        }
        let best = self
            .peers
            .iter()
            .filter(|p| !p.learner && p.id != self.id)
            .max_by_key(|p| self.raw.raft.prs().get(p.id).map_or(0, |pr| pr.matched))
            .map(|p| p.id);
        if let Some(to) = best {
            self.raw.transfer_leader(to);
        }
    }

    /// One tick of [`TICK_MS`].
    /// A node that applied its own removal does not tick (nor step, nor
    /// propose): raft-rs's leader expects itself among the members.
    pub fn tick(&mut self) {
        if self.is_member() {
            self.raw.tick();
        }
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
        if !self.is_member() {
            return Err(format!("{} is no longer a member of the log", self.id));
        }
        if message.get_msg_type() == MessageType::MsgSnapshot {
            if let Err(e) = self.check_snapshot(message.get_snapshot()) {
                tracing::warn!("cluster: control log snapshot from {} refused: {e}", message.from);
                return Err(format!("snapshot refused: {e}"));
            }
        }
        self.raw.step(message).map_err(|e| e.to_string())
    }

    /// A snapshot from a peer is acceptable: not empty, members that are
    /// valid (ids never above the next id, 1 to [`VOTERS_MAX`] voters) and
    /// that its `ConfState` lists exactly (no joint configuration), and a
    /// configuration of at most [`SNAPSHOT_BYTES_MAX`] that parses and
    /// validates.
    fn check_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotData, String> {
        let meta = snapshot.get_metadata();
        if meta.index == 0 || meta.term == 0 {
            return Err(format!("empty snapshot (index {}, term {})", meta.index, meta.term));
        }
        // raft-rs counts on from the index; one near the end of u64 would overflow.
        if meta.index > INDEX_MAX || meta.term > INDEX_MAX {
            return Err(format!("snapshot index {} or term {} out of range", meta.index, meta.term));
        }
        let data = data_of(&snapshot.data)?;
        if data.next_id > INDEX_MAX {
            return Err(format!("next member id {} out of range", data.next_id));
        }
        check_peers(&data.peers, data.next_id).map_err(|e| format!("members: {e}"))?;
        let cs = meta.get_conf_state();
        let want = conf_state_of(&data.peers);
        let mut voters = cs.voters.clone();
        voters.sort_unstable();
        let mut learners = cs.learners.clone();
        learners.sort_unstable();
        if voters != want.voters
            || learners != want.learners
            || !cs.voters_outgoing.is_empty()
            || !cs.learners_next.is_empty()
            || cs.auto_leave
        {
            return Err(format!(
                "voters {:?} and learners {:?}, not the members' {:?} and {:?}",
                cs.voters, cs.learners, want.voters, want.learners
            ));
        }
        Ok(data)
    }

    /// Proposes a membership change, on the leader only (a follower answers
    /// [`ProposeError::NotLeader`] with the leader it knows, for the caller
    /// to go there). One change at a time: refused while another is
    /// proposed and not applied, or while a learner waits for promotion
    /// (other than this change's own). Returns the raft id the change
    /// concerns; the outcome comes back in [`Output::results`] under `id`.
    pub fn propose_change(&mut self, change: &VoterChange, id: ProposalId) -> Result<u64, ProposeError> {
        if !self.is_member() {
            return Err(ProposeError::Refused("this node is no longer a member of the log".into()));
        }
        if !self.is_leader() {
            return Err(ProposeError::NotLeader(self.leader()));
        }
        if self.raw.raft.has_pending_conf() {
            return Err(ProposeError::Refused(
                "another membership change is pending; try again once it applied".into(),
            ));
        }
        let learner = self.peers.iter().find(|p| p.learner);
        let voters = self.peers.iter().filter(|p| !p.learner).count();
        let (kind, peer) = match change {
            VoterChange::AddLearner { node, addr } => {
                if let Some(p) = self.peers.iter().find(|p| &p.node == node) {
                    let role = if p.learner { "a learner" } else { "a voter" };
                    return Err(ProposeError::Refused(format!("node {node} is {role} already (id {})", p.id)));
                }
                if let Some(l) = learner {
                    return Err(ProposeError::Refused(format!(
                        "node {} is being added (a learner, id {}): promote or remove it first",
                        l.node, l.id
                    )));
                }
                if voters >= VOTERS_MAX {
                    return Err(ProposeError::Refused(format!("the log has {VOTERS_MAX} voters already")));
                }
                let size = serde_json::to_vec(&self.applied).map_or(usize::MAX, |d| d.len());
                if size > SNAPSHOT_BYTES_MAX {
                    // A new member starts from a snapshot.
                    return Err(ProposeError::Refused(format!(
                        "the configuration ({size} bytes) is too large to snapshot for a new member"
                    )));
                }
                let peer = Voter { id: self.next_id, node: node.clone(), addr: addr.clone(), learner: true };
                (ConfChangeType::AddLearnerNode, peer)
            }
            VoterChange::Promote(target) => {
                let Some(p) = self.peers.iter().find(|p| p.id == *target && p.learner) else {
                    return Err(ProposeError::Refused(format!("member {target} is not a learner")));
                };
                if voters >= VOTERS_MAX {
                    return Err(ProposeError::Refused(format!("the log has {VOTERS_MAX} voters already")));
                }
                (ConfChangeType::AddNode, Voter { learner: false, ..p.clone() })
            }
            VoterChange::Remove(node) => {
                let Some(p) = self.peers.iter().find(|p| &p.node == node) else {
                    return Err(ProposeError::Refused(format!("node {node} is not a member of the control log")));
                };
                if let Some(l) = learner.filter(|l| l.id != p.id) {
                    return Err(ProposeError::Refused(format!(
                        "node {} is being added (a learner, id {}): promote or remove it first",
                        l.node, l.id
                    )));
                }
                if !p.learner && voters == 1 {
                    return Err(ProposeError::Refused("the last voter can't be removed".into()));
                }
                (ConfChangeType::RemoveNode, p.clone())
            }
        };
        let target = peer.id;
        let context = serde_json::to_vec(&ChangeContext { proposal: id, peer })
            .map_err(|e| ProposeError::Refused(e.to_string()))?;
        let cc = ConfChange { change_type: kind, node_id: target, ..ConfChange::default() };
        match self.raw.propose_conf_change(context, cc) {
            Ok(()) => {
                if self.pending.len() == PROPOSALS_PENDING_MAX {
                    self.pending.pop_front();
                }
                self.pending.push_back(id);
                Ok(target)
            }
            Err(raft::Error::ProposalDropped) => Err(ProposeError::NoLeader),
            Err(e) => Err(ProposeError::Refused(e.to_string())),
        }
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
        if !self.is_member() {
            return Err(ProposeError::Refused("this node is no longer a member of the log".into()));
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
            let data = self.check_snapshot(&snapshot).map_err(|e| format!("control log snapshot: {e}"))?;
            let config = data.config;
            let meta = snapshot.get_metadata();
            let index = meta.index;
            let mut peers = data.peers;
            peers.sort_by_key(|p| p.id);
            self.peers = peers;
            self.next_id = data.next_id;
            self.removed = data.removed;
            out.peers = Some(self.peers.clone());
            self.durable.snapshot = Some(DurableSnapshot {
                index,
                term: meta.term,
                voters: conf_state_of(&self.peers).voters,
                config: config.clone(),
                peers: self.peers.clone(),
                next_id: self.next_id,
                removed: self.removed.clone(),
            });
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
        let forced = self.membership_changed && self.applied_index > store.dropped.0;
        if self.applied_index <= store.first_index() + self.compaction.entries && !forced {
            return Ok(false);
        }
        let index = self.applied_index;
        let term = store.term_of(index).map_err(|e| format!("control log: no term at applied index {index}: {e}"))?;
        let state = SnapshotData {
            config: self.applied.clone(),
            peers: self.peers.clone(),
            next_id: self.next_id,
            removed: self.removed.clone(),
        };
        let data = serde_json::to_vec(&state).map_err(|e| format!("control log snapshot: {e}"))?;
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
        meta.set_conf_state(conf_state_of(&self.peers));
        let mut keep = self.compaction.keep.min(self.compaction.entries.saturating_sub(1));
        if forced {
            // At least the first entry goes, so a member added from now on
            // is sent this snapshot, which lists every member.
            keep = keep.min(index - 1);
        }
        self.raw.mut_store().0.compact(snapshot, keep).map_err(|e| format!("control log compaction: {e}"))?;
        self.membership_changed = false;
        self.durable.snapshot = Some(DurableSnapshot {
            index,
            term,
            voters: conf_state_of(&self.peers).voters,
            config: self.applied.clone(),
            peers: self.peers.clone(),
            next_id: self.next_id,
            removed: self.removed.clone(),
        });
        self.durable.entries.retain(|e| e.index > index);
        out.compacted = Some(index);
        Ok(true)
    }

    /// Applies committed entries in log order.
    fn apply(&mut self, entries: Vec<Entry>, out: &mut Output) {
        for entry in entries {
            self.applied_index = entry.index;
            if entry.get_entry_type() == EntryType::EntryConfChange {
                self.apply_membership(&entry, out);
                continue;
            }
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

impl ControlLog {
    /// Applies a committed membership entry: checked against the members
    /// (the same on every node, so every node decides alike), then given to
    /// raft-rs and recorded in [`Self::peers`]. A change that does not fit
    /// (a reused id, a learner that is not there...) is skipped everywhere.
    fn apply_membership(&mut self, entry: &Entry, out: &mut Output) {
        let context: Result<ChangeContext, String> =
            serde_json::from_slice(&entry.context).map_err(|e| format!("undecodable membership context: {e}"));
        let result = context.clone().and_then(|ctx| {
            // The bytes were checked for group tags by `decode_message`
            // (a peer's) or made here.
            let cc = ConfChange::parse_from_bytes(&entry.data).map_err(|e| format!("undecodable change: {e}"))?;
            let peer = ctx.peer;
            if cc.node_id != peer.id {
                return Err(format!("membership change for {} names member {}", cc.node_id, peer.id));
            }
            let current = self.peers.iter().position(|p| p.id == peer.id);
            let voters = self.peers.iter().filter(|p| !p.learner).count();
            let mut peers = self.peers.clone();
            match cc.get_change_type() {
                ConfChangeType::AddLearnerNode => {
                    if peer.id < self.next_id || peer.id > INDEX_MAX || self.peers.iter().any(|p| p.node == peer.node) {
                        return Err(format!("member {} ({}) can't be added", peer.id, peer.node));
                    }
                    peers.push(Voter { learner: true, ..peer.clone() });
                }
                ConfChangeType::AddNode => match current {
                    Some(at) if self.peers[at].learner && voters < VOTERS_MAX => peers[at].learner = false,
                    _ => return Err(format!("member {} is not a learner to promote", peer.id)),
                },
                ConfChangeType::RemoveNode => match current {
                    Some(at) => {
                        peers.remove(at);
                    }
                    None => return Err(format!("member {} is not there to remove", peer.id)),
                },
            }
            check_peers(&peers, self.next_id.max(peer.id + 1))?;
            self.raw.apply_conf_change(&cc).map_err(|e| format!("membership change refused: {e}"))?;
            if cc.get_change_type() == ConfChangeType::RemoveNode {
                if let Some(at) = current {
                    self.removed.push(self.peers[at].clone());
                    if self.removed.len() > REMOVED_KEPT {
                        self.removed.remove(0);
                    }
                }
            }
            peers.sort_by_key(|p| p.id);
            self.next_id = self.next_id.max(peer.id + 1);
            self.peers = peers;
            self.membership_changed = true;
            out.peers = Some(self.peers.clone());
            tracing::info!(
                "cluster: control log members now {}",
                self.peers
                    .iter()
                    .map(|p| format!("{}{}", p.id, if p.learner { " (learner)" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(peer.id)
        });
        if let Err(e) = &result {
            tracing::warn!("cluster: control log membership entry {} skipped: {e}", entry.index);
        }
        if let Ok(ctx) = context {
            if let Some(at) = self.pending.iter().position(|&p| p == ctx.proposal) {
                self.pending.remove(at);
                out.results.push((ctx.proposal, result));
            }
        }
    }
}

/// A kept snapshot as Raft's: its configuration and members as JSON.
fn snapshot_of(kept: &DurableSnapshot, peers: &[Voter], next_id: u64, removed: &[Voter]) -> Result<Snapshot, String> {
    let state = SnapshotData { config: kept.config.clone(), peers: peers.to_vec(), next_id, removed: removed.to_vec() };
    let data = serde_json::to_vec(&state).map_err(|e| format!("control log snapshot: {e}"))?;
    let mut snapshot = Snapshot { data: data.into(), ..Snapshot::default() };
    let meta = snapshot.mut_metadata();
    meta.index = kept.index;
    meta.term = kept.term;
    meta.set_conf_state(conf_state_of(peers));
    Ok(snapshot)
}

/// A snapshot's state from its data: at most [`SNAPSHOT_BYTES_MAX`] of
/// JSON that parses, with a configuration that validates.
fn data_of(data: &[u8]) -> Result<SnapshotData, String> {
    if data.len() > SNAPSHOT_BYTES_MAX {
        return Err(format!("configuration of {} bytes (at most {SNAPSHOT_BYTES_MAX})", data.len()));
    }
    let state: SnapshotData = serde_json::from_slice(data).map_err(|e| format!("undecodable configuration: {e}"))?;
    state.config.validate().map_err(|e| format!("invalid configuration: {e}"))?;
    Ok(state)
}

fn entry_of(e: &DurableEntry) -> Entry {
    let mut entry = Entry::default();
    entry.set_entry_type(if e.conf_change { EntryType::EntryConfChange } else { EntryType::EntryNormal });
    entry.index = e.index;
    entry.term = e.term;
    entry.data = e.data.clone().into();
    entry.context = e.context.clone().into();
    entry
}

fn durable_of(e: &Entry) -> DurableEntry {
    DurableEntry {
        index: e.index,
        term: e.term,
        data: e.data.to_vec(),
        context: e.context.to_vec(),
        conf_change: e.get_entry_type() == EntryType::EntryConfChange,
    }
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
    let message = Message::parse_from_bytes(bytes).map_err(|e| e.to_string())?;
    // An entry's data is opaque to the parser above; a membership change's
    // is parsed later (by raft-rs and by `apply`), so it is walked too.
    for entry in message.get_entries() {
        match entry.get_entry_type() {
            EntryType::EntryNormal => {}
            EntryType::EntryConfChange => check_wire(&entry.data, Shape::ConfChange)?,
            EntryType::EntryConfChangeV2 => return Err("ConfChangeV2 entries are not used here".into()),
        }
    }
    Ok(message)
}

/// The nested messages of raft's `Message`, by field number.
#[derive(Clone, Copy)]
enum Shape {
    Message,
    Entry,
    Snapshot,
    SnapshotMetadata,
    ConfState,
    ConfChange,
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
pub(crate) mod tests {
    use super::*;
    use crate::cluster::config::{Node, NodeId, SLOTS, SlotRange};

    const TIMING: Timing = Timing { election_ticks: 10, max_election_ticks: 11 };
    const STEPS_MAX: usize = 2000;

    fn node_id(n: usize) -> NodeId {
        NodeId::parse(&format!("{:040x}", n + 1)).unwrap()
    }

    /// Voters `ids`, on made-up addresses.
    pub(crate) fn members(ids: &[u64]) -> Vec<Voter> {
        ids.iter()
            .map(|&id| Voter {
                id,
                node: NodeId::parse(&format!("{:040x}", 0x1000 + id)).unwrap(),
                addr: format!("127.0.0.1:{}", 17000 + id),
                learner: false,
            })
            .collect()
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
                    let mut log = ControlLog::restore(id, &members(&voters), Durable::default(), TIMING).unwrap();
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
        let mut restarted = ControlLog::restore(1, &members(&[1]), disk.clone(), TIMING).unwrap();
        let out = restarted.ready().unwrap();
        assert_eq!(out.installed.last(), Some(&before), "the first ready installs the newest configuration");
        assert_eq!(restarted.applied(), &before);
        assert_eq!(restarted.applied().epoch, before.epoch);
        // Epochs go on from there.
        let mut net = Net { logs: vec![restarted], ..Net::new(1, Compaction::default()) };
        assert_eq!(net.commit(&assign(99)), before.epoch + 1);
        // A snapshot alone (no tail) restores too.
        let only = Durable { entries: Vec::new(), ..disk };
        let mut restarted = ControlLog::restore(1, &members(&[1]), only, TIMING).unwrap();
        assert_eq!(restarted.ready().unwrap().installed, vec![snap.config.clone()]);
        // Entries that do not follow the snapshot are refused, not trusted.
        let gap = Durable {
            entries: vec![DurableEntry {
                index: snap.index + 2,
                term: snap.term,
                data: Vec::new(),
                context: Vec::new(),
                conf_change: false,
            }],
            ..net.disk[0].clone()
        };
        assert!(ControlLog::restore(1, &members(&[1]), gap, TIMING).is_err());
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
        let mut restarted = ControlLog::restore(1, &members(&[1]), old, TIMING).unwrap();
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
        let mut state: SnapshotData = serde_json::from_slice(&good.data).unwrap();
        state.config.nodes[1].port = state.config.nodes[0].port;
        invalid.data = serde_json::to_vec(&state).unwrap().into();
        // Members that do not match the ConfState, or reuse an id.
        let mut state: SnapshotData = serde_json::from_slice(&good.data).unwrap();
        state.peers.pop();
        let mut fewer_members = good.clone();
        fewer_members.data = serde_json::to_vec(&state).unwrap().into();
        let mut state: SnapshotData = serde_json::from_slice(&good.data).unwrap();
        state.next_id = 2;
        let mut reused = good.clone();
        reused.data = serde_json::to_vec(&state).unwrap().into();
        let mut state: SnapshotData = serde_json::from_slice(&good.data).unwrap();
        let twin = state.peers[0].node.clone();
        state.peers[1].node = twin;
        let mut twice = good.clone();
        twice.data = serde_json::to_vec(&state).unwrap().into();
        let mut joint = good.clone();
        joint.mut_metadata().mut_conf_state().voters_outgoing = vec![1, 2, 3];
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
            ("members other than the ConfState", fewer_members),
            ("a member id at or past the next id", reused),
            ("a node listed twice", twice),
            ("a joint configuration", joint),
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

    impl Net {
        /// Proposes a membership change at the leader until it applies
        /// there; the outcome.
        fn change(&mut self, change: &VoterChange) -> Result<u64, String> {
            for _ in 0..STEPS_MAX {
                if let Some(l) = self.leader().filter(|&l| self.up[l]) {
                    let id = fastrand::u64(..);
                    match self.logs[l].propose_change(change, id) {
                        Ok(_) => {
                            for _ in 0..STEPS_MAX {
                                self.drive(l);
                                if let Some(r) = self.results.remove(&id) {
                                    return r;
                                }
                                self.step();
                            }
                        }
                        Err(ProposeError::Refused(e)) => return Err(e),
                        Err(_) => {}
                    }
                }
                self.step();
            }
            panic!("no membership change applied");
        }

        /// Starts member `id` as the leader's LEARN does: an empty log, the
        /// leader's members as of its addition.
        fn start_learner(&mut self, id: u64) {
            let l = self.leader().unwrap();
            let peers = self.logs[l].peers().to_vec();
            let mut log = ControlLog::restore(id, &peers, Durable::default(), TIMING).unwrap();
            log.set_compaction(Compaction::every(1000));
            assert_eq!(self.logs.len() as u64 + 1, id);
            self.logs.push(log);
            self.disk.push(Durable::default());
            self.up.push(true);
            self.installed.push(None);
            self.restored.push(0);
        }

        fn settle(&mut self, done: impl Fn(&Net) -> bool) {
            for _ in 0..STEPS_MAX {
                if done(self) {
                    return;
                }
                self.step();
            }
            assert!(done(self), "did not settle");
        }
    }

    fn learner_node(n: u64) -> NodeId {
        NodeId::parse(&format!("{:040x}", 0x2000 + n)).unwrap()
    }

    #[test]
    fn a_learner_catches_up_by_snapshot_is_promoted_and_votes() {
        // Compaction far away: the snapshot the learner gets is the one
        // every member takes when it applies a membership entry.
        let mut net = Net::new(3, Compaction::every(1000));
        net.commit(&initial());
        for n in 0..5 {
            net.commit(&assign(n));
        }
        let add = VoterChange::AddLearner { node: learner_node(4), addr: "127.0.0.1:17004".into() };
        assert_eq!(net.change(&add), Ok(4), "the next raft id");
        // One change at a time: a second addition waits for the learner.
        let other = VoterChange::AddLearner { node: learner_node(5), addr: "127.0.0.1:17005".into() };
        let refused = net.change(&other).unwrap_err();
        assert!(refused.contains("is being added"), "{refused}");
        assert!(net.change(&add).unwrap_err().contains("a learner already"));
        let l = net.leader().unwrap();
        assert!(net.logs[l].has_pending_change());
        net.start_learner(4);
        let want = net.logs[l].applied().clone();
        net.settle(|n| n.logs[3].applied() == &want);
        assert!(net.restored[3] > 0, "the learner started from a snapshot, not from entry 1");
        assert_eq!(net.logs[3].peers(), net.logs[l].peers(), "the snapshot carried the members");
        net.settle(|n| n.logs[l].matched(4).is_some_and(|m| m >= n.logs[l].commit()));
        assert_eq!(net.change(&VoterChange::Promote(4)), Ok(4));
        assert_eq!(net.change(&VoterChange::Promote(4)).unwrap_err(), "member 4 is not a learner");
        net.settle(|n| n.logs.iter().all(|log| log.peers().iter().filter(|p| !p.learner).count() == 4));
        // With two of the first three cut off, the new voter makes the majority.
        let l = net.leader().unwrap();
        let cut: Vec<usize> = (0..3).filter(|&i| i != l).take(1).collect();
        for &i in &cut {
            net.up[i] = false;
        }
        let epoch = net.commit(&assign(100));
        assert!(epoch > want.epoch);
        // A restart from disk keeps the members.
        let peers = net.logs[3].peers().to_vec();
        let disk = net.disk[3].clone();
        let first = members(&[1, 2, 3]);
        let restarted = ControlLog::restore(4, &first, disk, TIMING).unwrap();
        assert_eq!(restarted.peers(), &peers[..]);
    }

    #[test]
    fn a_removed_leader_hands_over_and_its_id_is_never_reused() {
        let mut net = Net::new(3, Compaction::every(1000));
        net.commit(&initial());
        let l = net.leader().unwrap();
        let node = net.logs[l].peers()[l].node.clone();
        let removed_id = net.logs[l].id();
        assert_eq!(net.change(&VoterChange::Remove(node.clone())), Ok(removed_id));
        assert!(!net.logs[l].is_member());
        net.logs[l].hand_over();
        net.settle(|n| n.leader().is_some_and(|x| x != l && n.logs[x].is_leader()));
        // The removed node takes no message and proposes nothing.
        net.up[l] = false;
        assert!(net.logs[l].propose(&assign(7), 1).is_err());
        let epoch = net.commit(&assign(8));
        assert!(epoch > 1);
        let others: Vec<usize> = (0..3).filter(|&i| i != l).collect();
        net.settle(|n| others.iter().all(|&i| n.logs[i].applied().epoch == epoch));
        for &i in &others {
            assert_eq!(net.logs[i].peers().len(), 2);
            assert_eq!(net.logs[i].removed().last().map(|r| r.id), Some(removed_id));
        }
        // The removed one can't be removed again; a new member gets id 4.
        assert!(net.change(&VoterChange::Remove(node)).unwrap_err().contains("not a member"));
        let add = VoterChange::AddLearner { node: learner_node(9), addr: "127.0.0.1:17009".into() };
        assert_eq!(net.change(&add), Ok(4));
        // The last voter can never go.
        let mut solo = Net::new(1, Compaction::default());
        solo.commit(&initial());
        let only = solo.logs[0].peers()[0].node.clone();
        assert!(solo.change(&VoterChange::Remove(only)).unwrap_err().contains("last voter"));
    }

    #[test]
    fn membership_entries_are_checked_for_group_tags_too() {
        let mut entry = Entry::default();
        entry.set_entry_type(EntryType::EntryConfChange);
        entry.data = vec![0x0b, 0x0c].into();
        let m = Message { to: 2, from: 1, term: 3, entries: vec![entry.clone()].into(), ..Message::default() };
        assert!(decode_message(&encode_message(&m).unwrap()).unwrap_err().contains("wire type 3"));
        entry.set_entry_type(EntryType::EntryConfChangeV2);
        entry.data = Vec::new().into();
        let m = Message { to: 2, from: 1, term: 3, entries: vec![entry].into(), ..Message::default() };
        assert!(decode_message(&encode_message(&m).unwrap()).is_err());
    }
}
