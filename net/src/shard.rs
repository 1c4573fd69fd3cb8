//! One shard: a thread pinned to a core that owns a slice of the keyspace,
//! the connections it accepted, and an io_uring that drives their sockets.
//!
//! A loop turn: reap completions (accepts, reads, sends, wake-ups, the tick),
//! run the batches other shards sent, parse and execute every complete
//! command each readable connection holds, push this turn's batches to other
//! shards, queue the sends, and enter the kernel once to submit everything
//! and wait. No request costs a syscall of its own.

use crate::batch::{BATCH_REQUESTS_MAX, Batch, Msg, Op, Request};
use crate::commands;
use crate::config::{Config, MaxmemoryPolicy};
use crate::conn::{Acc, Closing, Conn, OUTPUT_PAUSE_BYTES, PartResult};
use crate::recvbuf::{BUFFER_GROUP, RecvBuffers};
use crate::resp::{Limits, Step};
use crate::runtime;
use crate::shared::{Control, Shared};
use coreshard_engine::cmd::CROSS_SHARD;
use coreshard_engine::cmd::{CommandSpec, CommandTable, Ctx, Handler, Items, Kind, Merge, flags};
use coreshard_engine::slot::SlotMap;
use coreshard_engine::{Args, Keyspace, OwnedArgs, Reply, Span, UnixMs};
use crossbeam_channel::Receiver;
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// Ticks per second for housekeeping when `hz` is not set.
const TICK_NS_MIN: u64 = 2_000_000;
/// Share of a tick active expiry may use, as Redis's 25% CPU bound.
const ACTIVE_EXPIRE_TICK_SHARE: u64 = 4;
/// A connection's own buffer (for an incomplete frame) is released once
/// empty if it grew past this.
const READ_BUFFER_KEEP_BYTES: usize = 64 * 1024;
/// Send buffers larger than this are released once sent.
const SEND_BUFFER_KEEP_BYTES: usize = 1024 * 1024;

const UD_ACCEPT: u64 = 1;
const UD_RECV: u64 = 2;
const UD_SEND: u64 = 3;
const UD_WAKE: u64 = 4;
const UD_EVENTFD: u64 = 5;
const UD_TICK: u64 = 6;
const UD_MSG_RING: u64 = 7;
const UD_CANCEL: u64 = 8;
const UD_HOP_DELAY: u64 = 9;
/// The blocked clients' timeout timer (blocking.rs).
pub(crate) const UD_BLOCK_TIMER: u64 = 10;
/// The replication timer (repl.rs: journal flush delay, WAIT timeouts).
pub(crate) const UD_REPL_TIMER: u64 = 11;

/// Commands of one connection's pipeline that may wait for other shards at once.
const PIPELINE_HOLES_MAX: usize = 1024;

/// Input a connection may hold while it cannot execute it (waiting for other
/// shards' replies, or for its output to drain) before its reads pause.
const HELD_INPUT_BYTES_MAX: usize = 256 * 1024;

/// The time a stream's connection (a replica's flow from its primary, a
/// migration target's from the source) may spend applying its input in one
/// loop turn; the rest waits for the next turn, so a full sync or a
/// migration's snapshot leaves the shard's other clients served every turn
/// or so instead of after tens of milliseconds of RESTOREs. A quarter of a
/// millisecond, as a source's snapshot turn (repl::primary): with 1 ms, a
/// target's own clients waited about 1.7 ms (median) while it applied a
/// migration's snapshot, 0.5 ms with this (BENCHMARKS.md).
const STREAM_TURN_NS: u64 = 250_000;

/// How much of a stream runs between two looks at the clock (about a
/// hundred RESTOREs of small values, tens of microseconds).
const STREAM_CHUNK_BYTES: usize = 4 * 1024;

#[inline]
fn ud(kind: u64, index: u32) -> u64 {
    kind | (index as u64) << 8
}

/// A listening socket this shard accepts on.
pub(crate) struct Listener {
    pub fd: OwnedFd,
    pub unix: bool,
    pub armed: bool,
}

/// What a shard is given at start.
pub(crate) struct ShardSetup {
    pub id: usize,
    pub shards: usize,
    pub config: Config,
    pub shared: Arc<Shared>,
    pub listeners: Vec<Listener>,
    pub to_peer: Vec<Option<rtrb::Producer<Msg>>>,
    pub from_peer: Vec<Option<rtrb::Consumer<Msg>>>,
    pub control: Receiver<Control>,
    pub event_fd: OwnedFd,
}

/// Counters this shard adds to between publications.
#[derive(Default)]
pub(crate) struct Counters {
    pub commands: u64,
    pub connections: u64,
    pub net_in: u64,
    pub net_out: u64,
    pub errors: u64,
    /// Connections open on this shard now.
    pub open: u64,
    /// Largest pending output of a client since the last tick.
    pub max_output: u64,
    /// Largest unexecuted input of a client since the last tick.
    pub max_input: u64,
}

/// A shard's state; see the module comment.
pub(crate) struct Shard {
    pub id: usize,
    pub map: SlotMap,
    ring: IoUring,
    pub ks: Keyspace,
    pub conns: Vec<Option<Conn>>,
    free: Vec<u32>,
    pub config: Config,
    pub shared: Arc<Shared>,
    listeners: Vec<Listener>,
    to_peer: Vec<Option<rtrb::Producer<Msg>>>,
    from_peer: Vec<Option<rtrb::Consumer<Msg>>>,
    pub(crate) outgoing: Vec<Batch>,
    overflow: Vec<VecDeque<(u64, Msg)>>,
    /// Messages handed to [`Shard::send_msg`] so far: the next one's mark
    /// ([`Shard::sent_before`]).
    msg_seq: u64,
    wake: Vec<bool>,
    pool: Vec<Batch>,
    control: Receiver<Control>,
    event_fd: OwnedFd,
    event_buf: Box<u64>,
    tick: Box<types::Timespec>,
    tick_ns: u64,
    to_process: Vec<u32>,
    /// Streams that used their share of a turn with input left (connection
    /// index and id): they continue next turn.
    stream_next: Vec<(u32, u64)>,
    /// Counts loop turns (a stream's share is per turn).
    turn: u64,
    /// Connections whose multishot recv ended (no buffer free, or the kernel
    /// stopped it) and must be re-armed once this turn recycled its buffers.
    rearm: Vec<u32>,
    scratch_spans: Vec<Span>,
    pub table: &'static CommandTable,
    /// The command [`Shard::execute`] found last (see `lookup_command`).
    last_command: Option<&'static CommandSpec>,
    pub now_ms: UnixMs,
    pub counters: Counters,
    msg_ring_works: bool,
    draining: bool,
    reported_drained: bool,
    shutdown_deadline_ns: u64,
    pub rng: fastrand::Rng,
    /// This shard's Pub/Sub subscribers.
    pub pubsub: crate::pubsub::Registry,
    /// Clients blocked on this shard's keys (BLPOP ...).
    pub blocking: crate::blocking::Registry,
    /// (monotonic ns, commands) at the last rate sample.
    ops_sample: (u64, u64),
    /// Locks, waiting requests and coordinated transactions (see `tx`).
    pub(crate) tx: crate::tx::Transactions,
    /// WATCHed keys of this shard.
    pub(crate) watches: crate::multi::Watches,
    /// Messages held back by `debug-shard-hop-delay-us`.
    hop_delay: HopDelay,
    /// Replication: flows to replicas, snapshots, WAITs (repl.rs).
    pub(crate) repl: crate::repl::ShardRepl,
    /// Cluster mode's routing (None outside cluster mode).
    pub(crate) cluster: Option<crate::cluster::ShardCluster>,
}

/// Test-only: messages to other shards held back for
/// `debug-shard-hop-delay-us`, so that every hop between shards takes at
/// least that long while the shards keep serving (a window a non-atomic
/// multi-shard command would show itself in).
#[derive(Default)]
struct HopDelay {
    /// (due at monotonic ns, destination, mark, message), in sending order.
    held: VecDeque<(u64, usize, u64, Msg)>,
    /// A timeout for the first due message is in flight.
    armed: bool,
    timeout: Box<types::Timespec>,
}

/// A `Conn`-independent view of the arguments currently being executed.
type Spans = Vec<Span>;

impl Shard {
    pub(crate) fn new(setup: ShardSetup, ring: IoUring) -> Self {
        let map = SlotMap::new(setup.shards);
        let mut ks = Keyspace::new(setup.config.databases, map.slots(setup.id));
        ks.set_lfu_policy(matches!(
            setup.config.maxmemory_policy,
            MaxmemoryPolicy::AllkeysLfu | MaxmemoryPolicy::VolatileLfu
        ));
        let hz = setup.config.hz.clamp(1, 500) as u64;
        let blocking = crate::blocking::Registry::new(setup.shards, setup.config.databases);
        let tick_ns = (1_000_000_000 / hz).max(TICK_NS_MIN);
        let cluster = setup.shared.cluster.clone().map(crate::cluster::ShardCluster::new);
        Shard {
            id: setup.id,
            map,
            ring,
            ks,
            conns: Vec::new(),
            free: Vec::new(),
            config: setup.config,
            shared: setup.shared,
            listeners: setup.listeners,
            to_peer: setup.to_peer,
            from_peer: setup.from_peer,
            outgoing: (0..setup.shards).map(|_| Batch::default()).collect(),
            overflow: (0..setup.shards).map(|_| VecDeque::new()).collect(),
            msg_seq: 0,
            wake: vec![false; setup.shards],
            pool: Vec::new(),
            control: setup.control,
            event_fd: setup.event_fd,
            event_buf: Box::new(0),
            tick: Box::new(types::Timespec::new().sec(tick_ns / 1_000_000_000).nsec((tick_ns % 1_000_000_000) as u32)),
            tick_ns,
            to_process: Vec::new(),
            stream_next: Vec::new(),
            turn: 0,
            rearm: Vec::new(),
            scratch_spans: Vec::new(),
            table: CommandTable::get(),
            last_command: None,
            now_ms: coreshard_engine::unix_ms(),
            counters: Counters::default(),
            msg_ring_works: true,
            draining: false,
            reported_drained: false,
            shutdown_deadline_ns: 0,
            rng: fastrand::Rng::new(),
            pubsub: Default::default(),
            blocking,
            ops_sample: (runtime::monotonic_ns(), 0),
            tx: Default::default(),
            watches: Default::default(),
            hop_delay: Default::default(),
            repl: Default::default(),
            cluster,
        }
    }

    /// Queues a submission, submitting first when the queue is full.
    pub(crate) fn push_sqe(&mut self, sqe: &squeue::Entry) {
        loop {
            // SAFETY: every buffer or fd an entry points to (connection
            // buffers, the eventfd word, the timespecs of the tick, the
            // blocking timer and the hop delay, each boxed and rewritten only
            // while its timer is not armed) is owned by this shard and
            // neither freed nor moved until its completion arrives:
            // connections are released only with no operation in flight, and
            // buffers are not resized while a read or send uses them.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return;
            }
            if let Err(e) = self.ring.submit() {
                tracing::warn!(shard = self.id, "io_uring submit failed: {e}");
            }
        }
    }

    fn arm_accept(&mut self, i: usize) {
        let fd = self.listeners[i].fd.as_raw_fd();
        self.listeners[i].armed = true;
        let sqe = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ud(UD_ACCEPT, i as u32));
        self.push_sqe(&sqe);
    }

    fn arm_eventfd(&mut self) {
        let ptr = (&mut *self.event_buf as *mut u64).cast::<u8>();
        let sqe = opcode::Read::new(types::Fd(self.event_fd.as_raw_fd()), ptr, 8).build().user_data(UD_EVENTFD);
        self.push_sqe(&sqe);
    }

    fn arm_tick(&mut self) {
        let sqe = opcode::Timeout::new(&*self.tick as *const types::Timespec).build().user_data(UD_TICK);
        self.push_sqe(&sqe);
    }

    /// Runs the loop until shutdown completes.
    pub(crate) fn run(mut self, mut bufs: RecvBuffers) {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        self.arm_eventfd();
        self.arm_tick();
        self.shared.shards_listening.fetch_add(1, SeqCst);
        let mut cqes: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
        loop {
            self.now_ms = coreshard_engine::unix_ms();
            self.turn += 1;
            cqes.clear();
            cqes.extend(self.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
            for &(user_data, res, flags) in &cqes {
                self.on_completion(&mut bufs, user_data, res, flags);
            }
            while let Some(idx) = self.rearm.pop() {
                self.arm_recv(idx);
            }
            self.drain_peers();
            while let Ok(msg) = self.control.try_recv() {
                self.on_control(msg);
            }
            if let Some(cluster) = self.cluster.as_mut() {
                cluster.refresh();
                crate::repl::migrate::on_turn(&mut self);
            }
            // Streams that stopped at their share last turn go on (after
            // the clients whose requests this turn's completions brought).
            for (idx, id) in std::mem::take(&mut self.stream_next) {
                if let Some(c) = self.conns[idx as usize].as_mut()
                    && c.id == id
                {
                    c.stream_yielded = false;
                    self.continue_conn(idx);
                }
            }
            while let Some(idx) = self.to_process.pop() {
                if let Some(c) = self.conns[idx as usize].as_mut() {
                    c.queued = false;
                }
                self.process_input(idx, None);
            }
            // Blocking commands: serve clients whose keys became ready, time out others.
            crate::blocking::after_commands(&mut self);
            crate::repl::after_commands(&mut self);
            // A replica holds what its primary holds: only the primary evicts
            // (its DELs arrive in the stream), as with Redis's default
            // replica-ignore-maxmemory yes.
            if self.config.maxmemory > 0 && !self.shared.repl.is_replica.load(Relaxed) {
                self.enforce_maxmemory();
            }
            self.flush_batches();
            if self.shutdown_step() {
                break;
            }
            self.publish();
            // A stream with input left must not wait for a completion, but
            // collects the clients' that came meanwhile.
            let entered = if self.stream_next.is_empty() {
                self.ring.submit_and_wait(1).map(|_| ())
            } else {
                runtime::submit_and_poll(&self.ring)
            };
            if let Err(e) = entered
                && e.raw_os_error() != Some(libc::EINTR)
                && e.raw_os_error() != Some(libc::EBUSY)
            {
                tracing::error!(shard = self.id, "io_uring wait failed: {e}");
            }
        }
        self.publish();
    }

    fn on_completion(&mut self, bufs: &mut RecvBuffers, user_data: u64, res: i32, flags: u32) {
        let index = (user_data >> 8) as u32;
        match user_data & 0xff {
            UD_ACCEPT => self.on_accept(index as usize, res, flags),
            UD_RECV => self.on_recv(bufs, index, res, flags),
            UD_SEND => self.on_send(index, res),
            UD_WAKE | UD_CANCEL => {}
            UD_HOP_DELAY => self.hop_delay.armed = false,
            UD_EVENTFD => {
                if res >= 0 || res == -libc::EINTR || res == -libc::EAGAIN {
                    self.arm_eventfd();
                }
            }
            UD_TICK => {
                self.on_tick();
                self.arm_tick();
            }
            UD_BLOCK_TIMER => crate::blocking::on_timer(self),
            UD_REPL_TIMER => crate::repl::on_timer(self),
            UD_MSG_RING => {
                // Only failures complete (success is skipped): fall back to eventfd wake-ups.
                if self.msg_ring_works {
                    tracing::info!(
                        shard = self.id,
                        "IORING_OP_MSG_RING failed ({}), waking shards through eventfd",
                        -res
                    );
                }
                self.msg_ring_works = false;
                self.shared.wake(index as usize);
            }
            _ => debug_assert!(false, "unknown completion {user_data:#x}"),
        }
    }

    fn on_accept(&mut self, listener: usize, res: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.listeners[listener].armed = false;
            if !self.draining {
                self.arm_accept(listener);
            }
        }
        if res < 0 {
            if res != -libc::ECANCELED && res != -libc::EINVAL {
                tracing::warn!(shard = self.id, "accept failed: {}", std::io::Error::from_raw_os_error(-res));
            }
            return;
        }
        let fd = res;
        if self.draining {
            // SAFETY: fd was just accepted and is owned by nobody else.
            unsafe { libc::close(fd) };
            return;
        }
        let unix = self.listeners[listener].unix;
        // This shard's own count is exact; the others' are as of their last
        // turn, so simultaneous accepts on several shards may pass the limit
        // by at most one connection per other shard.
        let others: u64 = (0..self.map.shards())
            .filter(|&s| s != self.id)
            .map(|s| self.shared.stats[s].connected_clients.load(Relaxed))
            .sum();
        let connected = others + self.counters.open;
        if connected >= self.config.maxclients {
            // Counted before the client can see the refusal (not at the end of
            // the turn): it may ask INFO on another shard right after.
            self.shared.stats[self.id].rejected_connections.fetch_add(1, Relaxed);
            let msg = b"-ERR max number of clients reached\r\n";
            // SAFETY: fd is a fresh socket we own; the buffer is a static slice.
            unsafe {
                libc::send(fd, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
                libc::close(fd);
            }
            return;
        }
        if !unix {
            let one: libc::c_int = 1;
            // SAFETY: setsockopt reads one c_int from a live local.
            unsafe {
                libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, (&one as *const libc::c_int).cast(), 4);
            }
            set_keepalive(fd, self.config.tcp_keepalive);
        }
        let (addr, laddr) = socket_addrs(fd, unix, self.config.unixsocket.as_deref());
        let id = self.shared.next_client_id.fetch_add(1, Relaxed);
        let authenticated = self.config.requirepass.is_none();
        let conn = Conn::new(fd, id, addr, laddr, unix, authenticated, runtime::monotonic_ns());
        let idx = self.insert_conn(conn);
        self.counters.connections += 1;
        self.arm_recv(idx);
    }

    /// Gives `conn` a slot on this shard and returns it.
    pub(crate) fn insert_conn(&mut self, conn: Conn) -> u32 {
        self.counters.open += 1;
        match self.free.pop() {
            Some(i) => {
                self.conns[i as usize] = Some(conn);
                i
            }
            None => {
                self.conns.push(Some(conn));
                (self.conns.len() - 1) as u32
            }
        }
    }

    /// Takes connection `idx` off this shard without closing its socket
    /// (it moves to another shard).
    pub(crate) fn release_conn(&mut self, idx: u32) -> Option<Conn> {
        let conn = self.conns[idx as usize].take()?;
        self.free.push(idx);
        self.counters.open -= 1;
        Some(conn)
    }

    /// Arms connection `idx`'s reads (see `arm_recv`).
    pub(crate) fn arm_recv_pub(&mut self, idx: u32) {
        self.arm_recv(idx);
    }

    /// Arms a multishot recv for connection `idx`: the kernel fills buffers
    /// of the shard's ring as data arrives, one completion per read.
    fn arm_recv(&mut self, idx: u32) {
        let draining = self.draining;
        let Some(conn) = self.conns[idx as usize].as_mut() else { return };
        if conn.recv_inflight
            || conn.closing != Closing::No
            || draining
            || Self::holding_input(conn)
            || conn.handoff.is_some()
        {
            return;
        }
        conn.recv_inflight = true;
        let sqe = opcode::RecvMulti::new(types::Fd(conn.fd), BUFFER_GROUP).build().user_data(ud(UD_RECV, idx));
        self.push_sqe(&sqe);
    }

    fn on_recv(&mut self, bufs: &mut RecvBuffers, idx: u32, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let bid = cqueue::buffer_select(flags);
        let Some(conn) = self.conns[idx as usize].as_mut() else {
            debug_assert!(false, "recv completion for a released connection");
            if let Some(b) = bid {
                bufs.recycle(b);
            }
            return;
        };
        if !more {
            conn.recv_inflight = false;
        }
        if res == -libc::ECANCELED && conn.closing == Closing::No {
            // Reads paused for backpressure; they resume once the held input
            // runs. Or the connection moves to another shard.
            if conn.handoff.is_some() && !conn.recv_inflight {
                crate::repl::primary::try_hand_off(self, idx);
            } else if !conn.recv_inflight && !Self::holding_input(conn) {
                // The held input ran before the cancel completed (its
                // re-arm found the read still in flight): read again.
                self.rearm.push(idx);
            }
            return;
        }
        if res == -libc::ENOBUFS {
            // Every buffer was in use this turn; the data waits in the socket.
            if conn.closing == Closing::No {
                self.rearm.push(idx);
            }
            return;
        }
        if res <= 0 || conn.closing == Closing::Now {
            if let Some(b) = bid {
                bufs.recycle(b);
            }
            if res < 0 && res != -libc::ECONNRESET && res != -libc::ECANCELED {
                tracing::debug!(client = conn.id, "read error: {}", std::io::Error::from_raw_os_error(-res));
            }
            conn.closing = Closing::Now;
            self.begin_close(idx);
            return;
        }
        let Some(bid) = bid else {
            debug_assert!(false, "recv completion without a buffer");
            return;
        };
        self.counters.net_in += res as u64;
        self.process_input(idx, Some(bufs.filled(bid, res as usize)));
        bufs.recycle(bid);
        self.pause_reads_if_holding(idx);
        if !more && self.conns[idx as usize].as_ref().is_some_and(|c| c.closing == Closing::No) {
            self.rearm.push(idx);
        }
    }

    /// Starts sending connection `idx`'s pending output (when not already sending).
    pub(crate) fn send_output(&mut self, idx: u32) {
        self.arm_send(idx);
    }

    fn arm_send(&mut self, idx: u32) {
        let Some(conn) = self.conns[idx as usize].as_mut() else {
            return;
        };
        if conn.send_inflight || conn.holes_open > 0 || conn.closing == Closing::Now {
            return;
        }
        if conn.master.is_some() {
            // The primary wants no replies, only acks.
            crate::repl::replica::take_output(&self.shared, conn);
        }
        if conn.send_off >= conn.sending.len() {
            if conn.out.is_empty() {
                return;
            }
            conn.sending.clear();
            conn.send_off = 0;
            std::mem::swap(&mut conn.out, &mut conn.sending);
        }
        let rest = &conn.sending[conn.send_off..];
        self.counters.max_output = self.counters.max_output.max((rest.len() + conn.out.len()) as u64);
        conn.send_inflight = true;
        let sqe = opcode::Send::new(types::Fd(conn.fd), rest.as_ptr(), rest.len().min(u32::MAX as usize) as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(ud(UD_SEND, idx));
        self.push_sqe(&sqe);
    }

    fn on_send(&mut self, idx: u32, res: i32) {
        let Some(conn) = self.conns[idx as usize].as_mut() else {
            return;
        };
        conn.send_inflight = false;
        if res < 0 {
            conn.closing = Closing::Now;
            self.begin_close(idx);
            return;
        }
        conn.send_off += res as usize;
        self.counters.net_out += res as u64;
        if conn.send_off < conn.sending.len() {
            self.arm_send(idx);
            return;
        }
        conn.sending.clear();
        conn.send_off = 0;
        if conn.sending.capacity() > SEND_BUFFER_KEEP_BYTES {
            conn.sending = Vec::new();
        }
        if !conn.out.is_empty() {
            self.arm_send(idx);
            return;
        }
        if conn.handoff.is_some() {
            crate::repl::primary::try_hand_off(self, idx);
            return;
        }
        match conn.closing {
            Closing::AfterReply => self.begin_close(idx),
            // Output drained: resume a pipeline that paused on full output.
            Closing::No if conn.rpos < conn.rbuf.len() => self.process_input(idx, None),
            _ => {}
        }
    }

    /// Starts closing connection `idx`: aborts its read and frees it once
    /// nothing is in flight.
    pub(crate) fn begin_close(&mut self, idx: u32) {
        // A blocked client stops waiting (blocking.rs).
        crate::blocking::on_close(self, idx);
        // WAIT, replica flows and the primary's stream end (repl).
        crate::repl::on_close(self, idx);
        let Some(conn) = self.conns[idx as usize].as_mut() else {
            return;
        };
        if conn.closing == Closing::No {
            conn.closing = Closing::Now;
        }
        if conn.recv_inflight || conn.send_inflight {
            // Completes the pending operations early; they come back as errors or EOF.
            // SAFETY: shutdown on a socket fd this connection owns.
            unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
            return;
        }
        // A replica's accepted CLUSTER RESET still flushes the node through
        // this connection once the reset is in force (cluster::on_reply):
        // it stays until then, its client gone or not.
        if conn.holes_open > 0 || conn.tx_wait || (conn.cluster_wait && conn.reset_flush) {
            return;
        }
        // SAFETY: no operation uses the fd any more; it is closed exactly once.
        unsafe { libc::close(conn.fd) };
        let subs = conn.subs.take();
        let (client, watching) = (conn.id, std::mem::take(&mut conn.watching));
        crate::pubsub::drop_all(self, idx, subs);
        crate::multi::unwatch_shards(self, idx, client, watching);
        self.conns[idx as usize] = None;
        self.free.push(idx);
        self.counters.open -= 1;
    }

    /// True when the connection may execute more of its pipeline now. Commands
    /// keep running while earlier ones wait for other shards (their replies
    /// fill holes later), so a pipeline costs one hop per destination shard,
    /// up to PIPELINE_HOLES_MAX commands in flight.
    fn can_run(conn: &Conn) -> bool {
        conn.closing == Closing::No
            && !conn.tx_wait
            && !conn.stream_paused
            && conn.holes.len() < PIPELINE_HOLES_MAX
            && conn.out.len() < OUTPUT_PAUSE_BYTES
            && conn.blocked.is_none()
            && conn.wait.is_none()
            && !conn.cluster_wait
            && conn.handoff.is_none()
    }

    /// True when the connection holds more unexecuted input than it may while
    /// it cannot run it.
    fn holding_input(conn: &Conn) -> bool {
        let blocked = (!Self::can_run(conn) || conn.stream_yielded) && conn.closing == Closing::No;
        blocked && conn.rbuf.len() - conn.rpos > HELD_INPUT_BYTES_MAX
    }

    /// Cancels the multishot recv of a connection holding too much input, so
    /// a pipelining client waits in its socket (as with Redis, which reads
    /// only what it runs) instead of in this server's memory.
    fn pause_reads_if_holding(&mut self, idx: u32) {
        let Some(conn) = self.conns[idx as usize].as_ref() else { return };
        if conn.recv_inflight && Self::holding_input(conn) {
            let sqe = opcode::AsyncCancel::new(ud(UD_RECV, idx)).build().user_data(UD_CANCEL);
            self.push_sqe(&sqe);
        }
    }

    /// Parses and executes what connection `idx` has received (`data`, fresh
    /// from a receive buffer, after anything it kept from earlier reads),
    /// then queues its replies.
    pub(crate) fn process_input(&mut self, idx: u32, data: Option<&mut [u8]>) {
        let Some(mut conn) = self.conns[idx as usize].take() else { return };
        conn.last_ns = runtime::monotonic_ns();
        if let Some(data) = data {
            let runnable = Self::can_run(&conn);
            if conn.rpos == conn.rbuf.len() && runnable {
                // The common case: whole commands straight from the receive
                // buffer; only an incomplete tail is kept.
                if conn.rbuf.capacity() > READ_BUFFER_KEEP_BYTES {
                    conn.rbuf = Vec::new();
                }
                conn.rbuf.clear();
                conn.rpos = 0;
                let used = self.run_commands(idx, &mut conn, data);
                self.keep_tail(&mut conn, &data[used..]);
            } else {
                self.keep_tail(&mut conn, data);
            }
        }
        if conn.rpos < conn.rbuf.len() {
            let mut rbuf = std::mem::take(&mut conn.rbuf);
            let start = conn.rpos;
            conn.rpos += self.run_commands(idx, &mut conn, &mut rbuf[start..]);
            conn.rbuf = rbuf;
            if conn.rpos == conn.rbuf.len() {
                conn.rbuf.clear();
                conn.rpos = 0;
            }
        }
        let pending = conn.rbuf.len() - conn.rpos;
        self.counters.max_input = self.counters.max_input.max(pending as u64);
        let limit = self.config.client_query_buffer_limit as usize;
        if pending > limit || conn.need > limit {
            tracing::warn!(client = conn.id, addr = %conn.addr, "closing client that reached max query buffer length ({} bytes)", pending.max(conn.need));
            conn.closing = Closing::Now;
        }
        let closing = conn.closing;
        let idle = conn.holes_open == 0;
        let drained = !conn.send_inflight && conn.out.is_empty();
        let handoff = conn.handoff.is_some() && closing == Closing::No;
        let recv_inflight = conn.recv_inflight;
        self.conns[idx as usize] = Some(conn);
        if handoff {
            // PSYNC for another shard's flow: its replies go out, its read
            // stops, then the socket moves (repl::primary::try_hand_off).
            self.arm_send(idx);
            if recv_inflight {
                let sqe = opcode::AsyncCancel::new(ud(UD_RECV, idx)).build().user_data(UD_CANCEL);
                self.push_sqe(&sqe);
            } else {
                crate::repl::primary::try_hand_off(self, idx);
            }
            return;
        }
        match closing {
            Closing::Now => self.begin_close(idx),
            _ if !idle => {}
            Closing::AfterReply if drained => self.begin_close(idx),
            _ => {
                self.arm_send(idx);
                self.arm_recv(idx);
            }
        }
    }

    /// Keeps bytes not yet executed in the connection's own buffer,
    /// compacting it first when most of it was consumed.
    fn keep_tail(&mut self, conn: &mut Conn, tail: &[u8]) {
        if tail.is_empty() {
            return;
        }
        if conn.rpos > 0 && conn.rpos >= conn.rbuf.len() / 2 {
            conn.rbuf.drain(..conn.rpos);
            conn.rpos = 0;
        }
        // Size the buffer once for a large frame whose length is known.
        let wanted = conn.need.max(conn.rbuf.len() - conn.rpos + tail.len());
        if wanted > conn.rbuf.capacity() - conn.rpos {
            conn.rbuf.reserve(wanted - (conn.rbuf.len() - conn.rpos));
        }
        conn.rbuf.extend_from_slice(tail);
    }

    /// Executes the complete commands at the start of `buf`; returns how many
    /// bytes they took. Stops at an incomplete frame, too many commands
    /// waiting for other shards, a full output or a close.
    fn run_commands(&mut self, idx: u32, conn: &mut Conn, buf: &mut [u8]) -> usize {
        if let Some(m) = conn.master.as_ref() {
            if m.migration && crate::repl::migrate::stale_target_flow(&self.shared, m.migration_id) {
                // A migration that ended here: nothing more of it applies.
                conn.closing = Closing::Now;
                return buf.len();
            }
            // The primary's stream acts on keys as the primary saw them.
            // A migration's target is a primary: its own keys expire as usual after.
            let after = if m.migration && !self.shared.repl.is_replica.load(Relaxed) {
                coreshard_engine::db::ExpiryMode::Delete
            } else {
                coreshard_engine::db::ExpiryMode::Hide
            };
            self.ks.set_expiry_mode(coreshard_engine::db::ExpiryMode::Ignore);
            let used = self.run_stream(idx, conn, buf);
            self.ks.set_expiry_mode(after);
            return used;
        }
        self.run_commands_inner::<false>(idx, conn, buf, usize::MAX)
    }

    /// Executes a stream's commands at the start of `buf` within its share
    /// of this turn (`STREAM_TURN_NS`, looking at the clock every
    /// `STREAM_CHUNK_BYTES`); returns how many bytes they took. A stream
    /// that stops at its share with input left continues next turn, and its
    /// reads pause meanwhile once it holds `HELD_INPUT_BYTES_MAX` (only what
    /// ran is counted, so acks report only what was applied).
    fn run_stream(&mut self, idx: u32, conn: &mut Conn, buf: &mut [u8]) -> usize {
        let Some(m) = conn.master.as_mut() else { return 0 };
        let mut now = runtime::monotonic_ns();
        if m.turn != self.turn {
            m.turn = self.turn;
            m.turn_deadline_ns = now + STREAM_TURN_NS;
        }
        let deadline = m.turn_deadline_ns;
        let mut used = 0;
        while used < buf.len() {
            if now >= deadline {
                if !conn.stream_yielded {
                    conn.stream_yielded = true;
                    self.stream_next.push((idx, conn.id));
                }
                break;
            }
            let ran = self.run_commands_inner::<true>(idx, conn, &mut buf[used..], STREAM_CHUNK_BYTES);
            used += ran;
            if ran < STREAM_CHUNK_BYTES {
                // An incomplete frame, a pause, or the end of the input.
                break;
            }
            now = runtime::monotonic_ns();
        }
        used
    }

    /// Executes the complete commands at the start of `buf` (when `BOUNDED`,
    /// none after the first that ends at or past `limit` bytes).
    fn run_commands_inner<const BOUNDED: bool>(
        &mut self,
        idx: u32,
        conn: &mut Conn,
        buf: &mut [u8],
        limit: usize,
    ) -> usize {
        let mut spans: Spans = std::mem::take(&mut self.scratch_spans);
        let mut pos = 0;
        while Self::can_run(conn)
            && conn.closing == Closing::No
            && conn.out.len() < OUTPUT_PAUSE_BYTES
            && pos < buf.len()
            && (!BOUNDED || pos < limit)
        {
            let limits =
                Limits { bulk_bytes_max: self.config.proto_max_bulk_len as usize, authenticated: conn.authenticated };
            match conn.parser.parse(&mut buf[pos..], &limits) {
                Err(e) => {
                    conn.reply().error(&format!("ERR Protocol error: {}", e.0));
                    conn.closing = Closing::AfterReply;
                    pos = buf.len();
                    tracing::debug!(client = conn.id, "protocol error: {}", e.0);
                }
                Ok(Step::Incomplete { need }) => {
                    conn.need = need;
                    break;
                }
                Ok(Step::Command { len }) => {
                    let start = pos;
                    pos += len;
                    conn.need = 0;
                    if conn.parser.spans().is_empty() {
                        continue;
                    }
                    spans.clear();
                    spans.extend(conn.parser.spans().iter().map(|s| s.start + start..s.end + start));
                    if conn.master.is_some()
                        && self.shared.repl.tx_open.load(Relaxed) > 0
                        && !crate::repl::txapply::may_run(self, idx, conn, &Args::new(buf, &spans))
                    {
                        // It waits for a transaction it must not pass; it
                        // runs again, parsed anew, once that is applied.
                        pos = start;
                        break;
                    }
                    if self.cluster.is_some() && conn.master.is_none() {
                        use crate::repl::migrate::Hold;
                        match crate::repl::migrate::hold(self, idx, conn, &Args::new(buf, &spans)) {
                            Hold::Run => {}
                            Hold::Wait => {
                                // A migration's cutover holds writes to its slots:
                                // it runs (or gets MOVED) once the hold ends.
                                pos = start;
                                break;
                            }
                            Hold::Refuse => {
                                self.counters.errors += 1;
                                conn.reply().error(crate::repl::migrate::TRYAGAIN);
                                continue;
                            }
                        }
                    }
                    if self.cluster.as_ref().is_some_and(|c| c.shared.newer_pending(&c.routing))
                        && conn.master.is_none()
                        && crate::repl::migrate::awaits_config(self, idx, conn, &Args::new(buf, &spans))
                    {
                        // Redirected by the routing in force, but a newer
                        // configuration is being written: it runs (or gets
                        // MOVED) once that one is in force.
                        pos = start;
                        break;
                    }
                    if let Some(cluster) = self.cluster.as_mut() {
                        // A switch publishes the routing before it releases
                        // held writes: see it before this command runs.
                        cluster.refresh();
                    }
                    crate::repl::replica::count(&mut self.ks.journal, conn, &buf[start..pos]);
                    self.execute(idx, conn, Args::new(buf, &spans));
                    if conn.master.is_some() {
                        crate::repl::replica::after_command(conn);
                    }
                }
            }
        }
        self.scratch_spans = spans;
        pos
    }

    /// The command named `name`, in any letter case. A pipeline mostly
    /// repeats one command (a replica's full sync is a million RESTOREs), and
    /// comparing the name with the last one found is cheaper than hashing it
    /// (the table's lookup was 8% of such a replica's time).
    #[inline]
    fn lookup_command(&mut self, name: &[u8]) -> Option<&'static CommandSpec> {
        if let Some(spec) = self.last_command
            && name.eq_ignore_ascii_case(spec.name.as_bytes())
        {
            return Some(spec);
        }
        let spec = self.table.lookup(name)?;
        self.last_command = Some(spec);
        Some(spec)
    }

    /// Executes one command for `conn`.
    pub(crate) fn execute(&mut self, idx: u32, conn: &mut Conn, args: Args) {
        self.counters.commands += 1;
        let Some(spec) = self.lookup_command(args.get(0)) else {
            self.counters.errors += 1;
            crate::multi::flag(conn);
            conn.last_cmd = "NULL";
            return conn.reply().error_bytes(&coreshard_engine::cmd::unknown_command_error(&args));
        };
        conn.last_cmd = spec.name;
        conn.last_sub = None;
        if conn.flow.is_some() && !matches!(spec.kind, Kind::Conn(coreshard_engine::ConnCmd::Replconf)) {
            // A replica's flow carries only acks; a reply would corrupt its stream.
            tracing::warn!(client = conn.id, "replica sent {} on its replication stream; closing it", spec.name);
            conn.closing = Closing::AfterReply;
            return;
        }
        if !spec.arity_ok(args.len()) {
            self.counters.errors += 1;
            crate::multi::flag(conn);
            return conn.reply().arity_error(spec.name);
        }
        if !conn.authenticated && !spec.has(flags::NO_AUTH) {
            self.counters.errors += 1;
            crate::multi::flag(conn);
            return conn.reply().error("NOAUTH Authentication required.");
        }
        let from_master = conn.master.is_some();
        // Cluster mode: keys of slots served elsewhere are redirected, as
        // Redis redirects them: after AUTH, before anything else refuses the
        // command. The primary's stream is obeyed; EXEC checked its queue.
        if let Some(cluster) = &self.cluster
            && !from_master
            && !conn.in_exec
        {
            let exec = matches!(spec.kind, Kind::Conn(coreshard_engine::ConnCmd::Exec));
            let checked = match conn.multi.as_deref() {
                Some(m) if exec && !m.aborted() => cluster.check_exec(self.table, m.cmds(), conn.readonly),
                _ if exec => Ok(()),
                _ => cluster.check(spec, &args, conn.readonly),
            };
            // Commands that reach other databases, which cluster mode does
            // not have (Redis refuses them inside the commands, after routing).
            let checked = checked.and_then(|()| match spec.name {
                "move" => Err("ERR MOVE is not allowed in cluster mode".to_string()),
                "swapdb" => Err("ERR SWAPDB is not allowed in cluster mode".to_string()),
                _ => Ok(()),
            });
            if let Err(e) = checked {
                self.counters.errors += 1;
                if exec {
                    conn.multi = None;
                    crate::multi::unwatch_all(self, idx, conn);
                } else {
                    crate::multi::flag(conn);
                }
                return conn.reply().error(&e);
            }
        }
        if spec.has(flags::WRITE) && !from_master {
            if self.config.replica_read_only && self.shared.repl.is_replica.load(Relaxed) {
                self.counters.errors += 1;
                crate::multi::flag(conn);
                return conn.reply().error("READONLY You can't write against a read only replica.");
            }
            if let Some(e) = crate::repl::refuse_write(self) {
                self.counters.errors += 1;
                crate::multi::flag(conn);
                return conn.reply().error(e);
            }
        }
        if spec.has(flags::DENYOOM) && !from_master && self.config.maxmemory > 0 && !self.may_grow() {
            self.counters.errors += 1;
            crate::multi::flag(conn);
            return conn.reply().error("OOM command not allowed when used memory > 'maxmemory'.");
        }
        if crate::pubsub::restricted(conn) {
            use coreshard_engine::ConnCmd::*;
            let allowed = matches!(
                spec.kind,
                Kind::Conn(Subscribe | Unsubscribe | Psubscribe | Punsubscribe | Ping | Quit | Reset)
            );
            if !allowed {
                self.counters.errors += 1;
                crate::multi::flag(conn);
                return conn.reply().error(&format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    spec.name
                ));
            }
        }
        if conn.multi.is_some() && crate::multi::queue(self, conn, spec, &args) {
            return;
        }
        self.dispatch(idx, conn, spec, args);
    }

    /// Runs a command that passed the checks: on its shard, split over the
    /// shards of its keys, or as a transaction when that must be atomic.
    pub(crate) fn dispatch(&mut self, idx: u32, conn: &mut Conn, spec: &'static CommandSpec, args: Args) {
        match spec.kind {
            Kind::Keyed(handler) => {
                // A command whose key is optional (OBJECT HELP) runs here when it has none.
                let owner = match args.try_get(spec.first_key.max(0) as usize) {
                    Some(key) if spec.first_key > 0 => self.map.key_owner(key),
                    _ => self.id,
                };
                // A command over keys of several shards runs in one place
                // under a transaction's locks (tx.rs), or, with atomicity
                // off for a test, is refused as Redis Cluster refuses it.
                let several_keys =
                    spec.has(flags::MOVABLEKEYS) || spec.has(flags::EXTRA_KEYS) || spec.last_key != spec.first_key;
                if several_keys && self.map.shards() > 1 {
                    let map = &self.map;
                    let spans = |keys: &[usize]| keys.iter().any(|&i| map.key_owner(args.get(i)) != owner);
                    match crate::tx::command_keys(spec, &args) {
                        Some(keys) if spans(&keys) => {
                            if conn.txid != 0 {
                                return self.start_gather(idx, conn, crate::tx::Run::Handler(handler), keys, args);
                            }
                            if self.atomic_multi_shard() {
                                let cmd = OwnedArgs::from_parts(args.iter_from(0));
                                return self.start_tx(idx, conn, vec![cmd], false);
                            }
                            self.counters.errors += 1;
                            return conn.reply().error(CROSS_SHARD);
                        }
                        None if spans(&spec.keys(&args).collect::<Vec<_>>()) => {
                            self.counters.errors += 1;
                            return conn.reply().error(CROSS_SHARD);
                        }
                        _ => {}
                    }
                }
                self.run_whole(owner, idx, conn, args, handler);
            }
            Kind::MultiKey { whole, part, merge } => {
                let step = spec.step.max(1) as usize;
                if (args.len() - 1) % step != 0 {
                    // Key-value commands need whole pairs (MSET k v k).
                    self.counters.errors += 1;
                    return conn.reply().arity_error(spec.name);
                }
                let first_owner = self.map.key_owner(args.get(1));
                let single = self.map.shards() == 1
                    || (1..args.len()).step_by(step).all(|i| self.map.key_owner(args.get(i)) == first_owner);
                if single {
                    return self.run_whole(first_owner, idx, conn, args, whole);
                }
                if conn.txid == 0 && self.atomic_multi_shard() {
                    if spec.has(flags::READONLY) {
                        return self.start_read_tx(idx, conn, part, merge, args, step);
                    }
                    let cmd = OwnedArgs::from_parts(args.iter_from(0));
                    return self.start_tx(idx, conn, vec![cmd], false);
                }
                let (shards_of_part, part_spans, order) = self.split_parts(&args, step);
                let parts = shards_of_part.len();
                let acc = Acc::Parts {
                    merge,
                    proto: conn.proto,
                    order,
                    parts: (0..parts).map(|_| PartResult::default()).collect(),
                };
                let hole = conn.open_hole(parts as u32, acc);
                for (p, &shard) in shards_of_part.iter().enumerate() {
                    let sub = Args::new(args.buf(), &part_spans[p]);
                    self.run_part(shard, idx, conn, hole, p as u16, sub, Op::Part(part));
                }
            }
            Kind::AllShards { check, part, merge } => {
                if let Err(e) = check(&args) {
                    self.counters.errors += 1;
                    return conn.reply().error(&e);
                }
                // Writes over every key (FLUSHDB, SWAPDB) are atomic across shards.
                if spec.has(flags::WRITE) && conn.txid == 0 && self.atomic_multi_shard() {
                    let cmd = OwnedArgs::from_parts(args.iter_from(0));
                    return self.start_tx(idx, conn, vec![cmd], false);
                }
                self.run_on_all(idx, conn, args, Op::Part(part), merge);
            }
            Kind::Blocking(b) => crate::blocking::dispatch(self, idx, conn, spec, b, args),
            Kind::Conn(cmd) => commands::run(self, idx, conn, cmd, args),
        }
    }

    /// Splits a multi-key command into one part per shard holding keys, each
    /// with the name and its keys (and values): the shards in order of first
    /// appearance, each part's argument spans, and the part serving each key.
    pub(crate) fn split_parts(&self, args: &Args, step: usize) -> (Vec<usize>, Vec<Vec<Span>>, Vec<u16>) {
        let mut part_of_shard = vec![u16::MAX; self.map.shards()];
        let mut shards_of_part: Vec<usize> = Vec::new();
        let mut part_spans: Vec<Vec<Span>> = Vec::new();
        let mut order = Vec::with_capacity(args.len() / step);
        for i in (1..args.len()).step_by(step) {
            let owner = self.map.key_owner(args.get(i));
            if part_of_shard[owner] == u16::MAX {
                part_of_shard[owner] = shards_of_part.len() as u16;
                shards_of_part.push(owner);
                part_spans.push(vec![args.spans()[0].clone()]);
            }
            let p = part_of_shard[owner];
            order.push(p);
            part_spans[p as usize].extend_from_slice(&args.spans()[i..(i + step).min(args.len())]);
        }
        (shards_of_part, part_spans, order)
    }

    /// Runs a whole command on `owner`: inline when that is this shard,
    /// otherwise through a hole and a batch.
    pub(crate) fn run_whole(&mut self, owner: usize, idx: u32, conn: &mut Conn, args: Args, handler: Handler) {
        if owner == self.id {
            if self.wait_local(idx, conn, None, Op::Whole(handler), &args) {
                return;
            }
            if !self.repl.snapshots.is_empty() {
                crate::repl::primary::before_command(self, &args);
            }
            let dirty = self.ks.stats.dirty;
            let mut ctx = Ctx { ks: &mut self.ks, db: conn.db, now: self.now_ms, args };
            handler(&mut ctx, &mut Reply::new(&mut conn.out, conn.proto));
            ctx.log(dirty);
            if self.ks.stats.dirty != dirty && !self.watches.is_empty() {
                self.touch_watched(conn.db, &args);
            }
            return;
        }
        let hole = conn.open_hole(1, Acc::Single(Vec::new()));
        self.queue_request(owner, idx, conn, hole, 0, args, Op::Whole(handler));
    }

    /// Runs `op` on every shard (part `i` on shard `i`) and merges the parts
    /// as `merge` says into one reply.
    pub(crate) fn run_on_all(&mut self, idx: u32, conn: &mut Conn, args: Args, op: Op, merge: Merge) {
        let n = self.map.shards();
        let parts = (0..n).map(|_| PartResult::default()).collect();
        let hole = conn.open_hole(n as u32, Acc::Parts { merge, proto: conn.proto, order: Vec::new(), parts });
        for shard in 0..n {
            self.run_part(shard, idx, conn, hole, shard as u16, args, op);
        }
    }

    /// Runs one part of a split command on `shard`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_part(
        &mut self,
        shard: usize,
        idx: u32,
        conn: &mut Conn,
        hole: u32,
        part: u16,
        args: Args,
        op: Op,
    ) {
        if shard != self.id {
            return self.queue_request(shard, idx, conn, hole, part, args, op);
        }
        if self.wait_local(idx, conn, Some((hole, part)), op, &args) {
            return;
        }
        let (mut bytes, mut ends) = (Vec::new(), Vec::new());
        let (db, proto) = (conn.db, conn.proto);
        self.run_op(op, db, proto, args, &mut bytes, &mut ends, Some((idx, &mut *conn)));
        conn.fill(hole, part, &bytes, &ends, &mut self.rng);
    }

    /// Executes `op` here, appending its reply to `out` (and item ends to `ends`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_op(
        &mut self,
        op: Op,
        db: usize,
        proto: coreshard_engine::Proto,
        args: Args,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        caller: Option<(u32, &mut Conn)>,
    ) {
        if !self.repl.snapshots.is_empty() && matches!(op, Op::Whole(_) | Op::Part(_)) {
            crate::repl::primary::before_command(self, &args);
        }
        let mut ctx = Ctx { ks: &mut self.ks, db, now: self.now_ms, args };
        match op {
            Op::Whole(_) | Op::Part(_) => {
                let dirty = ctx.ks.stats.dirty;
                match op {
                    Op::Whole(h) => h(&mut ctx, &mut Reply::new(out, proto)),
                    Op::Part(p) => p(&mut ctx, &mut Items::new(out, ends, proto)),
                    _ => {}
                }
                ctx.log(dirty);
                if self.ks.stats.dirty != dirty && !self.watches.is_empty() {
                    self.touch_watched(db, &args);
                }
            }
            Op::ClientList => {
                let mut text = Vec::new();
                commands::client_list_local(self, caller.as_ref().map(|(_, c)| &**c), args, &mut text);
                Items::new(out, ends, proto).item(|r| r.bulk(&text));
            }
            Op::ClientKill => {
                let n = commands::client_kill_local(self, caller.as_ref().map(|(_, c)| &**c), args);
                Items::new(out, ends, proto).item(|r| r.int(n));
            }
            Op::Publish => {
                let n = crate::pubsub::deliver_local(self, caller, args.get(1), args.get(2));
                Items::new(out, ends, proto).item(|r| r.int(n));
            }
            Op::PubsubChannels | Op::PubsubNumsub | Op::PubsubPatterns => {
                crate::pubsub::pubsub_part(self, op, args, &mut Items::new(out, ends, proto));
            }
            Op::TxLock | Op::TxUnlock | Op::TxRead(_) => {
                debug_assert!(false, "transaction messages run in execute_batch")
            }
            Op::Watch => {
                self.watch_part(db, &args);
                Items::new(out, ends, proto).item(|r| r.ok());
            }
            Op::Unwatch => self.unwatch_part(&args),
            Op::TxFetch => {
                let now = self.now_ms;
                for key in args.iter_from(0) {
                    let value = crate::tx::encode_entry(self.ks.db(db), key, now);
                    Items::new(out, ends, proto).item(|r| r.bulk_or_null(value.as_deref()));
                }
            }
            Op::TxStore => {
                let (key, value) = (args.get(0), args.get(1));
                crate::repl::primary::before_write(self, key);
                let now = self.now_ms;
                let value = (!value.is_empty()).then_some(value);
                crate::tx::store_entry(self.ks.db(db), key, value, now);
                self.ks.stats.dirty += 1;
                crate::tx::log_store(&mut self.ks, db, key, value);
                if !self.watches.is_empty() {
                    self.watches.touch(db as u16, key);
                }
            }
            Op::FlushSlots { journal } => {
                // A full sync's start: this node drops what it held in the
                // slots the incoming snapshot covers (a replica's, or a
                // migration target's); a flush in a stream; an ABORT's.
                use crate::repl::flush::FlushSlots;
                let flush = if journal { FlushSlots::parse_to_log(&args) } else { FlushSlots::parse(&args) };
                if let Some(flush) = flush {
                    // Snapshots streaming save what goes first; the flush
                    // then follows them in the journal.
                    crate::repl::primary::before_write_all(self);
                    self.ks.clear_slots(flush.range.clone(), &flush.of);
                    self.ks.stats.dirty += 1;
                    if journal {
                        let owned = self.ks.owned();
                        flush.log(&mut self.ks.journal, owned);
                    }
                }
                Items::new(out, ends, proto).item(|r| r.ok());
            }
            Op::ClientUnblock => {
                let n = crate::blocking::unblock_local(self, args);
                Items::new(out, ends, proto).item(|r| r.int(n));
            }
            Op::Block(_) => debug_assert!(false, "Op::Block runs in execute_batch"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn queue_request(
        &mut self,
        dest: usize,
        idx: u32,
        conn: &Conn,
        hole: u32,
        part: u16,
        args: Args,
        op: Op,
    ) {
        self.queue_raw(dest, idx, hole, part, conn.db as u16, conn.proto, op, conn.txid, &args);
    }

    /// Queues a request for `dest` in this turn's batch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn queue_raw(
        &mut self,
        dest: usize,
        idx: u32,
        hole: u32,
        part: u16,
        db: u16,
        proto: coreshard_engine::Proto,
        op: Op,
        txid: u64,
        args: &Args,
    ) {
        let batch = &mut self.outgoing[dest];
        let arg_range = batch.push_args(args.buf(), args.spans().iter());
        batch.reqs.push(Request {
            conn: idx,
            hole,
            part,
            db,
            proto,
            op,
            args: arg_range,
            out: 0..0,
            ends: 0..0,
            txid,
            deferred: false,
        });
        if batch.reqs.len() >= BATCH_REQUESTS_MAX {
            self.send_batch(dest);
        }
    }

    pub(crate) fn send_batch(&mut self, dest: usize) {
        let fresh = self.pool.pop().unwrap_or_default();
        let batch = std::mem::replace(&mut self.outgoing[dest], fresh);
        self.send_msg(dest, Msg::Request(batch));
    }

    /// Sends replies of requests that had waited (a batch of their own).
    pub(crate) fn send_reply_batch(&mut self, dest: usize, batch: Batch) {
        self.send_msg(dest, Msg::Reply(batch));
    }

    /// The mark of the next message to another shard: what this shard
    /// sent before it has a smaller one ([`Shard::sent_before`]).
    pub(crate) fn send_mark(&self) -> u64 {
        self.msg_seq
    }

    /// True when every message handed to `send_msg` before `mark` is on its
    /// destination's ring. Past the end of a loop turn only a full ring
    /// (overflow) or the test-only hop delay keep one here; later messages
    /// still waiting do not count.
    pub(crate) fn sent_before(&self, mark: u64) -> bool {
        self.hop_delay.held.iter().all(|h| h.2 >= mark) && self.overflow.iter().flatten().all(|o| o.0 >= mark)
    }

    pub(crate) fn send_msg(&mut self, dest: usize, msg: Msg) {
        let seq = self.msg_seq;
        self.msg_seq += 1;
        if self.config.debug_shard_hop_delay_us > 0 {
            let due = runtime::monotonic_ns() + self.config.debug_shard_hop_delay_us * 1000;
            self.hop_delay.held.push_back((due, dest, seq, msg));
            return;
        }
        self.send_now(dest, seq, msg);
    }

    /// Sends the held messages that are due, and arms a timeout for the next one.
    fn release_held(&mut self) {
        let now = runtime::monotonic_ns();
        while self.hop_delay.held.front().is_some_and(|h| h.0 <= now) {
            if let Some((_, dest, seq, msg)) = self.hop_delay.held.pop_front() {
                self.send_now(dest, seq, msg);
            }
        }
        if let Some(&(due, ..)) = self.hop_delay.held.front()
            && !self.hop_delay.armed
        {
            let wait = due.saturating_sub(now).max(1);
            *self.hop_delay.timeout =
                types::Timespec::new().sec(wait / 1_000_000_000).nsec((wait % 1_000_000_000) as u32);
            self.hop_delay.armed = true;
            let sqe = opcode::Timeout::new(&*self.hop_delay.timeout as *const types::Timespec)
                .build()
                .user_data(UD_HOP_DELAY);
            self.push_sqe(&sqe);
        }
    }

    fn send_now(&mut self, dest: usize, seq: u64, msg: Msg) {
        self.wake[dest] = true;
        let Some(producer) = self.to_peer[dest].as_mut() else {
            return;
        };
        if self.overflow[dest].is_empty() {
            if let Err(rtrb::PushError::Full(msg)) = producer.push(msg) {
                self.overflow[dest].push_back((seq, msg));
            }
        } else {
            self.overflow[dest].push_back((seq, msg));
        }
    }

    /// Pushes this turn's batches and wakes their destinations.
    fn flush_batches(&mut self) {
        // Before any reply leaves for another shard, so a WAIT there counts
        // the writes it answers.
        let j = &self.ks.journal;
        if j.enabled() {
            self.shared.repl.journal_end[self.id].store(j.end_lsn(), Relaxed);
            self.shared.repl.journal_start[self.id].store(j.start_lsn(), Relaxed);
        }
        for dest in 0..self.outgoing.len() {
            if !self.outgoing[dest].is_empty() {
                self.send_batch(dest);
            }
        }
        if !self.hop_delay.held.is_empty() {
            self.release_held();
        }
        for dest in 0..self.outgoing.len() {
            while let Some((seq, msg)) = self.overflow[dest].pop_front() {
                let Some(producer) = self.to_peer[dest].as_mut() else {
                    break;
                };
                if let Err(rtrb::PushError::Full(msg)) = producer.push(msg) {
                    self.overflow[dest].push_front((seq, msg));
                    break;
                }
            }
            if std::mem::take(&mut self.wake[dest]) {
                self.wake_peer(dest);
            }
        }
    }

    fn wake_peer(&mut self, dest: usize) {
        if !self.msg_ring_works {
            return self.shared.wake(dest);
        }
        let fd = self.shared.ring_fds[dest].load(Relaxed);
        let sqe = opcode::MsgRingData::new(types::Fd(fd), 0, UD_WAKE, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(ud(UD_MSG_RING, dest as u32));
        self.push_sqe(&sqe);
    }

    /// Runs requests other shards sent, and takes in replies to ours.
    fn drain_peers(&mut self) {
        for peer in 0..self.from_peer.len() {
            while let Some(Ok(msg)) = self.from_peer[peer].as_mut().map(|c| c.pop()) {
                match msg {
                    Msg::Request(mut batch) => {
                        self.execute_batch(peer, &mut batch);
                        self.send_msg(peer, Msg::Reply(batch));
                    }
                    Msg::Reply(mut batch) => {
                        self.take_replies(&batch);
                        batch.clear();
                        self.pool.push(batch);
                    }
                    Msg::Blocking(events) => crate::blocking::on_events(self, peer, events),
                }
            }
        }
    }

    fn execute_batch(&mut self, from: usize, batch: &mut Batch) {
        let replica = self.shared.repl.is_replica.load(Relaxed);
        let Batch { reqs, data, spans, out, ends } = batch;
        for req in reqs.iter_mut() {
            let args = Args::new(data, &spans[req.args.clone()]);
            if replica {
                // On a replica only its primary's stream writes: writes act on
                // keys as the primary saw them, reads hide expired keys.
                self.ks.set_expiry_mode(self.replica_expiry_mode(req.op, &args));
            }
            let (out_start, ends_start) = (out.len(), ends.len());
            match req.op {
                Op::TxLock | Op::TxUnlock => req.deferred = self.tx_request(from, req, &args, out),
                // The read of a read-only transaction's first attempt: runs
                // only where the lock before it was granted.
                Op::TxRead(part) => {
                    if self.tx.holds(req.txid) {
                        self.run_op(Op::Part(part), req.db as usize, req.proto, args, out, ends, None);
                    }
                }
                // A blocking command may park its client here instead (blocking.rs).
                Op::Block(block) => {
                    crate::blocking::run_for_peer(self, from, req.conn, req.db as usize, req.proto, args, out, block)
                }
                _ if self.park_remote(from, req, &args) => req.deferred = true,
                op => {
                    // A transaction's share here is logged as such (tx.rs).
                    let tagged = self.tag_tx(req.txid);
                    self.run_op(op, req.db as usize, req.proto, args, out, ends, None);
                    if tagged {
                        self.ks.journal.set_tx_tag(0);
                    }
                }
            }
            req.out = out_start..out.len();
            req.ends = ends_start..ends.len();
        }
        if replica {
            self.ks.set_expiry_mode(coreshard_engine::db::ExpiryMode::Hide);
        }
    }

    fn replica_expiry_mode(&self, op: Op, args: &Args) -> coreshard_engine::db::ExpiryMode {
        use coreshard_engine::db::ExpiryMode;
        let write = match op {
            Op::Whole(_) | Op::Part(_) | Op::Block(_) => {
                self.table.lookup(args.get(0)).is_some_and(|spec| spec.has(flags::WRITE))
            }
            Op::TxStore | Op::FlushSlots { .. } => true,
            _ => false,
        };
        if write { ExpiryMode::Ignore } else { ExpiryMode::Hide }
    }

    fn take_replies(&mut self, batch: &Batch) {
        let mut rel_ends = Vec::new();
        for req in &batch.reqs {
            match req.op {
                _ if req.deferred => continue,
                Op::TxUnlock | Op::Unwatch | Op::TxStore => continue,
                Op::TxRead(_) => {
                    let rel: Vec<usize> = batch.ends[req.ends.clone()].iter().map(|e| e - req.out.start).collect();
                    self.on_read_reply(req.hole, req.part, &batch.out[req.out.clone()], &rel);
                    continue;
                }
                Op::TxLock | Op::TxFetch => {
                    let out = &batch.out[req.out.clone()];
                    let mut start = 0;
                    let items: Vec<&[u8]> = batch.ends[req.ends.clone()]
                        .iter()
                        .map(|&e| {
                            let item = &out[start..e - req.out.start];
                            start = e - req.out.start;
                            item
                        })
                        .collect();
                    self.on_tx_reply(req, out, &items);
                    continue;
                }
                _ => {}
            }
            let Some(conn) = self.conns[req.conn as usize].as_mut() else {
                debug_assert!(false, "reply for a released connection");
                continue;
            };
            if let Op::Block(_) = req.op {
                crate::blocking::answered(conn, &batch.out[req.out.clone()]);
            }
            rel_ends.clear();
            rel_ends.extend(batch.ends[req.ends.clone()].iter().map(|e| e - req.out.start));
            let done = conn.fill(req.hole, req.part, &batch.out[req.out.clone()], &rel_ends, &mut self.rng);
            if done {
                if conn.closing == Closing::Now {
                    self.begin_close(req.conn);
                } else if !conn.queued {
                    conn.queued = true;
                    self.to_process.push(req.conn);
                }
            }
        }
        // Connections whose pipelines completed continue now (and send their replies).
        self.run_ready();
    }

    /// Continues connection `idx` once what it waited for arrived: closes it,
    /// or queues it to run the rest of its pipeline and send its replies.
    pub(crate) fn continue_conn(&mut self, idx: u32) {
        let Some(conn) = self.conns[idx as usize].as_mut() else { return };
        if conn.closing == Closing::Now {
            self.begin_close(idx);
        } else if !conn.queued {
            conn.queued = true;
            self.to_process.push(idx);
        }
    }

    /// Runs the connections queued to continue.
    fn run_ready(&mut self) {
        let ready: Vec<u32> = std::mem::take(&mut self.to_process);
        for idx in ready {
            if let Some(c) = self.conns[idx as usize].as_mut() {
                c.queued = false;
                self.process_input(idx, None);
            }
        }
    }

    fn on_control(&mut self, msg: Control) {
        match msg {
            Control::Adopt { fd, id, addr, laddr, replica_port, args, input } => {
                crate::repl::primary::adopt(self, fd, id, addr, laddr, replica_port, args, input)
            }
            Control::AdoptMigration { fd, addr, source, lsn, range, id } => {
                crate::repl::replica::adopt_migration(self, fd, addr, source, lsn, range, id)
            }
            Control::AdoptMaster { fd, addr, primary_shard, primary_shards, epoch, full, lsn } => {
                crate::repl::replica::adopt(self, fd, addr, primary_shard, primary_shards, epoch, full, lsn)
            }
            Control::DropReplication { epoch, promoted } => crate::repl::replica::drop_older(self, epoch, promoted),
            Control::ResumeStream { idx, id } => crate::repl::txapply::resume(self, idx, id),
            Control::CloseMasterLinks => crate::repl::replica::close_masters(self),
            Control::ClusterReply { idx, id, bytes, routing } => {
                crate::cluster::on_reply(self, idx, id, bytes, routing)
            }
            Control::ConfigSet(pairs) => {
                let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                if let Err(e) = self.config.set_many(&refs) {
                    tracing::warn!(shard = self.id, "config change not applied here: {}", e.redis_text());
                }
            }
        }
    }

    fn on_tick(&mut self) {
        self.now_ms = coreshard_engine::unix_ms();
        self.sample_ops_rate();
        crate::repl::on_tick(self);
        let s = &self.shared.stats[self.id];
        s.recent_max_output.store(std::mem::take(&mut self.counters.max_output), Relaxed);
        s.recent_max_input.store(std::mem::take(&mut self.counters.max_input), Relaxed);
        self.shared.peak_memory.fetch_max(self.used_memory(), Relaxed);
        let lfu = matches!(self.config.maxmemory_policy, MaxmemoryPolicy::AllkeysLfu | MaxmemoryPolicy::VolatileLfu);
        if lfu != self.ks.lfu_policy() {
            self.ks.set_lfu_policy(lfu);
        }
        let budget_ns = self.tick_ns / ACTIVE_EXPIRE_TICK_SHARE;
        let started = runtime::monotonic_ns();
        while runtime::monotonic_ns() - started < budget_ns {
            let removed = self.ks.active_expire(self.now_ms, coreshard_engine::keyspace::ACTIVE_EXPIRE_ENTRIES_MAX);
            if removed == 0 {
                break;
            }
        }
        // Keys reclaimed outside commands (WATCH's checks, say) reach the journal by now.
        self.ks.log_pending_deletions();
        if self.config.timeout > 0 {
            let now = runtime::monotonic_ns();
            let limit = self.config.timeout * 1_000_000_000;
            let idle: Vec<u32> = (0..self.conns.len() as u32)
                .filter(|&i| {
                    // A blocked client is not idle (Redis exempts it too).
                    self.conns[i as usize]
                        .as_ref()
                        .is_some_and(|c| c.holes_open == 0 && c.blocked.is_none() && now - c.last_ns > limit)
                })
                .collect();
            for i in idle {
                self.begin_close(i);
            }
        }
    }

    /// Bytes used by every shard: the others' as published at their last
    /// turn, this one's as of now.
    pub(crate) fn used_memory(&self) -> u64 {
        let others: i64 = (0..self.map.shards())
            .filter(|&s| s != self.id)
            .map(|s| self.shared.stats[s].used_memory.load(Relaxed))
            .sum();
        (others + coreshard_engine::memory::thread_allocated() as i64).max(0) as u64
    }

    /// The memory maxmemory is checked against: [`Shard::used_memory`] less
    /// what the journals hold past their backlogs for flows still sending
    /// it (a full sync under writes), as Redis leaves its replication
    /// buffer out, so that a replica's sync does not evict keys.
    pub(crate) fn memory_for_eviction(&self) -> u64 {
        // One pass over the other shards' figures: this runs per DENYOOM
        // command under maxmemory, and per key evicted.
        let others: i64 = (0..self.map.shards())
            .filter(|&s| s != self.id)
            .map(|s| {
                let st = &self.shared.stats[s];
                st.used_memory.load(Relaxed) - st.mem_not_counted_for_evict.load(Relaxed) as i64
            })
            .sum();
        let own =
            coreshard_engine::memory::thread_allocated() as i64 - self.ks.journal.retained_beyond_backlog() as i64;
        (others + own).max(0) as u64
    }

    /// Keeps used memory under maxmemory by evicting this shard's keys as the
    /// policy says, once per loop turn. Each shard evicts its own keys, so the
    /// work spreads as the keys do. Returns false when over the limit with nothing evictable,
    /// which is when DENYOOM commands get the OOM error.
    pub(crate) fn enforce_maxmemory(&mut self) -> bool {
        /// Keys one call may evict, so a shard never stalls on eviction.
        const EVICTIONS_PER_CALL_MAX: usize = 1024;
        let limit = self.config.maxmemory;
        if limit == 0 || self.memory_for_eviction() <= limit {
            return true;
        }
        let Some(policy) = eviction_policy(self.config.maxmemory_policy) else { return false };
        let samples = self.config.maxmemory_samples.max(1) as usize;
        // This shard frees its share of the excess, in proportion to the keys
        // it holds: the others free theirs on their turns. One shard freeing
        // it all would empty itself, and LRU/LFU only rank keys of one shard.
        let own_keys: u64 = self.ks.dbs().iter().map(|d| d.len() as u64).sum();
        let other_keys: u64 = (0..self.map.shards())
            .filter(|&s| s != self.id)
            .map(|s| self.shared.stats[s].keys.iter().map(|k| k.load(Relaxed)).sum::<u64>())
            .sum();
        let excess = self.memory_for_eviction().saturating_sub(limit);
        let share = (excess as u128 * own_keys as u128 / (own_keys + other_keys).max(1) as u128) as i64;
        let start = coreshard_engine::memory::thread_allocated() as i64;
        let mut evicted = 0;
        while evicted < EVICTIONS_PER_CALL_MAX
            && start - (coreshard_engine::memory::thread_allocated() as i64) < share.max(1)
            && self.memory_for_eviction() > limit
        {
            if !self.ks.evict_one(policy, samples, self.now_ms) {
                break;
            }
            evicted += 1;
        }
        // Another shard may hold the evictable keys: it evicts them on its
        // next turn. Refuse only when no shard has any.
        evicted > 0 || self.memory_for_eviction() <= limit || self.evictable_anywhere(policy)
    }

    /// Whether a command that may grow memory may run: under maxmemory, or
    /// over it with keys left to evict (the shards evict on their turns).
    fn may_grow(&self) -> bool {
        if self.memory_for_eviction() <= self.config.maxmemory {
            return true;
        }
        let Some(policy) = eviction_policy(self.config.maxmemory_policy) else { return false };
        use coreshard_engine::keyspace::Eviction::*;
        let volatile = matches!(policy, VolatileLru | VolatileLfu | VolatileRandom | VolatileTtl);
        let own = self.ks.dbs().iter().any(|d| if volatile { d.counts().volatile > 0 } else { !d.is_empty() });
        own || self.evictable_anywhere(policy)
    }

    /// True when some shard holds keys `policy` may evict (from the
    /// published key counts).
    fn evictable_anywhere(&self, policy: coreshard_engine::keyspace::Eviction) -> bool {
        use coreshard_engine::keyspace::Eviction::*;
        let volatile = matches!(policy, VolatileLru | VolatileLfu | VolatileRandom | VolatileTtl);
        self.shared.stats.iter().enumerate().any(|(s, st)| {
            if s == self.id {
                return false;
            }
            let counts = if volatile { &st.expires } else { &st.keys };
            counts.iter().any(|n| n.load(Relaxed) > 0)
        })
    }

    /// Publishes the command rate since the previous tick (INFO instantaneous_ops_per_sec).
    fn sample_ops_rate(&mut self) {
        let now = runtime::monotonic_ns();
        let total = self.shared.stats[self.id].total_commands.load(Relaxed) + self.counters.commands;
        let (then, before) = self.ops_sample;
        if now > then {
            let rate = (total - before) as u128 * 1_000_000_000 / (now - then) as u128;
            self.shared.stats[self.id].ops_per_sec.store(rate as u64, Relaxed);
        }
        self.ops_sample = (now, total);
    }

    /// Advances graceful shutdown; true when this shard may exit.
    fn shutdown_step(&mut self) -> bool {
        if !self.shared.shutdown.load(Relaxed) {
            return false;
        }
        let now = runtime::monotonic_ns();
        if !self.draining {
            self.draining = true;
            self.shutdown_deadline_ns = now + self.config.shutdown_timeout.max(1) * 1_000_000_000;
            // Stop accepting: closing the listener's fd here would race the
            // armed accept, so cancel it and close once it completes.
            for l in &self.listeners {
                if l.armed {
                    // SAFETY: shutdown on a listening socket this shard owns; pending accepts then fail.
                    unsafe { libc::shutdown(l.fd.as_raw_fd(), libc::SHUT_RD) };
                }
            }
            // Connections waiting for input close; those with work finish it first.
            for i in 0..self.conns.len() as u32 {
                if let Some(c) = self.conns[i as usize].as_mut() {
                    // Nothing executing and nothing to send: any bytes held are
                    // an incomplete command, which was never read in full.
                    if c.holes_open == 0 && c.output_pending() == 0 {
                        c.closing = Closing::Now;
                        self.begin_close(i);
                    } else if c.closing == Closing::No {
                        c.closing = Closing::AfterReply;
                    }
                }
            }
        }
        let open = self.conns.iter().filter(|c| c.is_some()).count();
        if open == 0 && !self.reported_drained {
            self.reported_drained = true;
            self.shared.shards_drained.fetch_add(1, SeqCst);
            self.shared.wake_all();
        }
        let all_drained = self.shared.shards_drained.load(SeqCst) == self.map.shards();
        let pending_peers = self.overflow.iter().any(|q| !q.is_empty()) || !self.hop_delay.held.is_empty();
        if (all_drained && !pending_peers) || now > self.shutdown_deadline_ns {
            if now > self.shutdown_deadline_ns && open > 0 {
                tracing::warn!(
                    shard = self.id,
                    "shutdown-timeout reached with {open} clients still open; closing them"
                );
            }
            return true;
        }
        false
    }

    /// Publishes this shard's counters for INFO and DBSIZE readers.
    fn publish(&mut self) {
        let s = &self.shared.stats[self.id];
        let c = &mut self.counters;
        s.connected_clients.store(c.open, Relaxed);
        s.total_connections.fetch_add(std::mem::take(&mut c.connections), Relaxed);
        s.total_commands.fetch_add(std::mem::take(&mut c.commands), Relaxed);
        s.net_input_bytes.fetch_add(std::mem::take(&mut c.net_in), Relaxed);
        s.net_output_bytes.fetch_add(std::mem::take(&mut c.net_out), Relaxed);
        s.errors.fetch_add(std::mem::take(&mut c.errors), Relaxed);
        s.keyspace_hits.store(self.ks.stats.hits, Relaxed);
        s.used_memory.store(coreshard_engine::memory::thread_allocated() as i64, Relaxed);
        s.mem_not_counted_for_evict.store(self.ks.journal.retained_beyond_backlog() as u64, Relaxed);
        s.evicted_keys.store(self.ks.stats.evicted, Relaxed);
        s.keyspace_misses.store(self.ks.stats.misses, Relaxed);
        s.dirty.store(self.ks.stats.dirty, Relaxed);
        s.expired_keys.store(self.ks.expired_keys(), Relaxed);
        for (i, db) in self.ks.dbs().iter().enumerate() {
            let counts = db.counts();
            s.keys[i].store(counts.keys as u64, Relaxed);
            s.expires[i].store(counts.volatile as u64, Relaxed);
        }
    }
}

/// The engine's eviction policy for a maxmemory-policy (None: noeviction).
fn eviction_policy(policy: MaxmemoryPolicy) -> Option<coreshard_engine::keyspace::Eviction> {
    use coreshard_engine::keyspace::Eviction;
    Some(match policy {
        MaxmemoryPolicy::Noeviction => return None,
        MaxmemoryPolicy::AllkeysLru => Eviction::AllKeysLru,
        MaxmemoryPolicy::AllkeysLfu => Eviction::AllKeysLfu,
        MaxmemoryPolicy::AllkeysRandom => Eviction::AllKeysRandom,
        MaxmemoryPolicy::VolatileLru => Eviction::VolatileLru,
        MaxmemoryPolicy::VolatileLfu => Eviction::VolatileLfu,
        MaxmemoryPolicy::VolatileRandom => Eviction::VolatileRandom,
        MaxmemoryPolicy::VolatileTtl => Eviction::VolatileTtl,
    })
}

fn set_keepalive(fd: i32, secs: u64) {
    if secs == 0 {
        return;
    }
    let on: libc::c_int = 1;
    let idle = secs.min(i32::MAX as u64) as libc::c_int;
    let interval = (idle / 3).max(1);
    // SAFETY: setsockopt reads one c_int from live locals.
    unsafe {
        let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, (&on as *const libc::c_int).cast(), size);
        libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, (&idle as *const libc::c_int).cast(), size);
        libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (&interval as *const libc::c_int).cast(), size);
    }
}

/// Peer and local addresses as CLIENT LIST shows them.
fn socket_addrs(fd: i32, unix: bool, unix_path: Option<&str>) -> (String, String) {
    if unix {
        let path = unix_path.unwrap_or("").to_string();
        return (format!("{path}:0"), format!("{path}:0"));
    }
    let get = |peer: bool| -> String {
        // SAFETY: sockaddr_storage is plain data large enough for any address; the
        // calls write at most `len` bytes and update it.
        unsafe {
            let mut storage: libc::sockaddr_storage = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            let p = (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr>();
            let rc = if peer { libc::getpeername(fd, p, &mut len) } else { libc::getsockname(fd, p, &mut len) };
            if rc != 0 {
                return "?:0".into();
            }
            match storage.ss_family as i32 {
                libc::AF_INET => {
                    let a = &*(p as *const libc::sockaddr_in);
                    let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    format!("{ip}:{}", u16::from_be(a.sin_port))
                }
                libc::AF_INET6 => {
                    let a = &*(p as *const libc::sockaddr_in6);
                    let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                    format!("{ip}:{}", u16::from_be(a.sin6_port))
                }
                _ => "?:0".into(),
            }
        }
    };
    (get(true), get(false))
}
