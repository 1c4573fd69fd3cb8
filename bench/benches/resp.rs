//! RESP request parsing and reply encoding.
//!
//! Every bench parses or encodes into buffers built once, outside the timed
//! loop, and reuses one [`RequestParser`] (its span vector keeps its
//! allocation), as a connection does.

use coreshard_engine::{Proto, Reply};
use coreshard_net::resp::{Limits, RequestParser, Step};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// As an authenticated connection with the default proto-max-bulk-len.
const LIMITS: Limits = Limits { bulk_bytes_max: 512 * 1024 * 1024, authenticated: true };

/// Commands in a pipeline.
const PIPELINE: usize = 16;
/// Value size of the pipelined SETs and of the encoded bulk replies.
const VALUE_BYTES: usize = 32;
/// Value size of the large SET.
const LARGE_VALUE_BYTES: usize = 1024 * 1024;

/// A multibulk frame of `args`.
fn multibulk(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:06}").into_bytes()
}

/// Parses every frame of `buf`, front to back, and returns how many commands it held.
#[inline]
fn parse_frames(parser: &mut RequestParser, buf: &mut [u8]) -> usize {
    let mut at = 0;
    let mut commands = 0;
    while at < buf.len() {
        match parser.parse(&mut buf[at..], &LIMITS) {
            Ok(Step::Command { len }) => {
                black_box(parser.spans());
                at += len;
                commands += 1;
            }
            other => panic!("unexpected parse result at {at}: {other:?}"),
        }
    }
    commands
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("resp_parse");
    let mut parser = RequestParser::new();

    // 16 pipelined `SET key:NNNNNN <32 bytes>` frames, as one read delivers them.
    let value = vec![b'v'; VALUE_BYTES];
    let mut pipeline = Vec::new();
    for i in 0..PIPELINE {
        multibulk(&mut pipeline, &[b"SET", &key(i), &value]);
    }
    assert_eq!(parse_frames(&mut parser, &mut pipeline), PIPELINE);
    g.throughput(Throughput::ElementsAndBytes { elements: PIPELINE as u64, bytes: pipeline.len() as u64 });
    // Multibulk parsing never writes to the buffer, so the same one is parsed again each iteration.
    g.bench_function("set_pipeline_16x32B", |b| b.iter(|| parse_frames(&mut parser, black_box(&mut pipeline))));

    // One `GET key:000000` frame.
    let mut get = Vec::new();
    multibulk(&mut get, &[b"GET", &key(0)]);
    assert_eq!(parse_frames(&mut parser, &mut get), 1);
    g.throughput(Throughput::ElementsAndBytes { elements: 1, bytes: get.len() as u64 });
    g.bench_function("get_single", |b| b.iter(|| parse_frames(&mut parser, black_box(&mut get))));

    // One SET with a 1 MiB value. The parser records the bulk's span and skips
    // over it without reading or copying it, so the time is that of the
    // headers alone and the bytes/s figure is far above memory bandwidth.
    let large_value = vec![b'x'; LARGE_VALUE_BYTES];
    let mut large = Vec::with_capacity(LARGE_VALUE_BYTES + 64);
    multibulk(&mut large, &[b"SET", &key(0), &large_value]);
    assert_eq!(parse_frames(&mut parser, &mut large), 1);
    g.throughput(Throughput::Bytes(large.len() as u64));
    g.bench_function("set_bulk_1MiB", |b| b.iter(|| parse_frames(&mut parser, black_box(&mut large))));

    // 16 inline `GET key:NNNNNN` commands. Inline commands are unescaped in
    // place, so each iteration first restores the input by copying it into a
    // buffer allocated once. The copy (a memcpy of the input's 256 bytes, a
    // few nanoseconds) is inside the timed region and included in the figure:
    // the bench measures copy + parse, slightly overstating the parse alone.
    let mut inline_src = Vec::new();
    for i in 0..PIPELINE {
        inline_src.extend_from_slice(b"GET ");
        inline_src.extend_from_slice(&key(i));
        inline_src.extend_from_slice(b"\r\n");
    }
    let mut inline = vec![0u8; inline_src.len()];
    inline.copy_from_slice(&inline_src);
    assert_eq!(parse_frames(&mut parser, &mut inline), PIPELINE);
    g.throughput(Throughput::ElementsAndBytes { elements: PIPELINE as u64, bytes: inline_src.len() as u64 });
    g.bench_function("inline_get_16", |b| {
        b.iter(|| {
            inline.copy_from_slice(black_box(&inline_src));
            parse_frames(&mut parser, &mut inline)
        })
    });

    g.finish();
}

fn reply(c: &mut Criterion) {
    let mut g = c.benchmark_group("resp_reply");

    // 16 bulk replies of 32 bytes (`$32\r\n<32 bytes>\r\n`), as 16 pipelined
    // GET hits produce, appended to one output buffer cleared each iteration.
    let value = vec![b'v'; VALUE_BYTES];
    let mut out = Vec::with_capacity(4096);
    let encode = |out: &mut Vec<u8>, value: &[u8]| {
        out.clear();
        let mut r = Reply::new(out, Proto::Resp2);
        for _ in 0..PIPELINE {
            r.bulk(value);
        }
    };
    encode(&mut out, &value);
    assert_eq!(out.len(), PIPELINE * (VALUE_BYTES + 7));
    assert!(out.starts_with(b"$32\r\nvvvv"));
    g.throughput(Throughput::ElementsAndBytes { elements: PIPELINE as u64, bytes: out.len() as u64 });
    g.bench_function("bulk_16x32B", |b| {
        b.iter(|| {
            encode(&mut out, black_box(&value));
            black_box(&out);
        })
    });

    g.finish();
}

criterion_group!(benches, parse, reply);
criterion_main!(benches);
