//! The cluster config file (`cluster-config-file`, `nodes.conf` by
//! default): this node's id and the configuration it last installed, as
//! JSON. Written whole on every change to a temporary file that is synced
//! and renamed over the old one, so a crash leaves the old or the new
//! file, never a torn one; read at start, so a restarted node serves the
//! map it had.
//!
//! The writing (and its fsyncs) happens on a [`Writer`] thread, never on
//! a shard: a change is accepted in memory, handed to the writer, which
//! writes the newest configuration it was given (several changes in a row
//! make one write), and only once an epoch is in the file does the node
//! act on it ([`Writer::when_durable`]): publish its routing to the
//! shards, answer SETCONFIG, release a migration's held writes. So, as
//! when the shard wrote the file itself, whatever epoch a node has acted
//! on is in its file, and a restart never goes back before it.
//!
//! CLUSTER RESET may take the epoch back (HARD to 0), so the writer orders
//! what it is given by (reset generation, epoch): the generation counts
//! the resets since the node started (it is not in the file, which holds
//! one configuration only), and a reset's configuration replaces anything
//! of an older generation, whatever its epoch.

use super::config::{ClusterConfig, ConfigError, NodeId};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The format tag written into the file.
const FORMAT: &str = "coreshard-cluster-1";

/// What the file holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodesFile {
    /// The format tag.
    pub format: String,
    /// This node's id.
    pub myself: NodeId,
    /// The configuration in force.
    pub config: ClusterConfig,
    /// The config epoch at which the cluster removed this node, or 0: no
    /// configuration at that epoch or below is installed any more (see
    /// `ClusterControl`'s `CORESHARD-LEFT`). Absent in files without one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub left_at: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl NodesFile {
    /// A file for node `myself` with `config`.
    pub fn new(myself: NodeId, config: ClusterConfig) -> Self {
        NodesFile { format: FORMAT.to_string(), myself, config, left_at: 0 }
    }

    /// The same file, with the removal mark `left_at`.
    pub fn left_at(mut self, left_at: u64) -> Self {
        self.left_at = left_at;
        self
    }

    /// Reads `path`: None when it does not exist; an error naming the file
    /// when it cannot be read or is not a valid configuration.
    pub fn load(path: &Path) -> Result<Option<NodesFile>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("can't read the cluster config file {}: {e}", path.display())),
        };
        let file: NodesFile = serde_json::from_str(&text)
            .map_err(|e| format!("the cluster config file {} is not valid: {e}", path.display()))?;
        if file.format != FORMAT {
            return Err(format!("the cluster config file {} has unknown format '{}'", path.display(), file.format));
        }
        file.config
            .validate()
            .map_err(|e: ConfigError| format!("the cluster config file {} is not valid: {e}", path.display()))?;
        Ok(Some(file))
    }

    /// Writes the file atomically: a synced temporary file renamed over
    /// `path`, then the directory synced so the rename survives a crash.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = temp_path(path);
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
            return written;
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// How long the writer waits before trying a failed write again.
const RETRY_MS: u64 = 100;

/// Something to do once an epoch is in the file.
type Then = Box<dyn FnOnce() + Send>;

/// The order of configurations given to the writer: (reset generation, epoch).
pub type Version = (u64, u64);

/// The config file's writer thread (see the module's doc).
pub struct Writer {
    state: Mutex<Pending>,
    work: Condvar,
    /// The newest epoch in the file.
    durable: AtomicU64,
}

#[derive(Default)]
struct Pending {
    /// The newest configuration not yet written, with its version.
    newest: Option<(Version, NodesFile)>,
    /// The newest version in the file.
    durable: Version,
    /// What waits for a version to be written, with that version.
    waiting: Vec<(Version, Then)>,
}

impl Writer {
    /// Starts the writer of `path`, whose file holds `durable` already.
    pub fn start(path: PathBuf, durable: u64) -> Result<Arc<Writer>, String> {
        let writer = Arc::new(Writer {
            state: Mutex::new(Pending { durable: (0, durable), ..Pending::default() }),
            work: Condvar::new(),
            durable: AtomicU64::new(durable),
        });
        let w = writer.clone();
        std::thread::Builder::new()
            .name("cs-nodes-conf".into())
            .spawn(move || w.run(&path))
            .map_err(|e| format!("can't start the cluster config file's writer: {e}"))?;
        Ok(writer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `file` over to be written, as of reset generation
    /// `generation` (replacing an older one not yet written).
    pub fn submit(&self, generation: u64, file: NodesFile) {
        let version = (generation, file.config.epoch);
        let mut p = self.lock();
        if version >= p.durable && p.newest.as_ref().is_none_or(|n| n.0 <= version) {
            p.newest = Some((version, file));
        }
        self.work.notify_one();
    }

    /// The newest epoch in the file (of the newest generation written).
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Runs `then` once version `version` (or a newer one) is in the file:
    /// at once when it is, else on the writer thread right after the write.
    pub fn when_durable(&self, version: Version, then: impl FnOnce() + Send + 'static) {
        {
            let mut p = self.lock();
            if p.durable < version {
                p.waiting.push((version, Box::new(then)));
                return;
            }
        }
        then();
    }

    fn run(&self, path: &Path) {
        loop {
            let mut file = {
                let mut p = self.lock();
                loop {
                    if let Some(f) = p.newest.take() {
                        break f;
                    }
                    p = self.work.wait(p).unwrap_or_else(|e| e.into_inner());
                }
            };
            // A failed write is tried again (with anything newer) until it
            // succeeds: nothing that waits for it may go on before.
            while let Err(e) = file.1.save(path) {
                tracing::error!("cluster: can't write the cluster config file {}: {e}; retrying", path.display());
                std::thread::sleep(Duration::from_millis(RETRY_MS));
                if let Some(newer) = self.lock().newest.take() {
                    file = newer;
                }
            }
            let version = file.0;
            let mut ready = {
                let mut p = self.lock();
                if p.durable < version {
                    p.durable = version;
                    self.durable.store(version.1, Ordering::Release);
                }
                let (ready, still): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut p.waiting).into_iter().partition(|w| w.0 <= version);
                p.waiting = still;
                ready
            };
            ready.sort_by_key(|w| w.0);
            for (_, then) in ready {
                then();
            }
        }
    }
}

/// `path` with `.tmp-<pid>` added, in the same directory (so the rename
/// stays within one file system).
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::config::{Node, SlotRange};

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("coreshard-nodes-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_saved_file_loads_back_and_replaces_the_old_one() {
        let dir = scratch("roundtrip");
        let path = dir.join("nodes.conf");
        assert_eq!(NodesFile::load(&path), Ok(None));
        let me = NodeId::random();
        let mut config = ClusterConfig::solo(Node::primary(me.clone(), "127.0.0.1", 7000));
        let first = NodesFile::new(me.clone(), config.clone());
        first.save(&path).unwrap();
        assert_eq!(NodesFile::load(&path).unwrap(), Some(first));
        config.epoch = 3;
        config.nodes[0].slots = vec![SlotRange::new(0, 16383)];
        let second = NodesFile::new(me, config);
        second.save(&path).unwrap();
        assert_eq!(NodesFile::load(&path).unwrap(), Some(second));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_writer_writes_the_newest_and_then_runs_what_waits_in_epoch_order() {
        let dir = scratch("writer");
        let path = dir.join("nodes.conf");
        let me = NodeId::random();
        let config = |epoch| {
            let mut c = ClusterConfig::solo(Node::primary(me.clone(), "127.0.0.1", 7000));
            c.epoch = epoch;
            c
        };
        let writer = Writer::start(path.clone(), 0).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for epoch in 1..=20 {
            writer.submit(0, NodesFile::new(me.clone(), config(epoch)));
            let (tx, path) = (tx.clone(), path.clone());
            writer.when_durable((0, epoch), move || {
                // The epoch (or a newer one) is in the file when this runs.
                let on_disk = NodesFile::load(&path).unwrap().map_or(0, |f| f.config.epoch);
                tx.send((epoch, on_disk)).unwrap();
            });
        }
        let done: Vec<(u64, u64)> = (0..20).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert!(done.iter().all(|&(e, on_disk)| on_disk >= e), "{done:?}");
        assert!(done.windows(2).all(|w| w[0].0 < w[1].0), "in epoch order: {done:?}");
        assert_eq!(writer.durable(), 20);
        assert_eq!(NodesFile::load(&path).unwrap().unwrap().config.epoch, 20);
        // Something waiting for an epoch already written runs at once.
        let (tx, rx) = std::sync::mpsc::channel();
        writer.when_durable((0, 3), move || tx.send(()).unwrap());
        assert!(rx.try_recv().is_ok());
        // A reset's configuration (the next generation) goes back to epoch
        // 0: it is written over epoch 20, and what waits for it runs after.
        let (tx, rx) = std::sync::mpsc::channel();
        writer.submit(1, NodesFile::new(me.clone(), config(0)));
        let path2 = path.clone();
        writer.when_durable((1, 0), move || {
            tx.send(NodesFile::load(&path2).unwrap().map(|f| f.config.epoch)).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), Some(0));
        assert_eq!(writer.durable(), 0);
        // An older generation's configuration is not written any more.
        writer.submit(0, NodesFile::new(me.clone(), config(21)));
        let (tx, rx) = std::sync::mpsc::channel();
        writer.submit(1, NodesFile::new(me.clone(), config(1)));
        writer.when_durable((1, 1), move || tx.send(()).unwrap());
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(NodesFile::load(&path).unwrap().unwrap().config.epoch, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = scratch("damaged");
        let path = dir.join("nodes.conf");
        std::fs::write(&path, "{\"format\":\"coreshard-cluster-1\",").unwrap();
        let e = NodesFile::load(&path).unwrap_err();
        assert!(e.contains("nodes.conf") && e.contains("not valid"), "{e}");
        // Valid JSON, invalid configuration: a slot owned twice.
        let me = NodeId::random();
        let mut config = ClusterConfig::solo(Node::primary(me.clone(), "127.0.0.1", 7000));
        config.nodes.push(Node::primary(NodeId::random(), "127.0.0.1", 7001));
        config.nodes[0].slots = vec![SlotRange::new(0, 10)];
        config.nodes[1].slots = vec![SlotRange::new(10, 20)];
        std::fs::write(&path, serde_json::to_string(&NodesFile::new(me, config)).unwrap()).unwrap();
        let e = NodesFile::load(&path).unwrap_err();
        assert!(e.contains("slot 10 is assigned twice"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
