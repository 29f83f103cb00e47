//! Inverted dropout with a counter-based RNG (Philox4x32-10), bit-identical on CPU and GPU:
//! the mask is a function of (seed, offset, element index) only, so it is never stored: the
//! forward pass and the backward pass each regenerate it inside one kernel.

use crate::cpu::{with_cpu, Real};
use crate::device::{read, write, Kernel, KernelSource};
use crate::tensor::graph::GradFn;
use crate::tensor::Storage;
use crate::{Device, Error, Result, Tensor};

crate::kernel_params! {
    pub(crate) struct DropoutParams { n: u32, seed: [u32; 2], offset: u32, keep: f32 }
}

const COMMON: &str = include_str!("../../shaders/dropout.wgsl");
static MASK: Kernel<DropoutParams> = Kernel::new(
    "dropout_mask",
    &[write("mask")],
    &[COMMON, include_str!("../../shaders/dropout_mask.wgsl")],
);
static APPLY: Kernel<DropoutParams> = Kernel::new(
    "dropout",
    &[read("x"), write("y")],
    &[COMMON, include_str!("../../shaders/dropout_apply.wgsl")],
);

/// Every dropout kernel (for the portability test).
pub(crate) fn kernels() -> Vec<&'static dyn KernelSource> {
    vec![&MASK, &APPLY]
}

/// Which mask: the run's seed, the call's offset and the keep probability.
#[derive(Clone, Copy)]
struct MaskSpec {
    key: [u32; 2],
    offset: u32,
    keep: f32,
}

impl MaskSpec {
    fn new(rate: f32, seed: u64, offset: u32) -> Result<MaskSpec> {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::Invalid(format!(
                "dropout rate {rate} must be in [0, 1)"
            )));
        }
        Ok(MaskSpec {
            key: [seed as u32, (seed >> 32) as u32],
            offset,
            keep: 1.0 - rate,
        })
    }

    /// The four mask values of elements 4q..4q + 4, as the kernel computes them: one Philox
    /// block (counter (q, offset, 0, 0)) gives the four elements their words.
    fn quad(&self, q: usize) -> [f32; 4] {
        philox4x32([q as u32, self.offset, 0, 0], self.key).map(|word| {
            let u = (word >> 8) as f32 * (1.0 / 16_777_216.0);
            if u < self.keep {
                1.0 / self.keep
            } else {
                0.0
            }
        })
    }

    /// A vector of `n` elements, `f(i, mask)` for every element's mask value, in parallel
    /// blocks.
    fn build<T: Send + Copy + Default>(
        &self,
        n: usize,
        f: impl Fn(usize, f32) -> T + Sync,
    ) -> Vec<T> {
        const BLOCK: usize = 1 << 14; // a multiple of 4: blocks start at a quad boundary
        let run = |b: usize, chunk: &mut [T]| {
            for (j, quad) in chunk.chunks_mut(4).enumerate() {
                let i0 = b * BLOCK + 4 * j;
                let mask = self.quad(i0 / 4);
                for (k, v) in quad.iter_mut().enumerate() {
                    *v = f(i0 + k, mask[k]);
                }
            }
        };
        crate::cpu::team::build(n, BLOCK, run)
    }

    fn params(&self, n: usize) -> DropoutParams {
        DropoutParams {
            n: n as u32,
            seed: self.key,
            offset: self.offset,
            keep: self.keep,
        }
    }
}

fn apply_cpu<T: Real>(x: &[T], spec: MaskSpec) -> Vec<T> {
    spec.build(x.len(), |i, m| x[i] * T::from_f64(f64::from(m)))
}

/// x times the mask of `spec`, recorded as a linear op whose backward applies the same mask.
fn apply(x: &Tensor, spec: MaskSpec) -> Result<Tensor> {
    let storage = match x.storage() {
        Storage::Cpu(s) => Storage::Cpu(with_cpu!(s, v => apply_cpu(v, spec))),
        Storage::Gpu(b) => {
            let ctx = b.context();
            let out = ctx.alloc(x.numel())?;
            let grid = ctx.grid(x.numel())?;
            ctx.dispatch(&APPLY, &spec.params(x.numel()), &[b, &out], grid)?;
            Storage::Gpu(out)
        }
    };
    Ok(Tensor::from_op(
        storage,
        x.shape().to_vec(),
        &[x],
        DropoutGrad(spec),
    ))
}

struct DropoutGrad(MaskSpec);

impl GradFn for DropoutGrad {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(apply(g, self.0)?)])
    }
}

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32-10 block for `counter` under `key`.
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for _ in 0..10 {
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// The dropout mask for `shape`: each element 1/keep with probability keep, else 0.
pub fn dropout_mask(
    shape: &[usize],
    rate: f32,
    seed: u64,
    offset: u32,
    device: &Device,
) -> Result<Tensor> {
    let spec = MaskSpec::new(rate, seed, offset)?;
    let n: usize = shape.iter().product();
    match device {
        Device::Cpu => Tensor::from_vec(spec.build(n, |_, m| m), shape, device),
        Device::Gpu(ctx) => {
            let out = ctx.alloc(n)?;
            ctx.dispatch(&MASK, &spec.params(n), &[&out], ctx.grid(n)?)?;
            Ok(Tensor::from_storage(
                std::rc::Rc::new(Storage::Gpu(out)),
                shape.to_vec(),
            ))
        }
    }
}

impl Tensor {
    /// Inverted dropout: in training, zeroes each element with probability `rate` and scales
    /// the rest by 1 / (1 - rate); the identity otherwise. The backward pass multiplies by the
    /// same mask, regenerated. `seed` and `offset` pick the mask (e.g. a run seed and a
    /// per-call counter). One kernel each way on the GPU; nothing stored.
    pub fn dropout(&self, rate: f32, training: bool, seed: u64, offset: u32) -> Result<Tensor> {
        let spec = MaskSpec::new(rate, seed, offset)?;
        if !training || rate == 0.0 {
            return Ok(self.clone());
        }
        apply(self, spec)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn philox_matches_the_published_known_answer() {
        // Random123 kat_vectors: philox4x32_10 with counter and key all 0xffffffff... and zero.
        assert_eq!(
            super::philox4x32([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            super::philox4x32([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
    }
}
