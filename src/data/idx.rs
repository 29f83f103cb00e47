//! The IDX format of the MNIST files: a magic `00 00 <type> <ndims>`, `ndims` big-endian u32
//! sizes, then the payload. Only unsigned bytes (type 0x08) are supported: that is what every
//! MNIST-style dataset uses. Plain and gzip-compressed files are told apart by their first bytes,
//! not their names.
//!
//! Everything is checked before the payload is trusted: the magic, the dimension count, the
//! claimed size against a limit, and the actual length against the claim. The payload buffer
//! grows with the bytes actually read, so a header claiming gigabytes over a short body costs
//! nothing.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use byteorder::{BigEndian, ReadBytesExt, WriteBytesExt};
use flate2::read::GzDecoder;
use flate2::{Compression, GzBuilder};

use super::{DataError, Result};

/// Largest payload accepted by [`read_idx_file`]: ten times full MNIST's training images.
pub const DEFAULT_MAX_PAYLOAD: u64 = 512 << 20;
/// Upfront capacity cap, so that a lying header cannot make us reserve its claim.
const PREALLOC_CAP: u64 = 8 << 20;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UNSIGNED_BYTE: u8 = 0x08;

/// Which of the two MNIST file kinds is expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxKind {
    /// Magic 2051 (`00 00 08 03`): count, rows, columns.
    Images,
    /// Magic 2049 (`00 00 08 01`): count.
    Labels,
}

impl IdxKind {
    pub fn ndims(self) -> u8 {
        match self {
            IdxKind::Images => 3,
            IdxKind::Labels => 1,
        }
    }

    pub fn magic(self) -> u32 {
        u32::from(UNSIGNED_BYTE) << 8 | u32::from(self.ndims())
    }
}

/// Why an IDX stream was rejected.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("the data ends inside the header")]
    TruncatedHeader,
    #[error("magic number 0x{0:08x} is not IDX (an IDX file starts with two zero bytes)")]
    NotIdx(u32),
    #[error("element type 0x{0:02x} is not supported (only unsigned bytes, 0x08)")]
    ElementType(u8),
    #[error(
        "magic {found} declares {dims} dimension(s) but {expected:?} files have {want} (magic {magic})",
        want = expected.ndims(),
        magic = expected.magic()
    )]
    WrongDims {
        found: u32,
        dims: u8,
        expected: IdxKind,
    },
    #[error("the header claims {claimed} bytes of data, over the {limit}-byte limit")]
    TooLarge { claimed: u128, limit: u64 },
    #[error("the payload is {actual} bytes, shorter than the {expected} the header announces")]
    ShortPayload { expected: u64, actual: u64 },
    #[error("there are bytes after the {expected}-byte payload the header announces")]
    TrailingData { expected: u64 },
    #[error("corrupt gzip stream: {0}")]
    Gzip(String),
    #[error("read error: {0}")]
    Io(io::Error),
}

/// A decoded IDX array: `dims` as in the header, `data` row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX stream, plain or gzip, of the given kind, accepting at most `max_payload` bytes
/// of data.
pub fn read_idx<R: Read>(
    mut reader: R,
    kind: IdxKind,
    max_payload: u64,
) -> std::result::Result<IdxArray, IdxError> {
    let mut head = [0u8; 2];
    let got = read_up_to(&mut reader, &mut head).map_err(IdxError::Io)?;
    let stream = (&head[..got]).chain(reader);
    if head[..got] == GZIP_MAGIC {
        read_plain(Gunzip(GzDecoder::new(stream)), kind, max_payload).map_err(|e| match e {
            IdxError::Io(e) if e.kind() == io::ErrorKind::InvalidData => {
                IdxError::Gzip(e.to_string())
            }
            other => other,
        })
    } else {
        read_plain(stream, kind, max_payload)
    }
}

/// [`read_idx`] on an in-memory buffer with the default limit.
pub fn parse_idx(bytes: &[u8], kind: IdxKind) -> std::result::Result<IdxArray, IdxError> {
    read_idx(bytes, kind, DEFAULT_MAX_PAYLOAD)
}

/// [`read_idx`] on a file, with the path in any error.
pub fn read_idx_file(path: &Path, kind: IdxKind) -> Result<IdxArray> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    read_idx(io::BufReader::new(file), kind, DEFAULT_MAX_PAYLOAD).map_err(|source| DataError::Idx {
        path: path.to_owned(),
        source,
    })
}

/// Encodes an IDX array; gzip output is byte-for-byte reproducible (no name, zero mtime).
///
/// # Panics
/// If `dims` does not fit `kind` or `data`: both come from the calling code, not from a user.
pub fn encode_idx(kind: IdxKind, dims: &[usize], data: &[u8], gzip: bool) -> Vec<u8> {
    assert_eq!(dims.len(), usize::from(kind.ndims()), "dimension count");
    assert_eq!(dims.iter().product::<usize>(), data.len(), "payload length");
    let mut raw = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    raw.write_u32::<BigEndian>(kind.magic())
        .expect("write to Vec");
    for &d in dims {
        let d = u32::try_from(d).expect("IDX dimensions are u32");
        raw.write_u32::<BigEndian>(d).expect("write to Vec");
    }
    raw.extend_from_slice(data);
    if !gzip {
        return raw;
    }
    let mut encoder = GzBuilder::new().write(Vec::new(), Compression::best());
    encoder.write_all(&raw).expect("write to Vec");
    encoder.finish().expect("write to Vec")
}

fn read_plain<R: Read>(
    mut r: R,
    kind: IdxKind,
    max_payload: u64,
) -> std::result::Result<IdxArray, IdxError> {
    let header_err = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => IdxError::TruncatedHeader,
        _ => IdxError::Io(e),
    };
    let magic = r.read_u32::<BigEndian>().map_err(header_err)?;
    let [zero0, zero1, elem, ndims] = magic.to_be_bytes();
    if zero0 != 0 || zero1 != 0 {
        return Err(IdxError::NotIdx(magic));
    }
    if elem != UNSIGNED_BYTE {
        return Err(IdxError::ElementType(elem));
    }
    if ndims != kind.ndims() {
        return Err(IdxError::WrongDims {
            found: magic,
            dims: ndims,
            expected: kind,
        });
    }
    let mut dims = Vec::with_capacity(usize::from(ndims));
    for _ in 0..ndims {
        dims.push(r.read_u32::<BigEndian>().map_err(header_err)?);
    }
    let claimed: u128 = dims.iter().map(|&d| u128::from(d)).product();
    let expected = u64::try_from(claimed)
        .ok()
        .filter(|&n| n <= max_payload)
        .ok_or(IdxError::TooLarge {
            claimed,
            limit: max_payload,
        })?;

    let mut data = Vec::with_capacity(expected.min(PREALLOC_CAP) as usize);
    // One byte past the claim tells "exact" from "trailing data" without reading further.
    let actual = r
        .take(expected + 1)
        .read_to_end(&mut data)
        .map_err(IdxError::Io)? as u64;
    if actual < expected {
        return Err(IdxError::ShortPayload { expected, actual });
    }
    if actual > expected {
        return Err(IdxError::TrailingData { expected });
    }
    Ok(IdxArray {
        // Every dimension is a u32 and their product fits the limit, so each fits a usize.
        dims: dims.into_iter().map(|d| d as usize).collect(),
        data,
    })
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Marks every decoder failure as `InvalidData`, so that a clean end of the decompressed data
/// (`UnexpectedEof` from our own reads) stays distinguishable from a corrupt stream.
struct Gunzip<R>(GzDecoder<R>);

impl<R: Read> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}
