//! A hostile header must not cause a large allocation. This binary counts allocations with a
//! wrapping global allocator, so it holds a single test (no other test allocating in parallel).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ganlab::data::idx::{encode_idx, parse_idx, IdxError, IdxKind};

struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Largest = Largest;

#[test]
fn hostile_headers_allocate_little() {
    // Claims 470 MB (under the 512 MiB limit, so it is not refused outright) over 100 bytes,
    // plain and gzip.
    let mut plain = 2051u32.to_be_bytes().to_vec();
    for d in [600_000u32, 28, 28] {
        plain.extend_from_slice(&d.to_be_bytes());
    }
    plain.extend_from_slice(&[0u8; 100]);
    let gz = {
        let mut raw = plain.clone();
        raw.truncate(16 + 100);
        encode_gz(&raw)
    };
    LARGEST.store(0, Ordering::Relaxed);
    for bytes in [&plain, &gz] {
        assert!(matches!(
            parse_idx(bytes, IdxKind::Images),
            Err(IdxError::ShortPayload { .. })
        ));
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= 9 << 20,
        "largest allocation {largest} bytes for a 470 MB claim"
    );
    // And a valid file still reads.
    let ok = encode_idx(IdxKind::Labels, &[3], &[1, 2, 3], true);
    assert_eq!(parse_idx(&ok, IdxKind::Labels).unwrap().data, vec![1, 2, 3]);
}

fn encode_gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}
