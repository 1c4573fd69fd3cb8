//! Multi-key commands with keys spread over every shard: replies must be
//! exactly what a single-threaded Redis answers, in argument order.

#[macro_use]
mod common;

use common::*;

fn key(i: usize) -> String {
    format!("key:{i}:{}", i * 7919 % 1000)
}

shard_tests! {
    fn mset_mget_many_keys(srv) {
        let mut c = srv.client();
        let mut args = vec!["MSET".to_string()];
        for i in 0..100 {
            args.push(key(i));
            args.push(format!("value-{i}"));
        }
        assert_eq!(cmd_vec(&mut c, &args), ok());
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(100));
        // MGET of all keys interleaved with missing ones, in order.
        let mut args = vec!["MGET".to_string()];
        let mut want = Vec::new();
        for i in 0..100 {
            args.push(key(i));
            want.push(bulk(format!("value-{i}")));
            if i % 3 == 0 {
                args.push(format!("missing:{i}"));
                want.push(nil());
            }
        }
        // Reverse order and duplicates too.
        for i in (0..100).rev().step_by(9) {
            args.push(key(i));
            want.push(bulk(format!("value-{i}")));
            args.push(key(i));
            want.push(bulk(format!("value-{i}")));
        }
        assert_eq!(cmd_vec(&mut c, &args), arr(want));
        // Another connection sees every key.
        let mut other = srv.client();
        for i in (0..100).step_by(11) {
            assert_eq!(cmd(&mut other, &["GET", &key(i)]), bulk(format!("value-{i}")));
        }
        // Overwrite half with a second MSET; hashes read as nil in MGET.
        let mut args = vec!["MSET".to_string()];
        for i in (0..100).step_by(2) {
            args.push(key(i));
            args.push(format!("new-{i}"));
        }
        assert_eq!(cmd_vec(&mut c, &args), ok());
        for i in 0..10 {
            assert_eq!(cmd(&mut c, &["HSET", &format!("hash:{i}"), "f", "v"]), int(1));
        }
        let mut args = vec!["MGET".to_string()];
        let mut want = Vec::new();
        for i in 0..100 {
            args.push(key(i));
            want.push(if i % 2 == 0 {
                bulk(format!("new-{i}"))
            } else {
                bulk(format!("value-{i}"))
            });
            if i % 10 == 0 {
                args.push(format!("hash:{}", i / 10));
                want.push(nil());
            }
        }
        assert_eq!(cmd_vec(&mut c, &args), arr(want));
        // MSET with a repeated key: the last value wins.
        let mut args = vec!["MSET".to_string()];
        for round in 0..3 {
            for i in 0..20 {
                args.push(key(i));
                args.push(format!("r{round}-{i}"));
            }
        }
        assert_eq!(cmd_vec(&mut c, &args), ok());
        let mut args = vec!["MGET".to_string()];
        for i in 0..20 {
            args.push(key(i));
        }
        let want: Vec<Reply> = (0..20).map(|i| bulk(format!("r2-{i}"))).collect();
        assert_eq!(cmd_vec(&mut c, &args), arr(want));
    }

    fn del_unlink_exists_touch_many_keys(srv) {
        let mut c = srv.client();
        let mut args = vec!["MSET".to_string()];
        for i in 0..100 {
            args.push(key(i));
            args.push(i.to_string());
        }
        assert_eq!(cmd_vec(&mut c, &args), ok());
        for i in 0..20 {
            assert_eq!(cmd(&mut c, &["HSET", &format!("h{i}"), "f", "v"]), int(1));
        }
        let with = |name: &str, keys: &[String]| -> Vec<String> {
            let mut v = vec![name.to_string()];
            v.extend(keys.iter().cloned());
            v
        };
        let all: Vec<String> = (0..100).map(key).collect();
        let hashes: Vec<String> = (0..20).map(|i| format!("h{i}")).collect();
        let missing: Vec<String> = (0..30).map(|i| format!("missing{i}")).collect();
        let mut mixed = Vec::new();
        mixed.extend(all.iter().cloned());
        mixed.extend(hashes.iter().cloned());
        mixed.extend(missing.iter().cloned());
        mixed.extend(all[..10].iter().cloned()); // duplicates
        // EXISTS and TOUCH count duplicates; missing keys count zero.
        assert_eq!(cmd_vec(&mut c, &with("EXISTS", &mixed)), int(130));
        assert_eq!(cmd_vec(&mut c, &with("TOUCH", &mixed)), int(130));
        assert_eq!(cmd_vec(&mut c, &with("EXISTS", &missing)), int(0));
        // DEL counts each deleted key once.
        let evens: Vec<String> = (0..100).step_by(2).map(key).collect();
        let mut del_args = evens.clone();
        del_args.extend(evens[..5].iter().cloned());
        del_args.extend(missing.iter().cloned());
        del_args.extend(hashes[..10].iter().cloned());
        assert_eq!(cmd_vec(&mut c, &with("DEL", &del_args)), int(60));
        assert_eq!(cmd_vec(&mut c, &with("DEL", &del_args)), int(0));
        assert_eq!(cmd_vec(&mut c, &with("EXISTS", &all)), int(50));
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(60));
        // UNLINK the rest.
        let mut rest: Vec<String> = (1..100).step_by(2).map(key).collect();
        rest.extend(hashes.iter().cloned());
        rest.extend(rest.clone());
        assert_eq!(cmd_vec(&mut c, &with("UNLINK", &rest)), int(60));
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(0));
        assert_eq!(cmd_vec(&mut c, &with("EXISTS", &mixed)), int(0));
        assert_eq!(cmd_vec(&mut c, &with("TOUCH", &mixed)), int(0));
        let mut mget = vec!["MGET".to_string()];
        mget.extend(all.iter().cloned());
        assert_eq!(cmd_vec(&mut c, &mget), arr(vec![nil(); 100]));
    }

    fn multikey_per_database(srv) {
        let mut c = srv.client();
        let mut args0 = vec!["MSET".to_string()];
        let mut args1 = vec!["MSET".to_string()];
        for i in 0..100 {
            args0.push(key(i));
            args0.push(format!("db0-{i}"));
            args1.push(key(i));
            args1.push(format!("db1-{i}"));
        }
        assert_eq!(cmd_vec(&mut c, &args0), ok());
        assert_eq!(cmd(&mut c, &["SELECT", "1"]), ok());
        assert_eq!(cmd_vec(&mut c, &args1), ok());
        let mut mget = vec!["MGET".to_string()];
        mget.extend((0..100).map(key));
        let want1: Vec<Reply> = (0..100).map(|i| bulk(format!("db1-{i}"))).collect();
        assert_eq!(cmd_vec(&mut c, &mget), arr(want1));
        let mut del = vec!["DEL".to_string()];
        del.extend((0..50).map(key));
        assert_eq!(cmd_vec(&mut c, &del), int(50));
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(50));
        assert_eq!(cmd(&mut c, &["SELECT", "0"]), ok());
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(100));
        let want0: Vec<Reply> = (0..100).map(|i| bulk(format!("db0-{i}"))).collect();
        assert_eq!(cmd_vec(&mut c, &mget), arr(want0));
    }
}
