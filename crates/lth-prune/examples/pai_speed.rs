//! Times pruning at initialisation of ResNet-20 and VGG-16 (CIFAR shapes, random data) by every
//! method at 90% sparsity on this machine: the speed target of pruning at initialisation.
//!
//! `cargo run --release -p lth-prune --example pai_speed`

use std::time::Instant;

use lth_prune::{METHODS, Mask, Method, PaiOptions};
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cpu = Device::Cpu;
    // SNIP's batch (128 examples) and GraSP's (10 per class).
    let x = Tensor::randn([128, 3, 32, 32], (Kind::Float, cpu));
    let y = Tensor::randint(10, [128], (Kind::Int64, cpu));
    let xg = Tensor::randn([100, 3, 32, 32], (Kind::Float, cpu));
    let yg = Tensor::arange(100, (Kind::Int64, cpu)).remainder(10);
    println!("{} libtorch thread(s)", tch::get_num_threads());
    for name in ["cifar_resnet_20", "cifar_vgg_16"] {
        let model = lth_models::Model::new(name, [3, 32, 32], 10, None, 1, cpu)?;
        let mask = Mask::ones(&model.prunable_tensors());
        for m in METHODS {
            let batch = match m {
                Method::Snip => Some((&x, &y)),
                Method::Grasp => Some((&xg, &yg)),
                _ => None,
            };
            let t = Instant::now();
            let out = m.prune(&model, &mask, 0.9, batch, &PaiOptions::new(&[3, 32, 32], 0))?;
            println!(
                "{name:<16} {:<9} {:7.2} s   kept {} of {}",
                m.to_string(),
                t.elapsed().as_secs_f64(),
                out.kept(),
                out.total()
            );
        }
    }
    Ok(())
}
