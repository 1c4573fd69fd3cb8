//! Connection and server commands: PING ECHO HELLO AUTH SELECT QUIT RESET
//! CLIENT COMMAND CONFIG INFO TIME SHUTDOWN LASTSAVE. They act on the
//! connection or the server, so they run here rather than in the engine.

use crate::batch::Op;
use crate::conn::{Closing, Conn};
use crate::info;
use crate::pubsub;
use crate::runtime;
use crate::shard::Shard;
use crate::shared::Control;
use coreshard_engine::cmd::{CommandSpec, ConnCmd, Merge, flags, printable};
use coreshard_engine::reply::{NOT_INTEGER, SYNTAX};
use coreshard_engine::{Args, Proto, Reply, num};
use std::sync::atomic::Ordering::Relaxed;

/// The Redis version coreshard reports, for clients that gate features on it.
pub const REDIS_VERSION: &str = "7.2.0";

/// Runs connection command `cmd`.
pub(crate) fn run(shard: &mut Shard, idx: u32, conn: &mut Conn, cmd: ConnCmd, args: Args) {
    match cmd {
        ConnCmd::Ping if pubsub::restricted(conn) => match args.len() {
            1 | 2 => pubsub::subscribed_ping(conn, &args),
            _ => conn.reply().arity_error("ping"),
        },
        ConnCmd::Ping => match args.len() {
            1 => conn.reply().simple("PONG"),
            2 => conn.reply().bulk(args.get(1)),
            _ => conn.reply().arity_error("ping"),
        },
        ConnCmd::Echo => conn.reply().bulk(args.get(1)),
        ConnCmd::Hello => hello(shard, conn, args),
        ConnCmd::Auth => auth(shard, conn, args),
        ConnCmd::Select => match num::parse_i64(args.get(1)) {
            None => conn.reply().error(NOT_INTEGER),
            Some(db) if db != 0 && shard.cluster.is_some() => {
                conn.reply().error("ERR SELECT is not allowed in cluster mode")
            }
            Some(db) if db < 0 || db as usize >= shard.ks.databases() => {
                conn.reply().error("ERR DB index is out of range")
            }
            Some(db) => {
                conn.db = db as usize;
                conn.reply().ok();
            }
        },
        ConnCmd::Quit => {
            conn.reply().ok();
            conn.closing = Closing::AfterReply;
        }
        ConnCmd::Reset => {
            pubsub::drop_all(shard, idx, conn.subs.take());
            conn.multi = None;
            crate::multi::unwatch_all(shard, idx, conn);
            conn.db = 0;
            conn.proto = Proto::Resp2;
            conn.name.clear();
            conn.readonly = false;
            conn.authenticated = shard.config.requirepass.is_none();
            conn.reply().simple("RESET");
        }
        ConnCmd::Client => client(shard, idx, conn, args),
        ConnCmd::Command => command(shard, conn, args),
        ConnCmd::Config => config(shard, conn, args),
        ConnCmd::Info => {
            let text = info::render(shard, &args);
            conn.reply().verbatim(text.as_bytes());
        }
        ConnCmd::Time => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let mut r = conn.reply();
            r.array(2);
            r.bulk_int(now.as_secs() as i64);
            r.bulk_int(now.subsec_micros() as i64);
        }
        ConnCmd::Shutdown => {
            let mode_ok = args.iter_from(1).all(|a| {
                ["NOSAVE", "SAVE", "NOW", "FORCE", "ABORT"].iter().any(|m| a.eq_ignore_ascii_case(m.as_bytes()))
            });
            let given = |mode: &str| args.iter_from(1).any(|a| a.eq_ignore_ascii_case(mode.as_bytes()));
            let abort = given("ABORT");
            // As Redis: ABORT goes alone, and NOSAVE contradicts SAVE.
            let other_than_abort = args.iter_from(1).any(|a| !a.eq_ignore_ascii_case(b"ABORT"));
            if !mode_ok || (abort && other_than_abort) || (given("NOSAVE") && given("SAVE")) {
                return conn.reply().error(SYNTAX);
            }
            if abort {
                return conn.reply().error("ERR No shutdown in progress.");
            }
            tracing::warn!("user requested shutdown (SHUTDOWN from client {})", conn.addr);
            shard.shared.shutdown.store(true, Relaxed);
            shard.shared.wake_all();
            let _ = shard.shared.repl.events.send(crate::repl::LinkEvent::Shutdown);
            // Redis closes the connection without a reply on success.
            conn.closing = Closing::Now;
        }
        ConnCmd::Lastsave => conn.reply().int(shard.shared.start_unix as i64),
        ConnCmd::Subscribe => pubsub::subscribe(shard, idx, conn, args, false),
        ConnCmd::Psubscribe => pubsub::subscribe(shard, idx, conn, args, true),
        ConnCmd::Unsubscribe => pubsub::unsubscribe(shard, idx, conn, args, false),
        ConnCmd::Punsubscribe => pubsub::unsubscribe(shard, idx, conn, args, true),
        ConnCmd::Publish => pubsub::publish(shard, idx, conn, args),
        ConnCmd::Pubsub => pubsub::pubsub(shard, idx, conn, args),
        ConnCmd::Replicaof | ConnCmd::Role | ConnCmd::Wait | ConnCmd::Replconf | ConnCmd::Psync | ConnCmd::Sync => {
            crate::repl::run(shard, idx, conn, cmd, args)
        }
        ConnCmd::Cluster => crate::cluster::run(shard, idx, conn, args),
        ConnCmd::Readonly => crate::cluster::readonly(shard, conn, true),
        ConnCmd::Readwrite => crate::cluster::readonly(shard, conn, false),
        ConnCmd::Multi | ConnCmd::Exec | ConnCmd::Discard | ConnCmd::Watch | ConnCmd::Unwatch => {
            crate::multi::run(shard, idx, conn, cmd, args)
        }
    }
}

fn check_password(shard: &Shard, user: &[u8], pass: &[u8]) -> bool {
    if user != b"default" {
        return false;
    }
    match &shard.config.requirepass {
        None => true,
        Some(p) => constant_time_eq(p.as_bytes(), pass),
    }
}

/// Compares without an early exit, so the time taken does not reveal the common prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= (a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// AUTH [username] password
fn auth(shard: &mut Shard, conn: &mut Conn, args: Args) {
    if args.len() > 3 {
        return conn.reply().error(SYNTAX);
    }
    let (user, pass) = if args.len() == 2 {
        if shard.config.requirepass.is_none() {
            return conn.reply().error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            );
        }
        (&b"default"[..], args.get(1))
    } else {
        (args.get(1), args.get(2))
    };
    if check_password(shard, user, pass) {
        conn.authenticated = true;
        conn.reply().ok();
    } else {
        shard.counters.errors += 1;
        conn.reply().error(WRONGPASS);
    }
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(shard: &mut Shard, conn: &mut Conn, args: Args) {
    let mut proto = None;
    if args.len() >= 2 {
        match num::parse_i64(args.get(1)) {
            None => {
                return conn.reply().error("ERR Protocol version is not an integer or out of range");
            }
            Some(2) => proto = Some(Proto::Resp2),
            Some(3) => proto = Some(Proto::Resp3),
            Some(_) => return conn.reply().error("NOPROTO unsupported protocol version"),
        }
    }
    let mut i = 2;
    let mut name = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args.is(i, "AUTH") && more >= 2 {
            if !check_password(shard, args.get(i + 1), args.get(i + 2)) {
                shard.counters.errors += 1;
                return conn.reply().error(WRONGPASS);
            }
            conn.authenticated = true;
            i += 3;
        } else if args.is(i, "SETNAME") && more >= 1 {
            if let Err(e) = valid_client_name(args.get(i + 1)) {
                return conn.reply().error(e);
            }
            name = Some(args.get(i + 1));
            i += 2;
        } else {
            return conn.reply().error(&format!("ERR Syntax error in HELLO option '{}'", printable(args.get(i), 128)));
        }
    }
    if !conn.authenticated {
        return conn.reply().error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
    }
    if let Some(n) = name {
        conn.name = n.to_vec();
    }
    if let Some(p) = proto {
        conn.proto = p;
    }
    let (proto, id) = (if conn.proto == Proto::Resp3 { 3 } else { 2 }, conn.id as i64);
    let mut r = conn.reply();
    r.map(7);
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(REDIS_VERSION.as_bytes());
    r.bulk(b"proto");
    r.int(proto);
    r.bulk(b"id");
    r.int(id);
    r.bulk(b"mode");
    r.bulk(b"standalone");
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"modules");
    r.array(0);
}

fn valid_client_name(name: &[u8]) -> Result<(), &'static str> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    Ok(())
}

/// The CLIENT LIST line of one connection.
pub(crate) fn client_line(c: &Conn, now_ns: u64, out: &mut Vec<u8>) {
    use std::io::Write;
    let age = now_ns.saturating_sub(c.created_ns) / 1_000_000_000;
    let idle = now_ns.saturating_sub(c.last_ns) / 1_000_000_000;
    // While a connection executes, its read buffer is lent out: report it as empty.
    let qbuf = c.rbuf.len().saturating_sub(c.rpos);
    // In Redis's order (`getClientInfoString`): x in MULTI, b blocked, U unix socket, N none.
    let mut flags = String::new();
    if c.multi.is_some() {
        flags.push('x');
    }
    if c.blocked.is_some_and(|b| b.parked) {
        flags.push('b');
    }
    if c.unix {
        flags.push('U');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let _ = writeln!(
        out,
        "id={} addr={} laddr={} fd={} name={} age={age} idle={idle} flags={flags} db={} sub=0 psub=0 ssub=0 multi={} \
         qbuf={qbuf} qbuf-free={} argv-mem=0 multi-mem=0 rbs={} rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} \
         user=default redir=-1 resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        String::from_utf8_lossy(&c.name),
        c.db,
        c.multi.as_ref().map_or(-1, |m| m.len() as i64),
        c.rbuf.capacity() - c.rbuf.len(),
        c.rbuf.capacity(),
        c.output_pending(),
        c.rbuf.capacity() + c.out.capacity() + c.sending.capacity(),
        match c.last_sub {
            Some(sub) => format!("{}|{}", c.last_cmd, sub.to_ascii_lowercase()),
            None => c.last_cmd.to_string(),
        },
        if c.proto == Proto::Resp3 { 3 } else { 2 },
        String::from_utf8_lossy(&c.lib_name),
        String::from_utf8_lossy(&c.lib_ver),
    );
}

/// A CLIENT LIST / CLIENT KILL filter.
#[derive(Default)]
struct Filter<'a> {
    ids: Vec<u64>,
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    kind: Option<&'a [u8]>,
    user: Option<&'a [u8]>,
    skipme: bool,
    maxage: Option<u64>,
}

impl Filter<'_> {
    fn matches(&self, c: &Conn, is_caller: bool, now_ns: u64) -> bool {
        (self.ids.is_empty() || self.ids.contains(&c.id))
            && self.addr.is_none_or(|a| a == c.addr.as_bytes())
            && self.laddr.is_none_or(|a| a == c.laddr.as_bytes())
            && self.kind.is_none_or(|k| k.eq_ignore_ascii_case(b"normal"))
            && self.user.is_none_or(|u| u == b"default")
            && !(self.skipme && is_caller)
            && self.maxage.is_none_or(|m| now_ns.saturating_sub(c.created_ns) / 1_000_000_000 >= m)
    }
}

/// Parses CLIENT LIST's `[TYPE t] [ID id ...]` or CLIENT KILL's filters from `from`.
fn parse_filter<'a>(args: &Args<'a>, from: usize, kill: bool) -> Result<Filter<'a>, String> {
    let mut f = Filter { skipme: kill, ..Default::default() };
    let mut i = from;
    while i < args.len() {
        let Some(v) = args.try_get(i + 1) else {
            return Err(SYNTAX.into());
        };
        if args.is(i, "ID") {
            let mut j = i + 1;
            loop {
                match num::parse_i64(args.get(j)) {
                    Some(id) if id > 0 => f.ids.push(id as u64),
                    _ if kill || j == i + 1 => {
                        return Err("ERR client-id should be greater than 0".into());
                    }
                    _ => break,
                }
                j += 1;
                if kill || j >= args.len() {
                    break;
                }
            }
            i = j;
            continue;
        } else if args.is(i, "TYPE") {
            let known =
                ["normal", "master", "replica", "slave", "pubsub"].iter().any(|t| v.eq_ignore_ascii_case(t.as_bytes()));
            if !known {
                return Err(format!("ERR Unknown client type '{}'", printable(v, 64)));
            }
            f.kind = Some(v);
        } else if kill && args.is(i, "ADDR") {
            f.addr = Some(v);
        } else if kill && args.is(i, "LADDR") {
            f.laddr = Some(v);
        } else if kill && args.is(i, "USER") {
            f.user = Some(v);
        } else if kill && args.is(i, "SKIPME") {
            match v.to_ascii_lowercase().as_slice() {
                b"yes" => f.skipme = true,
                b"no" => f.skipme = false,
                _ => return Err(SYNTAX.into()),
            }
        } else if kill && args.is(i, "MAXAGE") {
            f.maxage = Some(num::parse_u64(v).ok_or(NOT_INTEGER)?);
        } else {
            return Err(SYNTAX.into());
        }
        i += 2;
    }
    Ok(f)
}

/// CLIENT LIST over this shard's connections (the caller's included when given).
pub(crate) fn client_list_local(shard: &Shard, caller: Option<&Conn>, args: Args, out: &mut Vec<u8>) {
    let Ok(filter) = parse_filter(&args, 2, false) else {
        return;
    };
    let now = runtime::monotonic_ns();
    let conns = shard.conns.iter().flatten().chain(caller);
    let mut lines: Vec<(u64, Vec<u8>)> = Vec::new();
    for c in conns {
        if filter.matches(c, false, now) {
            let mut line = Vec::new();
            client_line(c, now, &mut line);
            lines.push((c.id, line));
        }
    }
    lines.sort_by_key(|l| l.0);
    for (_, l) in lines {
        out.extend_from_slice(&l);
    }
}

/// CLIENT KILL over this shard's connections: the number killed. The
/// arguments are the filters after KILL; a two-argument form (`addr`) is
/// turned into an ADDR filter by the caller.
pub(crate) fn client_kill_local(shard: &mut Shard, caller: Option<&Conn>, args: Args) -> i64 {
    let Ok(filter) = parse_filter(&args, 2, true) else {
        return 0;
    };
    let now = runtime::monotonic_ns();
    let mut n = 0;
    if let Some(c) = caller
        && filter.matches(c, true, now)
    {
        // The caller itself is closed by the coordinator after its reply.
        n += 1;
    }
    let victims: Vec<u32> = (0..shard.conns.len() as u32)
        .filter(|&i| shard.conns[i as usize].as_ref().is_some_and(|c| filter.matches(c, false, now)))
        .collect();
    for i in victims {
        if let Some(c) = shard.conns[i as usize].as_mut() {
            c.closing = Closing::Now;
        }
        shard.begin_close(i);
        n += 1;
    }
    n
}

/// Subcommands with their Redis arity (the container's name counts).
const CLIENT_SUBCOMMANDS: &[(&str, i32)] = &[
    ("ID", 2),
    ("GETNAME", 2),
    ("SETNAME", 3),
    ("SETINFO", 4),
    ("INFO", 2),
    ("LIST", -2),
    ("KILL", -3),
    ("UNBLOCK", -3),
    ("NO-EVICT", 3),
    ("NO-TOUCH", 3),
    ("HELP", 2),
];
const CONFIG_SUBCOMMANDS: &[(&str, i32)] = &[("GET", -3), ("SET", -4), ("RESETSTAT", 2), ("REWRITE", 2), ("HELP", 2)];
const COMMAND_SUBCOMMANDS: &[(&str, i32)] =
    &[("COUNT", 2), ("LIST", -2), ("INFO", -2), ("DOCS", -2), ("GETKEYS", -3), ("HELP", 2)];

/// Checks a container command's subcommand and its arity, writing Redis's
/// error when either is wrong.
pub(crate) fn check_subcommand(conn: &mut Conn, container: &str, table: &[(&'static str, i32)], args: &Args) -> bool {
    let sub = args.get(1);
    match table.iter().find(|(name, _)| sub.eq_ignore_ascii_case(name.as_bytes())) {
        None => {
            conn.reply().error(&coreshard_engine::cmd::unknown_subcommand_error(container, sub));
            false
        }
        Some(&(name, arity)) => {
            conn.last_sub = Some(name);
            let ok = if arity >= 0 { args.len() == arity as usize } else { args.len() >= (-arity) as usize };
            if !ok {
                conn.reply().error(&coreshard_engine::cmd::subcommand_arity_error(container, sub));
            }
            ok
        }
    }
}

fn client(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args) {
    if !check_subcommand(conn, "client", CLIENT_SUBCOMMANDS, &args) {
        return;
    }
    let sub = args.get(1).to_ascii_uppercase();
    match sub.as_slice() {
        b"ID" if args.len() == 2 => {
            let id = conn.id as i64;
            conn.reply().int(id)
        }
        b"GETNAME" if args.len() == 2 => {
            let name = (!conn.name.is_empty()).then(|| conn.name.clone());
            conn.reply().bulk_or_null(name.as_deref());
        }
        b"SETNAME" if args.len() == 3 => match valid_client_name(args.get(2)) {
            Ok(()) => {
                conn.name = args.get(2).to_vec();
                conn.reply().ok();
            }
            Err(e) => conn.reply().error(e),
        },
        b"SETINFO" if args.len() == 4 => {
            let v = args.get(3);
            if v.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                return conn.reply().error(&format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    printable(args.get(2), 32)
                ));
            }
            if args.is(2, "LIB-NAME") {
                conn.lib_name = v.to_vec();
            } else if args.is(2, "LIB-VER") {
                conn.lib_ver = v.to_vec();
            } else {
                return conn.reply().error(&format!("ERR Unrecognized option '{}'", printable(args.get(2), 64)));
            }
            conn.reply().ok();
        }
        b"INFO" if args.len() == 2 => {
            let mut line = Vec::new();
            client_line(conn, runtime::monotonic_ns(), &mut line);
            conn.reply().verbatim(&line);
        }
        b"LIST" => {
            if let Err(e) = parse_filter(&args, 2, false) {
                return conn.reply().error(&e);
            }
            shard.run_on_all(idx, conn, args, Op::ClientList, Merge::Text);
        }
        b"KILL" => {
            if args.len() == 3 {
                // Old form: CLIENT KILL addr:port, +OK or an error.
                let mut found = false;
                let target = args.get(2);
                if conn.addr.as_bytes() == target {
                    found = true;
                    conn.closing = Closing::AfterReply;
                }
                let victims: Vec<u32> = (0..shard.conns.len() as u32)
                    .filter(|&i| shard.conns[i as usize].as_ref().is_some_and(|c| c.addr.as_bytes() == target))
                    .collect();
                for i in victims {
                    shard.begin_close(i);
                    found = true;
                }
                if !found && shard.map.shards() > 1 {
                    // The address may belong to another shard: ask every shard.
                    let owned = coreshard_engine::OwnedArgs::from_parts([
                        &b"CLIENT"[..],
                        b"KILL",
                        b"ADDR",
                        target,
                        b"SKIPME",
                        b"no",
                    ]);
                    return shard.run_on_all(idx, conn, owned.view(), Op::ClientKill, Merge::Found);
                }
                if found {
                    conn.reply().ok()
                } else {
                    conn.reply().error("ERR No such client")
                }
                return;
            }
            if let Err(e) = parse_filter(&args, 2, true) {
                return conn.reply().error(&e);
            }
            let kills_caller =
                parse_filter(&args, 2, true).is_ok_and(|f| f.matches(conn, true, runtime::monotonic_ns()));
            shard.run_on_all(idx, conn, args, Op::ClientKill, Merge::Sum);
            if kills_caller {
                conn.closing = Closing::AfterReply;
            }
        }
        b"UNBLOCK" if args.len() <= 4 => {
            // CLIENT UNBLOCK id [TIMEOUT|ERROR]: the reason is checked first, as in Redis.
            if args.len() == 4 && !args.is(3, "TIMEOUT") && !args.is(3, "ERROR") {
                return conn.reply().error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            }
            match num::parse_i64(args.get(2)) {
                None => conn.reply().error(NOT_INTEGER),
                // The caller is running this command, so it is not blocked.
                Some(id) if id <= 0 || id as u64 == conn.id => conn.reply().int(0),
                Some(_) => shard.run_on_all(idx, conn, args, Op::ClientUnblock, Merge::Sum),
            }
        }
        b"NO-EVICT" | b"NO-TOUCH" if args.len() == 3 => {
            if args.is(2, "ON") || args.is(2, "OFF") {
                conn.reply().ok()
            } else {
                conn.reply().error(SYNTAX)
            }
        }
        b"HELP" => help(conn, "CLIENT", CLIENT_HELP),
        _ => conn.reply().error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            printable(args.get(1), 128)
        )),
    }
}

const COMMAND_HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all commands.",
    "COUNT",
    "    Return the total number of commands.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple commands.",
    "INFO [<command-name> ...]",
    "    Return details about multiple commands.",
    "LIST",
    "    Return a list of all commands.",
];

const CLIENT_HELP: &[&str] = &[
    "ID",
    "    Return the ID of the current connection.",
    "GETNAME",
    "    Return the name of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID, ADDR, LADDR, TYPE, USER, SKIPME, MAXAGE.",
    "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [<id> ...]]",
    "    Return information about client connections.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
];

pub(crate) fn help(conn: &mut Conn, cmd: &str, lines: &[&str]) {
    let mut r = conn.reply();
    r.array(lines.len() + 3);
    r.simple(&format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for l in lines {
        r.simple(l);
    }
    r.simple("HELP");
    r.simple("    Prints this help.");
}

fn command_info(spec: &CommandSpec, r: &mut Reply) {
    r.array(10);
    r.bulk(spec.name.as_bytes());
    r.int(spec.arity as i64);
    let names: Vec<&str> = flags::NAMES.iter().filter(|(f, _)| spec.has(*f)).map(|(_, n)| *n).collect();
    r.set(names.len());
    for n in names {
        r.simple(n);
    }
    // Movable keys have no fixed positions: Redis shows 0 0 0 for them.
    let (first, last, step) =
        if spec.has(flags::MOVABLEKEYS) { (0, 0, 0) } else { (spec.first_key, spec.last_key, spec.step) };
    r.int(first as i64);
    r.int(last as i64);
    r.int(step as i64);
    r.set(1);
    r.simple(&format!("@{}", spec.group));
    r.set(0);
    r.array(0);
    r.array(0);
}

fn command_docs(spec: &CommandSpec, r: &mut Reply) {
    r.bulk(spec.name.as_bytes());
    r.map(3);
    r.bulk(b"summary");
    r.bulk(spec.summary.as_bytes());
    r.bulk(b"since");
    r.bulk(spec.since.as_bytes());
    r.bulk(b"group");
    r.bulk(spec.group.as_bytes());
}

fn command(shard: &mut Shard, conn: &mut Conn, args: Args) {
    let table = shard.table;
    if args.len() > 1 && !check_subcommand(conn, "command", COMMAND_SUBCOMMANDS, &args) {
        return;
    }
    if args.is(1, "HELP") {
        return help(conn, "COMMAND", COMMAND_HELP);
    }
    let mut r = Reply::new(&mut conn.out, conn.proto);
    if args.len() == 1 {
        r.array(table.all().len());
        for spec in table.all() {
            command_info(spec, &mut r);
        }
        return;
    }
    match args.get(1).to_ascii_uppercase().as_slice() {
        b"COUNT" if args.len() == 2 => r.int(table.all().len() as i64),
        b"LIST" => {
            // [FILTERBY MODULE name | ACLCAT category | PATTERN pattern], as
            // the last three arguments. No command comes from a module, and a
            // command's one ACL category is the group COMMAND INFO shows.
            let listed: Vec<&str> =
                match (args.len(), args.try_get(3).unwrap_or_default().to_ascii_uppercase().as_slice()) {
                    (2, _) => table.all().iter().map(|spec| spec.name).collect(),
                    (5, b"MODULE") if args.is(2, "FILTERBY") => Vec::new(),
                    (5, b"ACLCAT") if args.is(2, "FILTERBY") => {
                        let category = args.get(4);
                        table
                            .all()
                            .iter()
                            .filter(|spec| category.eq_ignore_ascii_case(spec.group.as_bytes()))
                            .map(|spec| spec.name)
                            .collect()
                    }
                    (5, b"PATTERN") if args.is(2, "FILTERBY") => {
                        let pattern = args.get(4);
                        table
                            .all()
                            .iter()
                            .filter(|spec| coreshard_engine::glob::glob_match(pattern, spec.name.as_bytes(), true))
                            .map(|spec| spec.name)
                            .collect()
                    }
                    _ => return r.error(SYNTAX),
                };
            r.array(listed.len());
            for name in listed {
                r.bulk(name.as_bytes());
            }
        }
        b"INFO" => {
            if args.len() == 2 {
                r.array(table.all().len());
                for spec in table.all() {
                    command_info(spec, &mut r);
                }
            } else {
                r.array(args.len() - 2);
                for name in args.iter_from(2) {
                    match table.lookup(name) {
                        Some(spec) => command_info(spec, &mut r),
                        None => r.null_array(),
                    }
                }
            }
        }
        b"DOCS" => {
            let specs: Vec<&CommandSpec> = if args.len() == 2 {
                table.all().to_vec()
            } else {
                args.iter_from(2).filter_map(|n| table.lookup(n)).collect()
            };
            r.map(specs.len());
            for spec in specs {
                command_docs(spec, &mut r);
            }
        }
        b"GETKEYS" if args.len() >= 3 => {
            let sub = Args::new(args.buf(), &args.spans()[2..]);
            match table.lookup(sub.get(0)) {
                None => r.error("ERR Invalid command specified"),
                Some(spec) if !spec.arity_ok(sub.len()) => {
                    r.error("ERR Invalid number of arguments specified for command")
                }
                Some(spec) if spec.first_key == 0 && !spec.has(flags::MOVABLEKEYS) => {
                    r.error("ERR The command has no key arguments")
                }
                Some(spec) => {
                    let keys: Vec<usize> = spec.keys(&sub).collect();
                    if keys.is_empty() {
                        return r.error("ERR Invalid arguments specified for command");
                    }
                    r.array(keys.len());
                    for k in keys {
                        r.bulk(sub.get(k));
                    }
                }
            }
        }
        _ => r.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try COMMAND HELP.",
            printable(args.get(1), 128)
        )),
    }
}

fn config(shard: &mut Shard, conn: &mut Conn, args: Args) {
    if !check_subcommand(conn, "config", CONFIG_SUBCOMMANDS, &args) {
        return;
    }
    if args.is(1, "SET") && args.len() % 2 == 1 {
        return conn.reply().error(SYNTAX);
    }
    match args.get(1).to_ascii_uppercase().as_slice() {
        b"GET" if args.len() >= 3 => {
            let mut pairs: Vec<(String, String)> = Vec::new();
            for pattern in args.iter_from(2) {
                for (k, v) in shard.config.get_matching(&String::from_utf8_lossy(pattern)) {
                    if !pairs.iter().any(|(name, _)| *name == k) {
                        pairs.push((k, v));
                    }
                }
            }
            let mut r = conn.reply();
            r.map(pairs.len());
            for (k, v) in pairs {
                r.bulk(k.as_bytes());
                r.bulk(v.as_bytes());
            }
        }
        b"SET" if args.len() >= 4 && args.len() % 2 == 0 => {
            let owned: Vec<(String, String)> = (2..args.len())
                .step_by(2)
                .map(|i| {
                    (
                        String::from_utf8_lossy(args.get(i)).into_owned(),
                        String::from_utf8_lossy(args.get(i + 1)).into_owned(),
                    )
                })
                .collect();
            let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            match shard.config.set_many(&pairs) {
                Err(e) => conn.reply().error(&e.redis_text()),
                Ok(warnings) => {
                    for w in warnings {
                        tracing::warn!("CONFIG SET: {w}");
                    }
                    if let Ok(mut master) = shard.shared.config.lock() {
                        let _ = master.set_many(&pairs);
                    }
                    for (s, tx) in shard.shared.control.iter().enumerate() {
                        if s != shard.id {
                            let _ = tx.send(Control::ConfigSet(owned.clone()));
                            shard.shared.wake(s);
                        }
                    }
                    // A password set now applies to new connections; this one stays authenticated.
                    conn.reply().ok();
                }
            }
        }
        b"RESETSTAT" if args.len() == 2 => conn.reply().ok(),
        b"REWRITE" if args.len() == 2 => {
            if shard.shared.config_file.is_none() {
                // Redis's answer when it was started without a config file.
                conn.reply().error("ERR The server is running without a config file")
            } else {
                conn.reply().error("ERR CONFIG REWRITE is not supported: edit the config file and restart")
            }
        }
        b"HELP" => help(
            conn,
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
            ],
        ),
        _ => conn.reply().error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
            printable(args.get(1), 128)
        )),
    }
}
