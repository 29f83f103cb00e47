//! Seeded random fills. Values are drawn on the host in f64 from a ChaCha stream, so the
//! same seed gives the same numbers on every device and dtype (and on every platform).

use super::{DType, Tensor};
use crate::device::Device;
use crate::shape::numel;
use crate::Result;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};

/// Where a [`Rng`] stands: enough to continue its stream exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RngState {
    pub seed: [u8; 32],
    pub stream: u64,
    pub word_pos: u128,
}

impl RngState {
    /// As text (hex seed, stream, position), for checkpoint metadata.
    pub fn encode(&self) -> String {
        let seed: String = self.seed.iter().map(|b| format!("{b:02x}")).collect();
        format!("{seed}:{}:{}", self.stream, self.word_pos)
    }

    pub fn decode(text: &str) -> Option<RngState> {
        let mut parts = text.split(':');
        let hex = parts.next()?;
        if hex.len() != 64 {
            return None;
        }
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        let stream = parts.next()?.parse().ok()?;
        let word_pos = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(RngState {
            seed,
            stream,
            word_pos,
        })
    }
}

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

    /// The generator's full state (seed, stream, position), for checkpoints.
    pub fn state(&self) -> RngState {
        RngState {
            seed: self.0.get_seed(),
            stream: self.0.get_stream(),
            word_pos: self.0.get_word_pos(),
        }
    }

    /// A generator continuing exactly where `state` was taken.
    pub fn from_state(state: &RngState) -> Self {
        let mut rng = ChaCha8Rng::from_seed(state.seed);
        rng.set_stream(state.stream);
        rng.set_word_pos(state.word_pos);
        Rng(rng)
    }

    pub fn inner(&mut self) -> &mut ChaCha8Rng {
        &mut self.0
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
    use super::{Rng, RngState};

    #[test]
    fn a_saved_state_continues_the_same_stream() {
        let mut a = Rng::seed(11);
        a.normal_vec(37, 0.0, 1.0);
        let state = a.state();
        let restored = RngState::decode(&state.encode()).expect("round trip");
        assert_eq!(restored, state);
        let mut b = Rng::from_state(&restored);
        assert_eq!(a.normal_vec(100, 0.0, 1.0), b.normal_vec(100, 0.0, 1.0));
        assert!(RngState::decode("zz").is_none());
        assert!(RngState::decode(&format!("{}:1", "0".repeat(64))).is_none());
    }
}
