//! Seeded random fills. Values are drawn on the host in f64 from a ChaCha stream, so the
//! same seed gives the same numbers on every device and dtype (and on every platform).

use super::{DType, Tensor};
use crate::device::Device;
use crate::shape::numel;
use crate::Result;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};

/// The engine's random generator: reproducible from a seed, and its state can be saved.
pub struct Rng(ChaCha8Rng);

impl Rng {
    pub fn seed(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    pub fn normal_vec(&mut self, n: usize, mean: f64, std: f64) -> Vec<f64> {
        let dist = Normal::new(mean, std.abs()).unwrap_or_else(|_| Normal::new(0.0, 1.0).unwrap());
        (0..n).map(|_| dist.sample(&mut self.0)).collect()
    }

    pub fn uniform_vec(&mut self, n: usize, low: f64, high: f64) -> Vec<f64> {
        (0..n)
            .map(|_| self.0.random_range(0.0..1.0) * (high - low) + low)
            .collect()
    }

    pub fn standard_normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.0)
    }

    /// A uniform integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.random()
    }

    pub fn inner(&mut self) -> &mut ChaCha8Rng {
        &mut self.0
    }

    /// The whole state, for checkpoints: the 256-bit seed as four little-endian words, the
    /// stream, and the 128-bit word position (low, high).
    pub fn state(&self) -> [u64; 7] {
        let seed = self.0.get_seed();
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let pos = self.0.get_word_pos();
        [
            word(0),
            word(1),
            word(2),
            word(3),
            self.0.get_stream(),
            pos as u64,
            (pos >> 64) as u64,
        ]
    }

    /// The generator `state` describes: it continues exactly where the saved one was.
    pub fn from_state(state: [u64; 7]) -> Rng {
        let mut seed = [0u8; 32];
        for (chunk, w) in seed.chunks_exact_mut(8).zip(&state[..4]) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(state[4]);
        rng.set_word_pos(u128::from(state[5]) | (u128::from(state[6]) << 64));
        Rng(rng)
    }
}

fn make(values: Vec<f64>, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    match dtype {
        DType::F64 => Tensor::from_vec_f64(values, shape),
        DType::F32 => Tensor::from_vec(
            values.into_iter().map(|v| v as f32).collect(),
            shape,
            device,
        ),
    }
}

impl Tensor {
    /// Values ~ N(mean, std^2).
    pub fn randn(
        shape: &[usize],
        mean: f64,
        std: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor> {
        make(
            rng.normal_vec(numel(shape), mean, std),
            shape,
            DType::F32,
            device,
        )
    }

    /// Values ~ U(low, high).
    pub fn rand_uniform(
        shape: &[usize],
        low: f64,
        high: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor> {
        make(
            rng.uniform_vec(numel(shape), low, high),
            shape,
            DType::F32,
            device,
        )
    }

    /// f64 N(mean, std^2) on the CPU, for gradient checks.
    pub fn randn_f64(shape: &[usize], mean: f64, std: f64, rng: &mut Rng) -> Result<Tensor> {
        make(
            rng.normal_vec(numel(shape), mean, std),
            shape,
            DType::F64,
            &Device::Cpu,
        )
    }

    /// f64 U(low, high) on the CPU, for gradient checks.
    pub fn rand_uniform_f64(shape: &[usize], low: f64, high: f64, rng: &mut Rng) -> Result<Tensor> {
        make(
            rng.uniform_vec(numel(shape), low, high),
            shape,
            DType::F64,
            &Device::Cpu,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_saved_state_continues_the_same_stream() {
        let mut a = Rng::seed(11);
        a.normal_vec(37, 0.0, 1.0);
        let mut b = Rng::from_state(a.state());
        assert_eq!(a.normal_vec(100, 0.0, 1.0), b.normal_vec(100, 0.0, 1.0));
    }
}
