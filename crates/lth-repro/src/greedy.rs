//! `experiment = "greedy_selection"`: how much pre-training a good subnetwork needs (Wolfe, Wang,
//! Kim, Kyrillidis & Liao, "How Much Pre-training Is Enough to Discover a Good Subnetwork?", TMLR
//! 2024; arXiv:2108.00259, first titled "Provably Efficient Lottery Ticket Discovery"): a
//! two-layer network pre-trained for t iterations, pruned by greedy forward selection (Ye et al.,
//! ICML 2020; `lth_prune::greedy`) to a few of its hidden units, is as good as the network's
//! pre-training allows, and beyond a threshold in t (logarithmic in the training set's size) the
//! subnetwork's loss stops improving.

use lth_lottery::{Lottery, LotteryHparams};
use lth_prune::greedy::{TwoLayer, greedy_forward_selection};
use lth_train::{Data, Progress};
use tch::{Kind, Tensor};

use crate::{Experiment, Measured, ReproError, Result, Unit};

/// The hidden units every subnetwork keeps.
pub const SELECT: usize = 50;
/// The pre-training points: step 0 and T/2^8, T/2^7, …, T (the first positive one at least 1).
pub const HALVINGS: u32 = 8;
/// Examples of each selection step's minibatch.
const SELECTION_BATCH: usize = 256;
/// Training examples the training losses are measured on: a fixed seeded choice of this many of
/// the row's training set (all of it when smaller), an unbiased estimate of its mean loss.
const LOSS_EXAMPLES: usize = 10_000;
/// Examples per evaluation batch.
const EVAL_BATCH: usize = 1000;

/// A row is a lottery's dense training (its flags) of a one-hidden-layer network (`lenet_<N>`),
/// at level 0. Per replicate the dense network is trained once as a trajectory that keeps its
/// weights at the [`points`]; at each point `i` (0 = W0, 9 = the end) it measures the training
/// loss (over a fixed choice of up to 10,000 of the row's training examples) of the subnetwork of [`SELECT`] units chosen by greedy forward
/// selection (`greedy_loss_i`), of as many units drawn at random (`random_loss_i`, one draw per
/// replicate, the same units at every point) and of the dense network (`dense_loss_i`); at the end
/// the three test accuracies; and the knee of the greedy loss over log₂ t (`knee_log2_step`, the
/// breakpoint of a two-segment continuous least-squares fit over the positive points).
#[derive(Debug, Clone, Copy)]
pub struct GreedySelection;

/// The steps of the pre-training points of a training of `total` steps.
pub fn points(total: u64) -> Vec<u64> {
    std::iter::once(0)
        .chain((0..=HALVINGS).rev().map(|h| (total >> h).max(1)))
        .collect()
}

/// The breakpoint of the continuous two-segment least-squares fit of `y` over `x` (increasing):
/// the index `b` of `1..n−1` whose hinge `y ≈ a + s₁·min(x − x_b, 0) + s₂·max(x − x_b, 0)`
/// leaves the smallest sum of squares (the first on ties). `None` with fewer than three points.
pub fn hinge_changepoint(x: &[f64], y: &[f64]) -> Option<usize> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let mut best: Option<(f64, usize)> = None;
    for b in 1..n - 1 {
        let rows: Vec<[f64; 3]> = x
            .iter()
            .map(|&xi| [1.0, (xi - x[b]).min(0.0), (xi - x[b]).max(0.0)])
            .collect();
        // Normal equations AᵀA β = Aᵀy, 3 × 3, by Cramer's rule.
        let mut ata = [[0.0; 3]; 3];
        let mut aty = [0.0; 3];
        for (r, &yi) in rows.iter().zip(y) {
            for i in 0..3 {
                aty[i] += r[i] * yi;
                for j in 0..3 {
                    ata[i][j] += r[i] * r[j];
                }
            }
        }
        let det = |m: &[[f64; 3]; 3]| {
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        };
        let d = det(&ata);
        if d.abs() < 1e-12 {
            continue;
        }
        let beta: Vec<f64> = (0..3)
            .map(|k| {
                let mut m = ata;
                for i in 0..3 {
                    m[i][k] = aty[i];
                }
                det(&m) / d
            })
            .collect();
        let sse: f64 = rows
            .iter()
            .zip(y)
            .map(|(r, &yi)| {
                let fit: f64 = r.iter().zip(&beta).map(|(a, b)| a * b).sum();
                (yi - fit).powi(2)
            })
            .sum();
        if best.is_none_or(|(s, _)| sse < s - 1e-15) {
            best = Some((sse, b));
        }
    }
    best.map(|(_, b)| b)
}

/// Mean cross-entropy and accuracy over `examples` of `source` (evaluated in batches) of the
/// subnetworks of `net` averaging each list of `subnetworks`, which share each batch's hidden
/// activations.
fn evaluate(
    net: &TwoLayer,
    source: &lth_data::Source,
    examples: &[i64],
    subnetworks: &[&[i64]],
) -> Result<Vec<(f64, f64)>> {
    let _eval = lth_store::ledger::span(lth_store::ledger::Activity::Evaluation);
    tch::no_grad(|| {
        let mut sums = vec![(0.0, 0.0); subnetworks.len()];
        for chunk in examples.chunks(EVAL_BATCH) {
            let b = source
                .examples(chunk)
                .map_err(|e| ReproError::Invalid(e.to_string()))?;
            let h = net.hidden(&b.x);
            for (units, sum) in subnetworks.iter().zip(sums.iter_mut()) {
                let z = net.logits_of_hidden(&h, units);
                sum.0 += z
                    .cross_entropy_loss::<Tensor>(&b.y, None, tch::Reduction::Sum, -100, 0.0)
                    .double_value(&[]);
                sum.1 += z
                    .argmax(-1, false)
                    .eq_tensor(&b.y)
                    .sum(Kind::Int64)
                    .double_value(&[]);
            }
        }
        let n = examples.len().max(1) as f64;
        Ok(sums.into_iter().map(|(l, c)| (l / n, c / n)).collect())
    })
}

impl GreedySelection {
    fn metric(prefix: &str, i: usize) -> String {
        format!("{prefix}_loss_{i}")
    }
}

impl Experiment for GreedySelection {
    fn kind(&self) -> &'static str {
        "greedy_selection"
    }

    fn metrics(&self) -> &'static [&'static str] {
        &[
            "greedy_loss_0",
            "greedy_loss_1",
            "greedy_loss_2",
            "greedy_loss_3",
            "greedy_loss_4",
            "greedy_loss_5",
            "greedy_loss_6",
            "greedy_loss_7",
            "greedy_loss_8",
            "greedy_loss_9",
            "random_loss_0",
            "random_loss_1",
            "random_loss_2",
            "random_loss_3",
            "random_loss_4",
            "random_loss_5",
            "random_loss_6",
            "random_loss_7",
            "random_loss_8",
            "random_loss_9",
            "dense_loss_0",
            "dense_loss_1",
            "dense_loss_2",
            "dense_loss_3",
            "dense_loss_4",
            "dense_loss_5",
            "dense_loss_6",
            "dense_loss_7",
            "dense_loss_8",
            "dense_loss_9",
            "greedy_accuracy",
            "random_accuracy",
            "dense_accuracy",
            "knee_log2_step",
        ]
    }

    /// The dense trajectory is trained by `measure` (it keeps checkpoints level 0 does not).
    fn trains(&self) -> bool {
        false
    }

    fn check_row(&self, hp: &LotteryHparams, level: u64) -> std::result::Result<(), String> {
        if level != 0 {
            return Err(format!(
                "a greedy_selection row measures the dense network's training (level 0); it gives \
                 level {level}"
            ));
        }
        let model = &hp.train.model.model;
        let widths = lth_models::lenet::parse(model).unwrap_or_default();
        match widths.as_slice() {
            [w] if *w as usize >= SELECT => Ok(()),
            [w] => Err(format!(
                "greedy selection keeps {SELECT} hidden units; {model} has {w}"
            )),
            _ => Err(format!(
                "greedy selection here is of networks with one hidden layer (lenet_<width>, e.g. \
                 lenet_500); the row's model is {model}"
            )),
        }
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let data: &Data = unit
            .data
            .ok_or_else(|| ReproError::Invalid("a greedy_selection row needs its data".into()))?;
        let lottery = Lottery::new(unit.store, unit.hp.clone(), unit.replicate, data)?;
        let (_, total) = lottery.steps();
        let keep = points(total);
        let job = lottery.trajectory_job(&keep)?;
        lottery.train_jobs(&[job], 1, progress)?;
        let train = &data.train;
        let n = train.len() as usize;
        // Each selection step's minibatch: consecutive runs of a seeded permutation of the
        // training set (wrapping), the same at every point of the replicate.
        let order = lth_rng::permutation(n, unit.replicate, "greedy_selection", 0);
        let batch = |k: usize| -> lth_prune::Result<(Tensor, Tensor)> {
            let b = SELECTION_BATCH.min(n);
            let idx: Vec<i64> = (0..b).map(|i| order[(k * b + i) % n]).collect();
            let batch = train
                .examples(&idx)
                .map_err(|e| lth_prune::PruneError::Invalid(e.to_string()))?;
            Ok((batch.x, batch.y))
        };
        let mut measured_on = lth_rng::permutation(n, 0, "greedy_selection_loss", 0);
        measured_on.truncate(LOSS_EXAMPLES.min(n));
        let test: Vec<i64> = (0..data.eval.test.len()).collect();
        let mut m = Measured::new();
        let mut greedy_curve = Vec::new();
        for (i, &step) in keep.iter().enumerate() {
            // Read from the store on the CPU; selected and evaluated on the data's device.
            let weights: Vec<(String, Tensor)> = lottery
                .trajectory_weights(&keep, step)?
                .into_iter()
                .map(|(n, t)| (n, t.to_device(train.device())))
                .collect();
            let net =
                TwoLayer::from_named(&weights).map_err(|e| ReproError::Invalid(e.to_string()))?;
            let width = net.width() as usize;
            let greedy = greedy_forward_selection(&net, SELECT, batch)
                .map_err(|e| ReproError::Invalid(e.to_string()))?;
            let random: Vec<i64> =
                lth_rng::permutation(width, unit.replicate, "random_units", 0)[..SELECT].to_vec();
            let dense: Vec<i64> = (0..width as i64).collect();
            let subnetworks: [&[i64]; 3] = [&greedy, &random, &dense];
            let losses = evaluate(&net, train, &measured_on, &subnetworks)?;
            for (prefix, (loss, _)) in ["greedy", "random", "dense"].iter().zip(&losses) {
                m.samples(Self::metric(prefix, i), vec![*loss]);
            }
            if step > 0 {
                greedy_curve.push(((step as f64).log2(), losses[0].0));
            }
            if i + 1 == keep.len() {
                let accuracies = evaluate(&net, &data.eval.test, &test, &subnetworks)?;
                for (prefix, (_, acc)) in ["greedy", "random", "dense"].iter().zip(&accuracies) {
                    m.set(format!("{prefix}_accuracy"), *acc);
                }
            }
        }
        let (x, y): (Vec<f64>, Vec<f64>) = greedy_curve.into_iter().unzip();
        if let Some(b) = hinge_changepoint(&x, &y) {
            m.set("knee_log2_step", x[b]);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The grid: W0, then T/256 … T by doublings (at least one step).
    #[test]
    fn points_double_up_to_the_end() {
        assert_eq!(
            points(2048),
            vec![0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
        );
        assert_eq!(points(100)[..4], [0, 1, 1, 1]);
        assert_eq!(points(100).len(), 10);
    }

    /// A curve that falls along a line and then stays flat has its knee where it bends, noise or
    /// not; a straight line's best hinge fits it exactly anywhere, so the first is taken.
    #[test]
    fn the_changepoint_is_where_the_curve_bends() {
        let x: Vec<f64> = (0..8).map(f64::from).collect();
        let bend = |b: f64| -> Vec<f64> { x.iter().map(|&v| 2.0 - 0.4 * v.min(b)).collect() };
        for b in 1..7 {
            assert_eq!(hinge_changepoint(&x, &bend(f64::from(b))), Some(b as usize));
        }
        let noisy: Vec<f64> = bend(3.0)
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i % 2 == 0 { 0.01 } else { -0.01 })
            .collect();
        assert_eq!(hinge_changepoint(&x, &noisy), Some(3));
        let line: Vec<f64> = x.iter().map(|v| 1.0 - v).collect();
        assert_eq!(hinge_changepoint(&x, &line), Some(1));
        assert_eq!(hinge_changepoint(&x[..2], &line[..2]), None);
    }
}
