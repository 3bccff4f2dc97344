//! Adversarial examples by projected gradient descent on the loss (Madry, Makelov, Schmidt,
//! Tsipras & Vladu, "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018):
//! the attack that adversarial training trains against, and FGSM as its one-step case.
//!
//! The ball is L∞ of radius ε in *pixel* units (images in [0, 1]), as papers state it
//! (8/255 on CIFAR-10). lth's inputs are normalised per channel, `x = (p − μ) / σ`, so in the
//! network's input space the ball's radius is ε/σ per channel and the valid range is
//! [−μ/σ, (1 − μ)/σ]; [`InputSpace`] holds both. Each step moves by the step size times the sign
//! of the input gradient, then projects back into the ball and the valid range.
//!
//! The attack keeps, per example, the iterate of highest loss seen, the clean input included: the
//! returned examples never have a lower loss than the clean ones (a test), which plain PGD, whose
//! signed steps can overshoot, does not promise. With a random start (Madry et al.'s uniform draw
//! in the ball, from an `lth-rng` stream) the clean input is still a candidate.

use lth_data::{DatasetInfo, Source};
use lth_models::Model;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::{Result, TrainError};

/// The attack's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pgd {
    /// The L∞ radius in pixel units ([0, 1] images), e.g. 0.1 for Fashion-MNIST.
    pub epsilon: f64,
    /// Each step's size in pixel units (Madry et al. use about 2.5 ε / steps).
    pub step_size: f64,
    /// Gradient steps (1: FGSM).
    pub steps: u32,
    /// Start from a uniform draw in the ball instead of the clean input.
    pub random_start: bool,
}

impl Pgd {
    /// FGSM (Goodfellow et al. 2015): one step of size ε from the clean input.
    pub fn fgsm(epsilon: f64) -> Pgd {
        Pgd {
            epsilon,
            step_size: epsilon,
            steps: 1,
            random_start: false,
        }
    }

    /// Refuses settings that cannot be an attack, naming the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64| {
            Err(TrainError::Invalid(format!(
                "the attack's {what} must be a finite number in (0, 1] pixel units, not {v}"
            )))
        };
        if !(self.epsilon.is_finite() && self.epsilon > 0.0 && self.epsilon <= 1.0) {
            return bad("epsilon", self.epsilon);
        }
        if !(self.step_size.is_finite() && self.step_size > 0.0 && self.step_size <= 1.0) {
            return bad("step size", self.step_size);
        }
        if self.steps == 0 {
            return Err(TrainError::Invalid(
                "the attack needs at least one step (1 is FGSM)".into(),
            ));
        }
        Ok(())
    }
}

/// A dataset's normalisation as the attack needs it: per channel, how many input units a pixel
/// unit is (1/σ), and the valid input range.
#[derive(Debug)]
pub struct InputSpace {
    /// 1/σ per channel, shaped to broadcast over a batch (1 × C × 1 × 1).
    per_pixel: Tensor,
    lo: Tensor,
    hi: Tensor,
}

impl InputSpace {
    /// The input space of `info`'s normalisation, on `device`.
    pub fn of(info: &DatasetInfo, device: tch::Device) -> InputSpace {
        let c = info.mean.len() as i64;
        let t = |v: Vec<f64>| {
            Tensor::from_slice(&v)
                .to_kind(Kind::Float)
                .view([1, c, 1, 1])
                .to_device(device)
        };
        InputSpace {
            per_pixel: t(info.std.iter().map(|s| 1.0 / s).collect()),
            lo: t(info
                .mean
                .iter()
                .zip(info.std)
                .map(|(m, s)| -m / s)
                .collect()),
            hi: t(info
                .mean
                .iter()
                .zip(info.std)
                .map(|(m, s)| (1.0 - m) / s)
                .collect()),
        }
    }

    /// The largest perturbation of each input value, in input units, for `pixels` pixel units.
    fn radius(&self, pixels: f64) -> Tensor {
        &self.per_pixel * pixels
    }

    /// `x` moved back into the ball of `radius` around `clean` and into the valid range.
    fn project(&self, x: &Tensor, clean: &Tensor, radius: &Tensor) -> Tensor {
        let low = (clean - radius).maximum(&self.lo);
        let high = (clean + radius).minimum(&self.hi);
        x.maximum(&low).minimum(&high)
    }
}

/// Adversarial training (Madry et al.): every training batch is replaced by its adversarial
/// examples under [`AdversarialHparams::attack`] before the step, and every evaluation also
/// measures the robust accuracy on the first `eval_examples` test examples under
/// [`AdversarialHparams::eval_attack`]. Part of [`crate::TrainingHparams`]; absent (the default)
/// trains on clean batches and names no stored run differently.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdversarialHparams {
    /// The L∞ radius in pixel units.
    pub epsilon: f64,
    /// The training attack's step size in pixel units.
    pub step_size: f64,
    /// The training attack's steps (1 with `step_size = epsilon` and no random start: FGSM).
    pub steps: u32,
    /// The training attack starts from a uniform draw in the ball.
    pub random_start: bool,
    /// Steps of the evaluation attack (PGD from the clean input, step 2.5 ε / steps).
    pub eval_steps: u32,
    /// Test examples the robust accuracy is measured on (the first ones of the test split).
    pub eval_examples: u64,
}

impl AdversarialHparams {
    /// PGD with Madry et al.'s step size 2.5 ε / `steps` and a random start, at any number of
    /// steps (one included: a random start and one step of 2.5 ε, not FGSM, which is
    /// [`AdversarialHparams::fgsm`]). Evaluated by PGD with `eval_steps` steps on `eval_examples`
    /// test examples.
    pub fn pgd(epsilon: f64, steps: u32, eval_steps: u32, eval_examples: u64) -> Self {
        AdversarialHparams {
            epsilon,
            step_size: madry_step(epsilon, steps),
            steps,
            random_start: true,
            eval_steps,
            eval_examples,
        }
    }

    /// FGSM (Goodfellow et al.): one step of ε from the clean input. Evaluated as
    /// [`AdversarialHparams::pgd`] is.
    pub fn fgsm(epsilon: f64, eval_steps: u32, eval_examples: u64) -> Self {
        let f = Pgd::fgsm(epsilon);
        AdversarialHparams {
            epsilon,
            step_size: f.step_size,
            steps: f.steps,
            random_start: f.random_start,
            eval_steps,
            eval_examples,
        }
    }

    /// The attack training batches are replaced by.
    pub fn attack(&self) -> Pgd {
        Pgd {
            epsilon: self.epsilon,
            step_size: self.step_size,
            steps: self.steps,
            random_start: self.random_start,
        }
    }

    /// The attack robust accuracy is measured under: PGD from the clean input (deterministic),
    /// `eval_steps` steps of 2.5 ε / `eval_steps`.
    pub fn eval_attack(&self) -> Pgd {
        Pgd {
            epsilon: self.epsilon,
            step_size: madry_step(self.epsilon, self.eval_steps),
            steps: self.eval_steps,
            random_start: false,
        }
    }

    /// Refuses settings that cannot be an attack or an evaluation, naming the flag.
    pub fn validate(&self) -> Result<()> {
        let unit = |flag: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(TrainError::Invalid(format!(
                    "{flag} {v}: a radius or step in pixel units of [0, 1] images, in (0, 1]"
                )))
            }
        };
        unit("--adv-epsilon", self.epsilon)?;
        unit("--adv-step-size", self.step_size)?;
        for (flag, n) in [
            ("--adv-steps", u64::from(self.steps)),
            ("--adv-eval-steps", u64::from(self.eval_steps)),
            ("--adv-eval-examples", self.eval_examples),
        ] {
            if n == 0 {
                return Err(TrainError::Invalid(format!("{flag} 0: at least 1")));
            }
        }
        Ok(())
    }
}

/// Madry et al.'s step size: 2.5 ε / steps (capped at 1 pixel unit).
fn madry_step(epsilon: f64, steps: u32) -> f64 {
    (2.5 * epsilon / f64::from(steps.max(1))).min(1.0)
}

/// Adversarial training as a run carries it: the settings, the dataset's input space, and the
/// seed of the training attack's random starts (the run's data-order seed: like the order, the
/// draws are a pure function of seed and step, so a resumed run draws the same).
#[derive(Debug)]
pub struct Adversary {
    pub hp: AdversarialHparams,
    space: InputSpace,
    pub seed: u64,
}

impl Adversary {
    /// The adversary of `hp` for inputs of `info`, on `device`.
    pub fn new(hp: AdversarialHparams, info: &DatasetInfo, device: tch::Device, seed: u64) -> Self {
        Adversary {
            hp,
            space: InputSpace::of(info, device),
            seed,
        }
    }

    /// The training batch of step `step`, attacked. The attack runs the model in evaluation mode
    /// (BatchNorm's running statistics and dropout are left alone by the attack's passes).
    pub fn batch(&self, model: &Model, x: &Tensor, y: &Tensor, step: u64) -> Result<Tensor> {
        perturb(
            model,
            x,
            y,
            &self.hp.attack(),
            &self.space,
            (self.seed, step),
            false,
        )
    }

    /// The fraction of the first `eval_examples` examples of `data` that `model` still classifies
    /// correctly under the evaluation attack; reads the device once.
    pub fn robust_accuracy(&self, model: &Model, data: &Source) -> Result<f64> {
        let _eval = lth_store::ledger::span(lth_store::ledger::Activity::Evaluation);
        let attack = self.hp.eval_attack();
        let total = (self.hp.eval_examples as i64).min(data.len());
        let mut correct = Tensor::zeros([], (Kind::Int64, data.device()));
        let mut seen = 0i64;
        for b in data.sequential(crate::evaluation::EVAL_BATCH) {
            if seen >= total {
                break;
            }
            let b = b?;
            let n = (total - seen).min(b.y.size()[0]);
            let (x, y) = (b.x.narrow(0, 0, n), b.y.narrow(0, 0, n));
            let adv = perturb(model, &x, &y, &attack, &self.space, (0, 0), false)?;
            correct += tch::no_grad(|| {
                model
                    .forward_t(&adv, false)
                    .argmax(-1, false)
                    .eq_tensor(&y)
                    .sum(Kind::Int64)
            });
            seen += n;
        }
        Ok(correct.int64_value(&[]) as f64 / total.max(1) as f64)
    }
}

/// Per-example cross-entropy of `model` on `x`.
fn losses(model: &Model, x: &Tensor, y: &Tensor, train: bool) -> Tensor {
    model
        .forward_t(x, train)
        .cross_entropy_loss::<Tensor>(y, None, tch::Reduction::None, -100, 0.0)
}

/// Adversarial examples of the batch `(x, y)` (normalised inputs N × C × H × W, labels) for
/// `model` in training or evaluation mode (`train`): per example, the iterate of highest loss
/// among the clean input and the attack's steps. `draw` addresses the random start's draw (a
/// seed and a stream of it, e.g. the step). Gradients are taken with respect to the inputs only:
/// the model's `.grad` is not touched.
pub fn perturb(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    attack: &Pgd,
    space: &InputSpace,
    draw: (u64, u64),
    train: bool,
) -> Result<Tensor> {
    attack.validate()?;
    let clean = x.detach();
    let radius = space.radius(attack.epsilon);
    let step = space.radius(attack.step_size);
    let mut best = clean.copy();
    let mut best_loss = tch::no_grad(|| losses(model, &clean, y, train));
    let mut current = if attack.random_start {
        let n = clean.numel();
        let u = lth_rng::Stream::new(draw.0, "pgd_start", draw.1).uniform(n, -1.0, 1.0);
        let u = Tensor::from_slice(&u)
            .view(clean.size().as_slice())
            .to_device(clean.device());
        space.project(&(&clean + u * &radius), &clean, &radius)
    } else {
        clean.copy()
    };
    let shape: Vec<i64> = std::iter::once(-1)
        .chain(std::iter::repeat_n(1, clean.dim() - 1))
        .collect();
    for _ in 0..attack.steps {
        let input = current.detach().set_requires_grad(true);
        let loss = losses(model, &input, y, train);
        let grad = Tensor::run_backward(&[loss.sum(Kind::Float)], &[&input], false, false)
            .pop()
            .ok_or_else(|| TrainError::Invalid("no input gradient".into()))?;
        current = tch::no_grad(|| {
            space.project(&(input.detach() + grad.sign() * &step), &clean, &radius)
        });
        let now = tch::no_grad(|| losses(model, &current, y, train));
        let better = now.gt_tensor(&best_loss);
        best = best.where_self(&better.view(shape.as_slice()).logical_not(), &current);
        best_loss = best_loss.maximum(&now);
    }
    Ok(best.detach())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn setup(seed: u64) -> (Model, InputSpace, Tensor, Tensor) {
        let info = lth_data::info("fashion-mnist").unwrap();
        let model = Model::new("lenet_16", [1, 4, 4], 3, None, seed, tch::Device::Cpu).unwrap();
        let space = InputSpace::of(info, tch::Device::Cpu);
        // Inputs as the pipeline makes them: u8 pixels, normalised.
        let p = lth_rng::Stream::new(seed, "test_pixels", 0).uniform(8 * 16, 0.0, 1.0);
        let pixels = Tensor::from_slice(&p).view([8, 1, 4, 4]);
        let x = (pixels - info.mean[0]) / info.std[0];
        let labels: Vec<i64> = (0..8).map(|i| i % 3).collect();
        (model, space, x, Tensor::from_slice(&labels))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Every adversarial example stays in the ε-ball in pixel units and in the valid range,
        /// and no example's loss is below its clean loss, for any radius, step, step count and
        /// start.
        #[test]
        fn pgd_stays_in_the_ball_and_never_lowers_the_loss(
            seed in 0u64..50,
            epsilon in 0.01f64..0.5,
            steps in 1u32..6,
            ratio in 0.1f64..2.0,
            random_start in any::<bool>(),
        ) {
            let (model, space, x, y) = setup(seed);
            let info = lth_data::info("fashion-mnist").unwrap();
            let attack = Pgd { epsilon, step_size: (ratio * epsilon).min(1.0), steps, random_start };
            let adv = perturb(&model, &x, &y, &attack, &space, (seed, 0), false).unwrap();
            // Back to pixel units: (x − x₀)·σ.
            let moved = ((&adv - &x) * info.std[0]).abs().max().double_value(&[]);
            // float32 rounding of the normalisation and its inverse: a few ulps of values ≤ 4.
            prop_assert!(moved <= epsilon + 1e-5, "moved {moved} > ε {epsilon}");
            let pixels = &adv * info.std[0] + info.mean[0];
            prop_assert!(pixels.min().double_value(&[]) >= -1e-5);
            prop_assert!(pixels.max().double_value(&[]) <= 1.0 + 1e-5);
            let clean = tch::no_grad(|| losses(&model, &x, &y, false));
            let attacked = tch::no_grad(|| losses(&model, &adv, &y, false));
            let lower = (&clean - &attacked).max().double_value(&[]);
            prop_assert!(lower <= 0.0, "an example's loss fell by {lower}");
        }
    }

    /// The attack does raise the loss (a network with a gradient is attackable), FGSM is one
    /// step of ε, and the model's gradients are left alone.
    #[test]
    fn the_attack_raises_the_loss_and_leaves_the_weights_gradients() {
        let (model, space, x, y) = setup(7);
        let clean = tch::no_grad(|| losses(&model, &x, &y, false)).mean(Kind::Float);
        for attack in [
            Pgd::fgsm(0.1),
            Pgd {
                epsilon: 0.1,
                step_size: 0.025,
                steps: 10,
                random_start: true,
            },
        ] {
            let adv = perturb(&model, &x, &y, &attack, &space, (7, 0), false).unwrap();
            let attacked = tch::no_grad(|| losses(&model, &adv, &y, false)).mean(Kind::Float);
            assert!(
                attacked.double_value(&[]) > clean.double_value(&[]),
                "{attack:?}"
            );
        }
        for (_, t) in model.parameters() {
            assert!(!t.grad().defined(), "a weight's gradient was written");
        }
        // The check can see a written gradient: an ordinary backward writes them.
        losses(&model, &x, &y, false).sum(Kind::Float).backward();
        assert!(model.parameters().iter().all(|(_, t)| t.grad().defined()));
        assert!(Pgd::fgsm(0.0).validate().is_err());
        assert!(
            Pgd {
                steps: 0,
                ..Pgd::fgsm(0.1)
            }
            .validate()
            .unwrap_err()
            .to_string()
            .contains("at least one step")
        );
    }
}
