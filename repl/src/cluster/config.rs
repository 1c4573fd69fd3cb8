//! The cluster configuration as a pure state machine: nodes (id, address,
//! role), slot ranges per primary, and one config epoch. A change is
//! applied with [`ClusterConfig::apply`], which returns the next
//! configuration or refuses it; nothing here does I/O, so the admin push
//! of today and the replicated control log of the next step apply the
//! same [`ConfigChange`]s and get the same result on every node.
//!
//! Invariants, checked by [`ClusterConfig::validate`] after every change:
//! node ids are 40 lowercase hex digits and unique; only primaries own
//! slots; every slot is owned at most once; a replica names an existing
//! primary; the epoch only grows.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Number of hash slots.
pub const SLOTS: usize = 16384;
/// Length of a node id in hex digits.
pub const NODE_ID_CHARS: usize = 40;

/// A node's id: 40 lowercase hex digits, generated once per node and kept
/// in its cluster config file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    /// Checks `text` as a node id.
    pub fn parse(text: &str) -> Result<NodeId, ConfigError> {
        let valid =
            text.len() == NODE_ID_CHARS && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(NodeId(text.to_string()))
        } else {
            Err(ConfigError::InvalidNodeId(text.chars().take(64).collect()))
        }
    }

    /// A fresh random id.
    pub fn random() -> NodeId {
        NodeId(coreshard_net::repl::random_id())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeId {
    type Error = ConfigError;
    fn try_from(s: String) -> Result<Self, ConfigError> {
        NodeId::parse(&s)
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Slots `start..=end`, both ends included, as Redis writes ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotRange {
    /// First slot.
    pub start: u16,
    /// Last slot (included).
    pub end: u16,
}

impl SlotRange {
    /// Slots `start..=end`.
    pub fn new(start: u16, end: u16) -> Self {
        SlotRange { start, end }
    }

    /// Number of slots in the range.
    pub fn len(&self) -> usize {
        (self.end as usize + 1).saturating_sub(self.start as usize)
    }

    /// True for an inverted range (`end < start`), which holds nothing.
    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }

    /// `count` slots split as evenly as possible into `parts` ranges, in
    /// order, covering `0..count` (the first ranges one slot longer when it
    /// does not divide).
    pub fn split_even(parts: usize, count: usize) -> Vec<SlotRange> {
        let parts = parts.max(1);
        (0..parts)
            .map(|i| (i * count / parts, (i + 1) * count / parts))
            .filter(|(lo, hi)| hi > lo)
            .map(|(lo, hi)| SlotRange::new(lo as u16, (hi - 1) as u16))
            .collect()
    }
}

impl fmt::Display for SlotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end { write!(f, "{}", self.start) } else { write!(f, "{}-{}", self.start, self.end) }
    }
}

/// A node's role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Serves its slots, takes writes.
    Primary,
    /// Replicates `of`, a primary, and serves nothing of its own.
    Replica {
        /// The primary it follows.
        of: NodeId,
    },
}

/// One node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Its id.
    pub id: NodeId,
    /// The address clients are sent to (MOVED, CLUSTER SLOTS).
    pub ip: String,
    /// The port clients are sent to.
    pub port: u16,
    /// Primary, or replica of a primary.
    pub role: Role,
    /// The slots it serves (primaries only), ascending and disjoint.
    #[serde(default)]
    pub slots: Vec<SlotRange>,
}

impl Node {
    /// A primary serving nothing yet.
    pub fn primary(id: NodeId, ip: &str, port: u16) -> Node {
        Node { id, ip: ip.to_string(), port, role: Role::Primary, slots: Vec::new() }
    }

    /// True for a primary.
    pub fn is_primary(&self) -> bool {
        self.role == Role::Primary
    }

    /// The primary it replicates, for a replica.
    pub fn primary_id(&self) -> Option<&NodeId> {
        match &self.role {
            Role::Primary => None,
            Role::Replica { of } => Some(of),
        }
    }

    /// Number of slots it serves.
    pub fn slot_count(&self) -> usize {
        self.slots.iter().map(SlotRange::len).sum()
    }
}

/// The whole cluster configuration at one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// The config epoch: every change bumps it; a node installs only a
    /// configuration with a higher epoch than its own.
    pub epoch: u64,
    /// The nodes, in the order they were added.
    pub nodes: Vec<Node>,
    /// How the last migrations switched through the control log ended
    /// (oldest first, at most [`MIGRATIONS_KEPT`]): whichever of
    /// [`ConfigChange::SwitchMigration`] and [`ConfigChange::CancelMigration`]
    /// applied first for an id. Travels with the configuration, so every
    /// node, in the log or pushed to, learns the outcome with the epoch
    /// that made it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migrations: Vec<MigrationOutcome>,
}

/// Outcomes of migrations kept in a configuration; migrations are rare and
/// their sources wait for the outcome of their own, so a few suffice.
pub const MIGRATIONS_KEPT: usize = 64;

/// How one migration ended in the control log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationOutcome {
    /// The migration's id (chosen at random by whoever starts it).
    pub id: u64,
    /// True: the slots moved to the target; false: cancelled, the source
    /// keeps them.
    pub switched: bool,
}

/// One change to a configuration; [`ClusterConfig::apply`] gives the result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigChange {
    /// Everything at once (the admin's push; a log snapshot).
    Replace(ClusterConfig),
    /// A node joins, as given (a primary with no slots, usually).
    AddNode(Node),
    /// A node leaves; its slots become unassigned, and it must have no replicas.
    RemoveNode(NodeId),
    /// The slots move to `node` (a primary), from whoever served them:
    /// the ownership switch at the end of a migration.
    AssignSlots {
        /// The new owner.
        node: NodeId,
        /// The slots it takes.
        ranges: Vec<SlotRange>,
    },
    /// The slots are served by no node any more.
    UnassignSlots(Vec<SlotRange>),
    /// A node's role changes (a replica promoted, a primary demoted); a
    /// primary that becomes a replica must first have given up its slots.
    SetRole {
        /// The node.
        node: NodeId,
        /// Its new role.
        role: Role,
    },
    /// The switch at the end of migration `id` (docs/decisions/0005): the
    /// slots move from `from` to `to`, only if `from` still serves every
    /// one of them and nothing was decided for `id` yet; recorded as
    /// switched.
    SwitchMigration {
        /// The migration.
        id: u64,
        /// The source, which must serve `ranges` now.
        from: NodeId,
        /// The target, a primary.
        to: NodeId,
        /// The slots moving.
        ranges: Vec<SlotRange>,
    },
    /// Migration `id` does not switch: recorded as cancelled unless it was
    /// decided already (then it changes nothing). A switch of `id` that
    /// commits after it does not apply.
    CancelMigration(u64),
}

/// Why a configuration or a change was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The epoch does not grow.
    StaleEpoch {
        /// The epoch in force.
        current: u64,
        /// The epoch offered.
        offered: u64,
    },
    /// Not 40 lowercase hex digits.
    InvalidNodeId(String),
    /// Two nodes with one id.
    DuplicateNode(NodeId),
    /// Two nodes with one address.
    DuplicateAddress(String),
    /// A node the change names is not in the configuration.
    UnknownNode(NodeId),
    /// A replica's primary is missing or is itself a replica.
    BadPrimary {
        /// The replica.
        replica: NodeId,
        /// What it names.
        primary: NodeId,
    },
    /// A replica (or a node being demoted) owns slots.
    SlotsOnReplica(NodeId),
    /// A range beyond slot 16383, or inverted.
    BadRange(SlotRange),
    /// A slot owned by two nodes.
    SlotOwnedTwice(u16),
    /// A node without a usable address.
    BadAddress(NodeId),
    /// A primary that still has replicas cannot leave.
    HasReplicas(NodeId),
    /// The migration's outcome is already decided.
    MigrationDecided(MigrationOutcome),
    /// A migration's source does not serve every slot it would give away.
    NotServedBy(NodeId),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::StaleEpoch { current, offered } => {
                write!(f, "config epoch {offered} is not newer than the current epoch {current}")
            }
            ConfigError::InvalidNodeId(id) => write!(f, "invalid node id '{id}' (40 lowercase hex digits expected)"),
            ConfigError::DuplicateNode(id) => write!(f, "node {id} appears twice"),
            ConfigError::DuplicateAddress(a) => write!(f, "address {a} appears twice"),
            ConfigError::UnknownNode(id) => write!(f, "unknown node {id}"),
            ConfigError::BadPrimary { replica, primary } => {
                write!(f, "replica {replica} names {primary}, which is not a primary of this configuration")
            }
            ConfigError::SlotsOnReplica(id) => write!(f, "replica {id} cannot serve slots"),
            ConfigError::BadRange(r) => write!(f, "invalid slot range {}-{}", r.start, r.end),
            ConfigError::SlotOwnedTwice(slot) => write!(f, "slot {slot} is assigned twice"),
            ConfigError::BadAddress(id) => write!(f, "node {id} has no usable address"),
            ConfigError::HasReplicas(id) => write!(f, "node {id} still has replicas"),
            ConfigError::MigrationDecided(m) => {
                let how = if m.switched { "switched" } else { "cancelled" };
                write!(f, "migration {} is already decided ({how})", m.id)
            }
            ConfigError::NotServedBy(id) => write!(f, "node {id} does not serve every slot of the migration"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ClusterConfig {
    /// The configuration of a node that knows only itself: epoch 0, no slots.
    pub fn solo(myself: Node) -> ClusterConfig {
        ClusterConfig { epoch: 0, nodes: vec![myself], migrations: Vec::new() }
    }

    /// The outcome of migration `id`, when this configuration records it.
    pub fn migration(&self, id: u64) -> Option<MigrationOutcome> {
        self.migrations.iter().rev().find(|m| m.id == id).copied()
    }

    /// Records a migration's outcome, forgetting the oldest past [`MIGRATIONS_KEPT`].
    fn decide(&mut self, id: u64, switched: bool) {
        if self.migrations.len() >= MIGRATIONS_KEPT {
            let extra = self.migrations.len() + 1 - MIGRATIONS_KEPT;
            self.migrations.drain(..extra);
        }
        self.migrations.push(MigrationOutcome { id, switched });
    }

    /// The node with id `id`.
    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.iter().find(|n| &n.id == id)
    }

    /// Index of the node with id `id`.
    pub fn position(&self, id: &NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| &n.id == id)
    }

    /// The primaries, in node order.
    pub fn primaries(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_primary())
    }

    /// The replicas of `primary`, in node order.
    pub fn replicas_of<'a>(&'a self, primary: &'a NodeId) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes.iter().filter(move |n| n.primary_id() == Some(primary))
    }

    /// Slots some node serves.
    pub fn slots_assigned(&self) -> usize {
        self.nodes.iter().map(Node::slot_count).sum()
    }

    /// Primaries serving at least one slot (CLUSTER INFO cluster_size).
    pub fn size(&self) -> usize {
        self.primaries().filter(|n| !n.slots.is_empty()).count()
    }

    /// The owning node's index per slot (None: unassigned).
    pub fn slot_owners(&self) -> Vec<Option<usize>> {
        let mut owners = vec![None; SLOTS];
        for (i, n) in self.nodes.iter().enumerate() {
            for r in &n.slots {
                let end = (r.end as usize).min(SLOTS - 1);
                owners.iter_mut().take(end + 1).skip(r.start as usize).for_each(|o| *o = Some(i));
            }
        }
        owners
    }

    /// Checks the invariants (module comment).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut ids = std::collections::HashSet::new();
        let mut addrs = std::collections::HashSet::new();
        let mut owned = vec![false; SLOTS];
        for n in &self.nodes {
            if !ids.insert(&n.id) {
                return Err(ConfigError::DuplicateNode(n.id.clone()));
            }
            if n.ip.is_empty() || n.port == 0 || n.ip.contains(char::is_whitespace) {
                return Err(ConfigError::BadAddress(n.id.clone()));
            }
            let addr = format!("{}:{}", n.ip, n.port);
            if !addrs.insert(addr.clone()) {
                return Err(ConfigError::DuplicateAddress(addr));
            }
            if !n.is_primary() && !n.slots.is_empty() {
                return Err(ConfigError::SlotsOnReplica(n.id.clone()));
            }
            for r in &n.slots {
                if r.is_empty() || r.end as usize >= SLOTS {
                    return Err(ConfigError::BadRange(*r));
                }
                for slot in r.start..=r.end {
                    if std::mem::replace(&mut owned[slot as usize], true) {
                        return Err(ConfigError::SlotOwnedTwice(slot));
                    }
                }
            }
        }
        for n in &self.nodes {
            if let Some(p) = n.primary_id()
                && !self.node(p).is_some_and(Node::is_primary)
            {
                return Err(ConfigError::BadPrimary { replica: n.id.clone(), primary: p.clone() });
            }
        }
        Ok(())
    }

    /// The configuration after `change`, stamped with `epoch`, which must
    /// be higher than this one's (for [`ConfigChange::Replace`], equal to
    /// the new configuration's own). The result is validated; `self` is
    /// never modified, so a refused change leaves nothing half done.
    pub fn apply(&self, epoch: u64, change: &ConfigChange) -> Result<ClusterConfig, ConfigError> {
        if epoch <= self.epoch {
            return Err(ConfigError::StaleEpoch { current: self.epoch, offered: epoch });
        }
        let mut next = self.clone();
        next.epoch = epoch;
        match change {
            ConfigChange::Replace(config) => {
                if config.epoch != epoch {
                    return Err(ConfigError::StaleEpoch { current: epoch, offered: config.epoch });
                }
                next = config.clone();
            }
            ConfigChange::AddNode(node) => next.nodes.push(node.clone()),
            ConfigChange::RemoveNode(id) => {
                let at = next.position(id).ok_or_else(|| ConfigError::UnknownNode(id.clone()))?;
                if next.replicas_of(id).next().is_some() {
                    return Err(ConfigError::HasReplicas(id.clone()));
                }
                next.nodes.remove(at);
            }
            ConfigChange::AssignSlots { node, ranges } => {
                let at = next.position(node).ok_or_else(|| ConfigError::UnknownNode(node.clone()))?;
                if let Some(bad) = ranges.iter().find(|r| r.is_empty() || r.end as usize >= SLOTS) {
                    return Err(ConfigError::BadRange(*bad));
                }
                next.unassign(ranges);
                next.nodes[at].slots.extend_from_slice(ranges);
                next.nodes[at].slots = normalize(&next.nodes[at].slots);
            }
            ConfigChange::UnassignSlots(ranges) => {
                if let Some(bad) = ranges.iter().find(|r| r.is_empty() || r.end as usize >= SLOTS) {
                    return Err(ConfigError::BadRange(*bad));
                }
                next.unassign(ranges);
            }
            ConfigChange::SetRole { node, role } => {
                let at = next.position(node).ok_or_else(|| ConfigError::UnknownNode(node.clone()))?;
                if *role != Role::Primary && next.replicas_of(node).next().is_some() {
                    return Err(ConfigError::HasReplicas(node.clone()));
                }
                next.nodes[at].role = role.clone();
            }
            ConfigChange::SwitchMigration { id, from, to, ranges } => {
                if let Some(decided) = self.migration(*id) {
                    return Err(ConfigError::MigrationDecided(decided));
                }
                let source = next.position(from).ok_or_else(|| ConfigError::UnknownNode(from.clone()))?;
                let at = next.position(to).ok_or_else(|| ConfigError::UnknownNode(to.clone()))?;
                if let Some(bad) = ranges.iter().find(|r| r.is_empty() || r.end as usize >= SLOTS) {
                    return Err(ConfigError::BadRange(*bad));
                }
                let owners = next.slot_owners();
                if ranges.iter().flat_map(|r| r.start..=r.end).any(|s| owners[s as usize] != Some(source)) {
                    return Err(ConfigError::NotServedBy(from.clone()));
                }
                next.unassign(ranges);
                next.nodes[at].slots.extend_from_slice(ranges);
                next.nodes[at].slots = normalize(&next.nodes[at].slots);
                next.decide(*id, true);
            }
            ConfigChange::CancelMigration(id) => {
                if let Some(decided) = self.migration(*id) {
                    return Err(ConfigError::MigrationDecided(decided));
                }
                next.decide(*id, false);
            }
        }
        next.validate()?;
        Ok(next)
    }

    /// Removes `ranges` from whichever nodes serve them.
    fn unassign(&mut self, ranges: &[SlotRange]) {
        let mut drop = vec![false; SLOTS];
        for r in ranges {
            for slot in r.start..=r.end {
                drop[slot as usize] = true;
            }
        }
        for n in &mut self.nodes {
            let kept: Vec<u16> = n.slots.iter().flat_map(|r| r.start..=r.end).filter(|&s| !drop[s as usize]).collect();
            n.slots = ranges_of(&kept);
        }
    }
}

/// Sorted, merged ranges covering the same slots as `ranges`.
fn normalize(ranges: &[SlotRange]) -> Vec<SlotRange> {
    let mut slots: Vec<u16> = ranges.iter().flat_map(|r| r.start..=r.end).collect();
    slots.sort_unstable();
    slots.dedup();
    ranges_of(&slots)
}

/// The ranges of an ascending list of slots.
fn ranges_of(slots: &[u16]) -> Vec<SlotRange> {
    let mut out: Vec<SlotRange> = Vec::new();
    for &s in slots {
        match out.last_mut() {
            Some(r) if r.end.checked_add(1) == Some(s) => r.end = s,
            _ => out.push(SlotRange::new(s, s)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId::parse(&format!("{:040x}", n)).unwrap()
    }

    fn three_primaries(epoch: u64) -> ClusterConfig {
        let ranges = SlotRange::split_even(3, SLOTS);
        let nodes = (0..3)
            .map(|i| Node { slots: vec![ranges[i]], ..Node::primary(id(i as u8 + 1), "127.0.0.1", 7000 + i as u16) })
            .collect();
        ClusterConfig { epoch, nodes, migrations: Vec::new() }
    }

    #[test]
    fn node_ids_are_40_lowercase_hex_digits() {
        assert!(NodeId::parse(&"a".repeat(40)).is_ok());
        assert!(NodeId::parse(&"A".repeat(40)).is_err());
        assert!(NodeId::parse(&"a".repeat(39)).is_err());
        assert!(NodeId::parse(&"g".repeat(40)).is_err());
        let r = NodeId::random();
        assert!(NodeId::parse(r.as_str()).is_ok(), "{r}");
        assert_ne!(NodeId::random(), r);
        // Serialized as a plain string, and checked when read.
        assert_eq!(serde_json::to_string(&id(1)).unwrap(), format!("\"{:040x}\"", 1));
        assert!(serde_json::from_str::<NodeId>("\"xyz\"").is_err());
    }

    #[test]
    fn even_split_covers_every_slot_once() {
        for parts in [1, 2, 3, 5, 7, 100] {
            let r = SlotRange::split_even(parts, SLOTS);
            assert_eq!(r.len(), parts);
            assert_eq!(r[0].start, 0);
            assert_eq!(r[parts - 1].end as usize, SLOTS - 1);
            assert!(r.windows(2).all(|w| w[0].end + 1 == w[1].start));
        }
        assert_eq!(
            SlotRange::split_even(3, SLOTS),
            vec![SlotRange::new(0, 5460), SlotRange::new(5461, 10921), SlotRange::new(10922, 16383)]
        );
    }

    #[test]
    fn a_valid_config_round_trips_through_json() {
        let c = three_primaries(1);
        c.validate().unwrap();
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ClusterConfig>(&text).unwrap(), c);
        assert_eq!(c.slots_assigned(), SLOTS);
        assert_eq!(c.size(), 3);
    }

    #[test]
    fn every_slot_is_owned_at_most_once() {
        let mut c = three_primaries(1);
        c.nodes[1].slots.push(SlotRange::new(100, 100));
        assert_eq!(c.validate(), Err(ConfigError::SlotOwnedTwice(100)));
        let mut c = three_primaries(1);
        c.nodes[0].slots = vec![SlotRange::new(10, 9)];
        assert_eq!(c.validate(), Err(ConfigError::BadRange(SlotRange::new(10, 9))));
        let mut c = three_primaries(1);
        c.nodes[2].slots = vec![SlotRange::new(16000, 16384)];
        assert!(matches!(c.validate(), Err(ConfigError::BadRange(_))));
    }

    #[test]
    fn replicas_follow_existing_primaries_and_own_nothing() {
        let mut c = three_primaries(1);
        c.nodes.push(Node { role: Role::Replica { of: id(1) }, ..Node::primary(id(9), "127.0.0.1", 7009) });
        c.validate().unwrap();
        assert_eq!(c.replicas_of(&id(1)).count(), 1);
        c.nodes[3].role = Role::Replica { of: id(42) };
        assert_eq!(c.validate(), Err(ConfigError::BadPrimary { replica: id(9), primary: id(42) }));
        c.nodes[3].role = Role::Replica { of: id(1) };
        c.nodes[3].slots = vec![SlotRange::new(0, 0)];
        assert_eq!(c.validate(), Err(ConfigError::SlotsOnReplica(id(9))));
        let mut c = three_primaries(1);
        c.nodes[1].id = id(1);
        assert_eq!(c.validate(), Err(ConfigError::DuplicateNode(id(1))));
    }

    #[test]
    fn epochs_only_grow() {
        let c = three_primaries(5);
        let same = ConfigChange::UnassignSlots(vec![SlotRange::new(0, 0)]);
        assert_eq!(c.apply(5, &same), Err(ConfigError::StaleEpoch { current: 5, offered: 5 }));
        assert_eq!(c.apply(4, &same), Err(ConfigError::StaleEpoch { current: 5, offered: 4 }));
        assert_eq!(c.apply(6, &same).unwrap().epoch, 6);
        // A replacement carries its own epoch, which must be the one applied.
        let replace = ConfigChange::Replace(three_primaries(7));
        assert!(c.apply(6, &replace).is_err());
        assert_eq!(c.apply(7, &replace).unwrap(), three_primaries(7));
        assert!(c.apply(5, &ConfigChange::Replace(three_primaries(5))).is_err());
    }

    #[test]
    fn assigning_slots_moves_them_from_their_owner() {
        let c = three_primaries(1);
        let moved =
            c.apply(2, &ConfigChange::AssignSlots { node: id(2), ranges: vec![SlotRange::new(0, 99)] }).unwrap();
        assert_eq!(moved.nodes[0].slots, vec![SlotRange::new(100, 5460)]);
        assert_eq!(moved.nodes[1].slots, vec![SlotRange::new(0, 99), SlotRange::new(5461, 10921)]);
        assert_eq!(moved.slots_assigned(), SLOTS);
        let owners = moved.slot_owners();
        assert_eq!((owners[0], owners[99], owners[100]), (Some(1), Some(1), Some(0)));
        // Adjacent ranges merge.
        let back =
            moved.apply(3, &ConfigChange::AssignSlots { node: id(1), ranges: vec![SlotRange::new(0, 99)] }).unwrap();
        assert_eq!(back.nodes, c.nodes);
        // A refused change leaves the configuration as it was.
        let bad = ConfigChange::AssignSlots { node: id(7), ranges: vec![SlotRange::new(0, 1)] };
        assert_eq!(c.apply(2, &bad), Err(ConfigError::UnknownNode(id(7))));
        let to_replica = {
            let mut c = c.clone();
            c.nodes.push(Node { role: Role::Replica { of: id(1) }, ..Node::primary(id(9), "127.0.0.1", 7009) });
            c
        };
        let bad = ConfigChange::AssignSlots { node: id(9), ranges: vec![SlotRange::new(0, 1)] };
        assert_eq!(to_replica.apply(2, &bad), Err(ConfigError::SlotsOnReplica(id(9))));
    }

    #[test]
    fn nodes_join_change_role_and_leave() {
        let c = three_primaries(1);
        let joined = c.apply(2, &ConfigChange::AddNode(Node::primary(id(4), "127.0.0.1", 7003))).unwrap();
        assert_eq!(joined.nodes.len(), 4);
        assert_eq!(
            joined.apply(3, &ConfigChange::AddNode(Node::primary(id(5), "127.0.0.1", 7003))),
            Err(ConfigError::DuplicateAddress("127.0.0.1:7003".into()))
        );
        let replica =
            joined.apply(3, &ConfigChange::SetRole { node: id(4), role: Role::Replica { of: id(1) } }).unwrap();
        assert_eq!(replica.replicas_of(&id(1)).count(), 1);
        assert_eq!(replica.apply(4, &ConfigChange::RemoveNode(id(1))), Err(ConfigError::HasReplicas(id(1))));
        // A primary with slots cannot become a replica before giving them up.
        assert_eq!(
            replica.apply(4, &ConfigChange::SetRole { node: id(2), role: Role::Replica { of: id(1) } }),
            Err(ConfigError::SlotsOnReplica(id(2)))
        );
        let promoted = replica.apply(4, &ConfigChange::SetRole { node: id(4), role: Role::Primary }).unwrap();
        let left = promoted.apply(5, &ConfigChange::RemoveNode(id(4))).unwrap();
        assert_eq!(left.nodes, c.nodes);
        let gone = left.apply(6, &ConfigChange::RemoveNode(id(3))).unwrap();
        assert_eq!(gone.slots_assigned(), SLOTS - 5462);
    }

    #[test]
    fn a_migration_switches_or_is_cancelled_whichever_commits_first() {
        let c = three_primaries(1);
        let range = vec![SlotRange::new(0, 99)];
        let switch = |m| ConfigChange::SwitchMigration { id: m, from: id(1), to: id(2), ranges: range.clone() };
        // Switch first: the slots move, and a later cancel changes nothing.
        let moved = c.apply(2, &switch(7)).unwrap();
        assert_eq!(moved.nodes[1].slots[0], SlotRange::new(0, 99));
        assert_eq!(moved.migration(7), Some(MigrationOutcome { id: 7, switched: true }));
        assert_eq!(
            moved.apply(3, &ConfigChange::CancelMigration(7)),
            Err(ConfigError::MigrationDecided(MigrationOutcome { id: 7, switched: true }))
        );
        // The same switch again (a proposal that timed out, then committed) is a no-op.
        assert!(matches!(moved.apply(3, &switch(7)), Err(ConfigError::MigrationDecided(_))));
        // Cancel first: recorded, the slots stay, and the switch then does not apply.
        let cancelled = c.apply(2, &ConfigChange::CancelMigration(8)).unwrap();
        assert_eq!(cancelled.nodes, c.nodes);
        assert_eq!(cancelled.migration(8), Some(MigrationOutcome { id: 8, switched: false }));
        assert_eq!(
            cancelled.apply(3, &switch(8)),
            Err(ConfigError::MigrationDecided(MigrationOutcome { id: 8, switched: false }))
        );
        // A source that no longer serves the slots cannot give them away.
        let elsewhere = ConfigChange::SwitchMigration { id: 9, from: id(2), to: id(3), ranges: range.clone() };
        assert_eq!(c.apply(2, &elsewhere), Err(ConfigError::NotServedBy(id(2))));
        // The record survives JSON and is bounded.
        let text = serde_json::to_string(&moved).unwrap();
        assert_eq!(serde_json::from_str::<ClusterConfig>(&text).unwrap(), moved);
        assert!(!serde_json::to_string(&c).unwrap().contains("migrations"), "absent while empty");
        let mut many = c.clone();
        for i in 0..(MIGRATIONS_KEPT as u64 + 5) {
            many = many.apply(many.epoch + 1, &ConfigChange::CancelMigration(100 + i)).unwrap();
        }
        assert_eq!(many.migrations.len(), MIGRATIONS_KEPT);
        assert_eq!(many.migration(100), None);
        assert!(many.migration(100 + MIGRATIONS_KEPT as u64 + 4).is_some());
    }

    #[test]
    fn changes_applied_in_the_same_order_give_the_same_config() {
        // What a replicated log relies on: apply is a function of (config, epoch, change).
        let changes = [
            ConfigChange::AddNode(Node::primary(id(4), "127.0.0.1", 7003)),
            ConfigChange::AssignSlots { node: id(4), ranges: vec![SlotRange::new(0, 1000)] },
            ConfigChange::UnassignSlots(vec![SlotRange::new(16000, 16383)]),
        ];
        let run = || {
            let mut c = three_primaries(1);
            for (i, ch) in changes.iter().enumerate() {
                c = c.apply(2 + i as u64, ch).unwrap();
            }
            c
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        assert_eq!(a.epoch, 4);
        assert_eq!(a.slots_assigned(), SLOTS - 384);
    }
}
