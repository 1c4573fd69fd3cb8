//! The replica's link thread: connects to the primary, authenticates, asks
//! each flow's PSYNC, and hands each socket to a shard. The handshake is a
//! few blocking round trips per flow, rare and off the shards' cores; the
//! stream itself then runs on the shards' io_uring.

use super::{FlowLink, ReplState};
use crate::shared::{Control, Shared};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::IntoRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// First retry delay after a failed attempt; doubles up to `RETRY_MS_MAX`.
const RETRY_MS_MIN: u64 = 100;
/// Longest delay between attempts.
const RETRY_MS_MAX: u64 = 2_000;
/// Longest line of a handshake reply.
const LINE_BYTES_MAX: usize = 4096;

/// What wakes the link thread.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// REPLICAOF changed.
    Reconfigure,
    /// A flow's connection closed.
    FlowDown,
    /// The server stops.
    Shutdown,
}

/// Starts the link thread.
pub(crate) fn spawn(shared: Arc<Shared>) -> io::Result<std::thread::JoinHandle<()>> {
    let Some(events) = shared.repl.take_events() else {
        return Err(io::Error::other("the replication link thread runs once"));
    };
    std::thread::Builder::new().name("repl-link".into()).spawn(move || {
        loop {
            let wait = next_wait_ms(&shared);
            match events.recv_timeout(Duration::from_millis(wait)) {
                Ok(LinkEvent::Shutdown) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                Ok(_) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            }
            if shared.shutdown.load(Relaxed) {
                return;
            }
            connect_due(&shared);
        }
    })
}

/// How long to sleep before the next attempt is due.
fn next_wait_ms(shared: &Shared) -> u64 {
    let st = shared.repl.lock();
    if st.master.is_none() {
        return 1_000;
    }
    let now = coreshard_engine::unix_ms();
    if st.master_shards == 0 {
        return st.flows.first().map_or(0, |f| f.retry_at_ms.saturating_sub(now)).min(1_000);
    }
    st.flows.iter().filter(|f| !f.connected).map(|f| f.retry_at_ms.saturating_sub(now)).min().unwrap_or(1_000)
}

/// Connects every flow that is down and due.
fn connect_due(shared: &Arc<Shared>) {
    loop {
        let (master, epoch, flow, replid, lsn) = {
            let mut st = shared.repl.lock();
            let Some(master) = st.master.clone() else { return };
            let now = coreshard_engine::unix_ms();
            if st.flows.is_empty() {
                st.flows.push(FlowLink::default());
            }
            let Some(k) = st.flows.iter().position(|f| !f.connected && f.retry_at_ms <= now) else { return };
            // Until the primary's shard count is known, only flow 0 is tried (it learns it).
            if st.master_shards == 0 && k != 0 {
                return;
            }
            let f = &st.flows[k];
            let (replid, lsn) = if f.synced && !st.master_replid.is_empty() {
                (st.master_replid.clone(), f.lsn as i64)
            } else {
                ("?".to_string(), -1)
            };
            st.flows[k].connected = true;
            (master, st.link_epoch, k, replid, lsn)
        };
        let result = connect_flow(shared, &master, epoch, flow, &replid, lsn);
        let mut st = shared.repl.lock();
        if st.master.as_ref() != Some(&master) {
            continue;
        }
        match result {
            Ok(()) => {
                if let Some(f) = st.flows.get_mut(flow) {
                    f.failures = 0;
                }
            }
            Err(e) => {
                if let Some(f) = st.flows.get_mut(flow) {
                    f.connected = false;
                    f.failures = f.failures.saturating_add(1);
                    let backoff = (RETRY_MS_MIN << f.failures.min(5)).min(RETRY_MS_MAX);
                    f.retry_at_ms = coreshard_engine::unix_ms() + backoff;
                    if f.failures == 1 || f.failures % 20 == 0 {
                        tracing::warn!("replication flow {flow} to {}:{}: {e}", master.0, master.1);
                    }
                }
                return;
            }
        }
    }
}

/// One flow's handshake; on success its socket belongs to a shard.
fn connect_flow(
    shared: &Arc<Shared>,
    master: &(String, u16),
    mut epoch: u64,
    flow: usize,
    replid: &str,
    lsn: i64,
) -> io::Result<()> {
    let config = shared.config.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut conn = Handshake::open(&config, &master.0, master.1, "MASTER")?;
    let port = shared.port.load(Relaxed).to_string();
    let reply = conn.call(&["REPLCONF", "listening-port", &port])?;
    if !reply.starts_with('+') {
        return Err(io::Error::other(format!("REPLCONF listening-port refused: {reply}")));
    }
    let (shards, _their_id) = conn.layout()?;
    let (replid, lsn) = {
        let mut st = shared.repl.lock();
        if st.link_epoch != epoch {
            return Ok(());
        }
        if st.master_shards != shards {
            // Positions are per shard: with another shard count they mean nothing.
            if st.master_shards != 0 {
                tracing::warn!(
                    "the primary has {shards} shards and this node's positions are for {}: full sync of every flow",
                    st.master_shards
                );
            }
            reset_flows(shared, &mut st, shards, flow);
            epoch = st.link_epoch;
            ("?".to_string(), -1)
        } else {
            (replid.to_string(), lsn)
        }
    };
    let myid = shared.run_id.clone();
    let reply = conn.call(&["PSYNC", &replid, &lsn.to_string(), &flow.to_string(), &myid])?;
    let words: Vec<&str> = reply.split_ascii_whitespace().collect();
    let (full, at) = match words.as_slice() {
        ["+FULLRESYNC", id, at] => {
            let at: u64 = at.parse().map_err(|_| io::Error::other(format!("bad PSYNC reply: {reply}")))?;
            let mut st = shared.repl.lock();
            st.master_replid = id.to_string();
            (true, at)
        }
        ["+CONTINUE", id] => {
            // After a promotion the primary continues our history under its new id.
            shared.repl.lock().master_replid = id.to_string();
            (false, lsn.max(0) as u64)
        }
        _ => return Err(io::Error::other(format!("PSYNC refused: {reply}"))),
    };
    tracing::info!(
        "replication flow {flow} from {}:{}: {}",
        master.0,
        master.1,
        if full { format!("full sync from {at}") } else { format!("partial resync from {at}") }
    );
    let stream = conn.stream.into_inner();
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    let addr = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let shards_here = shared.control.len();
    let target = flow % shards_here;
    {
        let mut st = shared.repl.lock();
        if st.link_epoch != epoch {
            return Ok(());
        }
        if let Some(f) = st.flows.get_mut(flow) {
            f.syncing = full;
            if full {
                f.synced = false;
            } else {
                f.synced = true;
                f.lsn = at;
            }
            f.last_io_ms = coreshard_engine::unix_ms();
        }
    }
    let fd = stream.into_raw_fd();
    let msg = Control::AdoptMaster { fd, addr, primary_shard: flow, primary_shards: shards, epoch, full, lsn: at };
    if shared.control[target].send(msg).is_err() {
        // SAFETY: the fd is ours until the shard takes it; it did not.
        unsafe { libc::close(fd) };
        return Err(io::Error::other("shard gone"));
    }
    shared.wake(target);
    Ok(())
}

/// Starts over with `shards` flows (a new primary, or one that restarted),
/// keeping `keep` (the one connecting) marked connected. The link's epoch
/// moves on, so connections of the old history close and their closing
/// touches nothing of the new one.
fn reset_flows(shared: &Shared, st: &mut ReplState, shards: usize, keep: usize) {
    st.master_shards = shards;
    let mut flows = vec![FlowLink::default(); shards];
    if let Some(f) = flows.get_mut(keep) {
        f.connected = true;
    }
    st.flows = flows;
    st.link_epoch += 1;
    let epoch = st.link_epoch;
    for control in &shared.control {
        let _ = control.send(Control::DropReplication { epoch, promoted: false });
    }
    shared.wake_all();
}

/// A blocking connection during the handshake. Reads go a byte at a time
/// (`BufReader` of capacity 1), so nothing past the PSYNC reply is
/// consumed before the socket moves to a shard.
struct Handshake {
    stream: BufReader<TcpStream>,
}

impl Handshake {
    /// Connects to `host:port` with `repl-timeout` on every step, and
    /// authenticates with `masterauth` (and `masteruser`) when set; `peer`
    /// names it in the error.
    fn open(config: &crate::config::Config, host: &str, port: u16, peer: &str) -> io::Result<Handshake> {
        let timeout = Duration::from_secs(config.repl_timeout.max(1));
        let addr =
            (host, port).to_socket_addrs()?.next().ok_or_else(|| io::Error::other(format!("cannot resolve {host}")))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut conn = Handshake { stream: BufReader::with_capacity(1, stream) };
        if let Some(pass) = &config.masterauth {
            let reply = match &config.masteruser {
                Some(user) => conn.call(&["AUTH", user, pass])?,
                None => conn.call(&["AUTH", pass])?,
            };
            if !reply.starts_with('+') {
                return Err(io::Error::other(format!("unable to AUTH to {peer}: {reply}")));
            }
        }
        Ok(conn)
    }
}

impl Handshake {
    fn call(&mut self, args: &[&str]) -> io::Result<String> {
        let mut out = Vec::new();
        coreshard_engine::journal::encode_command(&mut out, args.iter().map(|a| a.as_bytes()));
        self.stream.get_mut().write_all(&out)?;
        self.line()
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let n = (&mut self.stream).take(LINE_BYTES_MAX as u64).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "primary closed the connection"));
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// `REPLCONF coreshard-layout`: the primary's shard count and replication id.
    fn layout(&mut self) -> io::Result<(usize, String)> {
        let head = self.call(&["REPLCONF", "coreshard-layout"])?;
        if head != "*2" {
            return Err(io::Error::other(format!("the primary is not a coreshard primary ({head})")));
        }
        let shards = self.line()?;
        let shards: usize = shards
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| io::Error::other(format!("bad layout reply {shards}")))?;
        let _len = self.line()?;
        let id = self.line()?;
        Ok((shards, id))
    }
}

/// A slot migration's target pulls `range` from the source at
/// `host:port` (repl/migrate.rs): one connection per source shard whose
/// slots meet the range, each handed to a shard of this node once the
/// source answered its PSYNC. Runs on a thread of its own, once.
pub(crate) fn connect_migration(shared: &Arc<Shared>, host: &str, port: u16, range: std::ops::Range<usize>, id: u64) {
    if let Err(e) = pull_flows(shared, host, port, &range, id) {
        super::migrate::target_failed(shared, &e.to_string());
    }
}

fn pull_flows(shared: &Arc<Shared>, host: &str, port: u16, range: &std::ops::Range<usize>, id: u64) -> io::Result<()> {
    let config = shared.config.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let open = || Handshake::open(&config, host, port, "the source");
    let (shards, _) = open()?.layout()?;
    let map = coreshard_engine::slot::SlotMap::new(shards);
    let myid = shared.run_id.clone();
    let (lo, hi) = (range.start.to_string(), (range.end - 1).to_string());
    let shards_here = shared.control.len();
    for k in 0..shards {
        let theirs = map.slots(k);
        if !theirs.meets(range.clone()) {
            continue;
        }
        let mut conn = open()?;
        let reply = conn.call(&["PSYNC", "?", "-1", &k.to_string(), &myid, "SLOTS", &lo, &hi])?;
        let words: Vec<&str> = reply.split_ascii_whitespace().collect();
        let at = match words.as_slice() {
            ["+FULLRESYNC", _, at] => at.parse::<u64>().map_err(|_| io::Error::other(format!("bad reply {reply}")))?,
            _ => return Err(io::Error::other(format!("the source refused the migration flow: {reply}"))),
        };
        let stream = conn.stream.into_inner();
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        let addr = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let fd = stream.into_raw_fd();
        let target = k % shards_here;
        let msg = Control::AdoptMigration { fd, addr, source: theirs, lsn: at, range: range.clone(), id };
        if shared.control[target].send(msg).is_err() {
            // SAFETY: the fd is ours until the shard takes it; it did not.
            unsafe { libc::close(fd) };
            return Err(io::Error::other("shard gone"));
        }
        shared.wake(target);
        tracing::info!("migration: pulling slots {lo}..={hi} of source shard {k} from {host}:{port} from {at}");
    }
    Ok(())
}
