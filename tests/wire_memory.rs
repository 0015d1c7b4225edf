//! §1.1: unknown symbols are never interned. Reading a million distinct
//! unknown symbols leaves no memory behind once their updates are dropped.
//!
//! This file holds a single test because it counts allocations through a
//! global allocator; it counts only those of the thread that makes them,
//! so the test harness's own threads do not blur the figure.

use lichat_tcp_server::wire::{Reader, Symbol, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Bytes this thread holds: allocated minus freed.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // Ignored while the thread's locals are torn down.
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

// SAFETY: defers to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: same layout the caller gave us.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One update holding `per_update` distinct unknown symbols, in the
/// `lichat` package, the `keyword` package and unknown packages.
fn update(batch: usize, per_update: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"(unknown-class-");
    out.extend_from_slice(batch.to_string().as_bytes());
    out.extend_from_slice(b" :unknown-key (");
    for i in 0..per_update {
        let n = batch * per_update + i;
        let text = match n % 3 {
            0 => format!("sym-{n} "),
            1 => format!(":kw-{n} "),
            _ => format!("pkg-{n}:sym-{n} "),
        };
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b"))\0");
}

#[test]
fn a_million_unknown_symbols_leave_no_memory_behind_1_1() {
    const PER_UPDATE: usize = 1000;
    const UPDATES: usize = 1000;
    let mut reader = Reader::new(1 << 20);
    let mut bytes = Vec::with_capacity(32 * PER_UPDATE);
    let mut read = 0usize;
    let mut check = |reader: &mut Reader, bytes: &[u8]| {
        reader.feed(bytes, |u| {
            let obj = u.expect("a valid update");
            let Some(Value::List(items)) = obj.fields.first().map(|f| &f.1) else {
                panic!("no list");
            };
            assert!(items.iter().all(|v| matches!(
                v,
                Value::Symbol(s @ Symbol::Other(_)) if s.known().is_none()
            )));
            read += items.len();
        });
    };
    // Warm up once-initialised tables before measuring.
    update(0, PER_UPDATE, &mut bytes);
    check(&mut reader, &bytes);
    let before = live();
    let mut peak = 0;
    for batch in 1..=UPDATES {
        update(batch, PER_UPDATE, &mut bytes);
        check(&mut reader, &bytes);
        peak = peak.max(live() - before);
    }
    let after = live();
    assert_eq!(read, (UPDATES + 1) * PER_UPDATE);
    assert!(
        after - before <= 0,
        "{} bytes still live after reading a million unknown symbols",
        after - before
    );
    assert!(peak < 64 * 1024, "peak {peak} bytes between updates");
}
