//! The evaluation report: Inception Score, Frechet distance and class coverage of a set of
//! generated images, beside the same numbers for real test images (the reference row).

use super::classifier::{Classifier, Outputs, CLASSES, FEATURES};
use super::metrics::{argmax_rows, class_coverage, frechet_distance_of, inception_score, Coverage};
use crate::{Device, Result};

#[derive(Clone, Debug)]
pub struct Row {
    pub name: String,
    pub n: usize,
    pub is_mean: f64,
    pub is_std: f64,
    /// Frechet distance of this row's features to the reference features.
    pub fid: f64,
    pub coverage: Coverage,
}

impl Row {
    pub fn of(name: &str, out: &Outputs, reference: &Outputs) -> Row {
        let (is_mean, is_std) = inception_score(&out.probs, CLASSES, 10);
        Row {
            name: name.into(),
            n: out.n,
            is_mean,
            is_std,
            fid: frechet_distance_of(&out.features, &reference.features, FEATURES),
            coverage: class_coverage(&argmax_rows(&out.probs, CLASSES), CLASSES),
        }
    }

    pub fn json(&self) -> String {
        let hist: Vec<String> = self
            .coverage
            .histogram
            .iter()
            .map(|c| c.to_string())
            .collect();
        format!(
            "{{\"name\":\"{}\",\"n\":{},\"inception_score\":{:.4},\"inception_score_std\":{:.4},\"fid\":{:.4},\"classes_covered\":{},\"kl_to_uniform\":{:.4},\"histogram\":[{}]}}",
            self.name, self.n, self.is_mean, self.is_std, self.fid, self.coverage.classes_covered, self.coverage.kl_to_uniform, hist.join(",")
        )
    }
}

/// Rows for `images` against real test images (FID to the test features) and the reference
/// row: the test set itself (FID to the training features).
pub fn evaluate(
    clf: &Classifier,
    images: &[f32],
    test: &[f32],
    train: &[f32],
    device: &Device,
) -> Result<Vec<Row>> {
    let test_out = clf.outputs(test, device)?;
    let train_out = clf.outputs(train, device)?;
    let gen_out = clf.outputs(images, device)?;
    Ok(vec![
        Row::of("generated", &gen_out, &test_out),
        Row::of("real test (reference)", &test_out, &train_out),
    ])
}

pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<24} {:>6} {:>14} {:>9} {:>8} {:>8}  histogram\n",
        "", "n", "IS", "FID", "classes", "KL(u)"
    );
    for r in rows {
        s += &format!(
            "{:<24} {:>6} {:>7.3} ± {:<5.3} {:>9.3} {:>8} {:>8.4}  {:?}\n",
            r.name,
            r.n,
            r.is_mean,
            r.is_std,
            r.fid,
            r.coverage.classes_covered,
            r.coverage.kl_to_uniform,
            r.coverage.histogram
        );
    }
    s
}

/// FID and IS of the generator during training, on `n` samples from fixed noise, against
/// the real test images' classifier features.
pub struct TrainingEval {
    pub classifier: Classifier,
    pub reference: Outputs,
    pub n: usize,
    pub device: Device,
}

/// `n` generator samples from the noise of seeds `seed`, `seed + 500`, ... (500 per batch); a
/// conditional generator draws every class equally often.
pub fn sample_images(
    model: &mut dyn crate::models::Trainable,
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<f32>> {
    let mut images = Vec::with_capacity(n * 784);
    for start in (0..n).step_by(500) {
        let count = (n - start).min(500);
        let z = crate::train::trainer::seeded_noise(
            seed.wrapping_add(start as u64),
            count,
            model.z_dim(),
            device,
        )?;
        let labels: Option<Vec<usize>> = model
            .is_conditional()
            .then(|| (start..start + count).map(|i| i % 10).collect());
        let batch = model.sample(&z, labels.as_deref())?;
        if batch.rank() != 4 {
            return Err(crate::Error::Invalid(
                "this model draws points (toy data), not images: there is nothing for the image classifier to score; its training run logs modes_covered and high_quality".into(),
            ));
        }
        if let [_, c, h, w] = *batch.shape() {
            if c != 1 || h < 28 || w < 28 {
                return Err(crate::Error::Invalid(super::classifier::not_scored(
                    &format!("this model's {c}x{h}x{w} images"),
                )));
            }
        }
        images.extend(crop_to_mnist(&batch)?.to_vec()?);
    }
    Ok(images)
}

/// The central 28x28 of larger images (ProGAN draws MNIST padded to 32x32), which is what the
/// classifier was trained on.
fn crop_to_mnist(images: &crate::Tensor) -> Result<crate::Tensor> {
    match *images.shape() {
        [_, _, h, w] if h > 28 && w > 28 => {
            images
                .narrow(2, (h - 28) / 2, 28)?
                .narrow(3, (w - 28) / 2, 28)
        }
        _ => Ok(images.clone()),
    }
}

impl crate::train::trainer::Evaluator for TrainingEval {
    fn names(&self) -> Vec<&'static str> {
        vec!["fid", "inception_score"]
    }

    fn evaluate(
        &mut self,
        model: &mut dyn crate::models::Trainable,
        _step: u64,
    ) -> Result<Vec<f64>> {
        let images = sample_images(model, self.n, 0, &self.device)?;
        let row = Row::of(
            "generated",
            &self.classifier.outputs(&images, &self.device)?,
            &self.reference,
        );
        Ok(vec![row.fid, row.is_mean])
    }
}
