//! Any bytes, as either IDX kind: the reader returns `Ok` with a payload matching its header or
//! an `Err`, and never panics or allocates past its limit.
#![no_main]

use ganlab::data::idx::{read_idx, IdxKind};
use libfuzzer_sys::fuzz_target;

// A small limit keeps each run cheap; the logic does not depend on the value.
const LIMIT: u64 = 1 << 20;

fuzz_target!(|bytes: &[u8]| {
    for kind in [IdxKind::Images, IdxKind::Labels] {
        if let Ok(arr) = read_idx(bytes, kind, LIMIT) {
            assert_eq!(arr.dims.len(), usize::from(kind.ndims()));
            assert_eq!(arr.data.len(), arr.dims.iter().product::<usize>());
        }
    }
});
