//! Pipelines: 1000 mixed commands sent at once, replies checked in order
//! against a model of the keyspace.

#[macro_use]
mod common;

use common::*;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

#[derive(Clone, Debug)]
enum Val {
    Str(String),
    Hash(BTreeMap<String, String>),
}

/// A tiny model of the keyspace that predicts each reply.
struct Model {
    keys: HashMap<String, Val>,
    seed: u64,
}

impl Model {
    fn new(seed: u64) -> Model {
        Model { keys: HashMap::new(), seed }
    }

    fn rand(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        (self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }

    fn any_key(&mut self) -> String {
        match self.rand(3) {
            0 => format!("s{}", self.rand(60)),
            1 => format!("c{}", self.rand(30)),
            _ => format!("h{}", self.rand(20)),
        }
    }

    /// Produces the next command and the reply it must get.
    fn next(&mut self, step: usize) -> (Vec<String>, Reply) {
        let v = |s: &str| s.to_string();
        match self.rand(10) {
            0 | 1 => {
                let k = format!("s{}", self.rand(60));
                let val = format!("v{step}");
                self.keys.insert(k.clone(), Val::Str(val.clone()));
                (vec![v("SET"), k, val], ok())
            }
            2 => {
                let k = self.any_key();
                let want = match self.keys.get(&k) {
                    None => nil(),
                    Some(Val::Str(s)) => bulk(s),
                    Some(Val::Hash(_)) => err(WRONGTYPE),
                };
                (vec![v("GET"), k], want)
            }
            3 | 4 => {
                let k = if self.rand(8) == 0 { self.any_key() } else { format!("c{}", self.rand(30)) };
                let want = match self.keys.get(&k).cloned() {
                    None => {
                        self.keys.insert(k.clone(), Val::Str("1".into()));
                        int(1)
                    }
                    Some(Val::Str(s)) => match s.parse::<i64>() {
                        Ok(n) => {
                            self.keys.insert(k.clone(), Val::Str((n + 1).to_string()));
                            int(n + 1)
                        }
                        Err(_) => err(NOT_INT),
                    },
                    Some(Val::Hash(_)) => err(WRONGTYPE),
                };
                (vec![v("INCR"), k], want)
            }
            5 | 6 => {
                let k = if self.rand(8) == 0 { self.any_key() } else { format!("h{}", self.rand(20)) };
                let f = format!("f{}", self.rand(5));
                let val = format!("hv{step}");
                let want = match self.keys.get_mut(&k) {
                    None => {
                        let mut m = BTreeMap::new();
                        m.insert(f.clone(), val.clone());
                        self.keys.insert(k.clone(), Val::Hash(m));
                        int(1)
                    }
                    Some(Val::Hash(m)) => int(i64::from(m.insert(f.clone(), val.clone()).is_none())),
                    Some(Val::Str(_)) => err(WRONGTYPE),
                };
                (vec![v("HSET"), k, f, val], want)
            }
            7 => {
                let n = 1 + self.rand(3) as usize;
                let keys: Vec<String> = (0..n).map(|_| self.any_key()).collect();
                let mut deleted = 0;
                for k in &keys {
                    if self.keys.remove(k).is_some() {
                        deleted += 1;
                    }
                }
                let mut args = vec![v("DEL")];
                args.extend(keys);
                (args, int(deleted))
            }
            8 => {
                let n = 1 + self.rand(6) as usize;
                let keys: Vec<String> = (0..n).map(|_| self.any_key()).collect();
                let want = keys
                    .iter()
                    .map(|k| match self.keys.get(k) {
                        Some(Val::Str(s)) => bulk(s),
                        _ => nil(),
                    })
                    .collect();
                let mut args = vec![v("MGET")];
                args.extend(keys);
                (args, arr(want))
            }
            _ => {
                let k = format!("h{}", self.rand(20));
                let f = format!("f{}", self.rand(5));
                let want = match self.keys.get(&k) {
                    None => nil(),
                    Some(Val::Hash(m)) => m.get(&f).map(bulk).unwrap_or(nil()),
                    Some(Val::Str(_)) => err(WRONGTYPE),
                };
                (vec![v("HGET"), k, f], want)
            }
        }
    }

    /// Checks the server's final state against the model.
    fn verify(&self, c: &mut redis::Connection) {
        assert_eq!(cmd(c, &["DBSIZE"]), int(self.keys.len() as i64));
        for (k, val) in &self.keys {
            match val {
                Val::Str(s) => assert_eq!(cmd(c, &["GET", k]), bulk(s), "{k}"),
                Val::Hash(m) => {
                    let got: Vec<(String, String)> =
                        cmd(c, &["HGETALL", k]).sorted_pairs().into_iter().map(|(f, v)| (f, v.text())).collect();
                    let want: Vec<(String, String)> = m.iter().map(|(f, v)| (f.clone(), v.clone())).collect();
                    assert_eq!(got, want, "{k}");
                }
            }
        }
    }
}

shard_tests! {
    fn pipeline_1000_mixed(srv) {
        let mut c = srv.client();
        let mut model = Model::new(0x9e37_79b9_7f4a_7c15);
        let mut p = redis::pipe();
        let mut expected = Vec::new();
        for step in 0..1000 {
            let (args, want) = model.next(step);
            let cmd = p.cmd(&args[0]);
            for a in &args[1..] {
                cmd.arg(a);
            }
            expected.push((args, want));
        }
        let replies = pipeline(&mut c, &p);
        assert_eq!(replies.len(), 1000);
        let errors = expected.iter().filter(|(_, w)| w.is_error()).count();
        assert!(errors > 0, "the mix should include error replies");
        for (i, ((args, want), got)) in expected.iter().zip(&replies).enumerate() {
            assert_eq!(got, want, "reply {i} to {args:?}");
        }
        model.verify(&mut srv.client());
    }

    fn raw_pipeline_single_write(srv) {
        // 1000 commands in one write on a raw socket, then 1000 replies.
        let mut model = Model::new(42);
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for step in 0..1000 {
            let (args, want) = model.next(step);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            bytes.extend(resp_cmd(&refs));
            expected.push((args, want));
        }
        let mut s = srv.raw();
        s.write_all(&bytes).unwrap();
        let mut buf = Vec::new();
        read_replies(&mut s, &mut buf, 1000).unwrap();
        let mut pos = 0;
        for (i, (args, want)) in expected.iter().enumerate() {
            let len = resp_reply_len(&buf[pos..]).unwrap().unwrap();
            let got = parse_reply(&buf[pos..pos + len]);
            assert_eq!(&got, want, "reply {i} to {args:?}");
            pos += len;
        }
        assert_eq!(pos, buf.len(), "extra bytes after 1000 replies");
        model.verify(&mut srv.client());
    }

    fn concurrent_pipelines(srv) {
        // Several clients pipelining at once on disjoint keys.
        let port = srv.port;
        let handles: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut c = connect(&format!("redis://127.0.0.1:{port}/"));
                    let mut p = redis::pipe();
                    for i in 0..250 {
                        p.cmd("SET").arg(format!("t{t}:k{i}")).arg(i);
                        p.cmd("INCR").arg(format!("t{t}:k{i}"));
                        p.cmd("HSET").arg(format!("t{t}:h")).arg(i).arg(i);
                    }
                    let replies = pipeline(&mut c, &p);
                    assert_eq!(replies.len(), 750);
                    for (i, r) in replies.chunks(3).enumerate() {
                        assert_eq!(r, [ok(), int(i as i64 + 1), int(1)]);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(4 * 251));
        for t in 0..4 {
            assert_eq!(cmd(&mut c, &["HLEN", &format!("t{t}:h")]), int(250));
            assert_eq!(cmd(&mut c, &["GET", &format!("t{t}:k249")]), bulk("250"));
        }
    }
}
