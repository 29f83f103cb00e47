//! Embedding lookup by integer labels, and its adjoint (scatter-add of the output gradient
//! into the table rows, repeated labels summed). Each is the other's backward rule.

use crate::cpu::{with_cpu2, Real};
use crate::device::{read, write, Binding, Kernel};
use crate::tensor::graph::GradFn;
use crate::tensor::Storage;
use crate::{Error, Result, Tensor};

crate::kernel_params! {
    pub(crate) struct EmbeddingParams { batch: u32, rows: u32, dim: u32 }
}

const BUFFERS: &[Binding] = &[read("src"), read("labels"), write("out")];
const SOURCE: &[&str] = &[include_str!("../../shaders/embedding.wgsl")];

/// Lookup, then its adjoint (scatter).
pub(crate) static EMBEDDING: [Kernel<EmbeddingParams>; 2] = [
    Kernel::new("embedding_lookup", BUFFERS, SOURCE).entry("lookup"),
    Kernel::new("embedding_scatter", BUFFERS, SOURCE).entry("scatter"),
];

#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Lookup,
    Scatter,
}

fn lookup_cpu<T: Real>(table: &[T], labels: &[T], dim: usize) -> Vec<T> {
    labels
        .iter()
        .flat_map(|&l| {
            let row = l.to_f64() as usize;
            table[row * dim..(row + 1) * dim].iter().copied()
        })
        .collect()
}

fn scatter_cpu<T: Real>(g: &[T], labels: &[T], rows: usize, dim: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; rows * dim];
    for (i, &l) in labels.iter().enumerate() {
        let row = l.to_f64() as usize;
        for d in 0..dim {
            out[row * dim + d] = out[row * dim + d] + g[i * dim + d];
        }
    }
    out
}

/// `src` is the table [rows, dim] (lookup) or the gradient [batch, dim] (scatter).
fn embed(src: &Tensor, labels: &Tensor, rows: usize, dir: Dir) -> Result<Tensor> {
    src.same_device(labels, "embedding")?;
    let (batch, dim) = (labels.numel(), src.shape()[1]);
    let shape = match dir {
        Dir::Lookup => vec![batch, dim],
        Dir::Scatter => vec![rows, dim],
    };
    let storage = match (src.storage(), labels.storage()) {
        (Storage::Cpu(s), Storage::Cpu(l)) => {
            Storage::Cpu(with_cpu2!("embedding", s, l, s, l => match dir {
                Dir::Lookup => lookup_cpu(s, l, dim),
                Dir::Scatter => scatter_cpu(s, l, rows, dim),
            })?)
        }
        (Storage::Gpu(s), Storage::Gpu(l)) => {
            let ctx = s.context();
            let n = shape[0] * dim;
            let out = ctx.alloc(n)?;
            let params = EmbeddingParams {
                batch: batch as u32,
                rows: rows as u32,
                dim: dim as u32,
            };
            let kernel = &EMBEDDING[usize::from(dir == Dir::Scatter)];
            ctx.dispatch(kernel, &params, &[s, l, &out], ctx.grid(n)?)?;
            Storage::Gpu(out)
        }
        _ => unreachable!("same_device checked"),
    };
    Ok(Tensor::from_op(
        storage,
        shape,
        &[src],
        EmbedGrad {
            labels: labels.detach(),
            rows: src.shape()[0],
            dir,
        },
    ))
}

struct EmbedGrad {
    labels: Tensor,
    /// Rows of the table (for the scatter back from a lookup).
    rows: usize,
    dir: Dir,
}

impl GradFn for EmbedGrad {
    fn name(&self) -> &'static str {
        "embedding"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(match self.dir {
            Dir::Lookup => embed(g, &self.labels, self.rows, Dir::Scatter)?,
            Dir::Scatter => embed(g, &self.labels, 0, Dir::Lookup)?,
        })])
    }
}

impl Tensor {
    /// Rows of this table [rows, dim] picked by `labels` (Keras `Embedding` + flatten):
    /// [labels.len(), dim]. The gradient scatters back into the picked rows.
    pub fn embedding(&self, labels: &[usize]) -> Result<Tensor> {
        let &[rows, _] = self.shape() else {
            return Err(Error::shape(
                "embedding",
                format!("table must be [rows, dim], got {:?}", self.shape()),
            ));
        };
        if let Some(&bad) = labels.iter().find(|&&l| l >= rows) {
            return Err(Error::Invalid(format!(
                "embedding: label {bad} is outside the table's {rows} rows"
            )));
        }
        let values = labels.iter().map(|&l| l as f64).collect::<Vec<_>>();
        let labels = match self.dtype() {
            crate::DType::F64 => Tensor::from_vec_f64(values, &[labels.len()])?,
            crate::DType::F32 => Tensor::from_vec(
                values.iter().map(|&v| v as f32).collect(),
                &[labels.len()],
                &self.device(),
            )?,
        };
        embed(self, &labels, rows, Dir::Lookup)
    }
}
