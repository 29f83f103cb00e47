//! ProGAN's normalisations, written as compositions of differentiable ops so their backward
//! passes can be differentiated again: pixel norm and minibatch standard deviation. (Batch
//! norm is fused: `batch_norm.rs`.)

use crate::{Error, Result, Tensor};

impl Tensor {
    /// ProGAN pixelwise feature normalisation: a / sqrt(mean over channels of a^2 + 1e-8).
    pub fn pixel_norm(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::shape(
                "pixel_norm",
                format!("needs (N, C, ...), got {:?}", self.shape()),
            ));
        }
        self.div(&self.square()?.mean(&[1], true)?.add_scalar(1e-8)?.sqrt()?)
    }

    /// ProGAN minibatch standard deviation: for groups of `group` samples (sample n is in
    /// group n % (N / group), as in the official code), the std over the group of every
    /// feature, averaged to one number per group and appended as one constant feature map.
    pub fn minibatch_stddev(&self, group: usize) -> Result<Tensor> {
        let &[n, c, h, w] = self.shape() else {
            return Err(Error::shape(
                "minibatch_stddev",
                format!("needs NCHW, got {:?}", self.shape()),
            ));
        };
        let g = group.min(n).max(1);
        if n % g != 0 {
            return Err(Error::shape(
                "minibatch_stddev",
                format!("batch {n} is not divisible by the group size {g}"),
            ));
        }
        let y = self.reshape(&[g, n / g, c, h, w])?;
        let centred = y.sub(&y.mean(&[0], true)?)?;
        let std = centred
            .square()?
            .mean(&[0], false)?
            .add_scalar(1e-8)?
            .sqrt()?; // [n/g, c, h, w]
        let per_group = std.mean(&[1, 2, 3], true)?; // [n/g, 1, 1, 1]
        let map = per_group
            .reshape(&[1, n / g, 1, 1, 1])?
            .expand(&[g, n / g, 1, h, w])?
            .reshape(&[n, 1, h, w])?;
        Tensor::concat(&[self, &map], 1)
    }
}
