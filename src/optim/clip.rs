//! WGAN's weight clipping, in place.

use crate::device::{write, Kernel};
use crate::tensor::Storage;
use crate::{DType, Error, Result, Tensor};

crate::kernel_params! {
    pub struct ClipParams { n: u32, c: f32 }
}

pub(super) static CLIP: Kernel<ClipParams> = Kernel::new(
    "clip",
    &[write("w")],
    &[include_str!("../../shaders/clip.wgsl")],
);

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
                let params = ClipParams {
                    n: t.numel() as u32,
                    c,
                };
                ctx.dispatch(&CLIP, &params, &[b], ctx.grid(t.numel())?)?;
            }
        }
    }
    Ok(())
}
