//! Fully connected layer (Keras `Dense`).

use super::init::{Fans, WeightConfig, Weights};
use super::{Ctx, Layer, Module, Role};
use crate::ops::matmul_t;
use crate::{Device, Error, Result, Rng, Tensor};

/// y = x W^T + b over the last dim. The weight is [out, in], PyTorch's layout, so checkpoints
/// load into `torch.nn.Linear` as they are.
pub struct Linear {
    w: Weights,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    /// Keras defaults: glorot-uniform weight, zero bias.
    pub fn new(inputs: usize, outputs: usize, rng: &mut Rng, device: &Device) -> Result<Linear> {
        Linear::with_config(inputs, outputs, WeightConfig::default(), rng, device)
    }

    pub fn with_config(
        inputs: usize,
        outputs: usize,
        cfg: WeightConfig,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Linear> {
        let fans = Fans {
            fan_in: inputs,
            fan_out: outputs,
        };
        Ok(Linear {
            w: Weights::new(&[outputs, inputs], fans, outputs, cfg, rng, device)?,
            inputs,
            outputs,
        })
    }

    pub fn weight(&self) -> &Tensor {
        &self.w.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.w.bias.as_ref()
    }

    /// The factor the weight is multiplied by at run time (1 unless equalised).
    pub fn weight_scale(&self) -> f32 {
        self.w.scale
    }
}

impl Module for Linear {
    fn own_state(&self) -> Vec<(&'static str, Role, &Tensor)> {
        self.w.state()
    }
}

impl Layer for Linear {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        if x.rank() < 2 || x.shape()[x.rank() - 1] != self.inputs {
            return Err(Error::shape(
                "Linear",
                format!(
                    "Linear({} -> {}) needs input [.., {}], got {:?}",
                    self.inputs,
                    self.outputs,
                    self.inputs,
                    x.shape()
                ),
            ));
        }
        let y = matmul_t(x, &self.w.effective()?, false, true)?;
        match &self.w.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }
}
