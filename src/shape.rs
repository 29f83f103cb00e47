//! Shape arithmetic shared by every op: strides, broadcasting, axis normalisation.

use crate::{Error, Result};

/// Most dimensions a GPU kernel indexes over. Strided kernels carry fixed-size shape arrays.
pub const MAX_RANK: usize = 6;

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides of a contiguous tensor.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

/// NumPy broadcasting: shapes are aligned on the right, and a size-1 dim stretches.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shape(
                    op,
                    format!("cannot broadcast {a:?} with {b:?}"),
                ))
            }
        };
    }
    Ok(out)
}

/// Strides that read a tensor of shape `from` as if it had the broadcast shape `to`:
/// 0 along every stretched or missing dim.
pub fn broadcast_strides(from: &[usize], to: &[usize]) -> Vec<usize> {
    let own = contiguous_strides(from);
    let offset = to.len() - from.len();
    (0..to.len())
        .map(|d| {
            if d < offset || from[d - offset] == 1 {
                0
            } else {
                own[d - offset]
            }
        })
        .collect()
}

/// Accepts negative axes, Python style.
pub fn normalize_axis(axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(1) {
        return Err(Error::Invalid(format!(
            "axis {axis} out of range for a tensor of rank {rank}"
        )));
    }
    Ok(a as usize)
}

/// Pads a shape/strides pair on the left to `MAX_RANK` entries, for the strided GPU kernels.
pub fn pad_to_max_rank(op: &'static str, values: &[usize], fill: usize) -> Result<[u32; MAX_RANK]> {
    if values.len() > MAX_RANK {
        return Err(Error::shape(
            op,
            format!(
                "rank {} exceeds the GPU kernels' maximum of {MAX_RANK}",
                values.len()
            ),
        ));
    }
    let mut out = [fill as u32; MAX_RANK];
    let offset = MAX_RANK - values.len();
    for (i, &v) in values.iter().enumerate() {
        out[offset + i] = u32::try_from(v)
            .map_err(|_| Error::shape(op, format!("dimension/stride {v} exceeds u32")))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(
            broadcast_shapes("t", &[3, 1, 5], &[4, 1]).unwrap(),
            vec![3, 4, 5]
        );
        assert!(broadcast_shapes("t", &[3, 2], &[3]).is_err());
        assert_eq!(broadcast_strides(&[4, 1], &[3, 4, 5]), vec![0, 1, 0]);
        assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(normalize_axis(-1, 3).unwrap(), 2);
        assert!(normalize_axis(3, 3).is_err());
    }
}
