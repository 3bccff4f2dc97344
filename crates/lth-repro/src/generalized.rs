//! `experiment = "generalized"`: lottery tickets in another basis of parameter space
//! (Alabdulmohsin, Markeeva, Keysers & Tolstikhin, "A Generalized Lottery Ticket Hypothesis",
//! arXiv:2107.06825, 2021): IMP that prunes the coefficients of each linear layer's weight in an
//! orthonormal basis (`lth_prune::basis`) rather than its entries, rewinds the kept coefficients
//! to W0's, and trains the network in the kept subspace (`lth_train::basis::InBasis`).

use serde::{Deserialize, Serialize};
use tch::Tensor;

use lth_lottery::{Lottery, LotteryHparams, reinit_seed};
use lth_prune::basis::{Basis, Grouping, LayerBasis};
use lth_prune::{Count, Keep, Mask, PruningHparams, select_layerwise};
use lth_store::RunDir;
use lth_train::basis::InBasis;
use lth_train::{Hooks, Job, OptimizerKind, Progress, RunPlan, RunSummary, Start, run_resumable};

use crate::curve::{metric_names, summary};
use crate::{Experiment, Measured, MethodFlags, ReproError, Result, Unit};

/// The kept coefficients of a level, in its folder.
pub const COEFFICIENTS_FILE: &str = "coefficients.safetensors";

/// A level's bases where they depend on the weights (the low-rank basis), in its folder: per
/// layer `<name>.out` and `<name>.in`, written before the kept coefficients.
pub const BASIS_FILE: &str = "basis.safetensors";

/// What a basis lottery's folder is bound to: the basis (the recipe is its parent's, the
/// canonical lottery's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct BasisRecord {
    basis: String,
}

/// A row is a level L ≥ 1 of a lottery and a basis (`basis = "dct"`, `"random"`, `"units"` or
/// `"low-rank"`). Per replicate the harness trains the ordinary (canonical) lottery to level L;
/// the kind then runs the same IMP in the row's basis, sharing level 0 (the dense network is the
/// same in every basis): at each level l it keeps the largest coefficients of the previous
/// level's trained weights in the basis (grouped as the basis groups them: rows for units, the
/// diagonal for low rank), layer by layer at the lottery's rates, and trains W0 projected onto
/// them (the ticket); at level L also a random reinitialisation projected onto the same
/// coefficients, and the ticket with a random sign on each kept coefficient (its sizes without
/// its signs). Measured: the ticket's, the reinitialisation's, the random signs', the canonical
/// ticket's and the dense network's accuracies (`ticket_*`, `reinit_*`, `signs_*`,
/// `canonical_*`, `dense_*`: final, early stop and its step) and the fraction of coefficients
/// kept.
///
/// The runs live in `basis_<name>/level_<l>/{main,reinit,signs}` of the replicate's folder; a level's
/// kept coefficients are its `coefficients.safetensors`, and a low-rank level's singular vectors
/// (the SVD of the previous level's trained weights) its `basis.safetensors`. A `random` basis
/// is drawn per replicate (seed = replicate number), each layer side its own matrix. In the units
/// basis the output layer keeps every row (its units are the classes). Training is SGD (with
/// momentum and weight decay), under which the projected training is exactly SGD on the kept
/// coefficients.
#[derive(Debug, Clone, Copy)]
pub struct Generalized;

/// Each kernel's bases, in the network's order.
pub type Bases = Vec<(String, LayerBasis)>;

/// The kept coefficients after one level of pruning in `bases`: in each layer, the groups of
/// coefficients (entries, rows or the diagonal: [`lth_prune::basis::Grouping`]) of the trained
/// weights `last` with the largest scores, among those `previous` keeps, at the lottery's
/// layerwise rates. The output layer's rows are classes, so a rows basis keeps them all. In the
/// canonical basis this is IMP's magnitude pruning, mask for mask.
pub fn prune_coefficients(
    pruning: &PruningHparams,
    bases: &[(String, LayerBasis)],
    last: &[(String, Tensor)],
    previous: &Mask,
    output: &str,
) -> Result<Mask> {
    let (mut scores, mut groups) = (Vec::new(), Vec::new());
    for (name, l) in bases {
        let kept = previous
            .get(name)
            .ok_or_else(|| ReproError::Invalid(format!("no kept coefficients for `{name}`")))?;
        scores.push((name.clone(), l.group_scores(weight(last, name)?)));
        groups.push((name.clone(), l.kept_groups(kept)));
    }
    let counts = pruning.layerwise_counts(last, output);
    let rows = |name: &str| {
        bases
            .iter()
            .any(|(n, l)| n == name && l.grouping() == Grouping::Rows)
    };
    let groups = Mask::from_named(groups).map_err(prune_error)?;
    let kept = select_layerwise(&scores, &groups, Keep::Largest, |name| {
        if name == output && rows(name) {
            Count::PruneFraction(0.0)
        } else {
            counts(name)
        }
    })
    .map_err(prune_error)?;
    let mut out = Vec::new();
    for (name, l) in bases {
        let shape = weight(last, name)?.size();
        let g = kept
            .get(name)
            .ok_or_else(|| ReproError::Invalid(format!("no kept groups for `{name}`")))?;
        out.push((name.clone(), l.expand(g, &shape)));
    }
    Mask::from_named(out).map_err(prune_error)
}

fn prune_error(e: lth_prune::PruneError) -> ReproError {
    ReproError::Invalid(e.to_string())
}

fn weight<'a>(named: &'a [(String, Tensor)], name: &str) -> Result<&'a Tensor> {
    named
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| ReproError::Invalid(format!("no weight `{name}`")))
}

/// The bases of level folder `dir`: `fixed` where the basis does not depend on the weights;
/// else (low rank) read from the level's `basis.safetensors`, or the singular vectors of the
/// previous level's trained weights `last`, saved there.
fn level_bases(
    dir: &RunDir,
    fixed: Option<&Bases>,
    kernels: &[(String, Tensor)],
    last: &[(String, Tensor)],
) -> Result<Bases> {
    if let Some(fixed) = fixed {
        return Ok(fixed
            .iter()
            .map(|(n, l)| (n.clone(), l.shallow_clone()))
            .collect());
    }
    let path = dir.join(BASIS_FILE);
    if path.exists() {
        let stored = lth_models::load_tensors(&path)?;
        let bad = |e: String| ReproError::Invalid(format!("{}: {e}", path.display()));
        return kernels
            .iter()
            .map(|(n, _)| {
                let side = |s: &str| {
                    weight(&stored, &format!("{n}.{s}"))
                        .map(Tensor::shallow_clone)
                        .map_err(|e| bad(e.to_string()))
                };
                let l = LayerBasis::from_matrices(side("out")?, side("in")?, Grouping::Diagonal)
                    .map_err(|e| bad(e.to_string()))?;
                Ok((n.clone(), l))
            })
            .collect();
    }
    let mut bases = Vec::new();
    let mut stored = Vec::new();
    for (n, _) in kernels {
        let l = LayerBasis::for_weights(Basis::LowRank, weight(last, n)?)
            .map_err(|e| ReproError::Invalid(format!("layer `{n}`: {e}")))?;
        let (out, inp) = l.matrices();
        stored.push((format!("{n}.out"), out.shallow_clone()));
        stored.push((format!("{n}.in"), inp.shallow_clone()));
        bases.push((n.clone(), l));
    }
    dir.create()?;
    lth_models::save_tensors(&path, &stored)?;
    Ok(bases)
}

/// The hook's layers: each kernel's bases with its kept coefficients, in the network's order.
fn hook_layers(
    bases: &[(String, LayerBasis)],
    keep: &Mask,
) -> Result<Vec<(String, LayerBasis, Tensor)>> {
    bases
        .iter()
        .map(|(n, l)| {
            keep.get(n)
                .map(|k| (n.clone(), l.shallow_clone(), k.shallow_clone()))
                .ok_or_else(|| ReproError::Invalid(format!("no kept coefficients for `{n}`")))
        })
        .collect()
}

/// Trains `start` projected onto `keep` in `bases` as the unit `dir`, unless it is done; with
/// `signs`, each kept coefficient of the start first gets a random sign drawn from that seed (its
/// magnitude kept).
fn train(
    lottery: &Lottery,
    dir: &RunDir,
    start: Start,
    signs: Option<u64>,
    bases: &[(String, LayerBasis)],
    keep: &Mask,
    progress: &mut dyn Progress,
) -> Result<RunSummary> {
    if let Some(s) = dir.done_summary::<RunSummary>()? {
        return Ok(s);
    }
    dir.create()?;
    let hp = &lottery.hparams().train;
    let data = lottery.data();
    // The bases and kept coefficients come from weights read from the store (on the CPU); the
    // network trains on the data's device.
    let device = data.train.device();
    let bases: Vec<(String, LayerBasis)> = bases
        .iter()
        .map(|(n, l)| (n.clone(), l.to_device(device)))
        .collect();
    let keep = keep.to_device(device);
    let plan = RunPlan::whole(hp, data.iterations_per_epoch(hp.dataset.batch_size));
    let job = Job::new(dir.clone(), hp, lottery.replicate(), plan.clone()).starting(start);
    let mut setup = job.setup(hp, data)?;
    // SGD (check_row): the update stays in the subspace, projected at each evaluation.
    let mut hook = InBasis::new(hook_layers(&bases, &keep)?, false)?;
    hook.project_weights(&setup.optimizer.weights())?;
    if let Some(seed) = signs {
        random_signs(&setup.optimizer.weights(), &bases, seed)?;
    }
    progress.unit(&format!("{}", dir.path().display()));
    let mut hooks = Hooks::new(vec![&mut hook])?;
    Ok(run_resumable(dir, &mut setup, &plan, &mut hooks, progress)?)
}

/// Gives each coefficient of the named weights in `bases` a random sign (drawn per layer from
/// `seed`), its magnitude kept, in place: a coefficient outside the subspace stays zero, so the
/// weights stay in it.
fn random_signs(
    weights: &lth_models::Named,
    bases: &[(String, LayerBasis)],
    seed: u64,
) -> Result<()> {
    tch::no_grad(|| {
        for (name, l) in bases {
            let w = weights
                .get(name)
                .ok_or_else(|| ReproError::Invalid(format!("no weight `{name}`")))?;
            let z = l.coefficients(w);
            let draw =
                lth_rng::Stream::named(seed, "generalized_signs", name).normal(z.numel(), 1.0);
            let signs = Tensor::from_slice(&draw)
                .view(z.size().as_slice())
                .to_device(z.device())
                .ge(0.0)
                .to_kind(z.kind())
                * 2.0
                - 1.0;
            w.shallow_clone().copy_(&l.weights(&(z * signs)));
        }
        Ok(())
    })
}

/// The kept coefficients of level `level` in folder `dir`: read if saved, else pruned from the
/// level before's trained weights and saved.
fn level_keep(dir: &RunDir, make: impl FnOnce() -> Result<Mask>) -> Result<Mask> {
    let path = dir.join(COEFFICIENTS_FILE);
    if path.exists() {
        return Mask::load(&path).map_err(prune_error);
    }
    let keep = make()?;
    dir.create()?;
    keep.save(&path).map_err(prune_error)?;
    Ok(keep)
}

impl crate::experiment::RowGroup for lth_train::flags::BasisFlags {
    fn resolve(
        &self,
        lottery: &lth_lottery::flags::LotteryFlags,
        _level: u64,
    ) -> Result<crate::experiment::Resolved> {
        crate::experiment::Resolved::of(
            lottery,
            crate::MethodFlags {
                basis: self.basis,
                ..crate::MethodFlags::default()
            },
        )
    }
}

impl Experiment for Generalized {
    fn kind(&self) -> &'static str {
        "generalized"
    }

    fn metrics(&self) -> &'static [&'static str] {
        metric_names!(
            ["coefficients_remaining"],
            ["ticket", "reinit", "signs", "canonical", "dense"]
        )
    }

    fn check_row(&self, hp: &LotteryHparams, level: u64) -> std::result::Result<(), String> {
        if level == 0 {
            return Err(
                "level 0 keeps every coefficient: a generalized row is level 1 or more".into(),
            );
        }
        if !hp.rewind.is_zero() {
            return Err(format!(
                "a generalized ticket rewinds its coefficients to W0's (--rewind 0), not {}",
                hp.rewind
            ));
        }
        if hp.train.training.optimizer != OptimizerKind::Sgd {
            return Err(
                "training in a basis by projection is exactly training its coefficients under SGD \
                 only (--optimizer sgd); Adam scales the weights' coordinates, not the \
                 coefficients'"
                    .into(),
            );
        }
        if hp.pruning.strategy != lth_prune::Strategy::Layerwise {
            return Err("generalized tickets are pruned layerwise (--strategy layerwise)".into());
        }
        if hp.level1.is_some() {
            return Err("level 1 is pruned in the basis, not at initialisation".into());
        }
        let info = lth_data::info(&hp.train.dataset.dataset).map_err(|e| e.to_string())?;
        let kernels = lth_models::kernels(&hp.train.model.model, info.shape, info.num_classes)
            .map_err(|e| e.to_string())?;
        if kernels.has_convolutions() {
            return Err(format!(
                "bases here are for linear layers' matrices; {} has convolutions",
                hp.train.model.model
            ));
        }
        Ok(())
    }

    fn rows(&self) -> crate::experiment::Rows {
        crate::experiment::Rows::of::<lth_train::flags::BasisFlags>(
            "lth lottery's flags and --basis",
        )
    }

    fn check_methods(&self, methods: &MethodFlags) -> std::result::Result<(), String> {
        match methods.basis {
            None => Err(
                "a generalized row needs --basis (canonical, dct, random, units or low-rank)"
                    .into(),
            ),
            Some(_) => Ok(()),
        }
    }

    fn measure(&self, unit: &Unit, progress: &mut dyn Progress) -> Result<Measured> {
        let lottery = unit.lottery()?;
        let kind = unit
            .methods
            .basis
            .ok_or_else(|| ReproError::Invalid("no --basis".into()))?;
        let basis = kind.basis(unit.replicate);
        let level = unit.level;
        let mut m = Measured::new();
        m.run("dense", &summary(&lottery.level_dir(0))?);
        m.run("canonical", &summary(&lottery.level_dir(level))?);
        if basis == Basis::Canonical {
            // The canonical basis is the lottery itself: its levels are the tickets.
            m.set("coefficients_remaining", lottery.mask(level)?.density());
            m.run("ticket", &summary(&lottery.level_dir(level))?);
            return Ok(m);
        }
        let root = lottery
            .dir()
            .child(format!("basis_{}", basis.name().replace(':', "_")));
        root.create()?;
        root.bind_hparams(&BasisRecord {
            basis: format!("{} (seed: replicate {})", basis.name(), unit.replicate),
        })?;
        // The network's prunable kernels and output layer (built once, never trained).
        let model = lth_train::initial_model(
            &lottery.hparams().train,
            lottery.replicate(),
            lottery.data().info,
            tch::Device::Cpu,
        )?;
        let output = model.output_layer().to_owned();
        let kernels: Vec<(String, Tensor)> = lottery
            .dense_weights_at(0)?
            .into_iter()
            .filter(|(n, _)| model.prunable().contains(n))
            .collect();
        let fixed = match basis {
            Basis::LowRank => None,
            _ => Some(
                kernels
                    .iter()
                    .map(|(n, w)| {
                        let l = LayerBasis::new(basis, &w.size(), w.device())
                            .map_err(|e| ReproError::Invalid(format!("layer `{n}`: {e}")))?;
                        Ok((n.clone(), l))
                    })
                    .collect::<Result<Bases>>()?,
            ),
        };
        let mut previous = Mask::ones(&kernels);
        let mut last = lottery.final_weights(&lottery.level_dir(0))?;
        let mut ticket = None;
        let mut bases = Vec::new();
        for l in 1..=level {
            let dir = root.level(l);
            bases = level_bases(&dir, fixed.as_ref(), &kernels, &last)?;
            let keep = level_keep(&dir, || {
                prune_coefficients(
                    &lottery.hparams().pruning,
                    &bases,
                    &last,
                    &previous,
                    &output,
                )
            })?;
            let main = dir.child("main");
            ticket = Some(train(
                lottery,
                &main,
                Start::W0,
                None,
                &bases,
                &keep,
                progress,
            )?);
            last = lottery.final_weights(&main)?;
            previous = keep;
        }
        let last_level = root.level(level);
        let reinit = train(
            lottery,
            &last_level.child("reinit"),
            Start::Init(reinit_seed(unit.replicate)),
            None,
            &bases,
            &previous,
            progress,
        )?;
        // The ticket's coefficients with random signs: its sizes without its signs.
        let signs = train(
            lottery,
            &last_level.child("signs"),
            Start::W0,
            Some(reinit_seed(unit.replicate)),
            &bases,
            &previous,
            progress,
        )?;
        let ticket = ticket.ok_or_else(|| ReproError::Invalid("no level trained".into()))?;
        m.run("ticket", &ticket);
        m.run("reinit", &reinit);
        m.run("signs", &signs);
        m.set("coefficients_remaining", previous.density());
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// In the canonical basis, a level of coefficient pruning is IMP's level of layerwise
    /// magnitude pruning, with its output-layer rate: the same mask, position by position, over
    /// three levels.
    #[test]
    fn canonical_coefficient_pruning_is_the_lotterys_pruning() {
        let weights = two_layers();
        let bases: Vec<(String, LayerBasis)> = weights
            .iter()
            .map(|(n, w)| {
                let l = LayerBasis::new(Basis::Canonical, &w.size(), tch::Device::Cpu).unwrap();
                (n.clone(), l)
            })
            .collect();
        let hp = PruningHparams {
            rate: 0.2,
            output_rate: Some(0.1),
            ..PruningHparams::default()
        };
        let (mut imp, mut ours) = (Mask::ones(&weights), Mask::ones(&weights));
        for _ in 0..3 {
            imp = hp
                .prune_from(&weights, &weights, &imp, "fc.weight")
                .unwrap();
            ours = prune_coefficients(&hp, &bases, &weights, &ours, "fc.weight").unwrap();
            for ((n, a), (_, b)) in imp.iter().zip(ours.iter()) {
                assert!(a.equal(b), "layer {n}");
            }
        }
        // The output layer lost ⌈10%⌉ of what remained per level (300 → 270 → 243 → 218), the
        // hidden one ⌈20%⌉ (600 → 480 → 384 → 307): OpenLTH's rounding.
        assert_eq!(kept(&ours, "fc.weight"), 218);
        assert_eq!(kept(&ours, "fc_layers.0.weight"), 307);
    }

    fn two_layers() -> Vec<(String, Tensor)> {
        [("fc_layers.0.weight", [30i64, 20]), ("fc.weight", [10, 30])]
            .iter()
            .zip(1u64..)
            .map(|((n, s), seed)| {
                let v = lth_rng::Stream::new(seed, "generalized_test", 0)
                    .normal((s[0] * s[1]) as usize, 1.0);
                ((*n).to_owned(), Tensor::from_slice(&v).view(*s))
            })
            .collect()
    }

    fn kept(m: &Mask, n: &str) -> i64 {
        m.get(n).unwrap().sum(tch::Kind::Int64).int64_value(&[])
    }

    /// The units basis drops whole rows of the hidden layer, those of smallest norm, at the
    /// hidden rate, and no row of the output layer (its units are the classes).
    #[test]
    fn units_pruning_drops_the_weakest_hidden_units_and_no_class() {
        let weights = two_layers();
        let bases: Bases = weights
            .iter()
            .map(|(n, w)| (n.clone(), LayerBasis::for_weights(Basis::Units, w).unwrap()))
            .collect();
        let hp = PruningHparams {
            rate: 0.2,
            output_rate: Some(0.1),
            ..PruningHparams::default()
        };
        let mut keep = Mask::ones(&weights);
        for units in [24, 19, 15] {
            keep = prune_coefficients(&hp, &bases, &weights, &keep, "fc.weight").unwrap();
            assert_eq!(
                kept(&keep, "fc.weight"),
                300,
                "the output layer lost a class"
            );
            let hidden = keep.get("fc_layers.0.weight").unwrap();
            let rows = hidden.any_dim(1, false);
            assert!(hidden.equal(&rows.unsqueeze(1).expand([30, 20], false)));
            assert_eq!(rows.sum(tch::Kind::Int64).int64_value(&[]), units);
            // Every kept row is at least as long as every dropped one.
            let norms = weights[0]
                .1
                .square()
                .sum_dim_intlist(1, false, tch::Kind::Float);
            let min_kept = norms.masked_select(&rows).min().double_value(&[]);
            let max_dropped = norms
                .masked_select(&rows.logical_not())
                .max()
                .double_value(&[]);
            assert!(min_kept >= max_dropped);
        }
    }

    /// The low-rank basis keeps each layer's leading singular directions of the weights it
    /// prunes: over levels, the rank falls at the layer's rate (OpenLTH's rounding), and a
    /// level's weights projected onto what it keeps are their best approximation of that rank.
    #[test]
    fn low_rank_pruning_keeps_the_leading_singular_directions_level_by_level() {
        let mut last = two_layers();
        let hp = PruningHparams {
            rate: 0.2,
            output_rate: Some(0.1),
            ..PruningHparams::default()
        };
        let mut keep = Mask::ones(&last);
        // Hidden: rank 20 → 16 → 12 → 9; output: rank 10 → 9 → 8 → 7.
        for (hidden, out) in [(16, 9), (12, 8), (9, 7)] {
            let bases: Bases = last
                .iter()
                .map(|(n, w)| {
                    (
                        n.clone(),
                        LayerBasis::for_weights(Basis::LowRank, w).unwrap(),
                    )
                })
                .collect();
            keep = prune_coefficients(&hp, &bases, &last, &keep, "fc.weight").unwrap();
            assert_eq!(kept(&keep, "fc_layers.0.weight"), hidden);
            assert_eq!(kept(&keep, "fc.weight"), out);
            // The next level prunes these projected weights (standing in for their training).
            last = bases
                .iter()
                .map(|(n, l)| {
                    let k = keep.get(n).unwrap();
                    let w = weight(&last, n).unwrap();
                    let p = l.project(w, k);
                    let r = k.sum(tch::Kind::Int64).int64_value(&[]);
                    let (u, sv, v) = w.to_kind(tch::Kind::Double).svd(false, true);
                    let best = u
                        .narrow(1, 0, r)
                        .matmul(&(v.narrow(1, 0, r) * sv.narrow(0, 0, r).unsqueeze(0)).tr());
                    // Float32 products of length ≤ 30 over orthonormal factors (see
                    // lth_prune::basis's test), on the weights' scale.
                    let scale = w.abs().max().double_value(&[]);
                    let tol = 8.0 * 30.0 * f64::from(f32::EPSILON) * 600f64.sqrt() * scale;
                    let diff = (p.to_kind(tch::Kind::Double) - best).abs().max();
                    assert!(diff.double_value(&[]) <= tol, "{n}: {diff}");
                    (n.clone(), p)
                })
                .collect();
        }
    }

    /// Random signs keep each kept coefficient's magnitude, flip about half of them, and leave
    /// the weights in their subspace.
    #[test]
    fn random_signs_keep_the_sizes_and_the_subspace() {
        let weights = two_layers();
        let name = "fc_layers.0.weight";
        let w = weights[0].1.copy();
        let l = LayerBasis::for_weights(Basis::Dct, &w).unwrap();
        let keep = w.abs().gt(0.5);
        let start = l.project(&w, &keep);
        let named: lth_models::Named = vec![(name.to_owned(), start.copy())].into();
        random_signs(&named, &[(name.to_owned(), l.shallow_clone())], 3).unwrap();
        let (before, after) = (
            l.coefficients(&start),
            l.coefficients(named.get(name).unwrap()),
        );
        // Two float32 products of length ≤ 30 each way, on the coefficients' scale.
        let tol = 8.0 * 30.0 * f64::from(f32::EPSILON) * before.abs().max().double_value(&[]);
        let size = (before.abs() - after.abs()).abs().max().double_value(&[]);
        assert!(size <= tol, "{size}");
        let off = after.abs() * keep.logical_not().to_kind(tch::Kind::Float);
        assert!(off.max().double_value(&[]) <= tol);
        let kept = keep.sum(tch::Kind::Int64).int64_value(&[]) as f64;
        let flipped = (before * &after).lt(0.0).logical_and(&keep);
        let flipped = flipped.sum(tch::Kind::Int64).int64_value(&[]) as f64;
        // Binomial(kept, 1/2): within five standard deviations of half.
        assert!(
            (flipped - kept / 2.0).abs() <= 5.0 * (kept / 4.0).sqrt(),
            "{flipped} of {kept}"
        );
    }

    /// A low-rank level's basis is stored before its kept coefficients and read back as it was:
    /// a resumed level prunes in the basis it started with, not in an SVD recomputed from other
    /// weights; a damaged file is an error that names it.
    #[test]
    fn a_low_rank_levels_basis_is_stored_and_read_back_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("level_1"));
        let last = two_layers();
        let first = level_bases(&dir, None, &last, &last).unwrap();
        assert!(dir.join(BASIS_FILE).exists());
        let other: Vec<(String, Tensor)> = last
            .iter()
            .map(|(n, w)| (n.clone(), w * 2.0 + 1.0))
            .collect();
        let again = level_bases(&dir, None, &last, &other).unwrap();
        for ((n, a), (_, b)) in first.iter().zip(&again) {
            assert!(a.matrices().0.equal(b.matrices().0), "{n}");
            assert!(a.matrices().1.equal(b.matrices().1), "{n}");
            assert_eq!(b.grouping(), Grouping::Diagonal);
        }
        std::fs::write(dir.join(BASIS_FILE), b"not a tensor file").unwrap();
        let e = level_bases(&dir, None, &last, &last)
            .unwrap_err()
            .to_string();
        assert!(e.contains(BASIS_FILE), "{e}");
    }
}
