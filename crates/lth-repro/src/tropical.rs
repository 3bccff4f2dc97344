//! `experiment = "tropical"`: the lottery-ticket picture of Alfarra, Bibi, Hammoud, Gaafar &
//! Ghanem, "On the Decision Boundaries of Neural Networks: A Tropical Geometry Perspective" (IEEE
//! TPAMI, 2023): a ticket's initialisation (W0 under the ticket's mask) keeps the shape of the
//! trained network's decision-boundary polygon, and a random reinitialisation under the same mask
//! does not.

use lth_lottery::{Lottery, LotteryHparams};
use lth_store::RunDir;
use lth_train::Progress;
use lth_tropical::{OneHidden, Polygon, shape_distance};

use crate::curve::{metric_names, reinit, reinit_jobs, summary};
use crate::{Experiment, Measured, ReproError, Result, Unit};

/// A row is a level L ≥ 1 of a lottery of a one-hidden-layer network (`lenet_<width>`) on a 2-D
/// dataset of two classes (`two-moons`). Per replicate it builds the Newton polygon of the
/// decision boundary (`lth_tropical`) of the dense network trained (level 0's final weights), and
/// measures [`shape_distance`] to it from:
/// - `ticket_distance`: the ticket's initialisation, W0 under level L's mask;
/// - `reinit_distance`: the random reinitialisation under the same mask (the `random-reinit`
///   branch's start);
/// - `dense_init_distance`: W0 unpruned, for scale;
/// - `trained_ticket_distance`, `trained_reinit_distance`: both after training.
///
/// With the accuracies of the dense network, the ticket and the reinitialisation
/// (`dense_final`, `imp_final`, `reinit_final`, …) and the weights remaining.
#[derive(Debug, Clone, Copy)]
pub struct Tropical;

/// The network of `weights`, under `mask` if given.
fn network(weights: &[(String, tch::Tensor)], mask: Option<&lth_prune::Mask>) -> Result<OneHidden> {
    let net = match mask {
        Some(mask) => {
            // A copy: the mask is applied in place, and the tensors may be shared.
            let copy: Vec<(String, tch::Tensor)> =
                weights.iter().map(|(n, t)| (n.clone(), t.copy())).collect();
            mask.apply(&copy)
                .map_err(|e| ReproError::Invalid(e.to_string()))?;
            OneHidden::from_named(&copy)
        }
        None => OneHidden::from_named(weights),
    };
    net.map_err(|e| ReproError::Invalid(e.to_string()))
}

/// The networks of one lottery level that the tropical view compares, built without training.
#[derive(Debug, Clone)]
pub struct Networks {
    /// The dense network trained (level 0's final weights).
    pub trained: OneHidden,
    /// W0, unpruned.
    pub dense_init: OneHidden,
    /// The ticket's initialisation: W0 under the level's mask.
    pub ticket: OneHidden,
    /// The random reinitialisation of branch seed `seed` under the same mask (the start of the
    /// level's `random-reinit` branch).
    pub reinit: OneHidden,
    /// The level's mask, under which `ticket` and `reinit` are taken.
    pub mask: lth_prune::Mask,
}

/// The networks of level `level` of `lottery` (which must be trained up to it); the random
/// reinitialisation is drawn from branch seed `seed`.
pub fn networks(lottery: &Lottery, level: u64, seed: u64) -> Result<Networks> {
    let mask = lottery.mask(level)?;
    let w0 = lottery.dense_weights_at(0)?;
    Ok(Networks {
        trained: network(&lottery.final_weights(&lottery.level_dir(0))?, None)?,
        ticket: network(&w0, Some(&mask))?,
        dense_init: network(&w0, None)?,
        reinit: network(&lottery.reinit_weights(seed)?, Some(&mask))?,
        mask,
    })
}

fn distance(p: &Polygon, trained: &Polygon, what: &str, dir: &RunDir) -> Result<f64> {
    shape_distance(&p.hull, &trained.hull).ok_or_else(|| {
        ReproError::Invalid(format!(
            "{}: the {what}'s Newton polygon is a single point (every unit pruned or dead), so it \
             has no shape to compare",
            dir.path().display()
        ))
    })
}

impl Experiment for Tropical {
    fn kind(&self) -> &'static str {
        "tropical"
    }

    fn metrics(&self) -> &'static [&'static str] {
        metric_names!(
            [
                "weights_remaining",
                "ticket_distance",
                "reinit_distance",
                "dense_init_distance",
                "trained_ticket_distance",
                "trained_reinit_distance",
            ],
            ["imp", "reinit", "dense"]
        )
    }

    fn check_row(&self, hp: &LotteryHparams, level: u64) -> std::result::Result<(), String> {
        if level == 0 {
            return Err(
                "level 0 keeps every weight: a tropical row compares a ticket, level 1 or more"
                    .into(),
            );
        }
        let model = &hp.train.model.model;
        let widths = lth_models::lenet::parse(model).unwrap_or_default();
        if widths.len() != 1 {
            return Err(format!(
                "the tropical view is of networks with one hidden layer (lenet_<width>, e.g. \
                 lenet_100); the row's model is {model}"
            ));
        }
        let dataset = &hp.train.dataset.dataset;
        let info = lth_data::info(dataset).map_err(|e| e.to_string())?;
        if info.shape.iter().product::<i64>() != 2 || info.num_classes != 2 {
            return Err(format!(
                "the tropical view is of networks from the plane to two classes (two-moons); \
                 {dataset} has inputs of shape {:?} and {} classes",
                info.shape, info.num_classes
            ));
        }
        Ok(())
    }

    /// The random reinitialisation of the row's level, which the harness packs across
    /// replicates.
    fn jobs(&self, unit: &Unit) -> Result<Vec<lth_train::Job>> {
        reinit_jobs(unit)
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let level = unit.level;
        let branch = reinit();
        let reinit_dir = lottery.branch_dir(level, &branch);
        if !reinit_dir.is_done()? {
            lottery.run_branch(level, &branch, progress)?;
        }
        let dense_dir = lottery.level_dir(0);
        let ticket_dir = lottery.level_dir(level);
        let nets = networks(lottery, level, unit.replicate)?;
        let mask = &nets.mask;
        let trained = nets.trained.polygon();
        let trained_ticket = network(&lottery.final_weights(&ticket_dir)?, Some(mask))?.polygon();
        let trained_reinit = network(&lottery.final_weights(&reinit_dir)?, Some(mask))?.polygon();
        let (ticket, reinit_w, dense_init) = (
            nets.ticket.polygon(),
            nets.reinit.polygon(),
            nets.dense_init.polygon(),
        );
        let mut m = Measured::new();
        for (metric, p, what, dir) in [
            (
                "ticket_distance",
                &ticket,
                "ticket's initialisation",
                &ticket_dir,
            ),
            (
                "reinit_distance",
                &reinit_w,
                "random reinitialisation",
                &reinit_dir,
            ),
            ("dense_init_distance", &dense_init, "dense W0", &dense_dir),
            (
                "trained_ticket_distance",
                &trained_ticket,
                "trained ticket",
                &ticket_dir,
            ),
            (
                "trained_reinit_distance",
                &trained_reinit,
                "trained reinitialisation",
                &reinit_dir,
            ),
        ] {
            m.set(metric, distance(p, &trained, what, dir)?);
        }
        m.set("weights_remaining", nets.mask.density());
        m.run("imp", &summary(&ticket_dir)?);
        m.run("dense", &summary(&dense_dir)?);
        m.run("reinit", &summary(&reinit_dir)?);
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lth_tropical::PLANE;

    /// The boundary the picture draws, from the tropical polynomials, is where libtorch's own
    /// forward pass of the network changes class: on every cell of the picture's grid whose
    /// corners are all clear of the boundary by more than float32 rounding of the logits, the
    /// two agree on whether the boundary crosses it, and on every such corner's side.
    #[test]
    fn the_drawn_boundary_is_where_the_network_changes_class() {
        for seed in 1..=3 {
            let model =
                lth_models::Model::new("lenet_100", [1, 1, 2], 2, None, seed, tch::Device::Cpu)
                    .unwrap();
            let net = OneHidden::from_named(&model.state()).unwrap();
            let grid = PLANE;
            let points = grid.points();
            let flat: Vec<f32> = points
                .iter()
                .flat_map(|p| [p[0] as f32, p[1] as f32])
                .collect();
            let x = tch::Tensor::from_slice(&flat).view([points.len() as i64, 1, 1, 2]);
            let logits = tch::no_grad(|| model.forward_t(&x, false));
            let diff = logits.select(1, 0) - logits.select(1, 1);
            let theirs = Vec::<f32>::try_from(diff).unwrap();
            let ours: Vec<f64> = points
                .iter()
                .map(|&p| {
                    let t = net.terms(p);
                    t[0] - t[1]
                })
                .collect();
            // float32 rounding of a sum of 100 products of size |b|·|a·x + c|: a few ulps of the
            // sum of magnitudes, bounded here by 1e-5 of it (ε₃₂ ≈ 1.2e-7 times the 100 terms).
            let tolerance: Vec<f64> = points
                .iter()
                .map(|&p| {
                    let h: f64 = net
                        .a
                        .iter()
                        .zip(&net.c1)
                        .enumerate()
                        .map(|(j, (a, c))| {
                            (net.b[0][j].abs() + net.b[1][j].abs())
                                * (a[0] * p[0] + a[1] * p[1] + c).abs()
                        })
                        .sum();
                    1e-5 * (1.0 + h)
                })
                .collect();
            let clear = |i: usize| ours[i].abs() > tolerance[i];
            let mut compared = 0;
            for (i, (&o, &t)) in ours.iter().zip(&theirs).enumerate() {
                if clear(i) {
                    assert_eq!(o > 0.0, t > 0.0, "seed {seed}, point {:?}", points[i]);
                    compared += 1;
                }
            }
            assert!(compared > points.len() * 99 / 100, "{compared}");
            let crossed_ours = grid.crossed(&ours);
            let theirs64: Vec<f64> = theirs.iter().map(|&v| f64::from(v)).collect();
            let crossed_theirs = grid.crossed(&theirs64);
            let n = grid.n;
            let all_clear = |&(i, k): &(usize, usize)| {
                [(i, k), (i + 1, k), (i + 1, k + 1), (i, k + 1)]
                    .iter()
                    .all(|&(a, b)| clear(b * n + a))
            };
            let ours_clear: Vec<_> = crossed_ours.iter().filter(|c| all_clear(c)).collect();
            let theirs_clear: Vec<_> = crossed_theirs.iter().filter(|c| all_clear(c)).collect();
            assert!(
                !ours_clear.is_empty(),
                "seed {seed}: no boundary in the picture"
            );
            assert_eq!(ours_clear, theirs_clear, "seed {seed}");
        }
    }

    /// Rows that the tropical view cannot draw are refused before anything trains, saying why.
    #[test]
    fn rows_of_other_networks_and_data_are_refused() {
        let mut hp: LotteryHparams = LotteryHparams::default();
        hp.train.model.model = "lenet_100".into();
        hp.train.dataset.dataset = "two-moons".into();
        Tropical.check_row(&hp, 1).unwrap();
        assert!(
            Tropical
                .check_row(&hp, 0)
                .unwrap_err()
                .contains("level 1 or more")
        );
        hp.train.model.model = "lenet_10_10".into();
        assert!(
            Tropical
                .check_row(&hp, 1)
                .unwrap_err()
                .contains("one hidden layer")
        );
        hp.train.model.model = "lenet_100".into();
        hp.train.dataset.dataset = "fashion-mnist".into();
        let e = Tropical.check_row(&hp, 1).unwrap_err();
        assert!(
            e.contains("fashion-mnist has inputs of shape [1, 28, 28] and 10 classes"),
            "{e}"
        );
    }
}
