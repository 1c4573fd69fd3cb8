//! Cluster mode's configuration: the pure state machine ([`config`]), its
//! file ([`store`]), and the node's control that installs changes and
//! answers CLUSTER's descriptive subcommands ([`control`]).

pub mod config;
pub mod control;
pub mod log;
#[cfg(test)]
mod log_sim;
pub mod member;
pub mod store;

pub use config::{ClusterConfig, ConfigChange, ConfigError, Node, NodeId, Role, SlotRange};
pub use control::ClusterControl;

/// The server's cluster hook for `config`: None outside cluster mode; an
/// error when the cluster config file cannot be read or written.
pub fn hooks(config: &coreshard_net::Config) -> Result<coreshard_net::Hooks, String> {
    if !config.cluster_enabled {
        return Ok(coreshard_net::Hooks::default());
    }
    let control = std::sync::Arc::new(ClusterControl::open(config)?);
    let cluster =
        std::sync::Arc::new(coreshard_net::cluster::Cluster::new(Box::new(control::SharedControl(control.clone()))));
    ClusterControl::attach(&control, &cluster)?;
    Ok(coreshard_net::Hooks { cluster: Some(cluster) })
}
