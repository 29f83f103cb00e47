//! The IDX reader: good files (plain and gzip), every corruption case, and a seeded mutation
//! fuzz loop.

mod data_support;

use ganlab::data::idx::{encode_idx, parse_idx, read_idx, read_idx_file, IdxError, IdxKind};
use ganlab::data::DataError;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn small_images(n: usize) -> (Vec<usize>, Vec<u8>) {
    let data: Vec<u8> = (0..n * 28 * 28).map(|i| (i * 7 % 256) as u8).collect();
    (vec![n, 28, 28], data)
}

/// A header-only IDX: magic and the given dimensions, no payload.
fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn plain_and_gzip_decode_to_the_same_array() {
    let (dims, data) = small_images(3);
    for gz in [false, true] {
        let bytes = encode_idx(IdxKind::Images, &dims, &data, gz);
        let arr = parse_idx(&bytes, IdxKind::Images).unwrap();
        assert_eq!(arr.dims, dims);
        assert_eq!(arr.data, data);
    }
    let labels = encode_idx(IdxKind::Labels, &[5], &[0, 1, 2, 3, 9], true);
    let arr = parse_idx(&labels, IdxKind::Labels).unwrap();
    assert_eq!((arr.dims, arr.data), (vec![5], vec![0, 1, 2, 3, 9]));
}

#[test]
fn committed_tiny_fixtures_read_as_gzip_and_plain() {
    for (dir, suffix) in [
        (data_support::tiny_gz_dir(), ".gz"),
        (data_support::tiny_plain_dir(), ""),
    ] {
        let images = read_idx_file(
            &dir.join(format!("train-images-idx3-ubyte{suffix}")),
            IdxKind::Images,
        )
        .unwrap();
        assert_eq!(images.dims, vec![32, 28, 28]);
        let labels = read_idx_file(
            &dir.join(format!("t10k-labels-idx1-ubyte{suffix}")),
            IdxKind::Labels,
        )
        .unwrap();
        assert_eq!(labels.dims, vec![16]);
    }
}

#[test]
fn magic_numbers_are_2051_and_2049() {
    assert_eq!(IdxKind::Images.magic(), 2051);
    assert_eq!(IdxKind::Labels.magic(), 2049);
}

#[test]
fn wrong_magic_is_rejected() {
    let mut bytes = encode_idx(IdxKind::Labels, &[2], &[1, 2], false);
    bytes[0] = 0x12;
    assert!(matches!(
        parse_idx(&bytes, IdxKind::Labels),
        Err(IdxError::NotIdx(_))
    ));
    // Not even an IDX header: a PNG signature.
    let png = b"\x89PNG\r\n\x1a\n0000";
    assert!(matches!(
        parse_idx(png, IdxKind::Images),
        Err(IdxError::NotIdx(_))
    ));
}

#[test]
fn unsupported_element_type_is_rejected() {
    // 0x0D: 32-bit floats, legal IDX but not what MNIST uses.
    let bytes = header(0x0000_0D01, &[1]);
    assert!(matches!(
        parse_idx(&bytes, IdxKind::Labels),
        Err(IdxError::ElementType(0x0D))
    ));
}

#[test]
fn wrong_dimension_count_is_rejected() {
    let labels = encode_idx(IdxKind::Labels, &[2], &[1, 2], false);
    let err = parse_idx(&labels, IdxKind::Images).unwrap_err();
    assert!(matches!(err, IdxError::WrongDims { dims: 1, .. }), "{err}");
    assert!(err.to_string().contains("2051"), "{err}");
    let images = encode_idx(IdxKind::Images, &[1, 1, 1], &[7], true);
    assert!(matches!(
        parse_idx(&images, IdxKind::Labels),
        Err(IdxError::WrongDims { dims: 3, .. })
    ));
}

#[test]
fn huge_claimed_dimensions_are_rejected_before_reading() {
    // 2^32-1 cubed overflows u64; 60000 x 65535 x 65535 is merely absurd.
    for dims in [[u32::MAX; 3], [60_000, 65_535, 65_535]] {
        let bytes = header(2051, &dims);
        let err = parse_idx(&bytes, IdxKind::Images).unwrap_err();
        assert!(matches!(err, IdxError::TooLarge { .. }), "{err}");
    }
    // Under a caller's lower limit too.
    let bytes = encode_idx(IdxKind::Labels, &[100], &[0; 100], false);
    assert!(matches!(
        read_idx(&bytes[..], IdxKind::Labels, 99),
        Err(IdxError::TooLarge { .. })
    ));
}

#[test]
fn large_claim_over_short_payload_is_short_not_allocated() {
    // 100 MB claimed, 10 bytes present: an error about the payload, not an allocation.
    let mut bytes = header(2051, &[128, 1000, 800]);
    bytes.extend_from_slice(&[0; 10]);
    match parse_idx(&bytes, IdxKind::Images) {
        Err(IdxError::ShortPayload { expected, actual }) => {
            assert_eq!((expected, actual), (102_400_000, 10))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_header_and_payload_are_rejected() {
    let (dims, data) = small_images(2);
    let full = encode_idx(IdxKind::Images, &dims, &data, false);
    for cut in [0, 3, 4, 9, 15] {
        assert!(
            matches!(
                parse_idx(&full[..cut], IdxKind::Images),
                Err(IdxError::TruncatedHeader) | Err(IdxError::NotIdx(_))
            ),
            "cut at {cut}"
        );
    }
    for cut in [16, 17, full.len() - 1] {
        assert!(
            matches!(
                parse_idx(&full[..cut], IdxKind::Images),
                Err(IdxError::ShortPayload { .. })
            ),
            "cut at {cut}"
        );
    }
    // The same cuts inside a gzip stream that is itself valid.
    let short = gzip(&full[..full.len() - 5]);
    assert!(matches!(
        parse_idx(&short, IdxKind::Images),
        Err(IdxError::ShortPayload { .. })
    ));
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = encode_idx(IdxKind::Labels, &[2], &[1, 2], false);
    bytes.push(3);
    assert!(matches!(
        parse_idx(&bytes, IdxKind::Labels),
        Err(IdxError::TrailingData { expected: 2 })
    ));
}

#[test]
fn corrupt_gzip_is_rejected() {
    let (dims, data) = small_images(2);
    let gz = encode_idx(IdxKind::Images, &dims, &data, true);
    // Cut inside the deflate stream.
    let err = parse_idx(&gz[..gz.len() / 2], IdxKind::Images).unwrap_err();
    assert!(matches!(err, IdxError::Gzip(_)), "{err}");
    // Damaged CRC in the trailer.
    let mut bad_crc = gz.clone();
    let at = bad_crc.len() - 6;
    bad_crc[at] ^= 0xff;
    let err = parse_idx(&bad_crc, IdxKind::Images).unwrap_err();
    assert!(matches!(err, IdxError::Gzip(_)), "{err}");
    // Gzip magic then garbage.
    let err = parse_idx(&[0x1f, 0x8b, 0x08, 0, 1, 2, 3], IdxKind::Images).unwrap_err();
    assert!(matches!(err, IdxError::Gzip(_)), "{err}");
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-labels-idx1-ubyte");
    std::fs::write(&path, header(2049, &[10])).unwrap();
    let err = read_idx_file(&path, IdxKind::Labels).unwrap_err();
    assert!(matches!(err, DataError::Idx { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("train-labels-idx1-ubyte") && msg.contains("shorter"),
        "{msg}"
    );
    let missing = read_idx_file(&dir.path().join("nope"), IdxKind::Labels).unwrap_err();
    assert!(matches!(missing, DataError::Io { .. }));
}

/// Random byte flips, overwrites of header fields with random (often huge) values, truncations
/// and insertions of a valid file, plain and gzip: every outcome must be `Ok` (with a payload
/// matching its header) or `Err`, never a panic; the seed makes failures reproducible.
#[test]
fn mutation_fuzz_never_panics() {
    let (dims, data) = small_images(2);
    let seeds = [
        (
            IdxKind::Images,
            encode_idx(IdxKind::Images, &dims, &data, false),
        ),
        (
            IdxKind::Images,
            encode_idx(IdxKind::Images, &dims, &data, true),
        ),
        (
            IdxKind::Labels,
            encode_idx(IdxKind::Labels, &[6], &[0, 1, 2, 3, 4, 5], false),
        ),
        (
            IdxKind::Labels,
            encode_idx(IdxKind::Labels, &[6], &[0, 1, 2, 3, 4, 5], true),
        ),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(0x1d8);
    let (mut ok, mut err) = (0, 0);
    for round in 0..4000 {
        let (kind, valid) = &seeds[round % seeds.len()];
        let mut bytes = valid.clone();
        for _ in 0..rng.random_range(1..4) {
            match rng.random_range(0..5) {
                0 => {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] ^= 1 << rng.random_range(0..8);
                }
                1 => {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] = rng.random();
                }
                2 => {
                    // A whole header word (magic or a dimension) replaced.
                    let word = rng.random_range(0..4usize) * 4;
                    if word + 4 <= bytes.len() {
                        let v: u32 = rng.random();
                        bytes[word..word + 4].copy_from_slice(&v.to_be_bytes());
                    }
                }
                3 => {
                    let len = rng.random_range(0..bytes.len());
                    bytes.truncate(len);
                }
                _ => {
                    let i = rng.random_range(0..=bytes.len());
                    bytes.insert(i, rng.random());
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        match parse_idx(&bytes, *kind) {
            Ok(arr) => {
                assert_eq!(arr.data.len(), arr.dims.iter().product::<usize>());
                ok += 1;
            }
            Err(_) => err += 1,
        }
    }
    assert!(
        err > 3000,
        "mutations should mostly be caught: {ok} ok, {err} err"
    );
}
