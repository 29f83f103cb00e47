//! Host-side storage and the scalar type the CPU kernels are generic over. The CPU kernels
//! are the reference every GPU kernel is checked against and the fallback without a GPU; f64
//! exists on the CPU only, so finite-difference gradient checks can use tight tolerances.

pub mod alloc;
pub mod gemm;
pub mod math;
pub mod simd;
pub mod team;

use std::cell::{Ref, RefCell, RefMut};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// Elements per chunk above which element-wise CPU kernels split work across threads (8192:
/// with the team's helpers spinning, a piece this small is still worth handing over; 32768
/// when they slept between ops).
pub const PAR_CHUNK: usize = 1 << 13;

pub trait Real:
    Copy
    + Send
    + Sync
    + Default
    + PartialOrd
    + std::fmt::Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    fn powf(self, p: Self) -> Self;
    fn neg_infinity() -> Self;
    fn is_nan(self) -> bool;
    /// `self * a + b` with one rounding: only for code compiled with FMA (elsewhere it is a
    /// slow library call).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// The dot product of two slices of one length, with this type's vector kernel.
    fn dot(x: &[Self], y: &[Self]) -> Self;
    /// C (m x n, contiguous) = A B, or += when `p.accumulate`, with this type's GEMM.
    fn gemm(p: gemm::Gemm<'_, Self>, c: &mut [Self]);
}

macro_rules! impl_real {
    ($t:ty, $gemm:path, $dot:path, $tanh:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn powf(self, p: Self) -> Self {
                <$t>::powf(self, p)
            }
            fn neg_infinity() -> Self {
                <$t>::NEG_INFINITY
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
            fn dot(x: &[Self], y: &[Self]) -> Self {
                $dot(x, y)
            }
            fn gemm(p: gemm::Gemm<'_, Self>, c: &mut [Self]) {
                $gemm(p, c)
            }
        }
    };
}
impl_real!(f32, gemm::gemm_f32, gemm::dot_f32, math::tanh);
impl_real!(f64, gemm::gemm_f64, gemm::dot_f64, f64::tanh);

/// A host buffer of one element type. `RefCell` so optimisers can update parameters in place.
pub enum CpuStorage {
    F32(RefCell<Vec<f32>>),
    F64(RefCell<Vec<f64>>),
}

impl From<Vec<f32>> for CpuStorage {
    fn from(v: Vec<f32>) -> Self {
        live::add(std::mem::size_of_val(&v[..]));
        CpuStorage::F32(RefCell::new(v))
    }
}

impl From<Vec<f64>> for CpuStorage {
    fn from(v: Vec<f64>) -> Self {
        live::add(std::mem::size_of_val(&v[..]));
        CpuStorage::F64(RefCell::new(v))
    }
}

/// Tensor storage is sized once: its bytes leave the live count as it drops.
impl Drop for CpuStorage {
    fn drop(&mut self) {
        live::sub(match self {
            CpuStorage::F32(v) => std::mem::size_of_val(&v.borrow()[..]),
            CpuStorage::F64(v) => std::mem::size_of_val(&v.borrow()[..]),
        });
    }
}

/// Bytes of CPU tensor storage alive now and at the most since the last reset (all threads):
/// what a training step holds, for the benches.
pub mod live {
    use std::sync::atomic::{AtomicU64, Ordering};

    static LIVE: AtomicU64 = AtomicU64::new(0);
    static PEAK: AtomicU64 = AtomicU64::new(0);

    pub(super) fn add(bytes: usize) {
        let now = LIVE.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }

    pub(super) fn sub(bytes: usize) {
        LIVE.fetch_sub(bytes as u64, Ordering::Relaxed);
    }

    /// (live, peak) bytes.
    pub fn bytes() -> (u64, u64) {
        (LIVE.load(Ordering::Relaxed), PEAK.load(Ordering::Relaxed))
    }

    /// Starts the peak over from what is live now.
    pub fn reset_peak() {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl CpuStorage {
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            CpuStorage::F32(v) => v.borrow().clone(),
            CpuStorage::F64(v) => v.borrow().iter().map(|&x| x as f32).collect(),
        }
    }

    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            CpuStorage::F32(v) => v.borrow().iter().map(|&x| f64::from(x)).collect(),
            CpuStorage::F64(v) => v.borrow().clone(),
        }
    }

    pub fn f32(&self) -> Option<Ref<'_, Vec<f32>>> {
        match self {
            CpuStorage::F32(v) => Some(v.borrow()),
            CpuStorage::F64(_) => None,
        }
    }

    /// The values, writable in place; a slice, so the storage keeps its size (the live byte
    /// count depends on it).
    pub fn f32_mut(&self) -> Option<RefMut<'_, [f32]>> {
        match self {
            CpuStorage::F32(v) => Some(RefMut::map(v.borrow_mut(), |v| v.as_mut_slice())),
            CpuStorage::F64(_) => None,
        }
    }
}

/// Runs `$body` with `$v` bound to the storage's slice, whatever its element type; the body is
/// type-checked once per type, so it can call generic kernels. Evaluates to what `$body` gives.
macro_rules! with_cpu {
    ($storage:expr, $v:ident => $body:expr) => {
        match $storage {
            $crate::cpu::CpuStorage::F32(cell) => {
                let $v: &[f32] = &cell.borrow();
                $crate::cpu::CpuStorage::from($body)
            }
            $crate::cpu::CpuStorage::F64(cell) => {
                let $v: &[f64] = &cell.borrow();
                $crate::cpu::CpuStorage::from($body)
            }
        }
    };
}

/// Like `with_cpu!` for two storages of the same element type; mixed types are an error.
macro_rules! with_cpu2 {
    ($op:expr, $a:expr, $b:expr, $x:ident, $y:ident => $body:expr) => {
        match ($a, $b) {
            ($crate::cpu::CpuStorage::F32(a), $crate::cpu::CpuStorage::F32(b)) => {
                let ($x, $y): (&[f32], &[f32]) = (&a.borrow(), &b.borrow());
                Ok($crate::cpu::CpuStorage::from($body))
            }
            ($crate::cpu::CpuStorage::F64(a), $crate::cpu::CpuStorage::F64(b)) => {
                let ($x, $y): (&[f64], &[f64]) = (&a.borrow(), &b.borrow());
                Ok($crate::cpu::CpuStorage::from($body))
            }
            _ => Err($crate::Error::Invalid(format!(
                "{}: operands have different dtypes; convert one with `to_dtype`",
                $op
            ))),
        }
    };
}

pub(crate) use {with_cpu, with_cpu2};

/// `out[i] = f(x[i])`, split across threads for large inputs. Collected rather than written
/// into a zeroed buffer: the output is touched once.
/// Copies `src` into the start of `dst` (`<[MaybeUninit<T>]>::write_copy_of_slice`, which is
/// newer than our minimum Rust).
#[inline(always)]
pub(crate) fn write_copy<T: Copy>(dst: &mut [std::mem::MaybeUninit<T>], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

pub fn map<T: Real>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    if x.len() >= 2 * PAR_CHUNK {
        team::map(x, PAR_CHUNK, f)
    } else {
        x.iter().map(|&v| f(v)).collect()
    }
}

/// `x[i] = f(x[i])`, split across threads for large inputs.
pub fn map_in_place<T: Real>(x: &mut [T], f: impl Fn(T) -> T + Sync) {
    team::for_each_piece(x, PAR_CHUNK, |_, piece| {
        piece.iter_mut().for_each(|v| *v = f(*v));
    });
}

/// `out[i] = f(a[i], b[i])` for equal-length inputs, split across threads for large inputs.
pub fn zip_map<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    if a.len() >= 2 * PAR_CHUNK {
        team::zip_map(a, b, PAR_CHUNK, f)
    } else {
        a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
    }
}
