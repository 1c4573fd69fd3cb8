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

use super::config::{ClusterConfig, ConfigChange};
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};
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

/// What the node must keep across restarts: Raft's hard state and its log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durable {
    /// The current term.
    pub term: u64,
    /// Whom this node voted for in `term` (0: nobody).
    pub vote: u64,
    /// The highest index known committed.
    pub commit: u64,
    /// The log, from index 1 on (nothing is compacted yet).
    pub entries: Vec<DurableEntry>,
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

/// One voter's control log.
pub struct ControlLog {
    id: u64,
    raw: RawNode<MemStorage>,
    /// The configuration after the last applied entry.
    applied: ClusterConfig,
    durable: Durable,
    /// This node's proposals not yet seen committed, oldest first.
    pending: std::collections::VecDeque<ProposalId>,
}

impl ControlLog {
    /// A voter `id` (1-based, in `voters`) with the state it kept, or
    /// `Durable::default()` the first time. Committed entries are applied
    /// again from the start, so the first [`ready`](Self::ready) installs
    /// the newest committed configuration.
    pub fn restore(id: u64, voters: &[u64], durable: Durable, timing: Timing) -> Result<ControlLog, String> {
        if !voters.contains(&id) || voters.len() > VOTERS_MAX || voters.contains(&0) {
            return Err(format!("control log id {id} with voters {voters:?}: ids are 1.., at most {VOTERS_MAX}"));
        }
        let storage = MemStorage::new_with_conf_state(ConfState::from((voters.to_vec(), Vec::new())));
        {
            let mut core = storage.wl();
            let entries: Vec<Entry> = durable.entries.iter().map(entry_of).collect();
            core.append(&entries).map_err(|e| format!("control log: stored entries do not follow: {e}"))?;
            let last = durable.entries.last().map_or(0, |e| e.index);
            core.set_hardstate(HardState {
                term: durable.term,
                vote: durable.vote,
                commit: durable.commit.min(last),
                ..HardState::default()
            });
        }
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
        let raw = RawNode::new(&config, storage, &logger).map_err(|e| format!("control log: {e}"))?;
        Ok(ControlLog {
            id,
            raw,
            applied: ClusterConfig { epoch: 0, nodes: Vec::new(), migrations: Vec::new() },
            durable,
            pending: Default::default(),
        })
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

    /// One tick of [`TICK_MS`].
    pub fn tick(&mut self) {
        self.raw.tick();
    }

    /// A message from a peer. Messages of another cluster or stale terms
    /// are Raft's to ignore; an error only says this one was dropped.
    pub fn step(&mut self, message: Message) -> Result<(), String> {
        if message.to != self.id {
            return Err(format!("message for {} reached {}", message.to, self.id));
        }
        self.raw.step(message).map_err(|e| e.to_string())
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
        if !self.raw.has_ready() {
            return Ok(out);
        }
        let mut rd = self.raw.ready();
        out.messages.extend(rd.take_messages());
        // No snapshot is ever made (nothing is compacted), so none arrives.
        if !rd.snapshot().is_empty() {
            return Err("control log: a snapshot arrived, and snapshots are not kept".into());
        }
        self.apply(rd.take_committed_entries(), &mut out);
        let mut changed = false;
        let entries = rd.take_entries();
        if !entries.is_empty() {
            self.raw.store().wl().append(&entries).map_err(|e| format!("control log append: {e}"))?;
            let first = entries[0].index;
            self.durable.entries.retain(|e| e.index < first);
            self.durable.entries.extend(entries.iter().map(durable_of));
            changed = true;
        }
        if let Some(hs) = rd.hs() {
            self.raw.store().wl().set_hardstate(hs.clone());
            self.durable.term = hs.term;
            self.durable.vote = hs.vote;
            self.durable.commit = hs.commit;
            changed = true;
        }
        out.messages.extend(rd.take_persisted_messages());
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.raw.store().wl().mut_hard_state().commit = commit;
            self.durable.commit = commit;
            changed = true;
        }
        out.messages.extend(light.take_messages());
        self.apply(light.take_committed_entries(), &mut out);
        self.raw.advance_apply();
        if changed {
            out.persist = Some(self.durable.clone());
        }
        Ok(out)
    }

    /// Applies committed entries in log order.
    fn apply(&mut self, entries: Vec<Entry>, out: &mut Output) {
        for entry in entries {
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
