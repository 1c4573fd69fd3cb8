//! SORT and SORT_RO over lists, sets and sorted sets: numeric and ALPHA
//! order, DESC, LIMIT, BY and GET patterns (string keys and hash fields),
//! STORE. Keys use one {hash tag} so they share a shard with 4 shards too.

#[macro_use]
mod common;

use common::*;

shard_tests! {
    fn sort_numeric_alpha_limit_desc(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RPUSH", "{s}l", "3", "10", "1", "2.5", "-4"], int(5)),
            (&["SORT", "{s}l"], bulks(&["-4", "1", "2.5", "3", "10"])),
            (&["SORT", "{s}l", "DESC"], bulks(&["10", "3", "2.5", "1", "-4"])),
            (&["SORT", "{s}l", "ALPHA"], bulks(&["-4", "1", "10", "2.5", "3"])),
            (&["SORT", "{s}l", "LIMIT", "1", "2"], bulks(&["1", "2.5"])),
            (&["SORT", "{s}l", "LIMIT", "3", "-1"], bulks(&["3", "10"])),
            (&["SORT", "{s}l", "LIMIT", "10", "5"], arr(vec![])),
            (&["SORT_RO", "{s}l", "DESC", "LIMIT", "0", "1"], bulks(&["10"])),
            (&["SORT", "{s}missing"], arr(vec![])),
            (&["RPUSH", "{s}words", "b", "a", "c"], int(3)),
            (&["SORT", "{s}words"], err("ERR One or more scores can't be converted into double")),
            (&["SORT", "{s}words", "ALPHA", "DESC"], bulks(&["c", "b", "a"])),
            (&["SADD", "{s}set", "5", "2", "9"], int(3)),
            (&["SORT", "{s}set"], bulks(&["2", "5", "9"])),
            (&["ZADD", "{s}z", "1", "30", "2", "10", "3", "20"], int(3)),
            (&["SORT", "{s}z"], bulks(&["10", "20", "30"])),
            (&["SORT", "{s}l", "LIMIT", "x", "1"], err(NOT_INT)),
            (&["SORT", "{s}l", "FOO"], err(SYNTAX)),
            (&["SORT_RO", "{s}l", "STORE", "{s}d"], err(SYNTAX)),
            (&["SET", "{s}str", "x"], ok()),
            (&["SORT", "{s}str"], err(WRONGTYPE)),
            (&["SORT"], arity("sort")),
        ]);
    }

    fn sort_by_get_and_store(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RPUSH", "{s}ids", "1", "2", "3"], int(3)),
            (&["MSET", "{s}w_1", "30", "{s}w_2", "10", "{s}w_3", "20"], ok()),
            (&["HSET", "{s}o_1", "name", "one"], int(1)),
            (&["HSET", "{s}o_2", "name", "two"], int(1)),
            (&["SET", "{s}n_3", "three"], ok()),
            (&["SORT", "{s}ids", "BY", "{s}w_*"], bulks(&["2", "3", "1"])),
            (&["SORT", "{s}ids", "BY", "{s}w_*", "DESC"], bulks(&["1", "3", "2"])),
            (&["SORT", "{s}ids", "BY", "{s}w_*", "GET", "#", "GET", "{s}o_*->name"],
                arr(vec![bulk("2"), bulk("two"), bulk("3"), nil(), bulk("1"), bulk("one")])),
            (&["SORT", "{s}ids", "GET", "{s}n_*"], arr(vec![nil(), nil(), bulk("three")])),
            // BY a pattern without `*` does not sort.
            (&["SORT", "{s}ids", "BY", "nosort", "GET", "#"], bulks(&["1", "2", "3"])),
            (&["SORT", "{s}ids", "BY", "{s}w_*", "STORE", "{s}dst"], int(3)),
            (&["LRANGE", "{s}dst", "0", "-1"], bulks(&["2", "3", "1"])),
            (&["SORT", "{s}ids", "BY", "{s}w_*", "GET", "{s}n_*", "STORE", "{s}dst"], int(3)),
            (&["LRANGE", "{s}dst", "0", "-1"], bulks(&["", "three", ""])),
            (&["SORT", "{s}empty", "STORE", "{s}dst"], int(0)),
            (&["EXISTS", "{s}dst"], int(0)),
        ]);
    }

    fn sort_nosort_store_of_a_set_sorts_alpha(srv) {
        // A set has no order of its own, so BY nosort with STORE sorts it by
        // its members' bytes (the stored list must not depend on the server);
        // a list keeps its order.
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SADD", "{s}set", "b", "a", "c", "10", "2"], int(5)),
            (&["SORT", "{s}set", "BY", "nosort", "STORE", "{s}dst"], int(5)),
            (&["LRANGE", "{s}dst", "0", "-1"], bulks(&["10", "2", "a", "b", "c"])),
            (&["SORT", "{s}set", "BY", "nosort", "DESC", "STORE", "{s}dst"], int(5)),
            (&["LRANGE", "{s}dst", "0", "-1"], bulks(&["c", "b", "a", "2", "10"])),
            (&["SORT", "{s}set", "BY", "nosort", "LIMIT", "1", "2", "STORE", "{s}dst"], int(2)),
            (&["LRANGE", "{s}dst", "0", "-1"], bulks(&["2", "a"])),
            (&["SORT", "{s}set", "BY", "nosort", "GET", "#", "STORE", "{s}dst"], int(5)),
            (&["LRANGE", "{s}dst", "0", "-1"], bulks(&["10", "2", "a", "b", "c"])),
            (&["RPUSH", "{s}list", "b", "a", "c"], int(3)),
            (&["SORT", "{s}list", "BY", "nosort", "STORE", "{s}dst"], int(3)),
            (&["LRANGE", "{s}dst", "0", "-1"], bulks(&["b", "a", "c"])),
        ]);
    }
}
