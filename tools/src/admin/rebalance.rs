//! `coreshard-admin rebalance`: gives each primary a share of the slots in
//! proportion to its weight, as `redis-cli --cluster rebalance` does, by a
//! series of online migrations (migrate.rs), one after another.
//!
//! The plan is a pure function of the configuration and the weights
//! ([`plan`]): the targets are the largest-remainder split of the assigned
//! slots by weight; if no primary is off its target by more than the
//! threshold, nothing moves (redis-cli's rule); otherwise the largest
//! surplus is paired with the largest deficit until every primary is on
//! its target, and each pair's slots are taken from the ends of the
//! source's ranges, next to the destination's slots where possible, so
//! that both keep few, contiguous ranges and each move is one range.
//! Every move is a whole migration, atomic on its own: a failure stops the
//! rebalance with the moves before it done and the failed one's slots
//! still on its source.

use super::NodeConn;
use crate::add_node::find_node;
use crate::migrate::{self, Outcome, read_config};
use coreshard_repl::cluster::config::SLOTS;
use coreshard_repl::cluster::{ClusterConfig, NodeId, SlotRange};
use std::collections::HashMap;

/// What the user asked for.
pub(crate) struct Request {
    pub node: String,
    pub weights: Vec<String>,
    pub threshold_pct: f64,
    pub use_empty_primaries: bool,
    pub dry_run: bool,
    pub max_pause_ms: u64,
    pub timeout_s: u64,
    pub json: bool,
}

/// One primary's part in the plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub(crate) struct Share {
    pub id: NodeId,
    pub weight: f64,
    /// Slots it serves now.
    pub slots: usize,
    /// Slots it is to serve.
    pub target: usize,
}

/// One migration of the plan: `range`, all served by `from`, goes to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Move {
    pub from: NodeId,
    pub to: NodeId,
    pub range: SlotRange,
}

/// The planner's answer.
#[derive(Debug, PartialEq)]
pub(crate) struct Planned {
    /// The primaries taking part, in configuration order.
    pub shares: Vec<Share>,
    /// True when some primary is off its target by more than the threshold.
    pub over_threshold: bool,
    /// The migrations, in the order they run (empty when within the threshold).
    pub moves: Vec<Move>,
}

/// Plans a rebalance of `config`: `weights` per primary (1 when absent; 0
/// drains it), `threshold_pct` the largest deviation from a target that
/// needs no move, `use_empty` whether primaries with no slots take part
/// (otherwise they keep none, as in redis-cli). Slots no node serves are
/// not touched.
pub(crate) fn plan(
    config: &ClusterConfig,
    weights: &HashMap<NodeId, f64>,
    threshold_pct: f64,
    use_empty: bool,
) -> Result<Planned, String> {
    for (id, w) in weights {
        match config.node(id) {
            None => return Err(format!("weight for unknown node {id}")),
            Some(n) if !n.is_primary() => {
                return Err(format!("weight for {id}, a replica: only primaries serve slots"));
            }
            Some(_) if !w.is_finite() || *w < 0.0 => return Err(format!("weight {w} for {id}: weights are >= 0")),
            Some(_) => {}
        }
    }
    // (index in config.nodes, weight)
    let involved: Vec<(usize, f64)> = config
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.is_primary() && (use_empty || n.slot_count() > 0))
        .map(|(i, n)| (i, weights.get(&n.id).copied().unwrap_or(1.0)))
        .collect();
    let total: usize = involved.iter().map(|&(i, _)| config.nodes[i].slot_count()).sum();
    let weight: f64 = involved.iter().map(|&(_, w)| w).sum();
    if total > 0 && weight <= 0.0 {
        return Err("every primary that takes part has weight 0: there is nowhere to put the slots".into());
    }
    let now: Vec<usize> = involved.iter().map(|&(i, _)| config.nodes[i].slot_count()).collect();
    let targets = if total == 0 { vec![0; involved.len()] } else { split(total, &involved, weight, &now) };
    let shares: Vec<Share> = involved
        .iter()
        .zip(&targets)
        .map(|(&(i, w), &target)| Share {
            id: config.nodes[i].id.clone(),
            weight: w,
            slots: config.nodes[i].slot_count(),
            target,
        })
        .collect();
    let over_threshold = shares.iter().any(|s| {
        if s.slots > 0 {
            (100.0 - 100.0 * s.target as f64 / s.slots as f64).abs() > threshold_pct
        } else {
            s.target > 1
        }
    });
    let mut moves = Vec::new();
    if over_threshold {
        let mut owners = config.slot_owners();
        // Per involved node: slots to give (> 0) or to take (< 0).
        let mut balance: Vec<i64> = shares.iter().map(|s| s.slots as i64 - s.target as i64).collect();
        loop {
            let giver = (0..balance.len()).filter(|&k| balance[k] > 0).max_by_key(|&k| (balance[k], usize::MAX - k));
            let taker = (0..balance.len()).filter(|&k| balance[k] < 0).max_by_key(|&k| (-balance[k], usize::MAX - k));
            let (Some(g), Some(t)) = (giver, taker) else { break };
            let count = balance[g].min(-balance[t]) as usize;
            let (from, to) = (involved[g].0, involved[t].0);
            let pending: Vec<usize> =
                (0..balance.len()).filter(|&k| k != g && balance[k] > 0).map(|k| involved[k].0).collect();
            for range in take(&owners, from, to, count, &pending) {
                for slot in range.start..=range.end {
                    owners[slot as usize] = Some(to);
                }
                moves.push(Move { from: config.nodes[from].id.clone(), to: config.nodes[to].id.clone(), range });
            }
            balance[g] -= count as i64;
            balance[t] += count as i64;
        }
    }
    Ok(Planned { shares, over_threshold, moves })
}

/// `total` slots split by weight with the largest-remainder method: each
/// node gets the whole part of its exact share, and the slots left over go
/// one each to the largest fractions; on a tie to the node serving more
/// now (`now`), so that a split such as `create`'s stays as it is, then to
/// the earlier node.
fn split(total: usize, involved: &[(usize, f64)], weight: f64, now: &[usize]) -> Vec<usize> {
    let exact: Vec<f64> = involved.iter().map(|&(_, w)| total as f64 * w / weight).collect();
    let mut targets: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(now[b].cmp(&now[a]))
            .then(a.cmp(&b))
    });
    let mut given: usize = targets.iter().sum();
    // Floating point can only be off by a little: walk the order as often as needed.
    for &k in order.iter().cycle().take(order.len() * 2) {
        if given >= total {
            break;
        }
        if involved[k].1 > 0.0 {
            targets[k] += 1;
            given += 1;
        }
    }
    for &k in order.iter().rev().cycle().take(order.len() * 2) {
        if given <= total {
            break;
        }
        if targets[k] > 0 {
            targets[k] -= 1;
            given -= 1;
        }
    }
    targets
}

/// How [`take`] ranks a candidate block (higher is better): completes the
/// count, length, neighbours' score, lower start.
type BlockRank = (bool, usize, u8, std::cmp::Reverse<u16>);

/// The ranges of slots `from` gives `to`, `count` slots in all: each a
/// whole range of `from` or an end of one, so that `from` keeps its other
/// slots contiguous. Preferred, in order: a block that completes the
/// count; a longer block (fewer migrations); a block next to a slot of
/// `to` (its ranges merge) or else of a node in `pending`, which still
/// has slots to give and may give them to `to` next; the lower slots.
fn take(owners: &[Option<usize>], from: usize, to: usize, count: usize, pending: &[usize]) -> Vec<SlotRange> {
    let mut owners = owners.to_vec();
    let mut out = Vec::new();
    let mut left = count;
    while left > 0 {
        let ranges = ranges_of(&owners, from);
        let neighbour = |slot: Option<usize>| -> u8 {
            match slot.and_then(|s| owners.get(s).copied().flatten()) {
                Some(o) if o == to => 2,
                Some(o) if pending.contains(&o) => 1,
                _ => 0,
            }
        };
        let mut best: Option<(BlockRank, SlotRange)> = None;
        for r in ranges {
            let blocks = if r.len() <= left {
                let score = neighbour((r.start as usize).checked_sub(1)).max(neighbour(Some(r.end as usize + 1)));
                vec![(r, score)]
            } else {
                let low = SlotRange::new(r.start, r.start + left as u16 - 1);
                let high = SlotRange::new(r.end - left as u16 + 1, r.end);
                vec![(low, neighbour((r.start as usize).checked_sub(1))), (high, neighbour(Some(r.end as usize + 1)))]
            };
            for (block, score) in blocks {
                let key = (block.len() == left, block.len(), score, std::cmp::Reverse(block.start));
                if best.as_ref().is_none_or(|(k, _)| key > *k) {
                    best = Some((key, block));
                }
            }
        }
        let Some((_, block)) = best else { break };
        for slot in block.start..=block.end {
            owners[slot as usize] = Some(to);
        }
        left -= block.len();
        out.push(block);
    }
    out
}

/// The maximal ranges of slots `node` serves in `owners`.
fn ranges_of(owners: &[Option<usize>], node: usize) -> Vec<SlotRange> {
    let mut out: Vec<SlotRange> = Vec::new();
    for (slot, owner) in owners.iter().enumerate().take(SLOTS) {
        if *owner != Some(node) {
            continue;
        }
        match out.last_mut() {
            Some(r) if r.end as usize + 1 == slot => r.end = slot as u16,
            _ => out.push(SlotRange::new(slot as u16, slot as u16)),
        }
    }
    out
}

/// A move as `--json` prints it.
#[derive(serde::Serialize)]
struct MoveReport {
    from: String,
    to: String,
    slots: String,
    count: usize,
}

/// `coreshard-admin rebalance`.
pub(crate) fn run(req: &Request) -> Result<(), String> {
    let (host, port) = super::parse_addr(&req.node)?;
    let mut entry = NodeConn::open(&host, port)?;
    let config = read_config(&mut entry)?;
    if config.epoch == 0 {
        return Err(format!("{} is not part of a cluster yet (config epoch 0)", req.node));
    }
    if !req.threshold_pct.is_finite() || req.threshold_pct < 0.0 {
        return Err(format!("--threshold {}: a percentage >= 0 is expected", req.threshold_pct));
    }
    let mut weights = HashMap::new();
    for text in &req.weights {
        let (name, w) = text.rsplit_once('=').ok_or_else(|| format!("--weight '{text}' is not NODE=WEIGHT"))?;
        let w: f64 = w.parse().map_err(|_| format!("--weight '{text}': '{w}' is not a number"))?;
        weights.insert(find_node(&config, name)?.id.clone(), w);
    }
    let planned = plan(&config, &weights, req.threshold_pct, req.use_empty_primaries)?;
    let addr = |id: &NodeId| config.node(id).map_or_else(|| id.to_string(), |n| format!("{}:{}", n.ip, n.port));
    let moves: Vec<MoveReport> = planned
        .moves
        .iter()
        .map(|m| MoveReport { from: addr(&m.from), to: addr(&m.to), slots: m.range.to_string(), count: m.range.len() })
        .collect();
    if !req.json {
        print_plan(&planned, &addr, req.threshold_pct);
    }
    let mut results: Vec<Outcome> = Vec::new();
    let mut failure: Option<String> = None;
    if !req.dry_run && !moves.is_empty() {
        let total_moves = moves.len();
        for (i, m) in moves.iter().enumerate() {
            if failure.is_some() {
                break;
            }
            if !req.json {
                eprintln!(
                    "[{}/{total_moves}] moving slots {} ({} slots) from {} to {}",
                    i + 1,
                    m.slots,
                    m.count,
                    m.from,
                    m.to
                );
            }
            let one = migrate::Plan {
                from: m.from.clone(),
                to: m.to.clone(),
                source_addr: None,
                slots: m.slots.clone(),
                max_pause_ms: req.max_pause_ms,
                max_lag_bytes: migrate::MAX_LAG_BYTES,
                timeout_s: req.timeout_s,
                json: req.json,
            };
            match migrate::execute(&one) {
                Ok(done) => {
                    if !req.json {
                        println!(
                            "[{}/{total_moves}] moved slots {} from {} to {}: {} keys, {} bytes in {:.2}s; writes held {} µs; config epoch {}",
                            i + 1,
                            done.slots,
                            done.from,
                            done.to,
                            done.keys,
                            done.bytes,
                            done.seconds,
                            done.pause_us,
                            done.epoch
                        );
                        for e in &done.push_errors {
                            println!("warning: configuration not pushed: {e}");
                        }
                    }
                    results.push(done);
                }
                Err(e) => {
                    failure = Some(format!(
                        "rebalance stopped at move {}/{total_moves} (slots {} from {} to {}): {e}; the {} moves \
                         before it are done and each node serves a consistent map: run rebalance again to go on",
                        i + 1,
                        m.slots,
                        m.from,
                        m.to,
                        results.len()
                    ));
                }
            }
        }
    }
    if req.json {
        let out = serde_json::json!({
            "dry_run": req.dry_run,
            "threshold": req.threshold_pct,
            "over_threshold": planned.over_threshold,
            "nodes": planned.shares.iter().map(|s| serde_json::json!({
                "id": s.id, "addr": addr(&s.id), "weight": s.weight, "slots": s.slots, "target": s.target,
            })).collect::<Vec<_>>(),
            "moves": moves,
            "results": results,
            "error": failure,
        });
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
    } else if !req.dry_run && failure.is_none() && !moves.is_empty() {
        println!("Rebalanced: {} moves, {} slots", results.len(), moves.iter().map(|m| m.count).sum::<usize>());
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn print_plan(planned: &Planned, addr: &dyn Fn(&NodeId) -> String, threshold_pct: f64) {
    println!("{:<40} {:<21} {:>7} {:>6} {:>6}", "PRIMARY", "ADDRESS", "WEIGHT", "SLOTS", "TARGET");
    for s in &planned.shares {
        println!("{:<40} {:<21} {:>7} {:>6} {:>6}", s.id, addr(&s.id), s.weight, s.slots, s.target);
    }
    if !planned.over_threshold {
        println!("No rebalancing needed: every primary is within {threshold_pct:.2}% of its target.");
        return;
    }
    let slots: usize = planned.moves.iter().map(|m| m.range.len()).sum();
    println!("Plan: {} moves, {slots} slots", planned.moves.len());
    for (i, m) in planned.moves.iter().enumerate() {
        println!("  {}. slots {} ({} slots) {} -> {}", i + 1, m.range, m.range.len(), addr(&m.from), addr(&m.to));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coreshard_repl::cluster::{Node, Role};

    fn id(n: u8) -> NodeId {
        NodeId::parse(&format!("{n:040x}")).unwrap()
    }

    /// Primaries `0..ranges.len()` serving `ranges` (an empty list: none).
    fn cluster(ranges: &[&[(u16, u16)]]) -> ClusterConfig {
        let nodes = ranges
            .iter()
            .enumerate()
            .map(|(i, rs)| {
                let mut n = Node::primary(id(i as u8), "127.0.0.1", 7000 + i as u16);
                n.slots = rs.iter().map(|&(a, b)| SlotRange::new(a, b)).collect();
                n
            })
            .collect();
        let config = ClusterConfig { epoch: 1, nodes, migrations: Vec::new() };
        config.validate().unwrap();
        config
    }

    /// Applies the moves as migrations would, checking that each source
    /// serves its whole range when its turn comes.
    fn after(config: &ClusterConfig, moves: &[Move]) -> ClusterConfig {
        let mut c = config.clone();
        for m in moves {
            let owners = c.slot_owners();
            let from = c.position(&m.from).unwrap();
            assert!((m.range.start..=m.range.end).all(|s| owners[s as usize] == Some(from)), "{m:?}");
            let change =
                coreshard_repl::cluster::ConfigChange::AssignSlots { node: m.to.clone(), ranges: vec![m.range] };
            c = c.apply(c.epoch + 1, &change).unwrap();
        }
        c
    }

    fn counts(c: &ClusterConfig) -> Vec<usize> {
        c.nodes.iter().map(Node::slot_count).collect()
    }

    fn no_weights() -> HashMap<NodeId, f64> {
        HashMap::new()
    }

    #[test]
    fn a_new_empty_primary_gets_a_third_in_one_range() {
        let c = cluster(&[&[(0, 8191)], &[(8192, 16383)], &[]]);
        let p = plan(&c, &no_weights(), 2.0, true).unwrap();
        assert!(p.over_threshold);
        assert_eq!(p.shares.iter().map(|s| s.target).collect::<Vec<_>>(), vec![5462, 5461, 5461]);
        // One move from each, each one range, and the new node's slots touch.
        assert_eq!(p.moves.len(), 2, "{:?}", p.moves);
        let done = after(&c, &p.moves);
        assert_eq!(counts(&done), vec![5462, 5461, 5461]);
        assert_eq!(done.nodes[2].slots, vec![SlotRange::new(5462, 10922)]);
        assert_eq!(done.nodes[0].slots, vec![SlotRange::new(0, 5461)]);
        assert_eq!(done.nodes[1].slots, vec![SlotRange::new(10923, 16383)]);
    }

    #[test]
    fn empty_primaries_take_part_only_when_asked() {
        let c = cluster(&[&[(0, 8191)], &[(8192, 16383)], &[]]);
        let p = plan(&c, &no_weights(), 2.0, false).unwrap();
        assert_eq!(p.shares.len(), 2);
        assert!(!p.over_threshold);
        assert!(p.moves.is_empty());
    }

    #[test]
    fn a_balanced_cluster_and_a_single_primary_move_nothing() {
        let ranges = SlotRange::split_even(3, SLOTS);
        let c = cluster(&[
            &[(ranges[0].start, ranges[0].end)],
            &[(ranges[1].start, ranges[1].end)],
            &[(ranges[2].start, ranges[2].end)],
        ]);
        let p = plan(&c, &no_weights(), 2.0, true).unwrap();
        assert!(!p.over_threshold);
        assert!(p.moves.is_empty());
        // Even with no threshold: the targets are what create gave.
        assert!(plan(&c, &no_weights(), 0.0, true).unwrap().moves.is_empty());
        let one = cluster(&[&[(0, 16383)]]);
        let p = plan(&one, &no_weights(), 0.0, true).unwrap();
        assert_eq!(p.shares[0].target, 16384);
        assert!(p.moves.is_empty());
    }

    #[test]
    fn the_threshold_decides_whether_anything_moves() {
        // 8300 / 8084: node 0 is 1.3% over its target of 8192, node 1 1.3% under.
        let c = cluster(&[&[(0, 8299)], &[(8300, 16383)]]);
        assert!(plan(&c, &no_weights(), 2.0, true).unwrap().moves.is_empty());
        let p = plan(&c, &no_weights(), 1.0, true).unwrap();
        assert_eq!(p.moves, vec![Move { from: id(0), to: id(1), range: SlotRange::new(8192, 8299) }]);
    }

    #[test]
    fn a_weight_of_zero_drains_a_primary() {
        let c = cluster(&[&[(0, 5461)], &[(5462, 10922)], &[(10923, 16383)]]);
        let weights = HashMap::from([(id(1), 0.0)]);
        let p = plan(&c, &weights, 2.0, false).unwrap();
        let done = after(&c, &p.moves);
        assert_eq!(counts(&done), vec![8192, 0, 8192]);
        // Its range splits in two, each half next to a neighbour's slots.
        assert_eq!(p.moves.len(), 2, "{:?}", p.moves);
        assert_eq!(done.nodes[0].slots, vec![SlotRange::new(0, 8191)]);
        assert_eq!(done.nodes[2].slots, vec![SlotRange::new(8192, 16383)]);
        // Every weight 0: nowhere to go.
        let all = HashMap::from([(id(0), 0.0), (id(1), 0.0), (id(2), 0.0)]);
        assert!(plan(&c, &all, 2.0, false).unwrap_err().contains("weight 0"));
    }

    #[test]
    fn weights_give_proportional_shares_of_an_uneven_split() {
        let c = cluster(&[&[(0, 16383)], &[], &[]]);
        let weights = HashMap::from([(id(0), 1.0), (id(1), 2.0), (id(2), 4.0)]);
        let p = plan(&c, &weights, 2.0, true).unwrap();
        // 16384 / 7 = 2340.57: the whole parts, then the largest fractions.
        let targets: Vec<usize> = p.shares.iter().map(|s| s.target).collect();
        assert_eq!(targets, vec![2341, 4681, 9362]);
        assert_eq!(targets.iter().sum::<usize>(), 16384);
        let done = after(&c, &p.moves);
        assert_eq!(counts(&done), targets);
        // Every node ends with one range: one move per new node.
        assert_eq!(p.moves.len(), 2);
        assert!(done.nodes.iter().all(|n| n.slots.len() == 1), "{:?}", done.nodes);
    }

    #[test]
    fn fragmented_sources_give_whole_ranges_first() {
        // Node 0 has four small ranges and a big one; it gives 4096 to node 2.
        let c = cluster(&[
            &[(0, 99), (200, 299), (400, 499), (600, 699), (1000, 11999)],
            &[(100, 199), (300, 399), (500, 599), (700, 999), (12000, 16383)],
            &[],
        ]);
        let p = plan(&c, &no_weights(), 2.0, true).unwrap();
        let done = after(&c, &p.moves);
        assert_eq!(counts(&done), p.shares.iter().map(|s| s.target).collect::<Vec<_>>());
        // Few moves: one to each taker, from the big range's ends, not the
        // fragments; node 1's share lands next to its big range.
        assert_eq!(p.moves.len(), 2, "{:?}", p.moves);
        assert!(p.moves.iter().all(|m| m.from == id(0) && m.range.start >= 1000), "{:?}", p.moves);
        assert_eq!(done.nodes[2].slots.len(), 1);
        assert_eq!(done.nodes[1].slots.last(), Some(&SlotRange::new(11523, 16383)));
    }

    #[test]
    fn more_primaries_than_assigned_slots() {
        // Three slots served, five primaries: three get one each.
        let c = cluster(&[&[(0, 2)], &[], &[], &[], &[]]);
        let p = plan(&c, &no_weights(), 2.0, true).unwrap();
        let done = after(&c, &p.moves);
        let got = counts(&done);
        assert_eq!(got.iter().sum::<usize>(), 3);
        assert!(got.iter().all(|&n| n <= 1), "{got:?}");
        // Unassigned slots stay unassigned; none served at all: nothing to do.
        let none = cluster(&[&[], &[]]);
        let p = plan(&none, &no_weights(), 2.0, true).unwrap();
        assert!(p.moves.is_empty());
    }

    #[test]
    fn unassigned_slots_are_left_alone() {
        let c = cluster(&[&[(0, 999)], &[(8000, 8999)], &[]]);
        let p = plan(&c, &no_weights(), 2.0, true).unwrap();
        let done = after(&c, &p.moves);
        assert_eq!(done.slots_assigned(), 2000);
        assert_eq!(counts(&done), vec![667, 667, 666]);
    }

    #[test]
    fn bad_weights_are_refused() {
        let mut c = cluster(&[&[(0, 16383)], &[]]);
        c.nodes.push(Node {
            id: id(9),
            ip: "127.0.0.1".into(),
            port: 7009,
            role: Role::Replica { of: id(0) },
            slots: Vec::new(),
        });
        assert!(plan(&c, &HashMap::from([(id(9), 1.0)]), 2.0, true).unwrap_err().contains("replica"));
        assert!(plan(&c, &HashMap::from([(id(7), 1.0)]), 2.0, true).unwrap_err().contains("unknown"));
        assert!(plan(&c, &HashMap::from([(id(1), -1.0)]), 2.0, true).is_err());
        assert!(plan(&c, &HashMap::from([(id(1), f64::NAN)]), 2.0, true).is_err());
    }
}
