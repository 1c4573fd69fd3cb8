//! What the journal tests share: running a command the way a shard does
//! (its handler, then `Ctx::log`, which is `Keyspace::log_command`), and reading a journal back
//! as the commands a replica would execute.

#![allow(dead_code)]

use coreshard_engine::cmd::{Attempt, Items};
use coreshard_engine::journal::encode_command;
use coreshard_engine::{CommandTable, Ctx, Keyspace, Kind, OwnedArgs, Proto, Reply, UnixMs};

/// Runs `args` against database `db` of `ks` at `now` as a shard runs a
/// command: the whole command (a multi-key one's keys all live here), its
/// part for a command over every shard, one attempt for a blocking one (a
/// null array stands for the wait, as inside MULTI). Then it is logged.
/// Returns the reply.
pub fn run(ks: &mut Keyspace, db: usize, now: UnixMs, args: &[&[u8]]) -> Vec<u8> {
    let owned = OwnedArgs::from_parts(args.iter().copied());
    let view = owned.view();
    let Some(spec) = CommandTable::get().lookup(args[0]) else {
        panic!("unknown command {}", String::from_utf8_lossy(args[0]));
    };
    assert!(spec.arity_ok(args.len()), "arity of {}", spec.name);
    let mut out = Vec::new();
    let dirty = ks.stats.dirty;
    let mut ctx = Ctx { ks, db, now, args: view };
    match spec.kind {
        Kind::Keyed(h) | Kind::MultiKey { whole: h, .. } => h(&mut ctx, &mut Reply::new(&mut out, Proto::Resp2)),
        Kind::AllShards { check, part, .. } => match check(&view) {
            Ok(()) => part(&mut ctx, &mut Items::new(&mut out, &mut Vec::new(), Proto::Resp2)),
            Err(e) => Reply::new(&mut out, Proto::Resp2).error(&e),
        },
        Kind::Blocking(b) => {
            if let Attempt::Block { .. } = (b.attempt)(&mut ctx, &mut Reply::new(&mut out, Proto::Resp2)) {
                Reply::new(&mut out, Proto::Resp2).null_array();
            }
        }
        Kind::Conn(_) => panic!("{} is a connection command", spec.name),
    }
    ctx.log(dirty);
    out
}

/// [`run`] with text arguments.
pub fn run_str(ks: &mut Keyspace, db: usize, now: UnixMs, args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    run(ks, db, now, &args)
}

/// The journal's bytes from `from` to its end.
pub fn journal_since(ks: &Keyspace, from: u64) -> Vec<u8> {
    let mut out = Vec::new();
    ks.journal.copy_from(from, usize::MAX, &mut out).expect("the position is in the backlog");
    out
}

/// `entries` encoded as the journal writes them.
pub fn encoded(entries: &[&[&str]]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        encode_command(&mut out, e.iter().map(|a| a.as_bytes()));
    }
    out
}

/// Splits a journal stream into its commands. The stream is only ever
/// arrays of bulk strings; anything else fails the test.
pub fn parse_stream(mut bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    fn line(bytes: &mut &[u8], kind: u8) -> usize {
        assert_eq!(bytes.first(), Some(&kind), "expected {:?}", kind as char);
        let end = bytes.windows(2).position(|w| w == b"\r\n").expect("a line ends");
        let n = std::str::from_utf8(&bytes[1..end]).expect("ascii").parse().expect("a length");
        *bytes = &bytes[end + 2..];
        n
    }
    let mut commands = Vec::new();
    while !bytes.is_empty() {
        let n = line(&mut bytes, b'*');
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            let len = line(&mut bytes, b'$');
            assert_eq!(&bytes[len..len + 2], b"\r\n", "a bulk ends with CRLF");
            args.push(bytes[..len].to_vec());
            bytes = &bytes[len + 2..];
        }
        commands.push(args);
    }
    commands
}

/// Executes a journal stream on `ks` as a replica applying its primary's
/// stream does, following SELECT; returns the database it ends in.
pub fn apply_stream(ks: &mut Keyspace, mut db: usize, now: UnixMs, stream: &[u8]) -> usize {
    for cmd in parse_stream(stream) {
        if cmd[0].eq_ignore_ascii_case(b"SELECT") {
            db = std::str::from_utf8(&cmd[1]).expect("ascii").parse().expect("a database");
            continue;
        }
        let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        let reply = run(ks, db, now, &args);
        assert!(
            !reply.starts_with(b"-"),
            "the replica refused {:?}: {}",
            args.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>(),
            String::from_utf8_lossy(&reply)
        );
    }
    db
}

/// DEBUG DIGEST of `ks` at `now`.
pub fn digest(ks: &mut Keyspace, now: UnixMs) -> String {
    String::from_utf8(run_str(ks, 0, now, &["DEBUG", "DIGEST"])).expect("ascii")
}
