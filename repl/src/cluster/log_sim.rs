//! A seeded, in-process simulator for the control log: voters exchange
//! raft messages through a network that drops, delays, duplicates and
//! reorders them, is cut into a minority and a majority, and crashes and
//! restarts voters from what they persisted. After every step it checks
//! that each term has at most one leader, that every node applies the
//! same configurations under the same epochs in the same order, that a
//! node's epochs only grow, and that a minority commits nothing.
//!
//! The voters compact their logs every few entries ([`COMPACTION`]), so a
//! voter down or cut off for a while falls behind the leader's first
//! index and catches up by snapshot; a run checks that snapshots were both
//! sent and applied, and that every snapshot holds the configuration
//! committed at its epoch.
//!
//! With membership changes ([`Changes`]), voters are added (a learner,
//! started once its addition applied, promoted once it holds the log) and
//! removed (a voter that is down, which may come back from its old disk
//! unaware, or the leader itself, which hands over and stops) through
//! whichever node leads; every commit index a leader reaches must then be
//! held by a majority of the voters it has, and every entry ever seen
//! committed must still be held at the end.
//!
//! raft-rs draws its election timeouts from a random source of its own, so
//! the voters run with `max_election_ticks = election_ticks + 1` and the
//! simulator jitters, from its seed, which voters a tick reaches.

use super::config::{ClusterConfig, ConfigChange, Node, NodeId, SLOTS, SlotRange};
use super::log::{
    Compaction, ControlLog, Durable, ProposalId, Timing, Voter, VoterChange, decode_message, encode_message,
};
use raft::eraftpb::{Message, MessageType};
use std::collections::{BTreeMap, HashSet};

const TIMING: Timing = Timing { election_ticks: 10, max_election_ticks: 11 };
/// A snapshot every 10 entries, 3 of them kept: far below the production
/// threshold, so that every run compacts many times.
const COMPACTION: Compaction = Compaction { entries: 10, keep: 3 };
/// Steps (one tick each) in the chaotic phase.
const CHAOS_STEPS: u64 = 3000;
/// Steps the network stays in one shape (long against the election timeout).
const SHAPE_STEPS: u64 = 250;
/// The longest a message stays in flight, in steps.
const DELAY_STEPS_MAX: u64 = 4;
/// Steps allowed to converge once the network heals.
const SETTLE_STEPS_MAX: u64 = 2000;

fn node_id(n: usize) -> NodeId {
    NodeId::parse(&format!("{:040x}", n + 1)).unwrap()
}

/// The first change: three primaries with the slots split evenly.
fn initial_config() -> ClusterConfig {
    let nodes = SlotRange::split_even(3, SLOTS)
        .into_iter()
        .enumerate()
        .map(|(i, range)| Node { slots: vec![range], ..Node::primary(node_id(i), "127.0.0.1", 7000 + i as u16) })
        .collect();
    ClusterConfig { epoch: 0, nodes, migrations: Vec::new() }
}

struct InFlight {
    at: u64,
    bytes: Vec<u8>,
    from: usize,
    to: usize,
}

struct Sim {
    rng: fastrand::Rng,
    /// Each node's raft id.
    voters: Vec<u64>,
    /// Each node's members to start from without a snapshot: the voters
    /// the log was created with, or the members as of a node's addition.
    bootstrap: Vec<Vec<Voter>>,
    /// Nodes that left the log (their removal applied): never restarted.
    gone: Vec<bool>,
    /// Per node that applied its own removal while leading: the step by
    /// which it stops (it hands leadership over first).
    leaving: Vec<Option<u64>>,
    /// Per leader and term, the commit index last checked against a
    /// majority of its voters.
    commit_checked: BTreeMap<(u64, u64), u64>,
    nodes: Vec<Option<ControlLog>>,
    disk: Vec<Durable>,
    /// Per node, the epoch it last installed in this life.
    epochs: Vec<u64>,
    /// Per node, the highest index it ever applied.
    applied_max: Vec<u64>,
    /// Per node, its side of the network (all equal: no partition).
    side: Vec<u8>,
    net: Vec<InFlight>,
    now: u64,
    drop_percent: u32,
    duplicate_percent: u32,
    /// The leader seen for each term.
    leaders: BTreeMap<u64, u64>,
    /// Every committed configuration, by epoch - 1.
    history: Vec<ClusterConfig>,
    /// Every committed entry seen on any node's disk, by index: term and data.
    committed_entries: BTreeMap<u64, (u64, Vec<u8>)>,
    /// The proposals of those entries.
    committed_proposals: HashSet<ProposalId>,
    /// Snapshots sent, and applied by their receivers.
    snapshots_sent: u64,
    snapshots_applied: u64,
}

/// A member with the state it kept, compacting by [`COMPACTION`].
fn voter(id: u64, members: &[Voter], durable: Durable) -> ControlLog {
    let mut log = ControlLog::restore(id, members, durable, TIMING).unwrap();
    log.set_compaction(COMPACTION);
    log
}

/// The cluster node id of a member added to the log as the `n`th node.
fn member_node(n: usize) -> NodeId {
    NodeId::parse(&format!("{:040x}", 0x1000 + n as u64 + 1)).unwrap()
}

impl Sim {
    fn new(seed: u64, size: usize) -> Sim {
        let voters: Vec<u64> = (1..=size as u64).collect();
        let members = super::log::tests::members(&voters);
        let nodes = voters.iter().map(|&id| Some(voter(id, &members, Durable::default()))).collect();
        Sim {
            rng: fastrand::Rng::with_seed(seed),
            nodes,
            disk: vec![Durable::default(); size],
            epochs: vec![0; size],
            applied_max: vec![0; size],
            side: vec![0; size],
            voters,
            bootstrap: vec![members; size],
            gone: vec![false; size],
            leaving: vec![None; size],
            commit_checked: BTreeMap::new(),
            net: Vec::new(),
            now: 0,
            drop_percent: 10,
            duplicate_percent: 5,
            leaders: BTreeMap::new(),
            history: Vec::new(),
            committed_entries: BTreeMap::new(),
            committed_proposals: HashSet::new(),
            snapshots_sent: 0,
            snapshots_applied: 0,
        }
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        self.side[a] == self.side[b]
    }

    /// One step: jittered ticks, deliveries due, then every node's ready.
    fn step(&mut self) {
        self.now += 1;
        for i in 0..self.nodes.len() {
            // Seeded jitter: a tick reaches a voter 9 times in 10.
            if self.rng.u32(0..10) < 9 {
                if let Some(n) = self.nodes[i].as_mut() {
                    n.tick();
                }
            }
        }
        let due: Vec<InFlight> = {
            let (due, later) = std::mem::take(&mut self.net).into_iter().partition(|m| m.at <= self.now);
            self.net = later;
            due
        };
        let mut due = due;
        self.rng.shuffle(&mut due);
        for m in due {
            if !self.connected(m.from, m.to) {
                continue;
            }
            if let Some(n) = self.nodes[m.to].as_mut() {
                let message = decode_message(&m.bytes).unwrap();
                let _ = n.step(message);
            }
        }
        self.check_majorities();
        for i in 0..self.nodes.len() {
            self.drive(i);
        }
        self.check_majorities();
        self.check_leaders();
        self.leave_removed();
    }

    /// A leader's commit index, each time it grows, is held by a majority
    /// of the voters it has then: a member removed (whose removal the
    /// leader applied) never counts, however up to date its disk is.
    fn check_majorities(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(n) = self.nodes[i].as_ref().filter(|n| n.is_leader()) else { continue };
            let commit = n.commit();
            let key = (n.id(), n.term());
            // A new leader's commit index is its predecessors' (made with
            // the voters of their time): only what it commits itself counts.
            let Some(&checked) = self.commit_checked.get(&key) else {
                self.commit_checked.insert(key, commit);
                continue;
            };
            if checked >= commit {
                continue;
            }
            self.commit_checked.insert(key, commit);
            let Some(term) = term_at(&self.disk[i], commit) else { continue };
            let voters: Vec<u64> = n.peers().iter().filter(|p| !p.learner).map(|p| p.id).collect();
            let holding = voters
                .iter()
                .filter(|&&v| {
                    self.voters.iter().position(|&id| id == v).is_some_and(|at| holds(&self.disk[at], commit, term))
                })
                .count();
            assert!(
                holding * 2 > voters.len(),
                "leader {} (term {}) committed index {commit} held by {holding} of its voters {voters:?}",
                n.id(),
                n.term()
            );
        }
    }

    /// What the control thread does once a node applied its own removal:
    /// a leader hands leadership over (for a few steps at most), then the
    /// node stops for good.
    fn leave_removed(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(n) = self.nodes[i].as_mut() else { continue };
            if n.is_member() {
                continue;
            }
            let until = *self.leaving[i].get_or_insert_with(|| {
                n.hand_over();
                self.now + 5
            });
            if !n.is_leader() || self.now >= until {
                self.nodes[i] = None;
                self.gone[i] = true;
            }
        }
    }

    /// Carries out node `i`'s ready the way the control thread does.
    fn drive(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else { return };
        let out = node.ready().unwrap();
        self.applied_max[i] = self.applied_max[i].max(node.applied_index());
        if out.restored.is_some() {
            self.snapshots_applied += 1;
        }
        let persisted = out.persist.is_some();
        if let Some(durable) = out.persist {
            self.disk[i] = durable;
        }
        for message in out.messages {
            self.send(i, message);
        }
        for config in out.installed {
            assert!(config.epoch > self.epochs[i], "node {i}: epoch {} after {}", config.epoch, self.epochs[i]);
            self.epochs[i] = config.epoch;
            let at = config.epoch as usize - 1;
            match self.history.get(at) {
                Some(seen) => assert_eq!(seen, &config, "node {i} disagrees at epoch {}", config.epoch),
                None => {
                    assert_eq!(at, self.history.len(), "node {i} skipped to epoch {}", config.epoch);
                    self.history.push(config);
                }
            }
        }
        if persisted {
            self.record_committed(i);
        }
    }

    fn send(&mut self, from: usize, message: Message) {
        let Some(to) = self.voters.iter().position(|&v| v == message.to) else { return };
        if self.rng.u32(0..100) < self.drop_percent {
            return;
        }
        if message.get_msg_type() == MessageType::MsgSnapshot {
            self.snapshots_sent += 1;
        }
        let bytes = encode_message(&message).unwrap();
        let copies = if self.rng.u32(0..100) < self.duplicate_percent { 2 } else { 1 };
        for _ in 0..copies {
            let at = self.now + self.rng.u64(0..=DELAY_STEPS_MAX);
            self.net.push(InFlight { at, bytes: bytes.clone(), from, to });
        }
    }

    fn check_leaders(&mut self) {
        for n in self.nodes.iter().flatten() {
            if n.is_leader() {
                let seen = *self.leaders.entry(n.term()).or_insert(n.id());
                assert_eq!(seen, n.id(), "two leaders in term {}", n.term());
            }
        }
    }

    /// Proposes `change` at node `i`, if it is up and knows a leader.
    fn propose(&mut self, i: usize, change: &ConfigChange) -> Option<ProposalId> {
        let id = self.rng.u64(..);
        self.nodes[i].as_mut()?.propose(change, id).ok()?;
        self.drive(i);
        Some(id)
    }

    /// Records the committed entries on node `i`'s disk, checking that
    /// they agree with every committed entry seen before at their index,
    /// and that its snapshot holds the configuration committed at its epoch.
    fn record_committed(&mut self, i: usize) {
        let d = &self.disk[i];
        for e in d.entries.iter().filter(|e| e.index <= d.commit) {
            let seen = self.committed_entries.entry(e.index).or_insert((e.term, e.data.clone()));
            assert_eq!(seen, &(e.term, e.data.clone()), "committed entries differ at index {}", e.index);
            if let Ok(bytes) = <[u8; 8]>::try_from(&e.context[..]) {
                self.committed_proposals.insert(u64::from_be_bytes(bytes));
            }
        }
        if let Some(s) = &d.snapshot {
            assert!(s.index <= d.commit, "node {i}: snapshot at {} past its commit {}", s.index, d.commit);
            if let Some(committed) = s.config.epoch.checked_sub(1).and_then(|at| self.history.get(at as usize)) {
                assert_eq!(committed, &s.config, "node {i}: its snapshot disagrees at epoch {}", s.config.epoch);
            }
        }
    }

    /// The proposals of every entry seen committed on any node (kept
    /// beyond compaction, which drops them from the disks).
    fn committed(&self) -> HashSet<ProposalId> {
        self.committed_proposals.clone()
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    fn restart(&mut self, i: usize) {
        if self.nodes[i].is_none() && !self.gone[i] {
            self.nodes[i] = Some(voter(self.voters[i], &self.bootstrap[i], self.disk[i].clone()));
            self.epochs[i] = 0;
        }
    }

    /// The node that leads now, if one is up.
    fn leader(&self) -> Option<usize> {
        let mut leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].as_ref().is_some_and(|n| n.is_leader() && n.is_member()))
            .collect();
        // Of two (an old one not yet told), the one of the highest term.
        leaders.sort_by_key(|&i| self.nodes[i].as_ref().map_or(0, |n| n.term()));
        leaders.pop()
    }

    /// Starts the node a committed addition made a learner, as the
    /// leader's LEARN does: an empty log and the members as of its addition.
    fn start_learner(&mut self, peer: &Voter, members: &[Voter]) {
        if self.voters.contains(&peer.id) {
            return;
        }
        self.voters.push(peer.id);
        self.bootstrap.push(members.to_vec());
        self.nodes.push(Some(voter(peer.id, members, Durable::default())));
        self.disk.push(Durable::default());
        self.epochs.push(0);
        self.applied_max.push(0);
        self.side.push(0);
        self.gone.push(false);
        self.leaving.push(None);
    }
}

/// The term of the entry at `index` in a durable log, when it still has it
/// (or its snapshot ends there).
fn term_at(d: &Durable, index: u64) -> Option<u64> {
    if let Some(e) = d.entries.iter().find(|e| e.index == index) {
        return Some(e.term);
    }
    d.snapshot.as_ref().filter(|s| s.index == index).map(|s| s.term)
}

/// True when a durable log holds the entry at `index` of `term` (its
/// snapshot covers only committed entries, so one past it holds it).
fn holds(d: &Durable, index: u64, term: u64) -> bool {
    d.snapshot.as_ref().is_some_and(|s| s.index > index) || term_at(d, index) == Some(term)
}

/// The last index in a node's durable log (its snapshot's without entries after it).
fn last_index(d: &Durable) -> u64 {
    d.entries.last().map(|e| e.index).or(d.snapshot.as_ref().map(|s| s.index)).unwrap_or(0)
}

/// A change that assigns slot `n` (mod the slot count) to one of the three primaries.
fn assign(n: u64) -> ConfigChange {
    ConfigChange::AssignSlots {
        node: node_id((n % 3) as usize),
        ranges: vec![SlotRange::new((n % SLOTS as u64) as u16, (n % SLOTS as u64) as u16)],
    }
}

/// Membership changes the simulator makes through the leader, one at a
/// time, as `coreshard-admin voters ... add/remove` does: an addition
/// proposes the learner, starts it once the leader applied that, and
/// promotes it once it holds the leader's commit index.
struct Changes {
    op: Op,
    /// Nodes added so far (numbers their node ids).
    added: usize,
    /// Additions and removals done, and removals of the leader itself.
    adds_done: u64,
    removes_done: u64,
    leader_removals: u64,
}

enum Op {
    Idle { until: u64 },
    Add(NodeId),
    Remove { node: NodeId, was_leader: bool },
}

impl Changes {
    fn new() -> Changes {
        Changes { op: Op::Idle { until: 100 }, added: 0, adds_done: 0, removes_done: 0, leader_removals: 0 }
    }

    fn step(&mut self, sim: &mut Sim) {
        if sim.now % 10 != 0 {
            return;
        }
        let Some(l) = sim.leader() else { return };
        let (peers, commit, leader_node) = {
            let n = sim.nodes[l].as_ref().unwrap();
            let me = n.peers().iter().find(|p| p.id == n.id()).map(|p| p.node.clone());
            (n.peers().to_vec(), n.commit(), me)
        };
        let voters: Vec<&Voter> = peers.iter().filter(|p| !p.learner).collect();
        let id = sim.rng.u64(..);
        match &self.op {
            Op::Idle { until } if sim.now >= *until => {
                self.op = if voters.len() <= 3 || (voters.len() < 5 && sim.rng.bool()) {
                    self.added += 1;
                    Op::Add(member_node(self.added))
                } else {
                    // A voter that is down now, as a dead machine's is,
                    // when there is one (restarted later from its disk, it
                    // runs on as a removed member that never learned it);
                    // else the leader itself half the time.
                    let down = voters.iter().find(|v| {
                        sim.voters.iter().position(|&id| id == v.id).is_some_and(|at| sim.nodes[at].is_none())
                    });
                    let victim = match down {
                        Some(v) => v.node.clone(),
                        None if sim.rng.bool() => leader_node.clone().unwrap(),
                        None => voters[sim.rng.usize(0..voters.len())].node.clone(),
                    };
                    let was_leader = Some(&victim) == leader_node.as_ref();
                    Op::Remove { node: victim, was_leader }
                };
            }
            Op::Idle { .. } => {}
            Op::Add(node) => match peers.iter().find(|p| &p.node == node) {
                None => {
                    let addr = format!("127.0.0.1:{}", 18000 + self.added);
                    let change = VoterChange::AddLearner { node: node.clone(), addr };
                    let _ = sim.nodes[l].as_mut().unwrap().propose_change(&change, id);
                }
                Some(p) if p.learner => {
                    sim.start_learner(p, &peers);
                    let caught_up = sim.nodes[l].as_ref().unwrap().matched(p.id).is_some_and(|m| m >= commit);
                    if caught_up {
                        let _ = sim.nodes[l].as_mut().unwrap().propose_change(&VoterChange::Promote(p.id), id);
                    }
                }
                Some(_) => {
                    self.adds_done += 1;
                    self.op = Op::Idle { until: sim.now + sim.rng.u64(100..300) };
                }
            },
            Op::Remove { node, was_leader } => {
                if peers.iter().any(|p| &p.node == node) {
                    let change = VoterChange::Remove(node.clone());
                    let _ = sim.nodes[l].as_mut().unwrap().propose_change(&change, id);
                } else {
                    self.removes_done += 1;
                    self.leader_removals += u64::from(*was_leader);
                    self.op = Op::Idle { until: sim.now + sim.rng.u64(100..300) };
                }
            }
        }
        if l < sim.nodes.len() {
            sim.drive(l);
        }
    }
}

/// The members as the most advanced node up applied them.
fn current_voters(sim: &Sim) -> Vec<u64> {
    let n = sim.nodes.iter().flatten().filter(|n| n.is_member()).max_by_key(|n| n.applied_index());
    n.map(|n| n.peers().iter().filter(|p| !p.learner).map(|p| p.id).collect()).unwrap_or_default()
}

/// Runs one seeded scenario and returns the committed history.
fn run(seed: u64, size: usize) -> Vec<ClusterConfig> {
    run_with(seed, size, None)
}

/// Runs one seeded scenario, with membership changes when `changes` is
/// given, and returns the committed history.
fn run_with(seed: u64, size: usize, mut changes: Option<&mut Changes>) -> Vec<ClusterConfig> {
    let mut sim = Sim::new(seed, size);
    let mut counter = 0u64;
    // Until the first configuration commits, propose it now and then.
    while sim.history.is_empty() {
        assert!(sim.now < SETTLE_STEPS_MAX, "seed {seed}: no first configuration");
        if sim.now % 20 == 0 {
            let at = sim.rng.usize(0..size);
            sim.propose(at, &ConfigChange::Replace(initial_config()));
        }
        sim.step();
    }
    let mut minority_proposals: HashSet<ProposalId> = HashSet::new();
    // The minority, and the last index any node of the majority had when
    // the partition began.
    let mut partition: Option<(Vec<usize>, u64)> = None;
    for step in 0..CHAOS_STEPS {
        let count = sim.nodes.len();
        if step % SHAPE_STEPS == 0 {
            // End the last partition: its minority must have committed nothing.
            if let Some((minority, majority_last)) = partition.take() {
                let committed = sim.committed();
                assert!(
                    minority_proposals.is_disjoint(&committed),
                    "seed {seed}: a change proposed in a minority committed"
                );
                // A minority may still learn that an entry it holds
                // committed, when a node of the majority had acknowledged it
                // before the cut; it applies nothing beyond those.
                for &i in &minority {
                    assert!(
                        sim.applied_max[i] <= majority_last,
                        "seed {seed}: minority node {i} applied index {}, past {majority_last}, the last any \
                         node of the majority had when the partition began",
                        sim.applied_max[i]
                    );
                }
                minority_proposals.clear();
            }
            sim.side = vec![0; count];
            if sim.rng.bool() {
                // A minority of the voters now; every other node (learners,
                // removed ones) is on the majority's side.
                let mut order: Vec<usize> =
                    current_voters(&sim).iter().filter_map(|&v| sim.voters.iter().position(|&id| id == v)).collect();
                sim.rng.shuffle(&mut order);
                let minority: Vec<usize> = order[..order.len().saturating_sub(1) / 2].to_vec();
                for &i in &minority {
                    sim.side[i] = 1;
                }
                let majority_last = (0..count).filter(|&i| sim.side[i] == 0).map(|i| last_index(&sim.disk[i])).max();
                partition = Some((minority, majority_last.unwrap_or(0)));
            }
        }
        if sim.rng.u32(0..15) == 0 {
            counter += 1;
            let at = sim.rng.usize(0..count);
            if let Some(id) = sim.propose(at, &assign(counter)) {
                if sim.side[at] == 1 {
                    minority_proposals.insert(id);
                }
            }
        }
        if sim.rng.u32(0..400) == 0 {
            let i = sim.rng.usize(0..count);
            sim.crash(i);
        }
        if sim.rng.u32(0..50) == 0 {
            let i = sim.rng.usize(0..count);
            sim.restart(i);
        }
        if let Some(c) = changes.as_deref_mut() {
            c.step(&mut sim);
            // A node added now is on the majority's side.
            sim.side.resize(sim.nodes.len(), 0);
        }
        sim.step();
    }
    // Heal everything, then one more change must reach every member.
    sim.side = vec![0; sim.nodes.len()];
    sim.drop_percent = 0;
    sim.duplicate_percent = 0;
    for i in 0..sim.nodes.len() {
        sim.restart(i);
    }
    let before = sim.history.len();
    let deadline = sim.now + SETTLE_STEPS_MAX;
    loop {
        assert!(sim.now < deadline, "seed {seed}: no convergence after healing");
        let members: Vec<u64> = sim
            .leader()
            .map(|l| sim.nodes[l].as_ref().unwrap().peers().iter().map(|p| p.id).collect())
            .unwrap_or_default();
        let done = sim.history.len() > before
            && !members.is_empty()
            && sim
                .nodes
                .iter()
                .flatten()
                .filter(|n| members.contains(&n.id()))
                .all(|n| n.applied() == sim.history.last().unwrap());
        if done {
            break;
        }
        if sim.history.len() == before && sim.now % 20 == 0 {
            counter += 1;
            let at = sim.rng.usize(0..sim.nodes.len());
            sim.propose(at, &assign(counter));
        }
        sim.step();
    }
    // Committed entries are never lost: the leader holds every one (or a
    // snapshot past it).
    let l = sim.leader().expect("a leader after healing");
    for (&index, &(term, _)) in &sim.committed_entries {
        assert!(holds(&sim.disk[l], index, term), "seed {seed}: committed entry {index} lost by the leader");
    }
    assert!(sim.leaders.len() > 1, "seed {seed}: the leader never changed");
    assert!(
        sim.snapshots_sent > 0 && sim.snapshots_applied > 0,
        "seed {seed}: {} snapshots sent, {} applied",
        sim.snapshots_sent,
        sim.snapshots_applied
    );
    eprintln!(
        "seed {seed}: {} terms with a leader, {} epochs committed, {} snapshots sent, {} applied, {} nodes",
        sim.leaders.len(),
        sim.history.len(),
        sim.snapshots_sent,
        sim.snapshots_applied,
        sim.nodes.len()
    );
    sim.history
}

#[test]
fn three_voters_agree_under_loss_partitions_and_crashes() {
    for seed in 0..4 {
        run(seed, 3);
    }
}

#[test]
fn five_voters_agree_under_loss_partitions_and_crashes() {
    for seed in 100..102 {
        run(seed, 5);
    }
}

#[test]
fn voters_are_added_and_removed_under_loss_partitions_and_crashes() {
    let (mut adds, mut removes, mut leader_removals) = (0, 0, 0);
    for seed in 200..204 {
        let mut changes = Changes::new();
        run_with(seed, 3, Some(&mut changes));
        eprintln!(
            "seed {seed}: {} voters added, {} removed ({} of them leading)",
            changes.adds_done, changes.removes_done, changes.leader_removals
        );
        assert!(changes.adds_done > 0 && changes.removes_done > 0, "seed {seed}: no change went through");
        adds += changes.adds_done;
        removes += changes.removes_done;
        leader_removals += changes.leader_removals;
    }
    assert!(adds >= 4 && removes >= 4, "{adds} additions, {removes} removals");
    assert!(leader_removals > 0, "no leader removed itself");
}

#[test]
fn a_seed_replays_the_same_history() {
    assert_eq!(run(7, 3), run(7, 3));
}

#[test]
fn a_minority_alone_commits_nothing() {
    let mut sim = Sim::new(42, 3);
    while sim.history.is_empty() {
        assert!(sim.now < SETTLE_STEPS_MAX);
        if sim.now % 20 == 0 {
            sim.propose(0, &ConfigChange::Replace(initial_config()));
        }
        sim.step();
    }
    // Cut the leader off alone; the other two elect a new one.
    let leader = sim.nodes.iter().flatten().find(|n| n.is_leader()).map(|n| n.id() as usize - 1).unwrap();
    sim.side[leader] = 1;
    let epoch = sim.history.len() as u64;
    let cut_off = sim.propose(leader, &assign(1)).unwrap();
    for _ in 0..SHAPE_STEPS {
        sim.step();
    }
    assert!(!sim.nodes[leader].as_ref().unwrap().is_leader(), "the cut-off leader stepped down (check quorum)");
    assert_eq!(sim.epochs[leader], epoch);
    assert!(!sim.committed().contains(&cut_off));
    // The majority still commits.
    let other = (leader + 1) % 3;
    let mut made = None;
    for _ in 0..SETTLE_STEPS_MAX {
        if made.is_none() && sim.now % 20 == 0 {
            made = sim.propose(other, &assign(2));
        }
        sim.step();
        if made.is_some_and(|id| sim.committed().contains(&id)) {
            break;
        }
    }
    assert!(made.is_some_and(|id| sim.committed().contains(&id)), "the majority commits");
    assert!(sim.history.len() as u64 > epoch);
    assert_eq!(sim.epochs[leader], epoch, "the cut-off node still has the old epoch");
    // Healed, the old leader's entry is gone and it catches up.
    sim.side = vec![0; 3];
    for _ in 0..SHAPE_STEPS {
        sim.step();
    }
    assert!(!sim.committed().contains(&cut_off));
    assert_eq!(sim.nodes[leader].as_ref().unwrap().applied(), sim.history.last().unwrap());
}

#[test]
fn group_tags_are_refused_before_the_protobuf_parser() {
    let m = Message { to: 2, from: 1, term: 3, ..Message::default() };
    let good = encode_message(&m).unwrap();
    assert_eq!(decode_message(&good).unwrap().term, 3);
    // Field 20, wire type 3 (start group), nested thousands deep: protobuf
    // 2 would recurse once per tag.
    let mut evil = good.clone();
    evil.extend(std::iter::repeat_n([0xa3u8, 0x01], 100_000).flatten());
    assert!(decode_message(&evil).unwrap_err().contains("wire type 3"));
    // Also inside an entry (field 7 of Message).
    let mut nested = good;
    nested.extend([0x3a, 0x02, 0x0b, 0x0c]);
    assert!(decode_message(&nested).is_err());
    assert!(decode_message(&vec![0u8; super::log::MESSAGE_BYTES_MAX + 1]).is_err());
}
