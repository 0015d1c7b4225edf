//! Wire format throughput: reading and printing a typical `message` update
//! and a 64 KiB `data` update (§1, shirakumo-data).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lichat_tcp_server::wire::{Object, Reader, print_update, update_to_vec};
use std::hint::black_box;

/// A `message` update as a client sends it, 120 bytes with its NUL.
fn message_update() -> Vec<u8> {
    let mut text = String::from(
        "(message :id 113912345678901 :clock 3944300000 :from \"alice\" :channel \"lobby\" :text \"",
    );
    while text.len() < 117 {
        text.push('x');
    }
    text.push_str("\")\0");
    assert_eq!(text.len(), 120);
    text.into_bytes()
}

/// A `data` update whose base64 payload makes it 64 KiB with its NUL.
fn data_update() -> Vec<u8> {
    let head = "(shirakumo:data :id 113912345678902 :clock 3944300000 :from \"alice\" \
                :channel \"lobby\" :content-type \"image/png\" :filename \"cat.png\" :payload \"";
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = head.as_bytes().to_vec();
    let mut i = 0;
    while text.len() < 65536 - 3 {
        text.push(alphabet[i % alphabet.len()]);
        i += 7;
    }
    text.extend_from_slice(b"\")\0");
    assert_eq!(text.len(), 65536);
    text
}

fn read_one(bytes: &[u8]) -> Object {
    let mut reader = Reader::new(1 << 20);
    let mut out = None;
    reader.feed(bytes, |u| out = Some(u));
    out.expect("one update").expect("a valid update")
}

fn bench_case(c: &mut Criterion, name: &str, bytes: &[u8]) {
    let object = read_one(bytes);
    assert_eq!(update_to_vec(&object).unwrap(), bytes);

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("read", |b| {
        let mut reader = Reader::new(1 << 20);
        b.iter(|| {
            let mut n = 0;
            reader.feed(black_box(bytes), |u| {
                n += 1;
                black_box(u).ok();
            });
            n
        })
    });
    group.bench_function("print", |b| {
        let mut out = Vec::with_capacity(bytes.len());
        b.iter(|| {
            out.clear();
            print_update(black_box(&object), &mut out).unwrap();
            out.len()
        })
    });
    group.finish();
}

fn wire(c: &mut Criterion) {
    bench_case(c, "message_120B", &message_update());
    bench_case(c, "data_64KiB", &data_update());
}

criterion_group!(benches, wire);
criterion_main!(benches);
