//! WGAN's weight clipping, in place.

use crate::device::Params;
use crate::tensor::Storage;
use crate::{DType, Error, Result, Tensor};

/// Clips every value of every tensor to [-c, c] in place (one kernel per tensor on the GPU).
pub fn clip_(tensors: &[Tensor], c: f32) -> Result<()> {
    if !(c.is_finite() && c >= 0.0) {
        return Err(Error::Invalid(format!(
            "clip bound {c} must be finite and >= 0"
        )));
    }
    for t in tensors {
        match t.storage() {
            Storage::Cpu(s) => {
                let mut v = s.f32_mut().ok_or(Error::DType {
                    op: "clip_",
                    dtype: DType::F64,
                    hint: "weight clipping works on f32 tensors",
                })?;
                v.iter_mut().for_each(|x| *x = x.clamp(-c, c));
            }
            Storage::Gpu(b) => {
                let ctx = b.context();
                let pipeline = ctx.pipeline("clip", "main", || {
                    include_str!("../../shaders/clip.wgsl").to_string()
                })?;
                let params = Params::new().u(t.numel()).f(c);
                ctx.launch(&pipeline, &params, &[b.raw()], ctx.grid(t.numel())?)?;
            }
        }
    }
    Ok(())
}
