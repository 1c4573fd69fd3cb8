//! Criterion micro-benchmarks for coreshard. The benches live in `benches/`;
//! this library holds nothing.
//!
//! - `resp` (`benches/resp.rs`): the RESP request parser
//!   (`coreshard_net::resp::RequestParser::parse`) on a pipeline of 16
//!   `SET key <32 bytes>` frames, a single GET frame, a SET with a 1 MiB bulk
//!   (which the parser records without copying) and 16 inline GETs; and the
//!   reply encoder (`coreshard_engine::Reply`) writing 16 bulk replies of 32
//!   bytes. Throughput is reported in commands and bytes.
//! - `keyspace` (`benches/keyspace.rs`): commands executed directly through the
//!   command table, as a shard runs them, over a keyspace of 100k keys of 16
//!   bytes with 32-byte values: SET of a new key, SET over an existing key,
//!   GET hit, GET miss, HSET into a small hash, and a raw `Db::get` lookup.
//!   Arguments are built before the timed loop, so only execution is measured.
//!
//! Run them all with `cargo bench -p coreshard-bench`, or one file with
//! `cargo bench -p coreshard-bench --bench resp`. Criterion's own options go
//! after `--` (this library is not a bench target), for example a short run
//! filtered by name: `cargo bench -p coreshard-bench -- --measurement-time 2 get_hit`.
//!
//! To compare a change against a reference, save a baseline on the reference
//! with `cargo bench -p coreshard-bench -- --save-baseline main`,
//! then run `cargo bench -p coreshard-bench -- --baseline main` on
//! the change: criterion reports each bench's difference from the saved run
//! (kept under `target/criterion/`). Compare only runs taken on the same,
//! otherwise idle machine.
