//! Initialisers with Keras' defaults (glorot-uniform weights, zero biases, embeddings
//! U(-0.05, 0.05)), DCGAN's N(0, 0.02), and ProGAN's equalised learning rate.

use crate::{Device, Result, Rng, Tensor};

/// How a weight layer draws its weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightInit {
    /// Keras' default for Dense and Conv: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)).
    GlorotUniform,
    /// ProGAN's equalised learning rate: weights stored N(0, 1) and multiplied at run time by
    /// gain / sqrt(fan_in), so every layer learns at the same speed under Adam. The paper's
    /// gain is sqrt(2); 1 for toRGB and D's output, sqrt(2) / 4 for G's first dense layer.
    Equalized { gain: f32 },
    /// N(0, std^2): the DCGAN paper's and PyTorch example's N(0, 0.02).
    Normal { std: f32 },
}

impl WeightInit {
    /// `Equalized` with the He gain sqrt(2).
    pub fn equalized() -> Self {
        WeightInit::Equalized {
            gain: std::f32::consts::SQRT_2,
        }
    }
}

/// Initialisation and bias of a weight layer (Linear, Conv2d, ConvTranspose2d).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightConfig {
    pub init: WeightInit,
    pub bias: bool,
}

impl Default for WeightConfig {
    /// Keras: glorot-uniform weights, a zero bias.
    fn default() -> Self {
        WeightConfig {
            init: WeightInit::GlorotUniform,
            bias: true,
        }
    }
}

impl WeightConfig {
    pub fn init(mut self, init: WeightInit) -> Self {
        self.init = init;
        self
    }

    pub fn bias(mut self, on: bool) -> Self {
        self.bias = on;
        self
    }
}

/// Fan-in and fan-out of a weight, as Keras counts them (receptive field included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fans {
    pub fan_in: usize,
    pub fan_out: usize,
}

/// A weight layer's parameters and the factor its weight is multiplied by at run time.
pub(crate) struct Weights {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    /// 1 except under the equalised learning rate.
    pub scale: f32,
}

impl Weights {
    pub fn new(
        shape: &[usize],
        fans: Fans,
        bias_len: usize,
        cfg: WeightConfig,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Weights> {
        let (weight, scale) = match cfg.init {
            WeightInit::GlorotUniform => (glorot_uniform(shape, fans, rng, device)?, 1.0),
            WeightInit::Normal { std } => {
                (Tensor::randn(shape, 0.0, f64::from(std), rng, device)?, 1.0)
            }
            WeightInit::Equalized { gain } => (
                Tensor::randn(shape, 0.0, 1.0, rng, device)?,
                gain / (fans.fan_in.max(1) as f32).sqrt(),
            ),
        };
        let bias = if cfg.bias {
            Some(Tensor::zeros(&[bias_len], device)?.with_grad())
        } else {
            None
        };
        Ok(Weights {
            weight: weight.with_grad(),
            bias,
            scale,
        })
    }

    /// The weight as the layer uses it: scaled by the equalised-LR constant when there is one.
    pub fn effective(&self) -> Result<Tensor> {
        if self.scale == 1.0 {
            Ok(self.weight.clone())
        } else {
            self.weight.mul_scalar(self.scale)
        }
    }

    pub fn state(&self) -> Vec<(&'static str, super::Role, &Tensor)> {
        let mut out = vec![("weight", super::Role::Parameter, &self.weight)];
        if let Some(b) = &self.bias {
            out.push(("bias", super::Role::Parameter, b));
        }
        out
    }
}

/// The accessors and the `Module` impl of a layer whose state is one [`Weights`] in field `w`
/// (`Linear`, `Conv2d`, `ConvTranspose2d`).
macro_rules! weight_layer {
    ($($layer:ty),+ $(,)?) => {$(
        impl $layer {
            pub fn weight(&self) -> &crate::Tensor {
                &self.w.weight
            }

            pub fn bias(&self) -> Option<&crate::Tensor> {
                self.w.bias.as_ref()
            }

            /// The factor the weight is multiplied by at run time (1 unless equalised).
            pub fn weight_scale(&self) -> f32 {
                self.w.scale
            }
        }

        impl crate::nn::Module for $layer {
            fn own_state(&self) -> Vec<(&'static str, crate::nn::Role, &crate::Tensor)> {
                self.w.state()
            }
        }
    )+};
}
pub(crate) use weight_layer;

/// Keras `GlorotUniform`: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
pub fn glorot_uniform(
    shape: &[usize],
    fans: Fans,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor> {
    let limit = (6.0 / (fans.fan_in + fans.fan_out).max(1) as f64).sqrt();
    Tensor::rand_uniform(shape, -limit, limit, rng, device)
}

/// Keras `Embedding`'s default table: U(-0.05, 0.05).
pub fn embedding_uniform(shape: &[usize], rng: &mut Rng, device: &Device) -> Result<Tensor> {
    Tensor::rand_uniform(shape, -0.05, 0.05, rng, device)
}
