//! The cluster config file (`cluster-config-file`, `nodes.conf` by
//! default): this node's id and the configuration it last installed, as
//! JSON. Written whole on every change to a temporary file that is synced
//! and renamed over the old one, so a crash leaves the old or the new
//! file, never a torn one; read at start, so a restarted node serves the
//! map it had.

use super::config::{ClusterConfig, ConfigError, NodeId};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

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
}

impl NodesFile {
    /// A file for node `myself` with `config`.
    pub fn new(myself: NodeId, config: ClusterConfig) -> Self {
        NodesFile { format: FORMAT.to_string(), myself, config }
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
