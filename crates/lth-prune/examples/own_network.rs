//! Prune a network of your own (plain `tch::nn`, built outside lth's zoo) with lth-prune:
//! SNIP on one batch, and one global magnitude threshold, at 95% sparsity.
//!
//! `cargo run --release -p lth-prune --example own_network`

use lth_prune::{Count, Keep, Mask, Method, Network, PaiOptions, Plain, score, select_global};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let net = nn::seq_t()
        .add(nn::linear(&root / "fc1", 784, 300, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&root / "fc2", 300, 100, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&root / "fc3", 100, 10, Default::default()));
    // The prunable kernels are the weights of two or more dimensions; name them to fix the order
    // in which ties are broken.
    let plain = Plain::new(&vs, |x, train| net.forward_t(x, train)).with_prunable(&[
        "fc1.weight",
        "fc2.weight",
        "fc3.weight",
    ]);
    // One batch of your data (random here).
    let x = Tensor::randn([100, 784], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [100], (Kind::Int64, Device::Cpu));

    let dense = Mask::ones(&plain.prunable());
    let snip = Method::Snip.prune(
        &plain,
        &dense,
        0.95,
        Some((&x, &y)),
        &PaiOptions::new(&[784], 0),
    )?;
    let names: Vec<String> = plain.prunable().names().map(str::to_owned).collect();
    let magnitude = select_global(
        &score::magnitude(&plain.prunable()),
        &dense,
        &names,
        Keep::Largest,
        Count::SparsityFloor(0.95),
    )?;
    for (label, mask) in [("SNIP", &snip), ("global magnitude", &magnitude)] {
        println!("{label}: {} of {} weights kept", mask.kept(), mask.total());
        for c in mask.counts() {
            println!("  {:<11} {:>6} of {:>6}", c.name, c.kept, c.total);
        }
    }
    // Zero the pruned weights of your network in place; keep them zero while training by
    // multiplying gradients by the mask (or train with lth-train's optimiser).
    snip.apply(&plain.prunable())?;
    let zeros = plain
        .prunable()
        .get("fc1.weight")
        .map_or(0, |w| w.eq(0.0).sum(Kind::Int64).int64_value(&[]));
    println!("fc1.weight now has {zeros} zeros");
    Ok(())
}
