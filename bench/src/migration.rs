//! The pure parts of `coreshard-migration-load`, the cluster client of the
//! slot-migration benchmark (`bench/migration.sh`, BENCHMARKS.md "Migration
//! of 1,000,000 keys under load"): which keys live in the moving slots, the
//! cluster's slot map from `CLUSTER SLOTS`, `MOVED` replies, and the latency
//! statistics per phase of the migration, split by whether a request's key
//! is inside or outside the moving slots.
//!
//! Every request is a [`Sample`]: its intended send time (wall clock, so
//! that it lines up with the timestamps of `coreshard-admin migrate
//! --json`), its latency from that time to its final reply (redirects
//! included), and whether its key is in the moving slots. [`phases`] cuts
//! the run into the four windows the benchmark reports and
//! [`LatencyStats::of`] summarises one window's samples of one side.

use coreshard_engine::slot::{SLOTS, key_slot};
use serde::Serialize;

/// One request as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the request was due (its schedule, not when it left), in µs
    /// since the Unix epoch.
    pub due_us: u64,
    /// How long after `due_us` it was sent, in µs: the previous request of
    /// its thread, or the machine, held the client up.
    pub late_us: u64,
    /// From `due_us` to its final reply, in µs.
    pub latency_us: u64,
    /// Its key's slot.
    pub slot: u16,
    /// Its key is in the moving slots.
    pub inside: bool,
    /// It got at least one MOVED on the way.
    pub moved: bool,
    /// It got at least one TRYAGAIN on the way.
    pub tryagain: bool,
    /// Its final reply was an error (or the connection failed).
    pub error: bool,
}

impl Sample {
    /// From when it was sent to its final reply, in µs: its latency less
    /// the time its thread was held up before sending it.
    pub fn service_us(&self) -> u64 {
        self.latency_us.saturating_sub(self.late_us)
    }
}

/// `samples` with each latency replaced by its [`Sample::service_us`], for
/// the same statistics without the wait in the client: what each request
/// cost once sent. Requests due in a stall but sent after it count as
/// fast here, so this is a lower bound, to read beside the latency.
pub fn service_samples(samples: &[Sample]) -> Vec<Sample> {
    samples.iter().map(|s| Sample { latency_us: s.service_us(), late_us: 0, ..*s }).collect()
}

/// A half-open span of wall-clock time, in µs since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub name: &'static str,
    pub from_us: u64,
    pub to_us: u64,
}

impl Window {
    fn contains(&self, us: u64) -> bool {
        self.from_us <= us && us < self.to_us
    }
}

/// When things happened, in µs since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// The steady load began.
    pub load_start_us: u64,
    /// The migration began (`started_unix_us` of the admin's JSON).
    pub migration_start_us: u64,
    /// The accepted CUTOVER was sent (`cutover_unix_us`).
    pub cutover_us: u64,
    /// How long the source held writes (`pause_us`).
    pub pause_us: u64,
    /// The steady load stopped.
    pub load_end_us: u64,
}

/// The four windows: `before` (the steady load, less `warmup_us`, until the
/// migration starts), `snapshot` (snapshot and catch-up, until the CUTOVER
/// is sent), `cutover` (from the CUTOVER through the hold and `margin_us`
/// after it, which covers the redirects of the moved keys and the new
/// configuration reaching every node) and `after` (the rest). A window that
/// would end before it begins is empty.
pub fn phases(t: &Timeline, warmup_us: u64, margin_us: u64) -> [Window; 4] {
    let before_from = (t.load_start_us + warmup_us).min(t.migration_start_us);
    let cutover_end = (t.cutover_us + t.pause_us + margin_us).min(t.load_end_us).max(t.cutover_us);
    [
        Window { name: "before", from_us: before_from, to_us: t.migration_start_us },
        Window { name: "snapshot", from_us: t.migration_start_us, to_us: t.cutover_us.max(t.migration_start_us) },
        Window { name: "cutover", from_us: t.cutover_us, to_us: cutover_end },
        Window { name: "after", from_us: cutover_end, to_us: t.load_end_us.max(cutover_end) },
    ]
}

/// Latency summary of one side of one window, in µs (0 when there is no
/// sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LatencyStats {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub moved: u64,
    pub tryagain: u64,
    pub errors: u64,
}

impl LatencyStats {
    /// The samples due in `window` whose key is `inside` (or not).
    pub fn of(samples: &[Sample], window: &Window, inside: bool) -> LatencyStats {
        Self::of_where(samples, window, |s| s.inside == inside)
    }

    /// The samples due in `window` that `pick` keeps.
    pub fn of_where(samples: &[Sample], window: &Window, pick: impl Fn(&Sample) -> bool) -> LatencyStats {
        let picked: Vec<&Sample> = samples.iter().filter(|s| pick(s) && window.contains(s.due_us)).collect();
        let mut latencies: Vec<u64> = picked.iter().map(|s| s.latency_us).collect();
        latencies.sort_unstable();
        let count_of = |f: fn(&Sample) -> bool| picked.iter().filter(|s| f(s)).count() as u64;
        LatencyStats {
            count: latencies.len() as u64,
            p50_us: percentile(&latencies, 50.0),
            p99_us: percentile(&latencies, 99.0),
            p999_us: percentile(&latencies, 99.9),
            max_us: latencies.last().copied().unwrap_or(0),
            moved: count_of(|s| s.moved),
            tryagain: count_of(|s| s.tryagain),
            errors: count_of(|s| s.error),
        }
    }
}

/// `window` cut into consecutive windows of `width_us` (the last one may
/// be shorter), for a time series of the latencies.
pub fn slices(window: &Window, width_us: u64) -> Vec<Window> {
    let width = width_us.max(1);
    (window.from_us..window.to_us)
        .step_by(width as usize)
        .map(|from| Window { name: window.name, from_us: from, to_us: (from + width).min(window.to_us) })
        .collect()
}

/// The p99 of each full slice of `window` `width_us` long (a partial last
/// slice is left out), of one side, ascending: how far the p99 of a window
/// of that length moves with no migration going on (the noise a cutover
/// window's p99 is to be compared with on a busy machine). Slices without
/// a sample are left out.
pub fn slice_p99s(samples: &[Sample], window: &Window, width_us: u64, inside: bool) -> Vec<u64> {
    let mut p99s: Vec<u64> = slices(window, width_us)
        .iter()
        .filter(|w| w.to_us - w.from_us == width_us.max(1))
        .map(|w| LatencyStats::of(samples, w, inside))
        .filter(|s| s.count > 0)
        .map(|s| s.p99_us)
        .collect();
    p99s.sort_unstable();
    p99s
}

/// The nearest-rank percentile `q` (0 < q <= 100) of ascending `sorted`: the
/// smallest value with at least q% of the values at or below it; 0 for none.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // Less a hair, so that a product like 0.999 * 1000 = 999.0000000000001
    // does not round up to the next rank.
    let rank = ((q / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The first `n` keys `PREFIX<i>` (i = 0, 1, ...) whose slot is in
/// `lo..=hi` when `inside`, or outside it otherwise. Plain keys, no hash
/// tags: they spread over the range's slots as a real key space does.
pub fn keys(prefix: &str, lo: u16, hi: u16, inside: bool, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    let mut key = Vec::with_capacity(prefix.len() + 20);
    let mut digits = itoa::Buffer::new();
    let mut i: u64 = 0;
    while out.len() < n {
        key.clear();
        key.extend_from_slice(prefix.as_bytes());
        key.extend_from_slice(digits.format(i).as_bytes());
        let slot = key_slot(&key);
        if (lo <= slot && slot <= hi) == inside {
            out.push(key.clone());
        }
        i += 1;
    }
    out
}

/// `MOVED <slot> <host>:<port>` (the error reply without its `-`): the slot
/// and the address that owns it now.
pub fn parse_moved(error: &str) -> Option<(u16, String)> {
    let mut words = error.split_ascii_whitespace();
    if words.next()? != "MOVED" {
        return None;
    }
    let slot: u16 = words.next()?.parse().ok()?;
    let addr = words.next()?;
    (usize::from(slot) < SLOTS && addr.contains(':')).then(|| (slot, addr.to_string()))
}

/// Which node serves each slot: `owner[slot]` indexes `addrs` (`None`:
/// no node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotTable {
    pub addrs: Vec<String>,
    pub owner: Vec<Option<usize>>,
}

impl SlotTable {
    /// From `CLUSTER SLOTS`'s ranges: (first slot, last slot, primary's
    /// `host:port`).
    pub fn from_ranges(ranges: &[(u16, u16, String)]) -> SlotTable {
        let mut table = SlotTable { addrs: Vec::new(), owner: vec![None; SLOTS] };
        for (lo, hi, addr) in ranges {
            let index = table.index_of(addr);
            for slot in *lo..=(*hi).min(SLOTS as u16 - 1) {
                table.owner[usize::from(slot)] = Some(index);
            }
        }
        table
    }

    /// The index of `addr` in `addrs`, added if new.
    pub fn index_of(&mut self, addr: &str) -> usize {
        match self.addrs.iter().position(|a| a == addr) {
            Some(i) => i,
            None => {
                self.addrs.push(addr.to_string());
                self.addrs.len() - 1
            }
        }
    }

    /// Records that `slot` moved to `addr` (a MOVED reply).
    pub fn moved(&mut self, slot: u16, addr: &str) {
        let index = self.index_of(addr);
        if let Some(o) = self.owner.get_mut(usize::from(slot)) {
            *o = Some(index);
        }
    }

    /// The address serving `slot`.
    pub fn addr(&self, slot: u16) -> Option<&str> {
        self.owner.get(usize::from(slot)).copied().flatten().map(|i| self.addrs[i].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(due_us: u64, latency_us: u64, inside: bool) -> Sample {
        Sample { due_us, late_us: 0, latency_us, slot: 0, inside, moved: false, tryagain: false, error: false }
    }

    #[test]
    fn percentile_is_the_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), 500);
        assert_eq!(percentile(&v, 99.0), 990);
        assert_eq!(percentile(&v, 99.9), 999);
        assert_eq!(percentile(&v, 100.0), 1000);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 99.0), 0);
        // Ten values: p99 is the largest, p50 the fifth.
        let ten: Vec<u64> = (10..20).collect();
        assert_eq!((percentile(&ten, 50.0), percentile(&ten, 99.0)), (14, 19));
    }

    #[test]
    fn phases_cut_the_run_at_the_migration_and_the_cutover() {
        let t = Timeline {
            load_start_us: 1_000,
            migration_start_us: 10_000,
            cutover_us: 20_000,
            pause_us: 500,
            load_end_us: 40_000,
        };
        let [before, snapshot, cutover, after] = phases(&t, 2_000, 1_000);
        assert_eq!((before.from_us, before.to_us), (3_000, 10_000));
        assert_eq!((snapshot.from_us, snapshot.to_us), (10_000, 20_000));
        assert_eq!((cutover.from_us, cutover.to_us), (20_000, 21_500));
        assert_eq!((after.from_us, after.to_us), (21_500, 40_000));
        // A run that stops inside the margin: the cutover ends with it and
        // `after` is empty; a warmup longer than the wait leaves `before` empty.
        let short = Timeline { load_end_us: 20_700, ..t };
        let [before, _, cutover, after] = phases(&short, 50_000, 1_000);
        assert_eq!(before.from_us, before.to_us);
        assert_eq!(cutover.to_us, 20_700);
        assert_eq!(after.from_us, after.to_us);
    }

    #[test]
    fn stats_take_one_side_of_one_window() {
        let w = Window { name: "w", from_us: 100, to_us: 200 };
        let mut samples = vec![
            sample(99, 1_000_000, false),  // before the window
            sample(200, 1_000_000, false), // at its end: excluded
            sample(150, 5_000, true),      // the other side
        ];
        samples.extend((0..100).map(|i| sample(100 + i, i + 1, false)));
        samples[3].moved = true;
        samples[4].tryagain = true;
        samples[5].error = true;
        let s = LatencyStats::of(&samples, &w, false);
        assert_eq!(s.count, 100);
        assert_eq!((s.p50_us, s.p99_us, s.p999_us, s.max_us), (50, 99, 100, 100));
        assert_eq!((s.moved, s.tryagain, s.errors), (1, 1, 1));
        let inside = LatencyStats::of(&samples, &w, true);
        assert_eq!((inside.count, inside.max_us, inside.p50_us), (1, 5_000, 5_000));
        let empty = LatencyStats::of(&[], &w, true);
        assert_eq!(empty, LatencyStats::default());
    }

    #[test]
    fn slices_cover_the_window() {
        let w = Window { name: "w", from_us: 10, to_us: 35 };
        let s: Vec<(u64, u64)> = slices(&w, 10).iter().map(|w| (w.from_us, w.to_us)).collect();
        assert_eq!(s, [(10, 20), (20, 30), (30, 35)]);
        assert!(slices(&Window { name: "e", from_us: 5, to_us: 5 }, 10).is_empty());
    }

    #[test]
    fn slice_p99s_leave_out_the_partial_slice_and_empty_ones() {
        let w = Window { name: "before", from_us: 0, to_us: 350 };
        // Slice 0..100: 1..=100 µs; 100..200: none; 200..300: 1000 µs;
        // 300..350 (partial): 99999 µs; the other side: 50000 µs.
        let mut samples: Vec<Sample> = (0..100).map(|i| sample(i, i + 1, false)).collect();
        samples.push(sample(250, 1_000, false));
        samples.push(sample(320, 99_999, false));
        samples.push(sample(10, 50_000, true));
        assert_eq!(slice_p99s(&samples, &w, 100, false), [99, 1_000]);
        assert_eq!(slice_p99s(&samples, &w, 100, true), [50_000]);
        assert!(slice_p99s(&samples, &w, 1_000, false).is_empty());
    }

    #[test]
    fn service_time_leaves_out_the_wait_before_sending() {
        let mut late = sample(100, 5_000, true);
        late.late_us = 4_200;
        let odd = Sample { late_us: 9_000, ..sample(200, 7_000, false) };
        let s = service_samples(&[late, odd]);
        assert_eq!((s[0].latency_us, s[0].late_us, s[0].due_us, s[0].inside), (800, 0, 100, true));
        assert_eq!(s[1].latency_us, 0, "never below zero");
    }

    #[test]
    fn keys_fall_inside_or_outside_the_range() {
        let inside = keys("m:", 100, 199, true, 500);
        let outside = keys("o:", 100, 199, false, 500);
        assert_eq!((inside.len(), outside.len()), (500, 500));
        assert!(inside.iter().all(|k| (100..=199).contains(&key_slot(k))));
        assert!(outside.iter().all(|k| !(100..=199).contains(&key_slot(k))));
        // Spread over the range, not one slot.
        let mut slots: Vec<u16> = inside.iter().map(|k| key_slot(k)).collect();
        slots.sort_unstable();
        slots.dedup();
        assert!(slots.len() > 90, "{} slots", slots.len());
        assert_eq!(keys("m:", 100, 199, true, 500), inside, "the same keys every time");
    }

    #[test]
    fn moved_replies_parse() {
        assert_eq!(parse_moved("MOVED 3999 127.0.0.1:6381"), Some((3999, "127.0.0.1:6381".into())));
        assert_eq!(parse_moved("MOVED 16384 127.0.0.1:6381"), None);
        assert_eq!(parse_moved("MOVED x 127.0.0.1:6381"), None);
        assert_eq!(parse_moved("MOVED 1"), None);
        assert_eq!(parse_moved("ASK 1 127.0.0.1:6381"), None);
        assert_eq!(parse_moved("ERR wrong"), None);
    }

    #[test]
    fn slot_table_follows_ranges_and_moves() {
        let mut t = SlotTable::from_ranges(&[(0, 5460, "a:1".into()), (5461, 16383, "b:2".into())]);
        assert_eq!(
            (t.addr(0), t.addr(5460), t.addr(5461), t.addr(16383)),
            (Some("a:1"), Some("a:1"), Some("b:2"), Some("b:2"))
        );
        t.moved(7, "c:3");
        assert_eq!((t.addr(6), t.addr(7)), (Some("a:1"), Some("c:3")));
        assert_eq!(t.addrs.len(), 3);
        let gap = SlotTable::from_ranges(&[(1, 2, "a:1".into())]);
        assert_eq!((gap.addr(0), gap.addr(1), gap.addr(3)), (None, Some("a:1"), None));
    }
}
