//! Concurrent, randomized pipelines against a 4-shard server, every reply
//! checked against a model. Each client owns its keys (so its model is
//! exact) but its keys spread over all shards, so single-key commands,
//! multi-key commands split across shards, and replies reassembled from
//! several shards all interleave with other clients' traffic. Seeded: a
//! failure names the seed that reproduces it.

mod common;

use common::*;
use std::collections::HashMap;

const CLIENTS: usize = 8;
const PIPELINES: usize = 150;
const KEYS_PER_CLIENT: usize = 40;

fn run_client(url: String, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut con = connect(&url);
    let key = |i: usize| format!("c{seed}:k{i}");
    let mut model: HashMap<String, String> = HashMap::new();
    for round in 0..PIPELINES {
        let mut pipe = redis::pipe();
        let mut expected: Vec<Reply> = Vec::new();
        for _ in 0..rng.usize(1..64) {
            match rng.u8(0..8) {
                0 => {
                    let (k, v) = (key(rng.usize(..KEYS_PER_CLIENT)), format!("v{}", rng.u32(..)));
                    pipe.cmd("SET").arg(&k).arg(&v);
                    model.insert(k, v);
                    expected.push(ok());
                }
                1 => {
                    let k = key(rng.usize(..KEYS_PER_CLIENT));
                    pipe.cmd("GET").arg(&k);
                    expected.push(model.get(&k).map_or(nil(), bulk));
                }
                2 => {
                    let keys: Vec<String> = (0..rng.usize(1..8)).map(|_| key(rng.usize(..KEYS_PER_CLIENT))).collect();
                    pipe.cmd("MGET").arg(&keys);
                    expected.push(arr(keys.iter().map(|k| model.get(k).map_or(nil(), bulk)).collect()));
                }
                3 => {
                    let mut c = pipe.cmd("MSET");
                    for _ in 0..rng.usize(1..6) {
                        let (k, v) = (key(rng.usize(..KEYS_PER_CLIENT)), format!("m{}", rng.u32(..)));
                        c = c.arg(&k).arg(&v);
                        model.insert(k, v);
                    }
                    expected.push(ok());
                }
                4 => {
                    let keys: Vec<String> = (0..rng.usize(1..6)).map(|_| key(rng.usize(..KEYS_PER_CLIENT))).collect();
                    pipe.cmd("DEL").arg(&keys);
                    let mut n = 0;
                    let mut seen = std::collections::HashSet::new();
                    for k in &keys {
                        if seen.insert(k) && model.remove(k).is_some() {
                            n += 1;
                        }
                    }
                    expected.push(int(n));
                }
                5 => {
                    let keys: Vec<String> = (0..rng.usize(1..6)).map(|_| key(rng.usize(..KEYS_PER_CLIENT))).collect();
                    pipe.cmd("EXISTS").arg(&keys);
                    expected.push(int(keys.iter().filter(|k| model.contains_key(*k)).count() as i64));
                }
                6 => {
                    let k = format!("c{seed}:counter{}", rng.usize(..4));
                    pipe.cmd("INCR").arg(&k);
                    let next = model.get(&k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) + 1;
                    model.insert(k, next.to_string());
                    expected.push(int(next));
                }
                _ => {
                    let (k, tail) = (key(rng.usize(..KEYS_PER_CLIENT)), "+");
                    pipe.cmd("APPEND").arg(&k).arg(tail);
                    let v = model.entry(k).or_default();
                    v.push_str(tail);
                    expected.push(int(v.len() as i64));
                }
            }
        }
        let got = pipeline(&mut con, &pipe);
        assert_eq!(got, expected, "client seed {seed}, pipeline {round}");
    }
}

#[test]
fn concurrent_random_pipelines_match_a_model_on_four_shards() {
    let srv = Server::start(4);
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 100_000;
    eprintln!("seeds {base}..{}", base + CLIENTS as u64);
    let clients: Vec<_> = (0..CLIENTS as u64)
        .map(|i| {
            let url = srv.url();
            std::thread::spawn(move || run_client(url, base + i))
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let mut c = srv.client();
    assert_eq!(cmd(&mut c, &["PING"]), status("PONG"));
}
