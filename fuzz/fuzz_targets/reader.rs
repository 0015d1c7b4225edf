//! Feeds the incremental reader arbitrary bytes in arbitrary splits and
//! checks its invariants against a model built from the pure parser:
//!
//! - the reader never buffers, nor allocates room for, more than its
//!   maximum update size;
//! - fed in pieces it gives exactly what it gives fed at once, and both
//!   match splitting the input at NUL and reading each update whole;
//! - every update it accepts prints, reads back equal, and prints again to
//!   the same bytes.
//!
//! Input layout: two bytes of maximum size, one byte `n`, `n % 16` bytes of
//! chunk lengths (used cyclically), then the stream itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lichat_tcp_server::wire::{
    Object, ReadError, Reader, Status, print_update, read_object, read_update,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let max = usize::from(u16::from_le_bytes([data[0], data[1]])) % 4096;
    let n = usize::from(data[2] % 16);
    let Some(chunks) = data.get(3..3 + n) else {
        return;
    };
    let stream = &data[3 + n..];

    let expected = model(stream, max);

    let mut whole = Reader::new(max);
    let mut got_whole = Vec::new();
    whole.feed(stream, |u| got_whole.push(u));
    assert!(whole.buffered() <= max);
    assert_eq!(got_whole, expected, "whole feed differs from the model");

    let mut split = Reader::new(max);
    let mut got_split = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let len = if chunks.is_empty() {
            1
        } else {
            usize::from(chunks[i % chunks.len()])
        };
        i += 1;
        if len == 0 {
            // An empty feed must change nothing; then make progress.
            split.feed(&[], |u| got_split.push(u));
        }
        let (piece, tail) = rest.split_at(len.clamp(1, rest.len()));
        split.feed(piece, |u| got_split.push(u));
        assert!(
            split.buffered() <= max,
            "reader holds more than its maximum"
        );
        rest = tail;
    }
    assert_eq!(got_split, expected, "split feed differs from the model");

    for object in expected.iter().flatten() {
        round_trip(object);
    }
});

/// What the reader must yield: the input cut at each NUL, each complete
/// update read whole; an unfinished tail only matters once it is too long.
fn model(stream: &[u8], max: usize) -> Vec<Result<Object, ReadError>> {
    let mut out = Vec::new();
    let mut segments = stream.split(|&b| b == 0).peekable();
    while let Some(segment) = segments.next() {
        let complete = segments.peek().is_some();
        if segment.len() > max {
            out.push(Err(ReadError::TooLong));
        } else if complete && !segment.iter().all(|b| b" \t\n\r\x0b\x0c".contains(b)) {
            out.push(read_object(segment));
        }
    }
    out
}

fn round_trip(object: &Object) {
    let mut printed = Vec::new();
    print_update(object, &mut printed).expect("an update that was read must print");
    assert_eq!(printed.iter().filter(|&&b| b == 0).count(), 1);
    match read_update(&printed) {
        Status::Complete(Ok(back), used) => {
            assert_eq!(used, printed.len());
            assert_eq!(&back, object, "printed update reads back different");
            let mut again = Vec::new();
            print_update(&back, &mut again).expect("reprint");
            assert_eq!(again, printed, "printing is not stable");
        }
        other => panic!("printed update does not read back: {other:?}\n{printed:?}"),
    }
}
