//! The memory a training step needs at a batch size, found before anything real is allocated:
//! the step runs on wgpu's noop backend (every buffer is tracked, no kernel runs, no memory is
//! touched) at two small batch sizes, and the buffer pool's peak is extrapolated linearly in
//! the batch. A batch that would not fit is refused with the largest that would, instead of the
//! process being killed halfway through its first step.

use crate::device::AdapterRequest;
use crate::models::Trainable;
use crate::{Device, Error, Result, Rng, Tensor};

/// Bytes one step holds at its peak, as `fixed + per_item * batch`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepMemory {
    pub fixed: f64,
    pub per_item: f64,
}

impl StepMemory {
    pub fn at(&self, batch: usize) -> f64 {
        self.fixed + self.per_item * batch as f64
    }

    /// The largest batch whose step fits in `bytes` (0 if none does).
    pub fn largest_batch(&self, bytes: f64) -> usize {
        if self.fixed > bytes {
            return 0;
        }
        if self.per_item <= 0.0 {
            return usize::MAX;
        }
        ((bytes - self.fixed) / self.per_item) as usize
    }
}

/// Measures a step of the model `build` makes, on items of `item_shape`, at batches `small`
/// and `2 * small` (`small` must suit the model, e.g. a multiple of ProGAN's group), after
/// `warmup` steps at each (ProGAN grows to its last resolution meanwhile, given a schedule of a
/// few images per phase).
pub fn measure(
    build: &dyn Fn(&Device) -> Result<Box<dyn Trainable>>,
    item_shape: &[usize],
    small: usize,
    warmup: usize,
) -> Result<StepMemory> {
    let peak = |batch: usize| -> Result<f64> {
        let device = Device::gpu_with(&AdapterRequest {
            backend: Some("noop".into()),
            ..Default::default()
        })?;
        let Device::Gpu(ctx) = &device else {
            unreachable!("the noop backend is a GPU context")
        };
        let mut model = build(&device)?;
        let images = batch * model.batches_per_step();
        let shape: Vec<usize> = [images].iter().chain(item_shape).copied().collect();
        let mut rng = Rng::seed(0);
        let real = Tensor::zeros(&shape, &device)?;
        let labels = vec![0; images];
        for _ in 0..=warmup {
            Tensor::items(&model.train_step(&real, &labels, &mut rng)?)?;
        }
        Ok(ctx.counters().peak_pool_bytes as f64)
    };
    let (a, b) = (peak(small)?, peak(2 * small)?);
    let per_item = ((b - a) / small as f64).max(0.0);
    Ok(StepMemory {
        fixed: (a - per_item * small as f64).max(0.0),
        per_item,
    })
}

/// Memory the host can still hand out (Linux: `MemAvailable`); `None` where unknown.
pub fn host_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses `batch` when its step needs more than `available` bytes (`flag` names the setting).
pub fn check_fits(
    need: &StepMemory,
    batch: usize,
    available: u64,
    flag: &str,
    what: &str,
) -> Result<()> {
    let gib = |b: f64| b / (1u64 << 30) as f64;
    if need.at(batch) <= available as f64 {
        return Ok(());
    }
    let advice = match need.largest_batch(available as f64) {
        0 => "no batch size fits: free memory, or train on another device".to_string(),
        largest => format!("use a batch size of at most {largest}"),
    };
    Err(Error::Invalid(format!(
        "{flag} {batch}: a training step needs about {:.1} GiB, {what} has {:.1} GiB; {advice}",
        gib(need.at(batch)),
        gib(available as f64),
    )))
}

#[cfg(test)]
mod tests {
    use super::{check_fits, StepMemory};

    #[test]
    fn the_largest_batch_is_the_one_whose_step_still_fits() {
        let m = StepMemory {
            fixed: 1000.0,
            per_item: 100.0,
        };
        assert_eq!(m.at(10), 2000.0);
        assert_eq!(m.largest_batch(2050.0), 10);
        assert_eq!(m.largest_batch(500.0), 0);
        assert!(check_fits(&m, 10, 2000, "--batch-size", "it").is_ok());
        let err = check_fits(&m, 11, 2050, "--batch-size", "it").unwrap_err();
        assert!(err.to_string().contains("at most 10"), "{err}");
        // Not even the model fits: no batch size is offered.
        let err = check_fits(&m, 1, 900, "--batch-size", "it").unwrap_err();
        assert!(err.to_string().contains("no batch size fits"), "{err}");
    }
}
