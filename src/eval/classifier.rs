//! The evaluator's classifier: a small LeNet-like CNN trained by the engine itself. Its
//! softmax feeds the Inception Score and the class histogram; its 128-unit penultimate layer
//! is the feature space of the Frechet distance.

use crate::autograd::no_grad;
use crate::checkpoint::{Checkpoint, Targets};
use crate::data::{Batch, Batcher, Sampling, Split};
use crate::nn::{
    Activation, AvgPool2d, BatchNorm, Conv2d, Conv2dConfig, Ctx, Flatten, Layer, Linear, Module,
    Sequential,
};
use crate::optim::{Adam, Optimizer};
use crate::{Device, Error, Result, Rng, Tensor};
use std::path::Path;

pub const FEATURES: usize = 128;
pub const CLASSES: usize = 10;

pub struct Classifier {
    /// Image -> penultimate features (ReLU of a 128-unit dense layer).
    pub body: Sequential,
    /// Features -> class logits.
    pub head: Linear,
    pub dataset: String,
}

/// Puts a module back into training mode when dropped (also on an early error return).
struct Restore<'a>(&'a Sequential);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        self.0.set_training(true);
    }
}

/// Softmax probabilities and features of a set of images.
pub struct Outputs {
    pub probs: Vec<f32>,
    pub features: Vec<f32>,
    pub n: usize,
}

/// The datasets the evaluation classifier learns and scores: 1x28x28 images.
pub const SCORED: [&str; 2] = ["mnist", "fashion-mnist"];

/// Why Inception Score and FID are not computed for images like `what`.
pub fn not_scored(what: &str) -> String {
    format!(
        "IS and FID here come from a small classifier trained on the MNIST family ({}): no \
         Inception network's weights are available offline, so {what} are not scored. Judge \
         them by the run's sample grids (samples/), its loss curves (losses.png) and `ganlab \
         sample`",
        SCORED.join(", ")
    )
}

/// An error for a dataset without an evaluation classifier.
pub fn check_scored(dataset: &str) -> Result<()> {
    if SCORED.contains(&dataset) {
        Ok(())
    } else {
        Err(Error::Invalid(not_scored(&format!("{dataset} images"))))
    }
}

impl Classifier {
    pub fn new(dataset: &str, rng: &mut Rng, device: &Device) -> Result<Self> {
        let same = Conv2dConfig::default().same();
        let body = Sequential::new()
            .named("conv1", Conv2d::new(1, 32, 3, same, rng, device)?)
            .named("bn1", BatchNorm::new(32, device)?)
            .named("relu1", Activation::Relu)
            .named("pool1", AvgPool2d(2))
            .named("conv2", Conv2d::new(32, 64, 3, same, rng, device)?)
            .named("bn2", BatchNorm::new(64, device)?)
            .named("relu2", Activation::Relu)
            .named("pool2", AvgPool2d(2))
            .named("flatten", Flatten)
            .named("dense", Linear::new(64 * 7 * 7, FEATURES, rng, device)?)
            .named("relu3", Activation::Relu);
        Ok(Classifier {
            body,
            head: Linear::new(FEATURES, CLASSES, rng, device)?,
            dataset: dataset.into(),
        })
    }

    fn logits(&self, x: &Tensor, ctx: &mut Ctx) -> Result<(Tensor, Tensor)> {
        let features = self.body.forward(x, ctx)?;
        Ok((self.head.forward(&features, ctx)?, features))
    }

    /// Adam(1e-3) on cross-entropy, epoch-shuffled batches; returns the test accuracy.
    pub fn fit(
        &mut self,
        train: &Split,
        test: &Split,
        epochs: usize,
        batch: usize,
        seed: u64,
        mut log: impl FnMut(usize, f32),
    ) -> Result<f32> {
        let device = self.head.weight().device();
        let mut params = self.body.named_parameters("body");
        params.extend(self.head.named_parameters("head"));
        let mut opt = Optimizer::new(Adam::default(), 1e-3, params)?;
        let mut batcher = Batcher::new(train.n, batch, Sampling::EpochShuffle, seed)?;
        let steps = epochs * train.n.div_ceil(batch);
        let (mut ctx, mut buf) = (Ctx::new(seed), Batch::default());
        for step in 1..=steps {
            batcher.next_batch(train, &mut buf)?;
            let labels: Vec<usize> = buf.labels.iter().map(|&l| usize::from(l)).collect();
            opt.zero_grad();
            let loss = self
                .logits(&buf.to_tensor(&device)?, &mut ctx)?
                .0
                .cross_entropy(&labels)?;
            loss.backward()?;
            opt.step()?;
            if step % 50 == 0 || step == steps {
                log(step, loss.item()?);
            }
        }
        self.accuracy(test)
    }

    /// Probabilities and features of `images` ([n, 1, 28, 28] values in [-1, 1]), in batches.
    pub fn outputs(&self, images: &[f32], device: &Device) -> Result<Outputs> {
        let n = images.len() / 784;
        let (mut probs, mut features) = (
            Vec::with_capacity(n * CLASSES),
            Vec::with_capacity(n * FEATURES),
        );
        let mut ctx = Ctx::new(0);
        // Inference mode: batch norm on its running statistics.
        self.body.set_training(false);
        let _restore = Restore(&self.body);
        for chunk in images.chunks(256 * 784) {
            let x = Tensor::from_vec(chunk.to_vec(), &[chunk.len() / 784, 1, 28, 28], device)?;
            let (logits, feats) = no_grad(|| self.logits(&x, &mut ctx))?;
            probs.extend(no_grad(|| logits.softmax(1))?.to_vec()?);
            features.extend(feats.to_vec()?);
        }
        Ok(Outputs { probs, features, n })
    }

    /// Share of `split` classified correctly.
    pub fn accuracy(&self, split: &Split) -> Result<f32> {
        let out = self.outputs(&split.all_values(), &self.head.weight().device())?;
        let predicted = super::metrics::argmax_rows(&out.probs, CLASSES);
        let right = predicted
            .iter()
            .zip(&split.labels)
            .filter(|(p, l)| **p == usize::from(**l))
            .count();
        Ok(right as f32 / split.n.max(1) as f32)
    }

    pub fn save(&self, path: &Path, test_accuracy: f32) -> Result<()> {
        let mut ck = Checkpoint::new();
        ck.put("body", &self.body)?;
        ck.put("head", &self.head)?;
        ck.set_metadata("model", "classifier")?;
        ck.set_metadata("dataset", &self.dataset)?;
        ck.set_metadata("test_accuracy", &test_accuracy.to_string())?;
        ck.save(path)
    }

    /// Loads a classifier and checks it was trained on `dataset` (its scores on another
    /// dataset's images would mean nothing).
    pub fn load_for(path: &Path, dataset: &str, device: &Device) -> Result<Self> {
        let c = Classifier::load(path, device)?;
        if c.dataset != dataset {
            return Err(Error::Invalid(format!(
                "the classifier {} was trained on {}, not {dataset}: pass --classifier with one \
                 trained on {dataset}, or train it with `ganlab train-classifier --dataset {dataset}`",
                path.display(),
                crate::models::saved::quoted(&c.dataset)
            )));
        }
        Ok(c)
    }

    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let ck = Checkpoint::load(path)?;
        if ck.metadata("model") != Some("classifier") {
            return Err(Error::Checkpoint(format!(
                "{}: not a classifier (train one with `ganlab train-classifier`)",
                path.display()
            )));
        }
        let mut c = Classifier::new(
            ck.metadata("dataset").unwrap_or("?"),
            &mut Rng::seed(0),
            device,
        )?;
        let mut targets = Targets::new();
        targets.add("body", &mut c.body).add("head", &mut c.head);
        ck.restore(targets)?;
        Ok(c)
    }
}
