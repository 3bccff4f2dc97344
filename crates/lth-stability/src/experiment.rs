//! Stability experiments on a lottery level: copies of the rewind point trained with chosen masks
//! and data orders (units of the run store), and the distances and curves measured between them.
//!
//! Sample i of a level of replicate r uses two data orders, u = copy_seed(r, 2i) and
//! u' = copy_seed(r, 2i+1), and one random mask (seed random_mask_seed(r, i)) with the level's
//! per-layer fractions. Every seed is drawn from the replicate's own stream, so two replicates
//! share no data order and no random mask: replicates are independent experiments. It trains:
//! - the IMP subnetwork m⊙W_k with u and with u' (data-order stability of the ticket),
//! - the random subnetwork r_i⊙W_k with u and with u' (data-order stability of a random one),
//! - the full network W_k with u (pruning stability: against the two subnetworks trained with u).
//!
//! The full-network copies do not depend on the level and are shared by all levels of a replicate.
//! [`copy_jobs`] makes the copies not yet trained into jobs for `lth_train::train_jobs`, which
//! trains compatible ones (all copies of a level are) up to `pack` at a time in one packed network,
//! each still its own unit of the store with an unpacked copy's files; `pack` ≤ 1 trains them one
//! after another. [`stability`] hands it every sample's copies at once; the harness of `lth-repro`
//! hands it every replicate's.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use lth_data::Source;
use lth_lottery::Lottery;
use lth_prune::{Mask, random_like};
use lth_store::{CsvLog, RunDir};
use lth_train::{Job, Progress, RunSummary};

use crate::metrics::{BnStats, angle, barrier, interpolation_curve, l2_distance};
use crate::{Result, StabilityError};

/// Which subnetwork of a level a copy trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subnetwork {
    /// The full network (no mask).
    Dense,
    /// The level's IMP mask.
    Imp,
    /// A random mask with the level's per-layer fractions, drawn with this seed.
    Random(u64),
}

impl Subnetwork {
    /// `dense`, `imp` or `random`.
    pub fn label(self) -> &'static str {
        match self {
            Subnetwork::Dense => "dense",
            Subnetwork::Imp => "imp",
            Subnetwork::Random(_) => "random",
        }
    }
}

impl std::str::FromStr for Subnetwork {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "dense" => Ok(Subnetwork::Dense),
            "imp" => Ok(Subnetwork::Imp),
            "random" => Ok(Subnetwork::Random(0)),
            _ => Err(format!(
                "unknown subnetwork `{s}`: expected imp, random or dense"
            )),
        }
    }
}

/// One copy: a subnetwork of a level trained from the rewind point with a data order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopySpec {
    pub level: u64,
    pub subnetwork: Subnetwork,
    pub data_order_seed: u64,
}

/// The data-order seed of copy number `j` of a stability measurement of replicate `replicate`:
/// drawn from the replicate's own stream, so replicates share no data order (and none equals a
/// replicate's own data-order seed, which is small).
pub fn copy_seed(replicate: u64, j: u64) -> u64 {
    lth_rng::Stream::new(replicate, "stability_copy", j).next_u64()
}

/// The seed of sample `i`'s random mask in replicate `replicate`.
fn random_mask_seed(replicate: u64, i: u64) -> u64 {
    lth_rng::Stream::new(replicate, "stability_random_mask", i).next_u64()
}

impl CopySpec {
    /// The spec with what does not change the copy normalised away: a full-network copy does not
    /// depend on the level, so its level is 0.
    pub fn canonical(self) -> CopySpec {
        match self.subnetwork {
            Subnetwork::Dense => CopySpec { level: 0, ..self },
            _ => self,
        }
    }

    /// The copy's folder: `replicate_<n>/dense_copies/order_<u>` for full networks,
    /// `replicate_<n>/level_<L>/copies/{imp,random_<s>}_order_<u>` for subnetworks.
    pub fn dir(&self, lottery: &Lottery) -> RunDir {
        let order = format!("order_{}", self.data_order_seed);
        match self.subnetwork {
            Subnetwork::Dense => lottery.dir().child("dense_copies").child(order),
            Subnetwork::Imp => lottery
                .dir()
                .level(self.level)
                .child("copies")
                .child(format!("imp_{order}")),
            Subnetwork::Random(s) => lottery
                .dir()
                .level(self.level)
                .child("copies")
                .child(format!("random_{s}_{order}")),
        }
    }

    /// The mask the copy trains with (`None` for the full network).
    pub fn mask(&self, lottery: &Lottery) -> Result<Option<Mask>> {
        Ok(match self.subnetwork {
            Subnetwork::Dense => None,
            Subnetwork::Imp => Some(lottery.mask(self.level)?),
            Subnetwork::Random(s) => Some(random_like(&lottery.mask(self.level)?, s)),
        })
    }
}

/// A trained copy: its summary and final weights.
#[derive(Debug)]
pub struct TrainedCopy {
    pub spec: CopySpec,
    pub summary: RunSummary,
    pub weights: Vec<(String, Tensor)>,
}

/// The jobs of the copies not done yet, their folders created and bound to their specs, for
/// `lth_train::train_jobs` (runs of the lottery's recipe on its data).
pub fn copy_jobs(lottery: &Lottery, copies: &[CopySpec]) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for spec in copies {
        let spec = spec.canonical();
        let dir = spec.dir(lottery);
        if dir.is_done()? || jobs.iter().any(|j: &Job| j.dir == dir) {
            continue;
        }
        dir.create()?;
        dir.bind_hparams(&spec)?;
        jobs.push(lottery.rewind_copy_job(
            &dir,
            spec.mask(lottery)?.as_ref(),
            spec.data_order_seed,
        )?);
    }
    Ok(jobs)
}

/// Trains every copy that is not done yet, up to `pack` at a time in one packed network (`pack`
/// ≤ 1: one after another), and returns all of them.
pub fn train_copies(
    lottery: &Lottery,
    copies: &[CopySpec],
    pack: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<TrainedCopy>> {
    let jobs = copy_jobs(lottery, copies)?;
    let hp = &lottery.hparams().train;
    lth_train::train_jobs(hp, lottery.data(), &jobs, pack, progress)?;
    copies
        .iter()
        .map(|spec| {
            let spec = spec.canonical();
            let dir = spec.dir(lottery);
            let summary = dir.done_summary::<RunSummary>()?.ok_or_else(|| {
                StabilityError::Invalid(format!("{} was not trained", dir.path().display()))
            })?;
            Ok(TrainedCopy {
                spec,
                summary,
                weights: lottery.final_weights(&dir)?,
            })
        })
        .collect()
}

/// One measured distance (`stability.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StabilityRow {
    pub level: u64,
    /// Fraction of prunable weights the level's subnetworks keep.
    pub weights_remaining: f64,
    /// `data_order` or `pruning`.
    pub analysis: String,
    /// `imp` or `random`.
    pub subnetwork: String,
    pub sample: u64,
    /// ‖m⊙W − m⊙W'‖₂ over the subnetwork's mask.
    pub l2: f64,
    /// The angle between the masked weight vectors, in degrees.
    pub angle: f64,
    /// Test accuracy of the two networks compared (data order: the two copies; pruning: the
    /// subnetwork, then the full network).
    pub test_accuracy_a: f64,
    pub test_accuracy_b: f64,
}

/// The five copies of sample `i` of a stability measurement of level `level`: IMP and random
/// subnetworks each with two data orders, and the full network with the first, every seed drawn
/// from the replicate's own streams.
pub fn sample_copies(replicate: u64, level: u64, i: u64) -> [CopySpec; 5] {
    let (u, u2) = (copy_seed(replicate, 2 * i), copy_seed(replicate, 2 * i + 1));
    let random = Subnetwork::Random(random_mask_seed(replicate, i));
    let spec = |subnetwork, data_order_seed| CopySpec {
        level,
        subnetwork,
        data_order_seed,
    };
    [
        spec(Subnetwork::Imp, u),
        spec(Subnetwork::Imp, u2),
        spec(random, u),
        spec(random, u2),
        spec(Subnetwork::Dense, u),
    ]
}

/// The copies of samples `0..samples` ([`sample_copies`]), in order.
pub fn level_copies(replicate: u64, level: u64, samples: u64) -> Vec<CopySpec> {
    (0..samples)
        .flat_map(|i| sample_copies(replicate, level, i))
        .collect()
}

/// Trains (what is not done of) the five copies of sample `i` ([`sample_copies`]) and returns
/// them in that order. Samples are independent of each other: each can run in its own process.
pub fn train_sample(
    lottery: &Lottery,
    level: u64,
    i: u64,
    pack: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<TrainedCopy>> {
    train_copies(
        lottery,
        &sample_copies(lottery.replicate(), level, i),
        pack,
        progress,
    )
}

/// Measures data-order and pruning stability of level `level` for IMP and random subnetworks with
/// `samples` samples each, training what is missing; writes `level_<L>/stability.csv`.
pub fn stability(
    lottery: &Lottery,
    level: u64,
    samples: u64,
    pack: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<StabilityRow>> {
    if samples == 0 {
        return Err(StabilityError::Invalid(
            "at least one sample is needed".into(),
        ));
    }
    let density = lottery.mask(level)?.density();
    // Every sample's copies first, so that packing groups them across samples.
    let jobs = copy_jobs(lottery, &level_copies(lottery.replicate(), level, samples))?;
    lth_train::train_jobs(
        &lottery.hparams().train,
        lottery.data(),
        &jobs,
        pack,
        progress,
    )?;
    let mut rows = Vec::new();
    for i in 0..samples {
        let copies = train_sample(lottery, level, i, pack, progress)?;
        let [imp_a, imp_b, rnd_a, rnd_b, dense] = &copies[..] else {
            unreachable!("five copies asked for")
        };
        for (analysis, sub, a, b) in [
            ("data_order", "imp", imp_a, imp_b),
            ("data_order", "random", rnd_a, rnd_b),
            ("pruning", "imp", imp_a, dense),
            ("pruning", "random", rnd_a, dense),
        ] {
            #[allow(
                clippy::expect_used,
                reason = "IMP and random subnetworks always have masks"
            )]
            let mask = a.spec.mask(lottery)?.expect("subnetworks have masks");
            rows.push(StabilityRow {
                level,
                weights_remaining: density,
                analysis: analysis.into(),
                subnetwork: sub.into(),
                sample: i,
                l2: l2_distance(&a.weights, &b.weights, &mask)?,
                angle: angle(&a.weights, &b.weights, &mask)?,
                test_accuracy_a: a.summary.final_test_accuracy,
                test_accuracy_b: b.summary.final_test_accuracy,
            });
        }
    }
    CsvLog::new(lottery.dir().level(level).join("stability.csv")).save(&rows)?;
    Ok(rows)
}

/// Mean, spread and extremes of one (analysis, subnetwork) cell of [`stability`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StabilitySummary {
    pub analysis: String,
    pub subnetwork: String,
    pub n: u64,
    pub mean_l2: f64,
    /// Sample standard deviation (0 for one sample).
    pub std_l2: f64,
    pub min_l2: f64,
    pub max_l2: f64,
    pub mean_angle: f64,
    /// Mean test accuracy of the subnetworks involved.
    pub mean_accuracy: f64,
    /// Random mean distance / IMP mean distance for this analysis (the paper's "Comp").
    pub comp: Option<f64>,
}

/// The paper's "Comp": the random subnetworks' mean distance over the IMP subnetworks' (how
/// much more stable IMP is); none when IMP's distance is zero (identical copies), where the
/// ratio means nothing.
pub fn comp(random_mean: f64, imp_mean: f64) -> Option<f64> {
    (imp_mean > 0.0).then(|| random_mean / imp_mean)
}

/// Summaries per (analysis, subnetwork), with the Comp ratio on the IMP rows.
pub fn summarize(rows: &[StabilityRow]) -> Vec<StabilitySummary> {
    let mut out: Vec<StabilitySummary> = Vec::new();
    for analysis in ["data_order", "pruning"] {
        for sub in ["imp", "random"] {
            let cell: Vec<&StabilityRow> = rows
                .iter()
                .filter(|r| r.analysis == analysis && r.subnetwork == sub)
                .collect();
            if cell.is_empty() {
                continue;
            }
            let n = cell.len() as f64;
            let l2: Vec<f64> = cell.iter().map(|r| r.l2).collect();
            let d = lth_report::Summary::of(&l2);
            let accuracy = cell.iter().map(|r| r.test_accuracy_a).sum::<f64>() / n;
            out.push(StabilitySummary {
                analysis: analysis.into(),
                subnetwork: sub.into(),
                n: d.n,
                mean_l2: d.mean,
                std_l2: d.sd,
                min_l2: d.min,
                max_l2: d.max,
                mean_angle: cell.iter().map(|r| r.angle).sum::<f64>() / n,
                mean_accuracy: accuracy,
                comp: None,
            });
        }
    }
    for analysis in ["data_order", "pruning"] {
        let mean = |sub: &str| {
            out.iter()
                .find(|s| s.analysis == analysis && s.subnetwork == sub)
                .map(|s| s.mean_l2)
        };
        if let (Some(imp), Some(random)) = (mean("imp"), mean("random")) {
            let comp = comp(random, imp);
            if let Some(s) = out
                .iter_mut()
                .find(|s| s.analysis == analysis && s.subnetwork == "imp")
            {
                s.comp = comp;
            }
        }
    }
    out
}

/// Which split an interpolation is evaluated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    #[default]
    Test,
    Train,
}

impl Split {
    /// The split's name, as flags and file names give it.
    pub fn label(self) -> &'static str {
        match self {
            Split::Test => "test",
            Split::Train => "train",
        }
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "test" => Ok(Split::Test),
            "train" => Ok(Split::Train),
            _ => Err(format!("unknown split `{s}`: expected test or train")),
        }
    }
}

/// One point of an interpolation curve (`interpolation_<subnetwork>_<split>.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub alpha: f64,
    /// 1 − accuracy, in [0, 1].
    pub error: f64,
    pub loss: f64,
}

/// The curve of one interpolation and its barrier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterpolationSummary {
    pub level: u64,
    pub subnetwork: String,
    pub split: Split,
    pub points: Vec<CurvePoint>,
    /// max over α of the error − the mean of the two end errors, in [0, 1].
    pub barrier: f64,
}

/// Interpolates between the two data-order copies of sample 0 of `subnetwork` at `level`
/// (training them if needed) at `points` values of α, evaluated on `split`; writes the curve to
/// `level_<L>/interpolation_<subnetwork>_<split>.csv`.
pub fn interpolation(
    lottery: &Lottery,
    level: u64,
    subnetwork: Subnetwork,
    points: usize,
    split: Split,
    bn: BnStats,
    progress: &mut dyn Progress,
) -> Result<InterpolationSummary> {
    let subnetwork = match subnetwork {
        Subnetwork::Random(_) => Subnetwork::Random(random_mask_seed(lottery.replicate(), 0)),
        s => s,
    };
    let spec = |u| CopySpec {
        level,
        subnetwork,
        data_order_seed: u,
    };
    let r = lottery.replicate();
    let copies = train_copies(
        lottery,
        &[spec(copy_seed(r, 0)), spec(copy_seed(r, 1))],
        lth_train::packed::default_pack(lottery.data().train.device()),
        progress,
    )?;
    let data = lottery.data();
    let eval: &Source = match split {
        Split::Test => &data.eval.test,
        Split::Train => &data.train,
    };
    let hp = &lottery.hparams().train;
    let mut vessel = lth_models::Model::new(
        &hp.model.model,
        data.info.shape,
        data.info.num_classes,
        hp.model.init,
        0,
        data.train.device(),
    )?;
    let curve = interpolation_curve(
        &mut vessel,
        &copies[0].weights,
        &copies[1].weights,
        points,
        eval,
        bn,
        &data.train,
    )?;
    let points: Vec<CurvePoint> = curve
        .into_iter()
        .map(|(alpha, error, loss)| CurvePoint { alpha, error, loss })
        .collect();
    let errors: Vec<f64> = points.iter().map(|p| p.error).collect();
    CsvLog::new(lottery.dir().level(level).join(format!(
        "interpolation_{}_{}.csv",
        subnetwork.label(),
        split.label()
    )))
    .save(&points)?;
    Ok(InterpolationSummary {
        level,
        subnetwork: subnetwork.label().into(),
        split,
        barrier: barrier(&errors),
        points,
    })
}
