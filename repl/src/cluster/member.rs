//! A designated node's control thread: it drives the node's
//! [`ControlLog`] (ticks every [`TICK_MS`]), carries raft messages to and
//! from the other voters over TCP on the `cluster-port`, keeps the log's
//! durable state in `<cluster-config-file>.log`, and hands each committed
//! configuration to [`ClusterControl`], which writes nodes.conf and
//! publishes the shards' Routing.
//!
//! ```text
//!   peer voters ──frames──▶ reader threads ──┐
//!   CLUSTER CORESHARD-PROPOSE (a shard) ─────┼─▶ control thread ──▶ ControlLog (sans-IO)
//!                                            │      │ persist <config>.log, then
//!                                            │      ├─▶ sender thread per peer ──frames──▶ peer voters
//!                                            │      └─▶ ClusterControl::install ─▶ Routing ─▶ shards
//!                                            └─ status (term, leader) read by CLUSTER CORESHARD-LOG
//! ```
//!
//! A proposal carries an [`Answer`]: the control thread calls it with the
//! outcome, and the shard that took `CORESHARD-PROPOSE` gets it through its
//! control channel; the shard never waits for the log.
//!
//! The members can change (added as a learner, promoted, removed): the
//! control thread opens and closes sender threads as they do, and a node
//! that applies its own removal marks its log file removed, hands
//! leadership over if it leads, closes its control port (so it can be
//! added again without a restart), stops its thread and takes
//! configurations by push from then on.
//!
//! A frame is a 4-byte big-endian length and a raft message as protobuf,
//! checked by [`decode_message`] before it is parsed. Messages are best
//! effort: a full queue or a broken connection drops them, and Raft
//! retries.

use super::config::{ClusterConfig, ConfigChange, NodeId};
use super::control::ClusterControl;
pub use super::log::Voter;
use super::log::{
    ControlLog, Durable, MESSAGE_BYTES_MAX, ProposalId, ProposeError, TICK_MS, Timing, VOTERS_MAX, VoterChange,
    decode_message, encode_message,
};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Inputs waiting for the control thread.
const INPUT_QUEUE_MAX: usize = 1024;
/// Frames waiting for one peer's sender thread.
const PEER_QUEUE_MAX: usize = 256;
/// Connections accepted on the cluster port at once.
const CONNECTIONS_MAX: usize = 4 * VOTERS_MAX;
/// How long a connect or a write to a peer may take.
const PEER_IO_TIMEOUT_MS: u64 = 500;
/// How long a proposal waits to commit before its caller is told so.
pub const PROPOSE_WAIT_MS: u64 = 5000;
/// How often the leader retries pushing the configuration to a node
/// outside the voters that has not taken it yet.
const PUSH_RETRY_MS: u64 = 1000;
/// The control thread's nice value: below the shard threads, which share
/// its core where every core has a shard.
const CONTROL_NICE: i32 = 10;
/// Removed members heard from waiting for the pusher.
const HEARD_QUEUE_MAX: usize = 16;
/// The longest reply line read from a node the configuration is pushed to.
const PUSH_REPLY_BYTES_MAX: usize = 4096;

/// The members the log started from and which one this node is, as kept
/// on disk. The members in force are the log's ([`ControlLog::peers`]):
/// these are the voters the log was created with, or, on a node added
/// later, the members as of its addition (whom it answers until the
/// leader's snapshot tells it the members).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// This node's raft id (1-based).
    pub id: u64,
    /// Every member: id, node id and control address (`ip:cluster-port`).
    pub voters: Vec<Voter>,
}

/// `<cluster-config-file>.log`: membership and the log's durable state.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LogFile {
    membership: Membership,
    durable: Durable,
    /// Set once this node applied its own removal (or was told of it): a
    /// restart does not bring it back as a member.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
}

/// The log file's path for a cluster config file.
pub fn log_path(config_file: &Path) -> PathBuf {
    let mut name = config_file.as_os_str().to_owned();
    name.push(".log");
    PathBuf::from(name)
}

fn load(path: &Path) -> Result<Option<LogFile>, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("control log file {}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("control log file {}: {e}", path.display())),
    }
}

/// Writes `file` durably: a temporary file, synced, renamed over the old
/// one, and the directory synced.
fn save(path: &Path, file: &LogFile) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(file).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("log.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The control log as the rest of the node sees it.
#[derive(Clone, Debug, Default)]
pub struct LogStatus {
    /// This node's voter id.
    pub id: u64,
    /// The current term.
    pub term: u64,
    /// The leader's voter id (0: none known).
    pub leader: u64,
    /// The leader's cluster node id, when known.
    pub leader_node: Option<NodeId>,
    /// The epoch of the last applied configuration.
    pub epoch: u64,
    /// The highest index known committed.
    pub commit: u64,
    /// The members as this node applied them.
    pub peers: Vec<Voter>,
    /// On the leader, each member's highest index known held (raft id, index).
    pub matched: Vec<(u64, u64)>,
    /// True once this node left the log (its removal applied).
    pub left: bool,
    /// The members removed last, newest last (as the snapshot keeps them).
    pub removed: Vec<Voter>,
}

enum Input {
    Peer(raft::eraftpb::Message),
    Propose(ConfigChange, Answer),
    Change(VoterChange, Answer),
    /// This node was told by the leader's pusher that it was removed
    /// (it was away when its removal committed).
    Removed,
}

/// Where a proposal's outcome goes: called once, from the control thread
/// (or the thread that gave up on it), with the epoch the change made or
/// why not. Dropped unanswered (the control thread stopped), it answers so.
pub struct Answer(Option<AnswerFn>);

/// What an [`Answer`] calls.
type AnswerFn = Box<dyn FnOnce(Result<u64, String>) + Send>;

impl Answer {
    /// An answer delivered to `f`.
    pub fn new(f: impl FnOnce(Result<u64, String>) + Send + 'static) -> Answer {
        Answer(Some(Box::new(f)))
    }

    /// Delivers the outcome.
    pub fn send(mut self, result: Result<u64, String>) {
        if let Some(f) = self.0.take() {
            f(result);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err("the control log stopped".into()));
        }
    }
}

/// A running control thread.
pub struct Member {
    input: Sender<Input>,
    status: Arc<Mutex<LogStatus>>,
    membership: Membership,
}

impl Member {
    /// Starts the control thread of a node that has a log file next to
    /// `config_file`; None when it has none (not a member) or its file
    /// says it was removed.
    pub fn resume(config_file: &Path, control: Arc<ClusterControl>) -> Result<Option<Member>, String> {
        match load(&log_path(config_file))? {
            Some(file) if file.removed => {
                tracing::info!("cluster: this node was removed from the control log; it is not a member");
                Ok(None)
            }
            Some(file) => Member::start(config_file, file, control).map(Some),
            None => Ok(None),
        }
    }

    /// Makes this node member `membership.id` of a control log (a voter of
    /// a new one, or a learner being added to a running one) and starts
    /// its thread. A log file of a removed membership is replaced.
    pub fn join(config_file: &Path, membership: Membership, control: Arc<ClusterControl>) -> Result<Member, String> {
        let path = log_path(config_file);
        if let Some(existing) = load(&path)?.filter(|f| !f.removed) {
            if existing.membership != membership {
                return Err("this node is already a member of another control log".into());
            }
            return Member::start(config_file, existing, control);
        }
        let file = LogFile { membership, durable: Durable::default(), removed: false };
        save(&path, &file).map_err(|e| format!("can't write {}: {e}", path.display()))?;
        Member::start(config_file, file, control)
    }

    fn start(config_file: &Path, file: LogFile, control: Arc<ClusterControl>) -> Result<Member, String> {
        let membership = file.membership.clone();
        let mut log = ControlLog::restore(membership.id, &membership.voters, file.durable.clone(), Timing::default())?;
        log.set_compaction(control.compaction());
        if !log.is_member() {
            return Err("this node's control log says it was removed".into());
        }
        let me = log
            .peers()
            .iter()
            .chain(&membership.voters)
            .find(|v| v.id == membership.id)
            .ok_or("the control log's members do not list this node")?;
        let listener = TcpListener::bind(&me.addr).map_err(|e| format!("can't listen on {}: {e}", me.addr))?;
        let (input_tx, input_rx) = bounded(INPUT_QUEUE_MAX);
        let status = Arc::new(Mutex::new(LogStatus { id: membership.id, ..LogStatus::default() }));
        let listening = Listening::start(listener, input_tx.clone())?;
        let (push_tx, push_rx) = bounded::<Push>(1);
        let (heard_tx, heard_rx) = bounded::<Heard>(HEARD_QUEUE_MAX);
        spawn("cs-control-push", move || push_to_others(push_rx, heard_rx))?;
        let mut driver = Driver {
            push: push_tx,
            heard: heard_tx,
            heard_at: HashMap::new(),
            log,
            path: log_path(config_file),
            membership: membership.clone(),
            peers: HashMap::new(),
            control,
            status: status.clone(),
            waiting: HashMap::new(),
            leaderless: Vec::new(),
            leaving: None,
            listening: Some(listening),
        };
        driver.connect_peers()?;
        spawn("cs-control", move || {
            lower_priority();
            driver.run(input_rx)
        })?;
        tracing::info!("cluster: control log member {} started", membership.id);
        Ok(Member { input: input_tx, status, membership })
    }

    /// The log's state now.
    pub fn status(&self) -> LogStatus {
        match self.status.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The voters.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Proposes `change` and waits (at most [`PROPOSE_WAIT_MS`]) until it
    /// commits: Ok(the epoch it made), or why not. Blocks the caller.
    pub fn propose(&self, change: ConfigChange) -> Result<u64, String> {
        wait_for(|answer| self.propose_then(change, answer))
    }

    /// Proposes a membership change without waiting (this node must lead
    /// the log): `answer` gets the raft id it concerns once it applied,
    /// or why not (within [`PROPOSE_WAIT_MS`] and a tick).
    pub fn change_then(&self, change: VoterChange, answer: Answer) {
        if let Err(e) = self.input.try_send(Input::Change(change, answer)) {
            let Input::Change(_, answer) = e.into_inner() else { return };
            answer.send(Err("the control thread is busy".into()));
        }
    }

    /// [`Self::change_then`], waiting for the outcome. Blocks the caller.
    pub fn change(&self, change: VoterChange) -> Result<u64, String> {
        wait_for(|answer| self.change_then(change, answer))
    }

    /// Tells the control thread that the leader says this node was
    /// removed: it leaves the log as if it had applied its removal.
    pub fn removed(&self) {
        let _ = self.input.try_send(Input::Removed);
    }

    /// Proposes `change` without waiting: `answer` gets the epoch it made
    /// once it commits, or why not (within [`PROPOSE_WAIT_MS`] and a tick:
    /// a change that did not commit by then may still).
    pub fn propose_then(&self, change: ConfigChange, answer: Answer) {
        if let Err(e) = self.input.try_send(Input::Propose(change, answer)) {
            let Input::Propose(_, answer) = e.into_inner() else { return };
            answer.send(Err("the control thread is busy".into()));
        }
    }
}

/// Gives the calling thread the nice value [`CONTROL_NICE`] (Linux keeps
/// one per thread), so that the shards win a shared core. Raising one's
/// own nice value needs no privilege; a failure is only logged.
fn lower_priority() {
    // SAFETY: gettid and setpriority take and return plain integers and
    // touch no memory of ours.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, CONTROL_NICE) };
    if rc != 0 {
        tracing::debug!("cluster: control thread priority unchanged: {}", std::io::Error::last_os_error());
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new().name(name.into()).spawn(f).map(|_| ()).map_err(|e| format!("can't start {name}: {e}"))
}

/// The control port's accepting thread, stopped when this is dropped
/// (the control thread ends, a removed node's included): the port is then
/// free for the node to be added again without a restart.
struct Listening {
    stop: Arc<AtomicBool>,
    /// Where the listener is bound, to wake its `accept`.
    addr: std::net::SocketAddr,
    /// Disconnected once the accepting thread dropped the listener.
    ended: Receiver<()>,
}

impl Listening {
    fn start(listener: TcpListener, input: Sender<Input>) -> Result<Listening, String> {
        let addr = listener.local_addr().map_err(|e| format!("can't read the control port's address: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ended_tx, ended) = bounded::<()>(0);
        spawn("cs-control-accept", {
            let stop = stop.clone();
            move || {
                accept(listener, input, &stop);
                drop(ended_tx);
            }
        })?;
        Ok(Listening { stop, addr, ended })
    }
}

impl Drop for Listening {
    /// Stops accepting and waits (a second at most) until the listener is
    /// closed. `accept` blocks, so a connection of our own wakes it.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(PEER_IO_TIMEOUT_MS));
        if self.ended.recv_timeout(Duration::from_secs(1)) != Err(crossbeam_channel::RecvTimeoutError::Disconnected) {
            tracing::warn!("cluster: the control port {} is still open", self.addr);
        }
    }
}

/// Accepts peers' connections, each read by a thread of its own, until
/// `stop` is set.
fn accept(listener: TcpListener, input: Sender<Input>, stop: &Arc<AtomicBool>) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if open.load(Ordering::Relaxed) >= CONNECTIONS_MAX {
            tracing::warn!("cluster: control port has {CONNECTIONS_MAX} connections, refusing one");
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (input, open, stop) = (input.clone(), open.clone(), stop.clone());
        let started = spawn("cs-control-read", move || {
            read_from(stream, &input, &stop);
            open.fetch_sub(1, Ordering::Relaxed);
        });
        if started.is_err() {
            tracing::warn!("cluster: can't start a control reader");
        }
    }
}

/// Reads frames until the connection ends or sends garbage, or the
/// control thread stopped.
fn read_from(mut stream: TcpStream, input: &Sender<Input>, stop: &AtomicBool) {
    let _ = stream.set_nodelay(true);
    let mut len = [0u8; 4];
    let mut buf = Vec::new();
    loop {
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > MESSAGE_BYTES_MAX {
            tracing::warn!("cluster: control frame of {n} bytes refused");
            return;
        }
        buf.resize(n, 0);
        if stream.read_exact(&mut buf).is_err() {
            return;
        }
        match decode_message(&buf) {
            // A full queue drops the message; Raft sends again.
            Ok(m) => {
                let gone = matches!(input.try_send(Input::Peer(m)), Err(TrySendError::Disconnected(_)));
                if gone || stop.load(Ordering::Acquire) {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!("cluster: bad control message: {e}");
                return;
            }
        }
    }
}

/// Sends one peer's frames over a connection made (again) on demand.
fn send_to(addr: String, frames: Receiver<Vec<u8>>) {
    let timeout = Duration::from_millis(PEER_IO_TIMEOUT_MS);
    let mut conn: Option<TcpStream> = None;
    for frame in frames {
        if conn.is_none() {
            let target = addr.to_socket_addrs().ok().and_then(|mut a| a.next());
            conn = target.and_then(|a| TcpStream::connect_timeout(&a, timeout).ok());
            if let Some(c) = &conn {
                let _ = c.set_nodelay(true);
                let _ = c.set_write_timeout(Some(timeout));
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        if c.write_all(&frame).is_err() {
            conn = None;
        }
    }
}

/// How long a leader that applied its own removal keeps running to send
/// its hand-over before its control thread stops.
const HAND_OVER_MS: u64 = 500;

struct Driver {
    /// The newest committed configuration and the members, for the pusher
    /// (leader only).
    push: Sender<Push>,
    /// Removed members heard from, for the pusher to tell them.
    heard: Sender<Heard>,
    /// When each removed member was last reported heard from.
    heard_at: HashMap<u64, Instant>,
    log: ControlLog,
    path: PathBuf,
    membership: Membership,
    /// A sender thread's queue per member (raft id), with its address.
    peers: HashMap<u64, (String, Sender<Vec<u8>>)>,
    control: Arc<ClusterControl>,
    status: Arc<Mutex<LogStatus>>,
    /// Proposals waiting for their outcome, with when they were made.
    waiting: HashMap<ProposalId, (Answer, Instant)>,
    /// Proposals made while no leader was known (an election), with when
    /// they were made: proposed once one is, within [`PROPOSE_WAIT_MS`].
    leaderless: Vec<(ConfigChange, Answer, Instant)>,
    /// Once this node is no longer a member: when it stops at the latest
    /// (a leader first hands leadership over).
    leaving: Option<Instant>,
    /// The control port, closed when the node leaves or the control
    /// thread ends.
    listening: Option<Listening>,
}

impl Driver {
    /// Opens a sender thread to each member this node does not have one
    /// for, and closes those of members gone (their threads end once
    /// their queue is dropped). Addresses are the log's members', else
    /// (a node being added, before the leader's snapshot) the ones it was
    /// given.
    fn connect_peers(&mut self) -> Result<(), String> {
        let me = self.log.id();
        let mut want: Vec<(u64, String)> =
            self.log.peers().iter().filter(|p| p.id != me).map(|p| (p.id, p.addr.clone())).collect();
        for v in self.membership.voters.iter().filter(|v| v.id != me) {
            if !self.log.peers().iter().any(|p| p.id == v.id) && !self.log.removed().iter().any(|r| r.id == v.id) {
                want.push((v.id, v.addr.clone()));
            }
        }
        self.peers.retain(|id, (addr, _)| want.iter().any(|(w, a)| w == id && a == addr));
        for (id, addr) in want {
            if self.peers.contains_key(&id) {
                continue;
            }
            let (tx, rx) = bounded::<Vec<u8>>(PEER_QUEUE_MAX);
            let target = addr.clone();
            spawn("cs-control-send", move || send_to(target, rx))?;
            self.peers.insert(id, (addr, tx));
        }
        Ok(())
    }

    fn run(mut self, input: Receiver<Input>) {
        let tick = Duration::from_millis(TICK_MS);
        let mut next_tick = Instant::now() + tick;
        loop {
            let now = Instant::now();
            if now >= next_tick {
                self.log.tick();
                next_tick = now + tick;
                let wait = Duration::from_millis(PROPOSE_WAIT_MS);
                let expired: Vec<ProposalId> = self
                    .waiting
                    .iter()
                    .filter(|(_, (_, at))| now.duration_since(*at) >= wait)
                    .map(|(&id, _)| id)
                    .collect();
                for id in expired {
                    if let Some((answer, _)) = self.waiting.remove(&id) {
                        answer
                            .send(Err(format!("the change did not commit within {PROPOSE_WAIT_MS} ms; it may still")));
                    }
                }
                for (change, answer, at) in std::mem::take(&mut self.leaderless) {
                    if now.duration_since(at) >= wait {
                        answer.send(Err(format!("no control log leader is known (none for {PROPOSE_WAIT_MS} ms)")));
                    } else {
                        self.propose(change, answer, at);
                    }
                }
            }
            match input.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok(Input::Peer(m)) => {
                    self.note_removed_sender(m.from);
                    let _ = self.log.step(m);
                }
                Ok(Input::Propose(change, reply)) => self.propose(change, reply, Instant::now()),
                Ok(Input::Change(change, reply)) => self.change(change, reply),
                Ok(Input::Removed) => {
                    if self.leaving.is_none() {
                        tracing::info!("cluster: the control log leader says this node was removed");
                        self.leaving = Some(Instant::now());
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
            if let Err(e) = self.ready() {
                // The durable state could not be kept: stop voting rather
                // than acknowledge what is not on disk.
                tracing::error!("cluster: control log stopped: {e}");
                return;
            }
            if let Some(until) = self.leaving {
                if !self.log.is_leader() || Instant::now() >= until {
                    self.leave();
                    return;
                }
            }
        }
    }

    /// A message from member `from`: if it is one removed (it came back
    /// unaware), the pusher tells it, at most once a retry period.
    fn note_removed_sender(&mut self, from: u64) {
        if self.log.peers().iter().any(|p| p.id == from) {
            return;
        }
        let Some(voter) = self.log.removed().iter().rev().find(|r| r.id == from).cloned() else { return };
        let now = Instant::now();
        if self.heard_at.get(&from).is_some_and(|&at| now.duration_since(at) < Duration::from_millis(PUSH_RETRY_MS)) {
            return;
        }
        self.heard_at.insert(from, now);
        let Some(node) = self.control.config().node(&voter.node).cloned() else { return };
        tracing::debug!("cluster: removed member {from} sent a message; telling it");
        let _ = self.heard.try_send(Heard { voter, ip: node.ip, port: node.port });
    }

    /// Ends this node's membership: the log file is marked removed (a
    /// restart does not bring it back), every waiting caller is answered,
    /// and the node goes on as one outside the log, which learns the
    /// configuration by push.
    fn leave(&mut self) {
        let file = LogFile { membership: self.membership.clone(), durable: Durable::default(), removed: true };
        if let Err(e) = save(&self.path, &file) {
            tracing::error!("cluster: can't mark {} removed: {e}", self.path.display());
        }
        for (_, (answer, _)) in self.waiting.drain() {
            answer.send(Err("this node left the control log".into()));
        }
        for (_, answer, _) in self.leaderless.drain(..) {
            answer.send(Err("this node left the control log".into()));
        }
        // Before the node counts as outside the log, so that it can be
        // added again at once.
        self.listening = None;
        match self.status.lock() {
            Ok(mut s) => s.left = true,
            Err(poisoned) => poisoned.into_inner().left = true,
        }
        self.control.left_log(self.log.id());
        tracing::info!("cluster: this node left the control log (member {})", self.log.id());
    }

    /// Proposes `change` (made at `at`); while no leader is known it waits
    /// for one, tried again each tick.
    fn propose(&mut self, change: ConfigChange, answer: Answer, at: Instant) {
        if self.leaving.is_some() {
            return answer.send(Err("this node is leaving the control log".into()));
        }
        let id = fastrand::u64(..);
        match self.log.propose(&change, id) {
            Ok(()) => {
                self.waiting.insert(id, (answer, at));
            }
            Err(ProposeError::NoLeader) => self.leaderless.push((change, answer, at)),
            Err(e) => answer.send(Err(e.to_string())),
        }
    }

    /// Proposes a membership change (this node must lead the log).
    fn change(&mut self, change: VoterChange, answer: Answer) {
        if self.leaving.is_some() {
            return answer.send(Err("this node is leaving the control log".into()));
        }
        let id = fastrand::u64(..);
        match self.log.propose_change(&change, id) {
            Ok(_) => {
                self.waiting.insert(id, (answer, Instant::now()));
            }
            Err(e) => answer.send(Err(e.to_string())),
        }
    }

    fn ready(&mut self) -> Result<(), String> {
        let out = self.log.ready()?;
        if let Some(index) = out.restored {
            tracing::info!("cluster: control log caught up by the leader's snapshot at index {index}");
        }
        if let Some(index) = out.compacted {
            tracing::debug!("cluster: control log compacted up to index {index}");
        }
        if let Some(durable) = out.persist {
            let file = LogFile { membership: self.membership.clone(), durable, removed: false };
            save(&self.path, &file).map_err(|e| format!("can't write {}: {e}", self.path.display()))?;
        }
        if out.peers.is_some() {
            self.connect_peers()?;
        }
        for m in out.messages {
            let Some((_, peer)) = self.peers.get(&m.to) else { continue };
            let Ok(bytes) = encode_message(&m) else { continue };
            let mut frame = Vec::with_capacity(4 + bytes.len());
            frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            frame.extend_from_slice(&bytes);
            let _ = peer.try_send(frame);
        }
        if let Some(config) = out.installed.last() {
            self.control.install_committed(config.clone());
        }
        if self.log.is_leader() && self.log.applied().epoch > 0 && self.leaving.is_none() {
            // A full slot means the pusher has a configuration to work
            // on; it asks again on its next round.
            let _ = self.push.try_send(Push {
                config: self.log.applied().clone(),
                members: self.log.peers().iter().map(|p| p.node.clone()).collect(),
                removed: self.log.removed().to_vec(),
            });
        }
        self.publish_status();
        // After the status, so that a caller sees the members its change made.
        for (id, result) in out.results {
            if let Some((reply, _)) = self.waiting.remove(&id) {
                reply.send(result);
            }
        }
        if !self.log.is_member() && self.leaving.is_none() {
            // Its own removal applied: a leader hands over first.
            tracing::info!("cluster: this node's removal from the control log applied");
            self.log.hand_over();
            self.leaving = Some(Instant::now() + Duration::from_millis(HAND_OVER_MS));
        }
        Ok(())
    }

    /// Publishes the log's state for CLUSTER CORESHARD-LOG and the
    /// membership changes' callers.
    fn publish_status(&self) {
        let leader = self.log.leader();
        let peers = self.log.peers().to_vec();
        let status = LogStatus {
            id: self.log.id(),
            term: self.log.term(),
            leader,
            leader_node: peers.iter().find(|v| v.id == leader).map(|v| v.node.clone()),
            epoch: self.log.applied().epoch,
            commit: self.log.commit(),
            matched: peers.iter().filter_map(|p| self.log.matched(p.id).map(|m| (p.id, m))).collect(),
            peers,
            left: false,
            removed: self.log.removed().to_vec(),
        };
        match self.status.lock() {
            Ok(mut s) => *s = status,
            Err(poisoned) => *poisoned.into_inner() = status,
        }
    }
}

/// Starts a request with an [`Answer`] and blocks until it is given.
fn wait_for(start: impl FnOnce(Answer)) -> Result<u64, String> {
    let (tx, rx) = bounded(1);
    start(Answer::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.recv().unwrap_or_else(|_| Err("the control log stopped".into()))
}

/// What the leader's pusher works from.
struct Push {
    /// The newest committed configuration.
    config: ClusterConfig,
    /// The log's members, who get configurations from the log.
    members: Vec<NodeId>,
    /// Members removed last, told so until they answer.
    removed: Vec<Voter>,
}

/// A removed member that sent this member a raft message: it does not
/// know it was removed (it was away, or restarted from old files), so the
/// pusher tells it at once, whether this member leads or not.
struct Heard {
    voter: Voter,
    /// Its client port's address, from the map.
    ip: String,
    port: u16,
}

/// A request the pusher makes of one node.
#[derive(Clone, Debug)]
enum Tell {
    /// `CLUSTER CORESHARD-SETCONFIG <epoch> <json>`.
    Config(u64, Arc<str>),
    /// `CLUSTER CORESHARD-LOG-REMOVED <raft-id>`.
    Removed(u64),
}

/// Whom a request goes to: a node outside the log, or a removed member.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    Node(NodeId),
    Removed(u64),
}

/// A request a courier made, and whether the node took it.
struct Done {
    target: Target,
    tell: Tell,
    taken: bool,
}

/// A removed member the pusher tells so.
struct Removal {
    ip: String,
    port: u16,
    node: NodeId,
    /// It answered that it left (or is no such member).
    told: bool,
    /// Tries since it was last heard of, for the backoff.
    tries: u32,
    /// When it was last tried.
    last: Option<Instant>,
}

/// The longest wait between two tellings of a removed member that does
/// not answer: retries back off from [`PUSH_RETRY_MS`], doubling, to this.
/// It is told at once anyway when it sends a member a message (it comes
/// back believing it is one), so slow retries only delay a member that
/// comes back silent (a learner).
const REMOVED_RETRY_MAX_MS: u64 = 60_000;

/// The wait before the next telling of a removed member tried `tries` times.
fn removed_backoff(tries: u32) -> Duration {
    let ms = PUSH_RETRY_MS.saturating_mul(1u64 << tries.min(16));
    Duration::from_millis(ms.min(REMOVED_RETRY_MAX_MS))
}

/// Nodes outside the log learn committed configurations by push: the
/// leader's pusher sends `CLUSTER CORESHARD-SETCONFIG <epoch> <json>` to
/// each of them (on its client port) until it has taken that epoch or a
/// newer one, retrying every [`PUSH_RETRY_MS`]. A node refuses an epoch
/// not higher than its own, so a push from a deposed leader is harmless.
/// A member removed while it was away (it still thinks it is one, and
/// refuses pushes) is sent `CLUSTER CORESHARD-LOG-REMOVED <raft-id>` until
/// it answers that it left, backing off to [`REMOVED_RETRY_MAX_MS`], and
/// at once whenever it is heard from.
///
/// Each node is sent to by a courier thread of its own, one request at a
/// time, so a node that does not answer (each request may wait
/// [`PEER_IO_TIMEOUT_MS`] to connect and as long for the answer) delays
/// only its own requests, never another node's. A courier exists while
/// its node has something to take.
fn push_to_others(pushes: Receiver<Push>, heard: Receiver<Heard>) {
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
    let mut pusher = Pusher {
        couriers: HashMap::new(),
        busy: HashSet::new(),
        next: HashMap::new(),
        taken: HashMap::new(),
        removed: HashMap::new(),
        latest: None,
        json: None,
        done: done_tx,
    };
    loop {
        let wait = pusher.next_wait(Instant::now());
        crossbeam_channel::select! {
            recv(pushes) -> push => match push {
                Ok(push) => pusher.take_push(push),
                Err(_) => return,
            },
            recv(heard) -> h => match h {
                Ok(h) => pusher.heard(h),
                Err(_) => return,
            },
            recv(done_rx) -> done => {
                if let Ok(done) = done {
                    pusher.done(done);
                }
            },
            default(wait) => {},
        }
        pusher.round(Instant::now());
    }
}

/// The pusher's state (see [`push_to_others`]).
struct Pusher {
    /// Each target's courier: its queue of one request.
    couriers: HashMap<Target, Sender<(String, u16, Tell)>>,
    /// Targets whose courier has a request in hand.
    busy: HashSet<Target>,
    /// When a target may be sent to again.
    next: HashMap<Target, Instant>,
    /// The epoch each node outside the log is known to have.
    taken: HashMap<NodeId, u64>,
    /// Removed members to tell, by raft id.
    removed: HashMap<u64, Removal>,
    latest: Option<Push>,
    /// The latest configuration as JSON, with its epoch.
    json: Option<(u64, Arc<str>)>,
    done: Sender<Done>,
}

impl Pusher {
    fn take_push(&mut self, push: Push) {
        let epoch = self.latest.as_ref().map_or(0, |l| l.config.epoch);
        if push.config.epoch < epoch {
            return;
        }
        if push.config.epoch > epoch {
            // A new epoch goes out at once, not at the next retry.
            self.next.retain(|t, _| !matches!(t, Target::Node(_)));
        }
        // Those told that fell out of the log's list are forgotten.
        self.removed.retain(|id, r| !r.told || push.removed.iter().any(|p| p.id == *id));
        for r in &push.removed {
            if let Some(node) = push.config.node(&r.node) {
                self.removed.entry(r.id).or_insert_with(|| Removal {
                    ip: node.ip.clone(),
                    port: node.port,
                    node: r.node.clone(),
                    told: false,
                    tries: 0,
                    last: None,
                });
            }
        }
        self.latest = Some(push);
    }

    fn heard(&mut self, h: Heard) {
        let r = self.removed.entry(h.voter.id).or_insert_with(|| Removal {
            ip: h.ip.clone(),
            port: h.port,
            node: h.voter.node.clone(),
            told: false,
            tries: 0,
            last: None,
        });
        r.told = false;
        r.tries = 0;
        // At most once a retry period, however often it is heard.
        let at = r.last.map_or_else(Instant::now, |l| l + Duration::from_millis(PUSH_RETRY_MS));
        self.next.insert(Target::Removed(h.voter.id), at);
    }

    fn done(&mut self, done: Done) {
        self.busy.remove(&done.target);
        if !done.taken {
            return;
        }
        match (&done.target, &done.tell) {
            (Target::Node(node), Tell::Config(epoch, _)) => {
                let have = self.taken.entry(node.clone()).or_insert(0);
                *have = (*have).max(*epoch);
            }
            (Target::Removed(id), _) => {
                if let Some(r) = self.removed.get_mut(id) {
                    r.told = true;
                }
            }
            _ => {}
        }
    }

    /// How long until a target may be sent to again (a retry period at most).
    fn next_wait(&self, now: Instant) -> Duration {
        let retry = Duration::from_millis(PUSH_RETRY_MS);
        self.next.values().map(|at| at.saturating_duration_since(now)).min().map_or(retry, |d| d.min(retry))
    }

    /// Hands each target that lacks something, and is neither busy nor
    /// waiting for its retry, its request; ends the couriers of targets
    /// that lack nothing.
    fn round(&mut self, now: Instant) {
        let mut wanted: Vec<(Target, String, u16, Tell)> = Vec::new();
        if let Some(push) = &self.latest {
            let config = &push.config;
            if self.json.as_ref().is_none_or(|(e, _)| *e != config.epoch) {
                self.json = serde_json::to_string(config).ok().map(|j| (config.epoch, Arc::from(j)));
            }
            if let Some((_, json)) = &self.json {
                for node in config.nodes.iter().filter(|n| !push.members.contains(&n.id)) {
                    if self.taken.get(&node.id).is_some_and(|&e| e >= config.epoch) {
                        continue;
                    }
                    let tell = Tell::Config(config.epoch, json.clone());
                    wanted.push((Target::Node(node.id.clone()), node.ip.clone(), node.port, tell));
                }
            }
        }
        let members = self.latest.as_ref().map(|p| p.members.as_slice()).unwrap_or_default();
        for (&id, r) in &self.removed {
            // A member again (added back): nothing to tell.
            if !r.told && !members.contains(&r.node) {
                wanted.push((Target::Removed(id), r.ip.clone(), r.port, Tell::Removed(id)));
            }
        }
        self.couriers.retain(|t, _| wanted.iter().any(|w| &w.0 == t));
        for (target, ip, port, tell) in wanted {
            if self.busy.contains(&target) || self.next.get(&target).is_some_and(|&at| at > now) {
                continue;
            }
            let courier = match self.couriers.get(&target) {
                Some(c) => c.clone(),
                None => {
                    let (tx, rx) = bounded::<(String, u16, Tell)>(1);
                    let (done, who) = (self.done.clone(), target.clone());
                    if spawn("cs-control-courier", move || courier(who, rx, done)).is_err() {
                        tracing::warn!("cluster: can't start a courier for {target:?}");
                        continue;
                    }
                    self.couriers.insert(target.clone(), tx.clone());
                    tx
                }
            };
            if courier.try_send((ip, port, tell)).is_err() {
                continue;
            }
            self.busy.insert(target.clone());
            let wait = match &target {
                Target::Node(_) => Duration::from_millis(PUSH_RETRY_MS),
                Target::Removed(id) => match self.removed.get_mut(id) {
                    Some(r) => {
                        r.last = Some(now);
                        r.tries += 1;
                        removed_backoff(r.tries - 1)
                    }
                    None => Duration::from_millis(PUSH_RETRY_MS),
                },
            };
            self.next.insert(target, now + wait);
        }
        self.next
            .retain(|t, _| self.busy.contains(t) || self.couriers.contains_key(t) || matches!(t, Target::Removed(_)));
    }
}

/// A courier: makes its target's requests one at a time, reporting each
/// outcome, until the pusher drops its queue.
fn courier(target: Target, requests: Receiver<(String, u16, Tell)>, done: Sender<Done>) {
    let timeout = Duration::from_millis(PEER_IO_TIMEOUT_MS);
    for (ip, port, tell) in requests {
        let taken = match &tell {
            Tell::Config(epoch, json) => match push_one(&ip, port, *epoch, json) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!("cluster: push of epoch {epoch} to {target:?}: {e}");
                    false
                }
            },
            Tell::Removed(id) => {
                match request_line(&ip, port, &["CLUSTER", "CORESHARD-LOG-REMOVED", &id.to_string()], timeout) {
                    // Told now, or not (or no longer) that member.
                    Ok(line)
                        if line.starts_with("+OK")
                            || line.contains("not a member")
                            || line.contains("another member") =>
                    {
                        true
                    }
                    Ok(line) => {
                        tracing::debug!("cluster: telling member {id} it was removed: {line}");
                        false
                    }
                    Err(e) => {
                        tracing::debug!("cluster: telling member {id} it was removed: {e}");
                        false
                    }
                }
            }
        };
        if done.send(Done { target: target.clone(), tell, taken }).is_err() {
            return;
        }
    }
}

/// One push over a fresh connection; Ok when the node has the epoch now.
fn push_one(ip: &str, port: u16, epoch: u64, json: &str) -> Result<(), String> {
    let timeout = Duration::from_millis(PEER_IO_TIMEOUT_MS);
    let text = request_line(ip, port, &["CLUSTER", "CORESHARD-SETCONFIG", &epoch.to_string(), json], timeout)?;
    // "+OK", or a refusal because the node already has this epoch or a newer one.
    if text.starts_with("+OK") || text.contains("epoch") { Ok(()) } else { Err(text) }
}

/// Sends one command to a node's client port over a fresh connection and
/// returns the first line of its reply (without CRLF), waiting at most
/// `timeout` for each read or write.
pub(crate) fn request_line(ip: &str, port: u16, parts: &[&str], timeout: Duration) -> Result<String, String> {
    let mut conn = send_request(ip, port, parts, timeout)?;
    read_line(&mut conn)
}

/// [`request_line`] for a command answered with a bulk or verbatim string
/// (of at most [`PUSH_REPLY_BYTES_MAX`] bytes): its text (a verbatim
/// string's `txt:` prefix left in), or the reply's first line when it is
/// another kind (an error).
pub(crate) fn request_text(ip: &str, port: u16, parts: &[&str], timeout: Duration) -> Result<String, String> {
    let mut conn = send_request(ip, port, parts, timeout)?;
    let line = read_line(&mut conn)?;
    let Some(len) = line.strip_prefix(['$', '=']) else { return Ok(line) };
    let len: usize = len.parse().map_err(|_| format!("bad length in {line:?}"))?;
    if len > PUSH_REPLY_BYTES_MAX {
        return Err(format!("a reply of {len} bytes"));
    }
    let mut text = vec![0u8; len + 2];
    conn.read_exact(&mut text).map_err(|e| e.to_string())?;
    text.truncate(len);
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Connects to `ip:port` (within [`PEER_IO_TIMEOUT_MS`]) and writes the
/// command, each read and write on the connection bounded by `timeout`.
fn send_request(ip: &str, port: u16, parts: &[&str], timeout: Duration) -> Result<TcpStream, String> {
    let connect = Duration::from_millis(PEER_IO_TIMEOUT_MS);
    let addr = (ip, port).to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or("no address")?;
    let mut conn = TcpStream::connect_timeout(&addr, connect).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut request = Vec::new();
    request.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        request.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        request.extend_from_slice(p.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    conn.write_all(&request).map_err(|e| e.to_string())?;
    Ok(conn)
}

/// One reply line (at most [`PUSH_REPLY_BYTES_MAX`] bytes), without CRLF.
fn read_line(conn: &mut TcpStream) -> Result<String, String> {
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while reply.len() < PUSH_REPLY_BYTES_MAX && !reply.ends_with(b"\r\n") {
        conn.read_exact(&mut byte).map_err(|e| e.to_string())?;
        reply.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&reply).trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_thread_runs_below_the_shards() {
        let nice = std::thread::spawn(|| {
            lower_priority();
            // SAFETY: as in lower_priority; errno is cleared first because
            // -1 is also a valid priority.
            unsafe {
                *libc::__errno_location() = 0;
                libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t)
            }
        })
        .join()
        .unwrap();
        assert!(nice >= CONTROL_NICE, "nice {nice}");
        // SAFETY: as above; this thread's own priority is untouched.
        let here = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        assert!(here < CONTROL_NICE || here == nice, "only the control thread is lowered ({here})");
    }

    #[test]
    fn a_removed_member_is_told_less_and_less_often_down_to_once_a_minute() {
        let waits: Vec<u64> = (0..9).map(|t| removed_backoff(t).as_millis() as u64).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
        assert_eq!(removed_backoff(u32::MAX), Duration::from_millis(REMOVED_RETRY_MAX_MS));
    }

    #[test]
    fn a_stopped_control_port_is_free_to_bind_again() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (input, _rx) = bounded(1);
        let listening = Listening::start(listener, input).unwrap();
        assert!(TcpListener::bind(addr).is_err(), "bound while listening");
        drop(listening);
        assert!(TcpListener::bind(addr).is_ok(), "free once stopped");
    }

    #[test]
    fn a_status_is_read_whole_and_a_node_that_never_answers_is_given_up_on() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let answering = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 64];
            let _ = conn.read(&mut request).unwrap();
            conn.write_all(b"=29\r\ntxt:voter:2\r\nleader-node:ab\r\n\r\n").unwrap();
        });
        let text = request_text("127.0.0.1", port, &["CLUSTER", "CORESHARD-LOG"], Duration::from_secs(5)).unwrap();
        assert_eq!(text, "txt:voter:2\r\nleader-node:ab\r\n");
        answering.join().unwrap();
        // Accepted by the kernel (the backlog) and never answered.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let started = Instant::now();
        let asked = request_text("127.0.0.1", port, &["PING"], Duration::from_millis(200));
        assert!(asked.is_err(), "{asked:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn the_log_file_sits_next_to_the_config_file() {
        assert_eq!(log_path(Path::new("/d/nodes.conf")), PathBuf::from("/d/nodes.conf.log"));
    }
}
