//! WRONGTYPE as a matrix: every command of each type's family runs against a
//! key of every other type, and must give Redis's exact reply and leave every
//! key as it was, TTL included (nothing half-applied). The reply is usually
//! WRONGTYPE; the rows name the exceptions: commands that only ask whether a
//! key exists (SETNX, SET NX, MSETNX) or read it as missing (MGET), that
//! overwrite it (SET, a STORE destination), that stop before looking at it
//! (LMOVE from a missing list), and ZUNIONSTORE/ZINTERSTORE, which read a set
//! as a sorted set. Rows with a bad argument pin down which Redis reports
//! first, the argument or the type.
//!
//! Every key shares the {t} hash tag, so the multi-key rows run on one shard
//! with 4 shards too.

#[macro_use]
mod common;

use common::*;

/// One key of each type: its type name and the command that makes it.
const KEYS: [(&str, &[&str]); 5] = [
    ("string", &["SET", "{t}string", "text"]),
    ("list", &["RPUSH", "{t}list", "a", "b", "c"]),
    ("hash", &["HSET", "{t}hash", "a", "1", "b", "2"]),
    ("set", &["SADD", "{t}set", "a", "b", "c"]),
    ("zset", &["ZADD", "{t}zset", "1", "a", "2", "b", "3", "c"]),
];

/// Never exists: a missing source.
const NONE: &str = "{t}none";
/// Exists only when a row stores into it.
const DST: &str = "{t}dst";
/// Stands for the key of another type under test.
const KEY: &str = "$k";
/// The error for a negative or non-integer pop count.
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

/// What a row must do to a key of a type outside its family.
enum Want {
    /// `WRONGTYPE ...`, and no key changed.
    WrongType,
    /// This reply, and no key changed.
    Keeps(Reply),
    /// This reply, and the key (`KEY` or `DST`) now has this type ("none":
    /// deleted, as an empty STORE result deletes its destination); no other
    /// key changed.
    Writes(Reply, &'static str, &'static str),
    /// ZUNIONSTORE and ZINTERSTORE take a set as a source (every score 1):
    /// this for a set, WRONGTYPE for the other types.
    SetsToo(Box<Want>),
}
use Want::*;

type Row = (&'static [&'static str], Want);

fn wt() -> Want {
    WrongType
}
fn keeps(r: Reply) -> Want {
    Keeps(r)
}
fn writes(r: Reply, key: &'static str, kind: &'static str) -> Want {
    Writes(r, key, kind)
}
fn sets_too(w: Want) -> Want {
    SetsToo(Box::new(w))
}
/// An argument error that Redis reports before it looks at the key's type.
fn bad(e: &str) -> Want {
    Keeps(err(e))
}

fn string_rows() -> Vec<Row> {
    vec![
        (&["GET", KEY], wt()),
        (&["GETSET", KEY, "v"], wt()),
        (&["GETDEL", KEY], wt()),
        (&["GETEX", KEY], wt()),
        (&["GETEX", KEY, "PERSIST"], wt()),
        (&["GETEX", KEY, "EX", "100"], wt()),
        (&["APPEND", KEY, "x"], wt()),
        (&["APPEND", KEY, ""], wt()),
        (&["STRLEN", KEY], wt()),
        (&["INCR", KEY], wt()),
        (&["DECR", KEY], wt()),
        (&["INCRBY", KEY, "5"], wt()),
        (&["DECRBY", KEY, "5"], wt()),
        (&["INCRBYFLOAT", KEY, "1.5"], wt()),
        (&["GETRANGE", KEY, "0", "-1"], wt()),
        (&["SETRANGE", KEY, "0", "x"], wt()),
        (&["SETRANGE", KEY, "5", ""], wt()),
        (&["SET", KEY, "v", "GET"], wt()),
        (&["SET", KEY, "v", "NX", "GET"], wt()),
        (&["SET", KEY, "v", "XX", "GET"], wt()),
        (&["SETNX", KEY, "v"], keeps(int(0))),
        (&["SET", KEY, "v", "NX"], keeps(nil())),
        (&["MSETNX", KEY, "v"], keeps(int(0))),
        (&["MSETNX", DST, "v", KEY, "v"], keeps(int(0))),
        (&["MGET", KEY], keeps(arr(vec![nil()]))),
        (&["MGET", "{t}string", KEY, NONE], keeps(arr(vec![bulk("text"), nil(), nil()]))),
        (&["SET", KEY, "v"], writes(ok(), KEY, "string")),
        (&["SET", KEY, "v", "XX"], writes(ok(), KEY, "string")),
        (&["SET", KEY, "v", "KEEPTTL"], writes(ok(), KEY, "string")),
        (&["SETEX", KEY, "100", "v"], writes(ok(), KEY, "string")),
        (&["PSETEX", KEY, "100000", "v"], writes(ok(), KEY, "string")),
        (&["MSET", KEY, "v"], writes(ok(), KEY, "string")),
        // A bad argument: some are found before the type, some after.
        (&["GETEX", KEY, "EX", "0"], wt()),
        (&["GETEX", KEY, "EX", "abc"], wt()),
        (&["GETEX", KEY, "FOO"], bad(SYNTAX)),
        (&["INCRBY", KEY, "abc"], bad(NOT_INT)),
        (&["DECRBY", KEY, "abc"], bad(NOT_INT)),
        (&["INCRBYFLOAT", KEY, "abc"], wt()),
        (&["GETRANGE", KEY, "a", "b"], bad(NOT_INT)),
        (&["SETRANGE", KEY, "-1", "x"], bad("ERR offset is out of range")),
        (&["SET", KEY, "v", "GET", "EX", "0"], bad("ERR invalid expire time in 'set' command")),
    ]
}

fn list_rows() -> Vec<Row> {
    vec![
        (&["LPUSH", KEY, "x"], wt()),
        (&["RPUSH", KEY, "x"], wt()),
        (&["LPUSHX", KEY, "x"], wt()),
        (&["RPUSHX", KEY, "x"], wt()),
        (&["LPOP", KEY], wt()),
        (&["LPOP", KEY, "2"], wt()),
        (&["LPOP", KEY, "0"], wt()),
        (&["RPOP", KEY], wt()),
        (&["RPOP", KEY, "2"], wt()),
        (&["LLEN", KEY], wt()),
        (&["LRANGE", KEY, "0", "-1"], wt()),
        (&["LINDEX", KEY, "0"], wt()),
        (&["LSET", KEY, "0", "x"], wt()),
        (&["LINSERT", KEY, "BEFORE", "a", "x"], wt()),
        (&["LREM", KEY, "0", "a"], wt()),
        (&["LTRIM", KEY, "0", "-1"], wt()),
        (&["LPOS", KEY, "a"], wt()),
        (&["LMOVE", KEY, "{t}list", "LEFT", "RIGHT"], wt()),
        (&["LMOVE", "{t}list", KEY, "LEFT", "RIGHT"], wt()),
        // A missing source answers nil before the destination is looked at.
        (&["LMOVE", NONE, KEY, "LEFT", "RIGHT"], keeps(nil())),
        (&["RPOPLPUSH", KEY, "{t}list"], wt()),
        (&["RPOPLPUSH", "{t}list", KEY], wt()),
        (&["RPOPLPUSH", NONE, KEY], keeps(nil())),
        (&["LMPOP", "1", KEY, "LEFT"], wt()),
        (&["LMPOP", "2", NONE, KEY, "RIGHT", "COUNT", "2"], wt()),
        (&["LMPOP", "2", KEY, "{t}list", "LEFT"], wt()),
        // A bad argument: some are found before the type, some after.
        (&["LPOP", KEY, "abc"], bad(NOT_POSITIVE)),
        (&["RPOP", KEY, "-1"], bad(NOT_POSITIVE)),
        (&["LINDEX", KEY, "abc"], wt()),
        (&["LSET", KEY, "abc", "x"], wt()),
        (&["LINSERT", KEY, "MIDDLE", "a", "x"], bad(SYNTAX)),
        (&["LREM", KEY, "abc", "a"], bad(NOT_INT)),
        (&["LTRIM", KEY, "a", "b"], bad(NOT_INT)),
        (&["LRANGE", KEY, "a", "b"], bad(NOT_INT)),
        (
            &["LPOS", KEY, "a", "RANK", "0"],
            bad(
                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
            ),
        ),
        (&["LMOVE", KEY, "{t}list", "UP", "DOWN"], bad(SYNTAX)),
        (&["LMPOP", "1", KEY, "LEFT", "COUNT", "0"], bad("ERR count should be greater than 0")),
    ]
}

fn hash_rows() -> Vec<Row> {
    vec![
        (&["HSET", KEY, "a", "9"], wt()),
        (&["HSETNX", KEY, "z", "9"], wt()),
        (&["HGET", KEY, "a"], wt()),
        (&["HMGET", KEY, "a", "z"], wt()),
        (&["HMSET", KEY, "a", "9"], wt()),
        (&["HDEL", KEY, "a"], wt()),
        (&["HLEN", KEY], wt()),
        (&["HEXISTS", KEY, "a"], wt()),
        (&["HGETALL", KEY], wt()),
        (&["HKEYS", KEY], wt()),
        (&["HVALS", KEY], wt()),
        (&["HINCRBY", KEY, "a", "1"], wt()),
        (&["HINCRBYFLOAT", KEY, "a", "1.5"], wt()),
        (&["HSTRLEN", KEY, "a"], wt()),
        (&["HRANDFIELD", KEY], wt()),
        (&["HRANDFIELD", KEY, "2", "WITHVALUES"], wt()),
        (&["HRANDFIELD", KEY, "-2"], wt()),
        (&["HRANDFIELD", KEY, "0"], wt()),
        (&["HSCAN", KEY, "0"], wt()),
        // A bad argument: some are found before the type, some after.
        (&["HINCRBY", KEY, "a", "abc"], bad(NOT_INT)),
        (&["HINCRBYFLOAT", KEY, "a", "abc"], bad("ERR value is not a valid float")),
        (&["HRANDFIELD", KEY, "abc"], bad(NOT_INT)),
        (&["HRANDFIELD", KEY, "1", "FOO"], bad(SYNTAX)),
        (&["HSCAN", KEY, "abc"], bad("ERR invalid cursor")),
        (&["HSCAN", KEY, "0", "COUNT", "0"], wt()),
    ]
}

fn set_rows() -> Vec<Row> {
    vec![
        (&["SADD", KEY, "a"], wt()),
        (&["SREM", KEY, "a"], wt()),
        (&["SMEMBERS", KEY], wt()),
        (&["SISMEMBER", KEY, "a"], wt()),
        (&["SMISMEMBER", KEY, "a", "z"], wt()),
        (&["SCARD", KEY], wt()),
        (&["SPOP", KEY], wt()),
        (&["SPOP", KEY, "2"], wt()),
        (&["SPOP", KEY, "0"], wt()),
        (&["SRANDMEMBER", KEY], wt()),
        (&["SRANDMEMBER", KEY, "2"], wt()),
        (&["SRANDMEMBER", KEY, "-2"], wt()),
        (&["SRANDMEMBER", KEY, "0"], wt()),
        (&["SMOVE", KEY, "{t}set", "a"], wt()),
        (&["SMOVE", "{t}set", KEY, "a"], wt()),
        // A missing source answers 0 before the destination is looked at.
        (&["SMOVE", NONE, KEY, "a"], keeps(int(0))),
        (&["SINTER", KEY], wt()),
        (&["SINTER", "{t}set", KEY], wt()),
        // An empty (missing) set does not end the type checks.
        (&["SINTER", NONE, KEY], wt()),
        (&["SUNION", KEY, "{t}set"], wt()),
        (&["SUNION", NONE, KEY], wt()),
        (&["SDIFF", KEY, "{t}set"], wt()),
        (&["SDIFF", "{t}set", KEY], wt()),
        (&["SDIFF", NONE, KEY], wt()),
        (&["SINTERSTORE", DST, "{t}set", KEY], wt()),
        (&["SUNIONSTORE", DST, KEY], wt()),
        (&["SDIFFSTORE", DST, "{t}set", KEY], wt()),
        (&["SDIFFSTORE", DST, NONE, KEY], wt()),
        // A destination of another type is overwritten, or deleted by an
        // empty result.
        (&["SINTERSTORE", KEY, "{t}set"], writes(int(3), KEY, "set")),
        (&["SUNIONSTORE", KEY, "{t}set"], writes(int(3), KEY, "set")),
        (&["SDIFFSTORE", KEY, "{t}set"], writes(int(3), KEY, "set")),
        (&["SDIFFSTORE", KEY, "{t}set", "{t}set"], writes(int(0), KEY, "none")),
        (&["SINTERCARD", "1", KEY], wt()),
        (&["SINTERCARD", "2", NONE, KEY], wt()),
        (&["SINTERCARD", "2", "{t}set", KEY, "LIMIT", "1"], wt()),
        (&["SSCAN", KEY, "0"], wt()),
        // A bad argument: some are found before the type, some after.
        (&["SPOP", KEY, "-1"], bad(NOT_POSITIVE)),
        (&["SRANDMEMBER", KEY, "abc"], bad(NOT_INT)),
        (&["SINTERCARD", "1", KEY, "LIMIT", "-1"], bad("ERR LIMIT can't be negative")),
        (&["SSCAN", KEY, "abc"], bad("ERR invalid cursor")),
        (&["SSCAN", KEY, "0", "COUNT", "0"], wt()),
    ]
}

fn zset_rows() -> Vec<Row> {
    vec![
        (&["ZADD", KEY, "1", "m"], wt()),
        (&["ZADD", KEY, "NX", "1", "m"], wt()),
        (&["ZADD", KEY, "XX", "CH", "5", "a"], wt()),
        (&["ZADD", KEY, "INCR", "1", "m"], wt()),
        (&["ZINCRBY", KEY, "1", "a"], wt()),
        (&["ZSCORE", KEY, "a"], wt()),
        (&["ZMSCORE", KEY, "a", "z"], wt()),
        (&["ZREM", KEY, "a"], wt()),
        (&["ZCARD", KEY], wt()),
        (&["ZCOUNT", KEY, "-inf", "+inf"], wt()),
        (&["ZLEXCOUNT", KEY, "-", "+"], wt()),
        (&["ZRANK", KEY, "a"], wt()),
        (&["ZREVRANK", KEY, "a"], wt()),
        (&["ZRANGE", KEY, "0", "-1"], wt()),
        (&["ZRANGE", KEY, "0", "-1", "WITHSCORES"], wt()),
        (&["ZRANGE", KEY, "-inf", "+inf", "BYSCORE"], wt()),
        (&["ZRANGE", KEY, "+", "-", "BYLEX", "REV", "LIMIT", "0", "1"], wt()),
        (&["ZREVRANGE", KEY, "0", "-1"], wt()),
        (&["ZRANGEBYSCORE", KEY, "-inf", "+inf"], wt()),
        (&["ZREVRANGEBYSCORE", KEY, "+inf", "-inf"], wt()),
        (&["ZRANGEBYLEX", KEY, "-", "+"], wt()),
        (&["ZREVRANGEBYLEX", KEY, "+", "-"], wt()),
        (&["ZREMRANGEBYRANK", KEY, "0", "-1"], wt()),
        (&["ZREMRANGEBYSCORE", KEY, "-inf", "+inf"], wt()),
        (&["ZREMRANGEBYLEX", KEY, "-", "+"], wt()),
        (&["ZPOPMIN", KEY], wt()),
        (&["ZPOPMAX", KEY, "2"], wt()),
        (&["ZPOPMIN", KEY, "0"], wt()),
        (&["ZMPOP", "1", KEY, "MIN"], wt()),
        (&["ZMPOP", "2", NONE, KEY, "MAX", "COUNT", "2"], wt()),
        (&["ZMPOP", "2", KEY, "{t}zset", "MIN"], wt()),
        (&["ZRANDMEMBER", KEY], wt()),
        (&["ZRANDMEMBER", KEY, "2", "WITHSCORES"], wt()),
        (&["ZRANDMEMBER", KEY, "0"], wt()),
        (&["ZUNIONSTORE", DST, "1", KEY], sets_too(writes(int(3), DST, "zset"))),
        (&["ZUNIONSTORE", DST, "2", "{t}zset", KEY], sets_too(writes(int(3), DST, "zset"))),
        (&["ZINTERSTORE", DST, "2", KEY, "{t}zset"], sets_too(writes(int(3), DST, "zset"))),
        // An empty (missing) source does not end the type checks.
        (&["ZINTERSTORE", DST, "2", NONE, KEY], sets_too(keeps(int(0)))),
        // A destination of another type is overwritten, or deleted by an
        // empty result.
        (&["ZUNIONSTORE", KEY, "1", "{t}zset"], writes(int(3), KEY, "zset")),
        (&["ZINTERSTORE", KEY, "1", NONE], writes(int(0), KEY, "none")),
        (&["ZSCAN", KEY, "0"], wt()),
        // A bad argument: some are found before the type, some after.
        (&["ZADD", KEY, "abc", "m"], bad("ERR value is not a valid float")),
        (&["ZADD", KEY, "NX", "XX", "1", "m"], bad("ERR XX and NX options at the same time are not compatible")),
        (&["ZINCRBY", KEY, "abc", "m"], bad("ERR value is not a valid float")),
        (&["ZCOUNT", KEY, "a", "b"], bad("ERR min or max is not a float")),
        (&["ZLEXCOUNT", KEY, "a", "b"], bad("ERR min or max not valid string range item")),
        (&["ZRANGE", KEY, "a", "b"], bad(NOT_INT)),
        (&["ZRANGE", KEY, "0", "-1", "FOO"], bad(SYNTAX)),
        (&["ZPOPMIN", KEY, "-1"], bad(NOT_POSITIVE)),
        (&["ZRANDMEMBER", KEY, "abc"], bad(NOT_INT)),
        (&["ZUNIONSTORE", DST, "1", KEY, "WEIGHTS", "abc"], sets_too(bad("ERR weight value is not a float"))),
        (&["ZINTERSTORE", DST, "1", KEY, "AGGREGATE", "AVG"], sets_too(bad(SYNTAX))),
        (&["ZSCAN", KEY, "abc"], bad("ERR invalid cursor")),
        (&["ZSCAN", KEY, "0", "COUNT", "0"], wt()),
    ]
}

/// SORT reads lists, sets and sorted sets.
fn sort_rows() -> Vec<Row> {
    vec![
        (&["SORT", KEY], wt()),
        (&["SORT_RO", KEY], wt()),
        (&["SORT", KEY, "ALPHA", "STORE", DST], wt()),
        (&["SORT", "{t}list", "ALPHA", "STORE", KEY], writes(int(3), KEY, "list")),
        (&["SORT", NONE, "STORE", KEY], writes(int(0), KEY, "none")),
        (&["SORT", KEY, "LIMIT", "a", "b"], bad(NOT_INT)),
        (&["SORT", KEY, "FOO"], bad(SYNTAX)),
    ]
}

/// Every key a row may touch.
fn all_keys() -> Vec<String> {
    let mut keys: Vec<String> = KEYS.iter().map(|(kind, _)| format!("{{t}}{kind}")).collect();
    keys.extend([NONE.to_string(), DST.to_string()]);
    keys
}

/// Deletes every key, then makes one of each type, each with its own TTL.
fn reset(c: &mut redis::Connection) {
    let mut p = redis::pipe();
    p.cmd("DEL").arg(all_keys());
    for (i, (kind, make)) in KEYS.iter().enumerate() {
        let mut make_cmd = redis::cmd(make[0]);
        make_cmd.arg(&make[1..]);
        p.add_command(make_cmd);
        // Far in the future (2100), one millisecond apart.
        p.cmd("PEXPIREAT").arg(format!("{{t}}{kind}")).arg(4_102_444_800_000u64 + i as u64);
    }
    for r in pipeline(c, &p) {
        assert!(!r.is_error(), "setting up the keys: {r:?}");
    }
}

/// Each key's DUMP payload and PEXPIRETIME, in `all_keys` order; checks that
/// no other key exists.
fn snapshot(c: &mut redis::Connection) -> Vec<(String, Reply, Reply)> {
    let keys = all_keys();
    let mut p = redis::pipe();
    for k in &keys {
        p.cmd("DUMP").arg(k).cmd("PEXPIRETIME").arg(k);
    }
    p.cmd("DBSIZE");
    let replies = pipeline(c, &p);
    let (dbsize, pairs) = replies.split_last().unwrap();
    let snap: Vec<(String, Reply, Reply)> =
        keys.into_iter().zip(pairs.chunks(2)).map(|(k, r)| (k, r[0].clone(), r[1].clone())).collect();
    let present = snap.iter().filter(|(_, dump, _)| *dump != nil()).count() as i64;
    assert_eq!(*dbsize, int(present), "keys other than {snap:?}");
    snap
}

/// Runs every row against a key of each type not in `family`.
fn run_matrix(srv: &Server, family: &[&str], rows: Vec<Row>) {
    let mut c = srv.client();
    let mut cases = 0;
    for (kind, _) in KEYS.iter().filter(|(kind, _)| !family.contains(kind)) {
        let key = format!("{{t}}{kind}");
        for (template, want) in &rows {
            let args: Vec<String> =
                template.iter().map(|a| if *a == KEY { key.clone() } else { a.to_string() }).collect();
            let mut want = want;
            if let SetsToo(for_sets) = want {
                want = if *kind == "set" { for_sets } else { &WrongType };
            }
            reset(&mut c);
            let before = snapshot(&mut c);
            let got = cmd_vec(&mut c, &args);
            let after = snapshot(&mut c);
            match want {
                WrongType => {
                    assert_eq!(got, err(WRONGTYPE), "{args:?}");
                    assert_eq!(after, before, "{args:?} changed a key");
                }
                Keeps(reply) => {
                    assert_eq!(&got, reply, "{args:?}");
                    assert_eq!(after, before, "{args:?} changed a key");
                }
                Writes(reply, written, written_type) => {
                    assert_eq!(&got, reply, "{args:?}");
                    let written = if *written == KEY { key.as_str() } else { written };
                    assert_eq!(cmd(&mut c, &["TYPE", written]), status(written_type), "{args:?}");
                    let others = |s: &[(String, Reply, Reply)]| {
                        s.iter().filter(|(k, ..)| k != written).cloned().collect::<Vec<_>>()
                    };
                    assert_eq!(others(&after), others(&before), "{args:?} changed another key");
                }
                SetsToo(_) => unreachable!("resolved above"),
            }
            cases += 1;
        }
    }
    assert_eq!(cases, rows.len() * (KEYS.len() - family.len()));
}

shard_tests! {
    fn string_commands(srv) {
        run_matrix(srv, &["string"], string_rows());
    }

    fn list_commands(srv) {
        run_matrix(srv, &["list"], list_rows());
    }

    fn hash_commands(srv) {
        run_matrix(srv, &["hash"], hash_rows());
    }

    fn set_commands(srv) {
        run_matrix(srv, &["set"], set_rows());
    }

    fn zset_commands(srv) {
        run_matrix(srv, &["zset"], zset_rows());
    }

    fn sort_commands(srv) {
        run_matrix(srv, &["list", "set", "zset"], sort_rows());
    }
}
