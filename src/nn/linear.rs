//! Fully connected layer (Keras `Dense`).

use super::init::{weight_layer, Fans, WeightConfig, Weights};
use super::{Activation, Ctx, Layer};
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
}

impl Linear {
    fn check_input(&self, x: &Tensor) -> Result<()> {
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
        Ok(())
    }
}

impl Layer for Linear {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        self.check_input(x)?;
        x.linear(&self.w.effective()?, self.w.bias.as_ref())
    }

    fn forward_activated(
        &self,
        x: &Tensor,
        act: Activation,
        _: &mut Ctx,
    ) -> Option<Result<Tensor>> {
        Some(self.check_input(x).and_then(|()| {
            x.linear_activated(&self.w.effective()?, self.w.bias.as_ref(), Some(act))
        }))
    }
}

weight_layer!(Linear);
