//! Pub/Sub: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB, in
//! RESP2 and RESP3, with subscribers spread over connections (and so, with 4
//! shards, over shards). Byte-exact where the push format is the point.

#[macro_use]
mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// Sends `args` and reads exactly `n` replies, returned as raw bytes.
fn send(s: &mut TcpStream, args: &[&str], n: usize) -> Vec<u8> {
    s.write_all(&resp_cmd(args)).unwrap();
    let mut buf = Vec::new();
    read_replies(s, &mut buf, n).unwrap();
    buf
}

/// Reads exactly `n` pushed messages.
fn receive(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    read_replies(s, &mut buf, n).unwrap();
    buf
}

fn sub_reply(kind: &str, name: &str, count: usize) -> Vec<u8> {
    format!("*3\r\n${}\r\n{kind}\r\n${}\r\n{name}\r\n:{count}\r\n", kind.len(), name.len()).into_bytes()
}

fn message(channel: &str, payload: &str) -> Vec<u8> {
    format!("*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n", channel.len(), payload.len())
        .into_bytes()
}

shard_tests! {
    fn subscribe_publish_across_connections(srv) {
        // Ten subscribers on their own connections, each on its own channel
        // and all on "news"; with 4 shards they spread over the shards.
        let mut subs: Vec<TcpStream> = (0..10).map(|_| srv.raw()).collect();
        for (i, s) in subs.iter_mut().enumerate() {
            let own = format!("chan:{i}");
            let got = send(s, &["SUBSCRIBE", "news", &own], 2);
            assert_eq!(got, [sub_reply("subscribe", "news", 1), sub_reply("subscribe", &own, 2)].concat());
        }
        let mut publisher = srv.client();
        assert_eq!(cmd(&mut publisher, &["PUBLISH", "news", "hello"]), int(10));
        for s in subs.iter_mut() {
            assert_eq!(receive(s, 1), message("news", "hello"));
        }
        for (i, s) in subs.iter_mut().enumerate() {
            let own = format!("chan:{i}");
            assert_eq!(cmd(&mut publisher, &["PUBLISH", &own, "direct"]), int(1));
            assert_eq!(receive(s, 1), message(&own, "direct"));
        }
        assert_eq!(cmd(&mut publisher, &["PUBLISH", "nobody-listens", "x"]), int(0));
    }

    fn pattern_subscriptions(srv) {
        let mut s = srv.raw();
        assert_eq!(send(&mut s, &["PSUBSCRIBE", "news.*", "h?llo"], 2), [sub_reply("psubscribe", "news.*", 1), sub_reply("psubscribe", "h?llo", 2)].concat());
        assert_eq!(send(&mut s, &["SUBSCRIBE", "news.art"], 1), sub_reply("subscribe", "news.art", 3));
        let mut p = srv.client();
        // The channel subscription and the pattern both match: two deliveries.
        assert_eq!(cmd(&mut p, &["PUBLISH", "news.art", "paint"]), int(2));
        let got = receive(&mut s, 2);
        let pmessage = b"*4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$8\r\nnews.art\r\n$5\r\npaint\r\n".to_vec();
        let both = [message("news.art", "paint"), pmessage.clone()];
        assert!(got == [both[0].clone(), both[1].clone()].concat() || got == [both[1].clone(), both[0].clone()].concat(), "{}", String::from_utf8_lossy(&got));
        assert_eq!(cmd(&mut p, &["PUBLISH", "hello", "x"]), int(1));
        assert_eq!(receive(&mut s, 1), b"*4\r\n$8\r\npmessage\r\n$5\r\nh?llo\r\n$5\r\nhello\r\n$1\r\nx\r\n".to_vec());
        assert_eq!(send(&mut s, &["PUNSUBSCRIBE", "h?llo"], 1), sub_reply("punsubscribe", "h?llo", 2));
        assert_eq!(cmd(&mut p, &["PUBLISH", "hello", "x"]), int(0));
    }

    fn subscribed_resp2_context_restrictions(srv) {
        let mut s = srv.raw();
        send(&mut s, &["SUBSCRIBE", "a"], 1);
        assert_eq!(send(&mut s, &["GET", "k"], 1), b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n".to_vec());
        assert_eq!(send(&mut s, &["PING"], 1), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n".to_vec());
        assert_eq!(send(&mut s, &["PING", "hi"], 1), b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n".to_vec());
        // Leaving every channel ends the subscribed context.
        assert_eq!(send(&mut s, &["UNSUBSCRIBE"], 1), sub_reply("unsubscribe", "a", 0));
        assert_eq!(send(&mut s, &["PING"], 1), b"+PONG\r\n".to_vec());
        assert_eq!(send(&mut s, &["UNSUBSCRIBE"], 1), b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n".to_vec());
        assert_eq!(send(&mut s, &["PUNSUBSCRIBE"], 1), b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n".to_vec());
        // RESET leaves the subscribed context too.
        send(&mut s, &["SUBSCRIBE", "b", "c"], 2);
        assert_eq!(send(&mut s, &["RESET"], 1), b"+RESET\r\n".to_vec());
        assert_eq!(send(&mut s, &["SET", "k", "v"], 1), b"+OK\r\n".to_vec());
        let mut p = srv.client();
        assert_eq!(cmd(&mut p, &["PUBLISH", "b", "x"]), int(0));
        assert_eq!(cmd(&mut p, &["SUBSCRIBE"]), arity("subscribe"));
        assert_eq!(cmd(&mut p, &["PUBLISH", "b"]), arity("publish"));
    }

    fn resp3_pushes_and_commands_while_subscribed(srv) {
        let mut s = srv.raw();
        send(&mut s, &["HELLO", "3"], 1);
        assert_eq!(send(&mut s, &["SUBSCRIBE", "ch"], 1), b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n".to_vec());
        // In RESP3 any command may run while subscribed.
        assert_eq!(send(&mut s, &["SET", "k", "v"], 1), b"+OK\r\n".to_vec());
        assert_eq!(send(&mut s, &["GET", "k"], 1), b"$1\r\nv\r\n".to_vec());
        let mut p = srv.client();
        assert_eq!(cmd(&mut p, &["PUBLISH", "ch", "m"]), int(1));
        assert_eq!(receive(&mut s, 1), b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n".to_vec());
        assert_eq!(send(&mut s, &["UNSUBSCRIBE"], 1), b">3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n".to_vec());
    }

    fn pubsub_introspection(srv) {
        let mut a = srv.raw();
        let mut b = srv.raw();
        send(&mut a, &["SUBSCRIBE", "news", "sport"], 2);
        send(&mut b, &["SUBSCRIBE", "news"], 1);
        send(&mut b, &["PSUBSCRIBE", "n*", "x*"], 2);
        send(&mut a, &["PSUBSCRIBE", "n*"], 1);
        let mut c = srv.client();
        assert_eq!(sorted_texts(&cmd(&mut c, &["PUBSUB", "CHANNELS"])), vec!["news", "sport"]);
        assert_eq!(sorted_texts(&cmd(&mut c, &["PUBSUB", "CHANNELS", "s*"])), vec!["sport"]);
        assert_eq!(cmd(&mut c, &["PUBSUB", "NUMSUB", "news", "sport", "none"]), arr(vec![bulk("news"), int(2), bulk("sport"), int(1), bulk("none"), int(0)]));
        assert_eq!(cmd(&mut c, &["PUBSUB", "NUMSUB"]), arr(vec![]));
        assert_eq!(cmd(&mut c, &["PUBSUB", "NUMPAT"]), int(2));
        assert_eq!(cmd(&mut c, &["PUBSUB", "FOO"]), err("ERR unknown subcommand 'FOO'. Try PUBSUB HELP."));
        assert_eq!(cmd(&mut c, &["PUBSUB", "NUMPAT", "x"]), err("ERR wrong number of arguments for 'pubsub|numpat' command"));
        // CHANNELS takes one pattern at most; Redis's handler, not the
        // subcommand's arity, refuses a second.
        assert_eq!(
            cmd(&mut c, &["PUBSUB", "channels", "a", "b"]),
            err("ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP.")
        );
        assert_eq!(
            cmd(&mut c, &["PUBSUB", "SHARDCHANNELS", "a", "b"]),
            err("ERR unknown subcommand or wrong number of arguments for 'SHARDCHANNELS'. Try PUBSUB HELP.")
        );
        assert_eq!(cmd(&mut c, &["PUBSUB"]), arity("pubsub"));
        let help: Vec<String> = cmd(&mut c, &["PUBSUB", "HELP"]).items().iter().map(Reply::text).collect();
        assert_eq!(
            help,
            [
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Prints this help.",
            ]
        );
        // No shard channel has subscribers (SSUBSCRIBE is not supported).
        assert_eq!(cmd(&mut c, &["PUBSUB", "SHARDCHANNELS"]), arr(vec![]));
        assert_eq!(cmd(&mut c, &["PUBSUB", "SHARDNUMSUB", "news"]), arr(vec![bulk("news"), int(0)]));
        // A closed subscriber is forgotten.
        drop(a);
        let forgotten = wait_until(Duration::from_secs(10), || {
            cmd(&mut c, &["PUBSUB", "NUMSUB", "news", "sport"]) == arr(vec![bulk("news"), int(1), bulk("sport"), int(0)])
        });
        assert!(forgotten, "a closed subscriber still counts");
        assert_eq!(cmd(&mut c, &["PUBSUB", "NUMPAT"]), int(2));
        assert_eq!(cmd(&mut c, &["PUBLISH", "news", "x"]), int(2));
    }
}
