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
//! A frame is a 4-byte big-endian length and a raft message as protobuf,
//! checked by [`decode_message`] before it is parsed. Messages are best
//! effort: a full queue or a broken connection drops them, and Raft
//! retries.

use super::config::{ClusterConfig, ConfigChange, NodeId};
use super::control::ClusterControl;
use super::log::{
    ControlLog, Durable, MESSAGE_BYTES_MAX, ProposalId, TICK_MS, Timing, VOTERS_MAX, decode_message, encode_message,
};
use crossbeam_channel::{Receiver, Sender, bounded};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
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
/// The longest reply line read from a node the configuration is pushed to.
const PUSH_REPLY_BYTES_MAX: usize = 4096;

/// The voters and which one this node is, as kept on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// This node's voter id (1-based).
    pub id: u64,
    /// Every voter: id, node id and control address (`ip:cluster-port`).
    pub voters: Vec<Voter>,
}

/// One voter of the control log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voter {
    /// Its raft id (1-based).
    pub id: u64,
    /// Its cluster node id.
    pub node: NodeId,
    /// Where its control thread listens: `ip:port`.
    pub addr: String,
}

/// `<cluster-config-file>.log`: membership and the log's durable state.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LogFile {
    membership: Membership,
    durable: Durable,
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
}

enum Input {
    Peer(raft::eraftpb::Message),
    Propose(ConfigChange, Answer),
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
    /// `config_file`; None when it has none (not a voter).
    pub fn resume(config_file: &Path, control: Arc<ClusterControl>) -> Result<Option<Member>, String> {
        match load(&log_path(config_file))? {
            Some(file) => Member::start(config_file, file, control).map(Some),
            None => Ok(None),
        }
    }

    /// Makes this node voter `membership.id` of a new control log and starts its thread.
    pub fn join(config_file: &Path, membership: Membership, control: Arc<ClusterControl>) -> Result<Member, String> {
        let path = log_path(config_file);
        if let Some(existing) = load(&path)? {
            if existing.membership != membership {
                return Err("this node is already a voter of another control log".into());
            }
            return Member::start(config_file, existing, control);
        }
        let file = LogFile { membership, durable: Durable::default() };
        save(&path, &file).map_err(|e| format!("can't write {}: {e}", path.display()))?;
        Member::start(config_file, file, control)
    }

    fn start(config_file: &Path, file: LogFile, control: Arc<ClusterControl>) -> Result<Member, String> {
        let membership = file.membership.clone();
        let ids: Vec<u64> = membership.voters.iter().map(|v| v.id).collect();
        let mut log = ControlLog::restore(membership.id, &ids, file.durable.clone(), Timing::default())?;
        log.set_compaction(control.compaction());
        let me = membership
            .voters
            .iter()
            .find(|v| v.id == membership.id)
            .ok_or("the control log's voters do not list this node")?;
        let listener = TcpListener::bind(&me.addr).map_err(|e| format!("can't listen on {}: {e}", me.addr))?;
        let (input_tx, input_rx) = bounded(INPUT_QUEUE_MAX);
        let status = Arc::new(Mutex::new(LogStatus { id: membership.id, ..LogStatus::default() }));
        spawn("cs-control-accept", {
            let input = input_tx.clone();
            move || accept(listener, input)
        })?;
        let mut peers = HashMap::new();
        for v in membership.voters.iter().filter(|v| v.id != membership.id) {
            let (tx, rx) = bounded::<Vec<u8>>(PEER_QUEUE_MAX);
            let addr = v.addr.clone();
            spawn("cs-control-send", move || send_to(addr, rx))?;
            peers.insert(v.id, tx);
        }
        let (push_tx, push_rx) = bounded::<ClusterConfig>(1);
        let voter_nodes: Vec<NodeId> = membership.voters.iter().map(|v| v.node.clone()).collect();
        spawn("cs-control-push", move || push_to_others(voter_nodes, push_rx))?;
        let driver = Driver {
            push: push_tx,
            log,
            path: log_path(config_file),
            membership: membership.clone(),
            peers,
            control,
            status: status.clone(),
            waiting: HashMap::new(),
            leaderless: Vec::new(),
        };
        spawn("cs-control", move || {
            lower_priority();
            driver.run(input_rx)
        })?;
        tracing::info!("cluster: control log voter {} of {} started", membership.id, membership.voters.len());
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
        let (tx, rx) = bounded(1);
        self.propose_then(
            change,
            Answer::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or_else(|_| Err("the control log stopped".into()))
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

/// Accepts peers' connections, each read by a thread of its own.
fn accept(listener: TcpListener, input: Sender<Input>) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if open.load(Ordering::Relaxed) >= CONNECTIONS_MAX {
            tracing::warn!("cluster: control port has {CONNECTIONS_MAX} connections, refusing one");
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (input, open) = (input.clone(), open.clone());
        let started = spawn("cs-control-read", move || {
            read_from(stream, &input);
            open.fetch_sub(1, Ordering::Relaxed);
        });
        if started.is_err() {
            tracing::warn!("cluster: can't start a control reader");
        }
    }
}

/// Reads frames until the connection ends or sends garbage.
fn read_from(mut stream: TcpStream, input: &Sender<Input>) {
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
                let _ = input.try_send(Input::Peer(m));
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

struct Driver {
    /// The newest committed configuration, for the pusher (leader only).
    push: Sender<ClusterConfig>,
    log: ControlLog,
    path: PathBuf,
    membership: Membership,
    peers: HashMap<u64, Sender<Vec<u8>>>,
    control: Arc<ClusterControl>,
    status: Arc<Mutex<LogStatus>>,
    /// Proposals waiting for their outcome, with when they were made.
    waiting: HashMap<ProposalId, (Answer, Instant)>,
    /// Proposals made while no leader was known (an election), with when
    /// they were made: proposed once one is, within [`PROPOSE_WAIT_MS`].
    leaderless: Vec<(ConfigChange, Answer, Instant)>,
}

impl Driver {
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
                    let _ = self.log.step(m);
                }
                Ok(Input::Propose(change, reply)) => self.propose(change, reply, Instant::now()),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
            if let Err(e) = self.ready() {
                // The durable state could not be kept: stop voting rather
                // than acknowledge what is not on disk.
                tracing::error!("cluster: control log stopped: {e}");
                return;
            }
        }
    }

    /// Proposes `change` (made at `at`); while no leader is known it waits
    /// for one, tried again each tick.
    fn propose(&mut self, change: ConfigChange, answer: Answer, at: Instant) {
        let id = fastrand::u64(..);
        match self.log.propose(&change, id) {
            Ok(()) => {
                self.waiting.insert(id, (answer, at));
            }
            Err(crate::cluster::log::ProposeError::NoLeader) => self.leaderless.push((change, answer, at)),
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
            let file = LogFile { membership: self.membership.clone(), durable };
            save(&self.path, &file).map_err(|e| format!("can't write {}: {e}", self.path.display()))?;
        }
        for m in out.messages {
            let Some(peer) = self.peers.get(&m.to) else { continue };
            let Ok(bytes) = encode_message(&m) else { continue };
            let mut frame = Vec::with_capacity(4 + bytes.len());
            frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            frame.extend_from_slice(&bytes);
            let _ = peer.try_send(frame);
        }
        if let Some(config) = out.installed.last() {
            self.control.install_committed(config.clone());
        }
        if self.log.is_leader() && self.log.applied().epoch > 0 {
            // A full slot means the pusher has a configuration to work
            // on; it asks again on its next round.
            let _ = self.push.try_send(self.log.applied().clone());
        }
        for (id, result) in out.results {
            if let Some((reply, _)) = self.waiting.remove(&id) {
                reply.send(result);
            }
        }
        let leader = self.log.leader();
        let status = LogStatus {
            id: self.log.id(),
            term: self.log.term(),
            leader,
            leader_node: self.membership.voters.iter().find(|v| v.id == leader).map(|v| v.node.clone()),
            epoch: self.log.applied().epoch,
        };
        match self.status.lock() {
            Ok(mut s) => *s = status,
            Err(poisoned) => *poisoned.into_inner() = status,
        }
        Ok(())
    }
}

/// Nodes outside the voters learn committed configurations by push: the
/// leader's pusher sends `CLUSTER CORESHARD-SETCONFIG <epoch> <json>` to
/// each of them (on its client port) until it has taken that epoch or a
/// newer one, retrying every [`PUSH_RETRY_MS`]. A node refuses an epoch
/// not higher than its own, so a push from a deposed leader is harmless.
fn push_to_others(voters: Vec<NodeId>, configs: Receiver<ClusterConfig>) {
    let mut taken: HashMap<NodeId, u64> = HashMap::new();
    let mut latest: Option<ClusterConfig> = None;
    loop {
        match configs.recv_timeout(Duration::from_millis(PUSH_RETRY_MS)) {
            Ok(config) => {
                if latest.as_ref().is_none_or(|l| config.epoch > l.epoch) {
                    latest = Some(config);
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
        let Some(config) = latest.as_ref() else { continue };
        let Ok(json) = serde_json::to_string(config) else { continue };
        for node in config.nodes.iter().filter(|n| !voters.contains(&n.id)) {
            if taken.get(&node.id).is_some_and(|&e| e >= config.epoch) {
                continue;
            }
            match push_one(&node.ip, node.port, config.epoch, &json) {
                Ok(()) => {
                    taken.insert(node.id.clone(), config.epoch);
                }
                Err(e) => tracing::debug!("cluster: push of epoch {} to {}: {e}", config.epoch, node.id),
            }
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
    fn the_log_file_sits_next_to_the_config_file() {
        assert_eq!(log_path(Path::new("/d/nodes.conf")), PathBuf::from("/d/nodes.conf.log"));
    }
}
