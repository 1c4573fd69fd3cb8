//! Starting and stopping the server: listeners, shard threads and the rings
//! between them.

use crate::batch::{Msg, RING_MESSAGES};
use crate::config::Config;
use crate::recvbuf::{BUFFER_GROUP, RECV_BUFFER_BYTES, RECV_BUFFERS, RecvBuffers};
use crate::runtime;
use crate::shard::{Listener, Shard, ShardSetup};
use crate::shared::{ShardStats, Shared};
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// A running server.
pub struct ServerHandle {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    unix_path: Option<String>,
}

impl ServerHandle {
    /// Asks every shard to shut down gracefully: stop accepting, finish the
    /// commands already read, flush their replies, close (within shutdown-timeout).
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake_all();
        let _ = self.shared.repl.events.send(crate::repl::LinkEvent::Shutdown);
    }

    /// A handle that can start shutdown from another thread (a signal handler loop).
    pub fn stopper(&self) -> Stopper {
        Stopper { shared: self.shared.clone() }
    }

    /// True once shutdown was asked for (by a signal or SHUTDOWN).
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.load(Ordering::SeqCst)
    }

    /// The TCP port bound.
    pub fn port(&self) -> u16 {
        self.shared.port.load(Ordering::Relaxed) as u16
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shared.stats.len()
    }

    /// Waits until every shard thread has exited.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Starts graceful shutdown from any thread.
#[derive(Clone)]
pub struct Stopper {
    shared: Arc<Shared>,
}

impl Stopper {
    /// Asks every shard to shut down gracefully.
    pub fn stop(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake_all();
        let _ = self.shared.repl.events.send(crate::repl::LinkEvent::Shutdown);
    }

    /// True once shutdown was asked for.
    pub fn is_stopping(&self) -> bool {
        self.shared.shutdown.load(Ordering::SeqCst)
    }
}

/// Resolves a bind address as Redis spells them (`*` and `::*` for any).
fn bind_ip(addr: &str) -> io::Result<IpAddr> {
    match addr {
        "*" => Ok(IpAddr::from([0, 0, 0, 0])),
        "::*" => Ok(IpAddr::from([0u16; 8])),
        "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
        a => a.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid bind address '{a}'"))),
    }
}

fn tcp_listener(addr: SocketAddr, backlog: u32) -> io::Result<OwnedFd> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
}

fn unix_listener(path: &str, perm: u32, backlog: u32) -> io::Result<OwnedFd> {
    let _ = std::fs::remove_file(path);
    let socket = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    if perm != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))?;
    }
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
}

/// The number of shards `config` asks for: `threads`, or one per CPU of the
/// process affinity mask.
pub fn shard_count(config: &Config) -> usize {
    if config.threads > 0 { config.threads } else { runtime::allowed_cpus().len().max(1) }
}

/// What the crates above `net` plug into the server.
#[derive(Default)]
pub struct Hooks {
    /// Cluster mode's configuration owner; required when `cluster-enabled`
    /// is yes, unused otherwise.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Starts the server without hooks (cluster mode unavailable): see [`start_with`].
pub fn start(config: Config, config_file: Option<String>) -> io::Result<ServerHandle> {
    start_with(config, config_file, Hooks::default())
}

/// Starts the server: turns transparent huge pages off (`disable-thp`),
/// binds every listener, starts one pinned thread per shard, and returns
/// once every shard is listening.
pub fn start_with(config: Config, config_file: Option<String>, hooks: Hooks) -> io::Result<ServerHandle> {
    let cluster = if config.cluster_enabled {
        let Some(cluster) = hooks.cluster else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cluster-enabled yes needs the cluster configuration (start the server through the coreshard binary)",
            ));
        };
        Some(cluster)
    } else {
        None
    };
    if config.disable_thp
        && let Err(e) = runtime::disable_transparent_huge_pages()
    {
        tracing::warn!("could not disable transparent huge pages (disable-thp yes): {e}");
    }
    let shards = shard_count(&config).min(coreshard_engine::slot::SLOTS);
    let cpus = runtime::allowed_cpus();

    // Listeners first, so errors (port in use, bad address) surface before any thread starts.
    let mut per_shard: Vec<Vec<Listener>> = (0..shards).map(|_| Vec::new()).collect();
    let mut port = config.port;
    if port != 0 {
        for (addr, optional) in config.bind_addrs() {
            let ip = bind_ip(addr)?;
            for (s, listeners) in per_shard.iter_mut().enumerate() {
                match tcp_listener(SocketAddr::new(ip, port), config.tcp_backlog) {
                    Ok(fd) => {
                        if port == 0 {
                            port = local_port(&fd).unwrap_or(0);
                        }
                        listeners.push(Listener { fd, unix: false, armed: false });
                    }
                    Err(e) if optional && s == 0 => {
                        tracing::warn!("skipping optional bind address {addr}: {e}");
                        break;
                    }
                    Err(e) => {
                        return Err(io::Error::new(e.kind(), format!("could not bind {addr}:{port}: {e}")));
                    }
                }
            }
        }
    }
    let unix_path = config.unixsocket.clone().filter(|p| !p.is_empty());
    if let Some(path) = &unix_path {
        let fd = unix_listener(path, config.unixsocketperm, config.tcp_backlog)
            .map_err(|e| io::Error::new(e.kind(), format!("could not bind unix socket {path}: {e}")))?;
        // Every shard accepts on the one unix socket; each connection goes to one of them.
        for listeners in per_shard.iter_mut() {
            let dup = fd.try_clone()?;
            listeners.push(Listener { fd: dup, unix: true, armed: false });
        }
    }
    if per_shard.iter().all(|l| l.is_empty()) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "nothing to listen on: set port or unixsocket"));
    }

    // One SPSC ring per ordered pair of shards.
    let mut producers: Vec<Vec<Option<rtrb::Producer<Msg>>>> =
        (0..shards).map(|_| (0..shards).map(|_| None).collect()).collect();
    let mut consumers: Vec<Vec<Option<rtrb::Consumer<Msg>>>> =
        (0..shards).map(|_| (0..shards).map(|_| None).collect()).collect();
    for from in 0..shards {
        for to in 0..shards {
            if from != to {
                let (p, c) = rtrb::RingBuffer::new(RING_MESSAGES);
                producers[from][to] = Some(p);
                consumers[to][from] = Some(c);
            }
        }
    }
    let (control_tx, control_rx): (Vec<_>, Vec<_>) = (0..shards).map(|_| crossbeam_channel::unbounded()).unzip();
    let mut event_fds = Vec::with_capacity(shards);
    for _ in 0..shards {
        // SAFETY: eventfd returns a new fd or -1; ownership moves into OwnedFd.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor owned by nobody else.
        event_fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let run_id = crate::repl::random_id();
    let shared = Arc::new(Shared {
        stats: (0..shards).map(|_| ShardStats::new(config.databases)).collect(),
        next_client_id: AtomicU64::new(1),
        start_unix: coreshard_engine::unix_ms() / 1000,
        run_id: run_id.clone(),
        shutdown: AtomicBool::new(false),
        shards_drained: AtomicUsize::new(0),
        shards_listening: AtomicUsize::new(0),
        ring_fds: (0..shards).map(|_| AtomicI32::new(-1)).collect(),
        event_fds: event_fds.iter().map(|fd| AtomicI32::new(fd.as_raw_fd())).collect(),
        control: control_tx,
        config: std::sync::Mutex::new(config.clone()),
        port: AtomicU64::new(port as u64),
        peak_memory: AtomicU64::new(0),
        config_file,
        executable: std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
        repl: crate::repl::Repl::new(shards, crate::repl::random_id()),
        migration: crate::repl::migrate::Migration::new(shards),
        cluster,
    });

    // Each shard builds its ring on its own thread (single-issuer rings belong
    // to the thread that made them) and reports back before any shard runs,
    // so every ring fd is known before the first cross-shard wake-up.
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<io::Result<()>>(shards);
    let (go_tx, go_rx) = crossbeam_channel::bounded::<bool>(shards);
    let mut threads = Vec::with_capacity(shards);
    let setups = per_shard.into_iter().zip(producers).zip(consumers).zip(control_rx).zip(event_fds).enumerate();
    for (id, ((((listeners, to_peer), from_peer), control), event_fd)) in setups {
        let setup = ShardSetup {
            id,
            shards,
            config: config.clone(),
            shared: shared.clone(),
            listeners,
            to_peer,
            from_peer,
            control,
            event_fd,
        };
        let cpu = cpus.get(id % cpus.len().max(1)).copied();
        let (ready_tx, go_rx) = (ready_tx.clone(), go_rx.clone());
        let thread = std::thread::Builder::new().name(format!("shard-{id}")).spawn(move || {
            if let Some(cpu) = cpu
                && let Err(e) = runtime::pin_current_thread(cpu)
            {
                tracing::warn!(shard = id, "could not pin to CPU {cpu}: {e}");
            }
            let ring = match runtime::build_ring() {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let bufs = match RecvBuffers::register(&ring, BUFFER_GROUP, RECV_BUFFERS, RECV_BUFFER_BYTES) {
                Ok(b) => b,
                Err(e) => {
                    let why = format!(
                        "could not register receive buffers with io_uring (Linux 5.19 or later is needed): {e}"
                    );
                    let _ = ready_tx.send(Err(io::Error::new(e.kind(), why)));
                    return;
                }
            };
            setup.shared.ring_fds[id].store(ring.as_raw_fd(), Ordering::SeqCst);
            let _ = ready_tx.send(Ok(()));
            if go_rx.recv() != Ok(true) {
                return;
            }
            Shard::new(setup, ring).run(bufs);
        })?;
        threads.push(thread);
    }
    let mut failure = None;
    for _ in 0..shards {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some(io::Error::other("a shard thread exited during start")),
        }
    }
    for _ in 0..shards {
        let _ = go_tx.send(failure.is_none());
    }
    if let Some(e) = failure {
        for t in threads {
            let _ = t.join();
        }
        return Err(e);
    }
    while shared.shards_listening.load(Ordering::SeqCst) < shards {
        std::thread::yield_now();
    }
    // Not joined at shutdown: it may be blocked in a handshake with an
    // unresponsive primary for up to repl-timeout, and holds nothing to flush.
    drop(crate::repl::link::spawn(shared.clone())?);
    // A replica follows its primary: as `replicaof` says, or else as the
    // cluster configuration it restarted with says.
    let configured_primary = shared.cluster.as_ref().and_then(|c| c.snapshot().replica_of.clone());
    if let Some((host, port)) = config.replicaof.clone().or(configured_primary) {
        let mut st = shared.repl.lock();
        crate::repl::follow(&shared, &mut st, host, port);
    }
    Ok(ServerHandle { shared, threads, unix_path })
}

fn local_port(fd: &OwnedFd) -> Option<u16> {
    // SAFETY: borrows the fd for the call only; ManuallyDrop keeps it from being closed.
    let socket = std::mem::ManuallyDrop::new(unsafe { Socket::from_raw_fd(fd.as_raw_fd()) });
    socket.local_addr().ok()?.as_socket().map(|a| a.port())
}
