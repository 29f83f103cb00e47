//! Loops written once in plain Rust over fixed-size arrays and compiled per instruction set:
//! LLVM vectorises a loop for whatever the function it is inlined into may use, so
//! `vectorised!` builds it inside `#[target_feature]` functions and runs the widest build
//! this CPU has.

use std::sync::atomic::{AtomicU8, Ordering};

/// A vector unit the builds of `vectorised!` use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Level {
    /// The compilation target's baseline.
    Baseline,
    /// x86_64 AVX2 with FMA.
    Avx2,
    /// x86_64 AVX-512F (with AVX2 and FMA).
    Avx512,
}

impl Level {
    /// Every level, in increasing order of preference.
    pub const ALL: [Level; 3] = [Level::Baseline, Level::Avx2, Level::Avx512];

    /// Whether this CPU can run the level's builds.
    pub fn is_supported(self) -> bool {
        match self {
            Level::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => Level::Avx2.is_supported() && is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// A level forced on every thread (`u8::MAX`: none), so that tests run each build.
static FORCED: AtomicU8 = AtomicU8::new(u8::MAX);

/// Runs `f` with every `vectorised!` loop, on every thread, built for `level` (which this
/// CPU must support). Public only so that tests can run each build: every build computes the
/// same results up to rounding, so other work running meanwhile stays correct.
#[doc(hidden)]
pub fn with_level<R>(level: Level, f: impl FnOnce() -> R) -> R {
    struct Unforce;
    impl Drop for Unforce {
        fn drop(&mut self) {
            FORCED.store(u8::MAX, Ordering::Relaxed);
        }
    }
    assert!(level.is_supported(), "{level:?} is not supported here");
    FORCED.store(level as u8, Ordering::Relaxed);
    let _unforce = Unforce;
    f()
}

/// The level `vectorised!` loops run: the widest this CPU has, unless forced.
pub fn level() -> Level {
    let forced = FORCED.load(Ordering::Relaxed);
    // `is_x86_feature_detected!` caches its answer.
    Level::ALL
        .into_iter()
        .rev()
        .find(|l| *l as u8 == forced || (forced == u8::MAX && l.is_supported()))
        .unwrap_or(Level::Baseline)
}

/// `fn $name<T>(args)` runs the loop `$body::<T, FUSED>(args)` built for this CPU's
/// [`level`]: `FUSED` (multiply-adds with one rounding, the FMA instruction) in AVX-512 and
/// AVX2 builds, plain in the baseline one, where a fused multiply-add is a libm call. Written
/// `$body::<WIDE>(args)`, the loop is `$body::<T, FUSED, WIDE>`, `WIDE` true in the AVX-512
/// build, whose 32 vector registers hold tiles that would spill from AVX2's 16. `$body` must
/// be `#[inline(always)]`. Arguments go one by one: passed in one struct, LLVM lost what it
/// needed to vectorise the loop (D conv1's forward pass ran 7x slower).
macro_rules! vectorised {
    // The three builds, each calling `$body::<T, ...>` with its own const arguments.
    (@build $(#[$doc:meta])* fn $name:ident = $body:ident
        [$($avx512:tt)*][$($avx2:tt)*][$($baseline:tt)*]($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        fn $name<T: Real>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                /// # Safety
                /// The CPU must support AVX-512F, AVX2 and FMA.
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512<T: Real>($($arg: $ty),*) {
                    $body::<T, $($avx512)*>($($arg),*)
                }
                /// # Safety
                /// The CPU must support AVX2 and FMA.
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<T: Real>($($arg: $ty),*) {
                    $body::<T, $($avx2)*>($($arg),*)
                }
                match $crate::cpu::simd::level() {
                    // SAFETY: `level` found the features each build needs.
                    $crate::cpu::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::cpu::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::cpu::simd::Level::Baseline => {}
                }
            }
            $body::<T, $($baseline)*>($($arg),*)
        }
    };
    ($(#[$doc:meta])* fn $name:ident<T> = $body:ident($($arg:ident: $ty:ty),* $(,)?);) => {
        $crate::cpu::simd::vectorised! {
            @build $(#[$doc])* fn $name = $body[true][true][false]($($arg: $ty),*)
        }
    };
    ($(#[$doc:meta])* fn $name:ident<T> = $body:ident::<WIDE>($($arg:ident: $ty:ty),* $(,)?);) => {
        $crate::cpu::simd::vectorised! {
            @build $(#[$doc])* fn $name = $body
                [true, true][true, false][false, false]($($arg: $ty),*)
        }
    };
}
pub(crate) use vectorised;
