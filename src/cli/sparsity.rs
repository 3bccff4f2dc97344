//! `lth sparsity`: the per-layer sparsity a distribution gives a model, without training.

use clap::Args;

use lth_prune::LayerSparsity;
use lth_train::flags::DistributionFlags;
use lth_train::{SparseHparams, SparseMode, TrainHparams};

#[derive(Args, Debug)]
pub struct SparsityArgs {
    /// Model name from the registry (see `lth models`).
    #[arg(long)]
    pub model: String,
    /// Dataset whose input shape and classes size the model; default: the model's.
    #[arg(long)]
    pub dataset: Option<String>,
    /// The network's target sparsity over its prunable weights, in [0, 1).
    #[arg(long)]
    pub sparsity: f64,
    #[command(flatten)]
    pub spread: DistributionFlags,
}

/// The distribution of `sp` over the prunable layers of the model of `hp`, built on the CPU
/// (no data read), with the output positions of those layers: errors name a bad layer or budget
/// before any training.
pub fn check(
    hp: &TrainHparams,
    sp: &SparseHparams,
) -> anyhow::Result<(Vec<LayerSparsity>, Vec<i64>)> {
    let model = lth_train::method::outline(hp)?;
    let layers = sp.layer_sparsities(&model.prunable_tensors())?;
    Ok((layers, model.positions().to_vec()))
}

pub fn run(args: &SparsityArgs) -> anyhow::Result<()> {
    let mut hp = TrainHparams::recipe(&args.model)?;
    if let Some(d) = &args.dataset {
        hp.dataset.dataset = d.clone();
    }
    let sp = args.spread.hparams(SparseMode::Static, args.sparsity)?;
    sp.validate()?;
    let (layers, positions) = check(&hp, &sp)?;
    println!(
        "{} on {} ({}), {} at sparsity {}{}",
        args.model,
        hp.dataset.dataset,
        lth_data::info(&hp.dataset.dataset)?
            .shape
            .map(|d| d.to_string())
            .join("×"),
        sp.distribution,
        sp.sparsity,
        if sp.distribution == lth_prune::Spread::ErdosRenyiKernel && sp.erk_power != 1.0 {
            format!(", power {}", sp.erk_power)
        } else {
            String::new()
        }
    );
    println!(
        "{:<32} {:>18} {:>10} {:>9} {:>10} {:>12}",
        "layer", "shape", "weights", "sparsity", "kept", "MFLOPs"
    );
    let mflops = |l: &LayerSparsity, p: i64| {
        let outputs = l.shape.first().copied().unwrap_or(1);
        lth_prune::flops::kernel(l.kept, outputs, p) / 1e6
    };
    for (l, &p) in layers.iter().zip(&positions) {
        let shape = l
            .shape
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join("x");
        println!(
            "{:<32} {:>18} {:>10} {:>9.4} {:>10} {:>12.3}",
            l.name,
            shape,
            l.total,
            l.sparsity,
            l.kept,
            mflops(l, p)
        );
    }
    let (kept, total) = layers
        .iter()
        .fold((0, 0), |(k, t), l| (k + l.kept, t + l.total));
    let (sparse, dense) = lth_prune::flops::inference(&layers, &positions);
    println!(
        "{:<32} {:>18} {:>10} {:>9.4} {:>10} {:>12.3}",
        "total",
        "",
        total,
        1.0 - kept as f64 / total.max(1) as f64,
        kept,
        sparse / 1e6
    );
    println!(
        "inference FLOPs per example: {:.4e} sparse, {:.4e} dense ({:.3}×), counted as rigl \
         counts them",
        sparse,
        dense,
        sparse / dense.max(f64::MIN_POSITIVE)
    );
    Ok(())
}
