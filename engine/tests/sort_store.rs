//! SORT ... STORE of a set gives the same list on every server: a set's own
//! order is its hash table's, so ties between equal weights are broken by
//! the elements' bytes (a replica executing the same SORT stores the same
//! list).

mod common;

use common::run_str;
use coreshard_engine::Keyspace;

#[test]
fn sorting_a_set_by_equal_weights_stores_the_elements_in_byte_order() {
    let members: Vec<String> = (0..300).map(|i| format!("m{}", (i * 7919) % 1000)).collect();
    let mut want = members.clone();
    want.sort();
    let mut ks = Keyspace::new(1, coreshard_engine::slot::ShardSlots::all());
    let mut sadd = vec!["SADD", "s"];
    sadd.extend(members.iter().map(String::as_str));
    run_str(&mut ks, 0, 0, &sadd);
    // Every weight is missing (none of w_* exists), so every pair ties.
    assert_eq!(run_str(&mut ks, 0, 0, &["SORT", "s", "BY", "w_*", "ALPHA", "STORE", "d"]), b":300\r\n");
    let got = String::from_utf8(run_str(&mut ks, 0, 0, &["LRANGE", "d", "0", "-1"])).expect("ascii");
    let got: Vec<&str> = got.split("\r\n").filter(|l| l.starts_with('m')).collect();
    assert_eq!(got, want);
}
