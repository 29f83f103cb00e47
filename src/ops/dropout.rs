//! Inverted dropout with a counter-based RNG (Philox4x32-10), bit-identical on CPU and GPU:
//! the mask is a function of (seed, offset, element index) only.

use crate::device::{write, Kernel};
use crate::tensor::Storage;
use crate::{Device, Error, Result, Tensor};

crate::kernel_params! {
    pub(crate) struct DropoutParams { n: u32, seed: [u32; 2], offset: u32, keep: f32 }
}

pub(crate) static DROPOUT: Kernel<DropoutParams> = Kernel::new(
    "dropout",
    &[write("mask")],
    &[include_str!("../../shaders/dropout.wgsl")],
);

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
    if !(0.0..1.0).contains(&rate) {
        return Err(Error::Invalid(format!(
            "dropout rate {rate} must be in [0, 1)"
        )));
    }
    let keep = 1.0 - rate;
    let n: usize = shape.iter().product();
    let key = [seed as u32, (seed >> 32) as u32];
    match device {
        Device::Cpu => {
            let mask = (0..n)
                .map(|i| {
                    let word = philox4x32([i as u32, offset, 0, 0], key)[0];
                    let u = (word >> 8) as f32 * (1.0 / 16_777_216.0);
                    if u < keep {
                        1.0 / keep
                    } else {
                        0.0
                    }
                })
                .collect();
            Tensor::from_vec(mask, shape, device)
        }
        Device::Gpu(ctx) => {
            let out = ctx.alloc(n)?;
            let params = DropoutParams {
                n: n as u32,
                seed: key,
                offset,
                keep,
            };
            ctx.dispatch(&DROPOUT, &params, &[&out], ctx.grid(n)?)?;
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
    /// same mask. `seed` and `offset` pick the mask (e.g. a run seed and a per-call counter).
    pub fn dropout(&self, rate: f32, training: bool, seed: u64, offset: u32) -> Result<Tensor> {
        if !training || rate == 0.0 {
            return Ok(self.clone());
        }
        self.mul(&dropout_mask(
            self.shape(),
            rate,
            seed,
            offset,
            &self.device(),
        )?)
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
