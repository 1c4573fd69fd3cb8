//! RENAME RENAMENX COPY MSETNX OBJECT. Their keys must share a shard (they
//! do with one shard, and with hash tags on four), as multi-key commands
//! that are not split across shards.

#[macro_use]
mod common;

use common::*;

shard_tests! {
    fn rename_and_renamenx(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RENAME", "{t}a", "{t}b"], err("ERR no such key")),
            (&["RENAMENX", "{t}a", "{t}b"], err("ERR no such key")),
            (&["SET", "{t}a", "1", "EX", "100"], ok()),
            (&["RENAME", "{t}a", "{t}b"], ok()),
            (&["EXISTS", "{t}a"], int(0)),
            (&["GET", "{t}b"], bulk("1")),
            (&["SET", "{t}c", "3"], ok()),
            (&["RENAMENX", "{t}b", "{t}c"], int(0)),
            (&["RENAMENX", "{t}b", "{t}d"], int(1)),
            (&["RENAME", "{t}d", "{t}c"], ok()),
            (&["GET", "{t}c"], bulk("1")),
            (&["RENAME", "{t}c", "{t}c"], ok()),
            (&["RENAMENX", "{t}c", "{t}c"], int(0)),
            (&["HSET", "{t}h", "f", "v"], int(1)),
            (&["RENAME", "{t}h", "{t}h2"], ok()),
            (&["HGET", "{t}h2", "f"], bulk("v")),
            (&["RENAME", "{t}a"], arity("rename")),
        ]);
        // The TTL moved with the value through both renames.
        assert!(cmd(&mut c, &["TTL", "{t}c"]).int() > 90);
    }

    fn copy_with_options(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["COPY", "{t}src", "{t}dst"], int(0)),
            (&["SET", "{t}src", "v", "PX", "100000"], ok()),
            (&["COPY", "{t}src", "{t}dst"], int(1)),
            (&["GET", "{t}dst"], bulk("v")),
            (&["SET", "{t}src", "w"], ok()),
            (&["COPY", "{t}src", "{t}dst"], int(0)),
            (&["COPY", "{t}src", "{t}dst", "REPLACE"], int(1)),
            (&["GET", "{t}dst"], bulk("w")),
            (&["COPY", "{t}src", "{t}src"], err("ERR source and destination objects are the same")),
            (&["COPY", "{t}src", "{t}src", "DB", "1"], int(1)),
            (&["COPY", "{t}src", "{t}dst", "DB", "99"], err("ERR DB index is out of range")),
            (&["COPY", "{t}src", "{t}dst", "DB", "x"], err(NOT_INT)),
            (&["COPY", "{t}src", "{t}dst", "FOO"], err(SYNTAX)),
            (&["SELECT", "1"], ok()),
            (&["GET", "{t}src"], bulk("w")),
            (&["SELECT", "0"], ok()),
            (&["HSET", "{t}h", "a", "1"], int(1)),
            (&["COPY", "{t}h", "{t}h2"], int(1)),
            (&["HSET", "{t}h", "a", "2"], int(0)),
            // A deep copy: changing the source leaves the copy alone.
            (&["HGET", "{t}h2", "a"], bulk("1")),
        ]);
        let ttl = cmd(&mut c, &["PTTL", "{t}dst"]).int();
        assert_eq!(ttl, -1, "REPLACE copied the TTL-less source");
    }

    fn keys_on_different_shards(srv) {
        // With four shards, untagged keys land on different shards: the
        // commands run across them, atomically, with Redis's replies.
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SET", "a", "1", "PX", "100000"], ok()),
            (&["RENAME", "a", "b"], ok()),
            (&["EXISTS", "a"], int(0)),
            (&["GET", "b"], bulk("1")),
            (&["SET", "c", "x"], ok()),
            (&["RENAMENX", "b", "c"], int(0)),
            (&["RENAMENX", "b", "d"], int(1)),
            (&["COPY", "d", "c"], int(0)),
            (&["COPY", "d", "c", "REPLACE"], int(1)),
            (&["GET", "c"], bulk("1")),
            (&["MSETNX", "e", "1", "c", "2"], int(0)),
            (&["EXISTS", "e"], int(0)),
            (&["MSETNX", "e", "1", "f", "2"], int(1)),
            (&["MGET", "e", "f"], bulks(&["1", "2"])),
            (&["RENAME", "nosuch", "x"], err("ERR no such key")),
        ]);
        // The TTL travels with the value.
        let ttl = cmd(&mut c, &["PTTL", "d"]).int();
        assert!(ttl > 0 && ttl <= 100_000, "{ttl}");
        let ttl = cmd(&mut c, &["PTTL", "c"]).int();
        assert!(ttl > 0 && ttl <= 100_000, "{ttl}");
    }

    fn msetnx_all_or_nothing(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["MSETNX", "{t}a", "1", "{t}b", "2"], int(1)),
            (&["MSETNX", "{t}b", "x", "{t}c", "3"], int(0)),
            (&["EXISTS", "{t}c"], int(0)),
            (&["GET", "{t}b"], bulk("2")),
            (&["MSETNX", "{t}a", "1", "{t}b"], arity("msetnx")),
        ]);
    }

    fn object_introspection(srv) {
        let mut c = srv.client();
        let long = "x".repeat(45);
        expect_all(&mut c, &[
            (&["OBJECT", "ENCODING", "missing"], nil()),
            (&["SET", "int", "12345"], ok()),
            (&["OBJECT", "ENCODING", "int"], bulk("int")),
            (&["SET", "short", "hello"], ok()),
            (&["OBJECT", "ENCODING", "short"], bulk("embstr")),
            (&["SET", "long", &long], ok()),
            (&["OBJECT", "ENCODING", "long"], bulk("raw")),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["OBJECT", "ENCODING", "h"], bulk("listpack")),
            (&["OBJECT", "REFCOUNT", "short"], int(1)),
            (&["OBJECT", "REFCOUNT", "int"], int(1)),
            (&["SET", "small", "7"], ok()),
            (&["OBJECT", "REFCOUNT", "small"], int(2147483647)),
            (&["OBJECT", "IDLETIME", "short"], int(0)),
            (&["OBJECT", "FOO", "x"], err("ERR unknown subcommand 'FOO'. Try OBJECT HELP.")),
            (&["OBJECT", "ENCODING"], err("ERR wrong number of arguments for 'object|encoding' command")),
        ]);
        let help: Vec<String> = cmd(&mut c, &["OBJECT", "HELP"]).items().iter().map(Reply::text).collect();
        assert_eq!(
            help,
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Prints this help.",
            ]
        );
        assert_eq!(cmd(&mut c, &["OBJECT", "HELP", "x"]), err("ERR wrong number of arguments for 'object|help' command"));
    }
}
