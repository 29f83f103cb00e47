//! Optimisers that update parameters in place on their device, one fused kernel per
//! parameter tensor and step.

mod adam;

pub use adam::Adam;

use crate::tensor::Storage;
use crate::{Error, Result, Tensor};

/// The f32 host slices or GPU buffers of a parameter and the tensors updated with it.
pub(crate) fn check_update(param: &Tensor, grad: &Tensor, op: &'static str) -> Result<()> {
    if grad.shape() != param.shape() {
        return Err(Error::shape(
            op,
            format!(
                "gradient {:?} for parameter {:?}",
                grad.shape(),
                param.shape()
            ),
        ));
    }
    param.same_device(grad, op)?;
    if matches!(param.storage(), Storage::Cpu(s) if s.f32().is_none()) {
        return Err(Error::DType {
            op,
            dtype: param.dtype(),
            hint: "optimisers update f32 parameters",
        });
    }
    Ok(())
}
