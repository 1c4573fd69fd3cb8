//! Cluster configuration (and, to come, slot migration) for coreshard. It
//! builds on `coreshard-net`'s command table and shard loop through the
//! hooks `net` exposes; nothing in `net` depends on it. Replication's data
//! path (flows, the snapshot stream, acks) runs inside the shard loop and
//! lives in `coreshard_net::repl`; docs/decisions/0003-replication.md says
//! why. docs/decisions/0004-cluster.md says how the cluster configuration
//! is kept and changed.
//!
//! ```text
//!   tools ──▶ repl ──▶ net ──▶ engine
//!
//!   coreshard-admin ──CLUSTER CORESHARD-SETCONFIG──▶ any shard ──▶ ClusterControl (repl)
//!                                                        apply + validate + write nodes.conf
//!                                                        └─publish Routing──▶ every shard (net)
//!
//!   with a control log (docs/decisions/0006-control-log.md), on 3 or 5 voters:
//!   CLUSTER CORESHARD-PROPOSE ──▶ shard ──▶ control thread (ControlLog: raft-rs RawNode)
//!        ◀──raft frames on cluster-port──▶ other voters' control threads
//!        commit ──▶ ClusterControl::install_committed ──▶ Routing ──▶ shards
//!        leader ──CORESHARD-SETCONFIG push──▶ nodes outside the log
//! ```

pub mod cluster;

pub use coreshard_net as net;
