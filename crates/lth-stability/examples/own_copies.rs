//! Stability of a network of your own (plain `tch::nn`): train two copies from the same
//! initial weights with different data orders, then measure the L2 distance between their
//! pruned weights and the error barrier along the line between them.
//!
//! `cargo run --release -p lth-stability --example own_copies`

use lth_prune::{Count, Keep, Mask, score, select_global};
use lth_stability::{barrier, interpolation_curve_with, l2_distance};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn mlp(vs: &nn::VarStore) -> nn::SequentialT {
    let root = vs.root();
    nn::seq_t()
        .add(nn::linear(&root / "fc1", 20, 64, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&root / "fc2", 64, 2, Default::default()))
}

fn named(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tch::manual_seed(0);
    // A toy task: the sign of a fixed random projection.
    let x = Tensor::randn([2000, 20], (Kind::Float, Device::Cpu));
    let y = x
        .matmul(&Tensor::randn([20], (Kind::Float, Device::Cpu)))
        .gt(0.0)
        .to_kind(Kind::Int64);
    let init = nn::VarStore::new(Device::Cpu);
    let _ = mlp(&init);
    let mut copies = Vec::new();
    for order_seed in [1, 2] {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let net = mlp(&vs);
        vs.copy(&init)?;
        let mut opt = nn::Sgd::default().build(&vs, 0.1)?;
        tch::manual_seed(order_seed);
        for _ in 0..200 {
            let idx = Tensor::randint(2000, [50], (Kind::Int64, Device::Cpu));
            let loss = net
                .forward_t(&x.index_select(0, &idx), true)
                .cross_entropy_for_logits(&y.index_select(0, &idx));
            opt.backward_step(&loss);
        }
        copies.push(named(&vs));
    }
    // The distance over the weights a global-magnitude mask of the first copy keeps (80%).
    let kernels: Vec<(String, Tensor)> = copies[0]
        .iter()
        .filter(|(n, _)| n.ends_with(".weight"))
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let names: Vec<String> = kernels.iter().map(|(n, _)| n.clone()).collect();
    let mask = select_global(
        &score::magnitude(&kernels),
        &Mask::ones(&kernels),
        &names,
        Keep::Largest,
        Count::SparsityFloor(0.2),
    )?;
    println!(
        "L2 distance between the copies: {:.4}",
        l2_distance(&copies[0], &copies[1], &mask)?
    );
    // The error along the line between them, evaluated with a vessel network.
    let vessel = nn::VarStore::new(Device::Cpu);
    let net = mlp(&vessel);
    let vars = vessel.variables();
    let curve = interpolation_curve_with(&copies[0], &copies[1], 11, |weights| {
        tch::no_grad(|| {
            for (name, t) in weights {
                if let Some(v) = vars.get(name) {
                    v.shallow_clone().copy_(t);
                }
            }
            let logits = net.forward_t(&x, false);
            let acc = logits.accuracy_for_logits(&y).double_value(&[]);
            Ok((
                1.0 - acc,
                logits.cross_entropy_for_logits(&y).double_value(&[]),
            ))
        })
    })?;
    let errors: Vec<f64> = curve.iter().map(|(_, e, _)| *e).collect();
    println!("errors along the line: {errors:.3?}");
    println!("error barrier: {:.4}", barrier(&errors));
    Ok(())
}
