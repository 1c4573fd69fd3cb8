//! Cluster mode's configuration: the pure state machine ([`config`]), its
//! file ([`store`]), and the node's control that installs changes and
//! answers CLUSTER's descriptive subcommands ([`control`]).

pub mod config;
pub mod control;
pub mod log;
#[cfg(test)]
mod log_sim;
pub mod store;

pub use config::{ClusterConfig, ConfigChange, ConfigError, Node, NodeId, Role, SlotRange};
pub use control::ClusterControl;

/// The server's cluster hook for `config`: None outside cluster mode; an
/// error when the cluster config file cannot be read or written.
pub fn hooks(config: &coreshard_net::Config) -> Result<coreshard_net::Hooks, String> {
    if !config.cluster_enabled {
        return Ok(coreshard_net::Hooks::default());
    }
    let control = ClusterControl::open(config)?;
    let cluster = coreshard_net::cluster::Cluster::new(Box::new(control));
    Ok(coreshard_net::Hooks { cluster: Some(std::sync::Arc::new(cluster)) })
}
