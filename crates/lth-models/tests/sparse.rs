//! A ticket in compressed sparse rows computes what the masked dense network computes, with either
//! kernel, at any sparsity and batch size, to the rounding bound of the reordered sums.
#![allow(clippy::unwrap_used)]

use lth_models::Model;
use lth_models::rounding::{Reductions, relative};
use lth_models::sparse::{SparseKernel, SparseMlp};
use tch::{Device, Kind, Tensor};

/// lenet_300_100 with each prunable weight kept with probability `density` (an empty row or
/// column included), biases away from zero so that a dropped bias shows.
fn masked_lenet(density: f64, seed: i64) -> Model {
    let model = Model::new("lenet_300_100", [1, 28, 28], 10, None, 3, Device::Cpu).unwrap();
    tch::manual_seed(seed);
    tch::no_grad(|| {
        for (name, mut t) in model.state() {
            if name.ends_with(".weight") {
                let keep = Tensor::rand(t.size(), (Kind::Float, Device::Cpu)).lt(density);
                let _ = t.g_mul_(&keep.to_kind(Kind::Float));
                // Row 0 of every layer loses all its weights: its output is its bias alone.
                let _ = t.get(0).fill_(0.0);
            } else {
                t.copy_(&(Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.1));
            }
        }
    });
    model
}

#[test]
fn the_sparse_forward_equals_the_masked_dense_one() {
    for (density, seed) in [(1.0, 1), (0.2, 2), (0.05, 3), (0.01, 4)] {
        let model = masked_lenet(density, seed);
        let sparse = SparseMlp::from_named("lenet_300_100", &model.state()).unwrap();
        let kept: i64 = model
            .prunable_tensors()
            .iter()
            .map(|(_, t)| t.ne(0.0).sum(Kind::Int64).int64_value(&[]))
            .sum();
        assert_eq!(sparse.nnz() as i64, kept);
        assert_eq!(sparse.total() as i64, model.num_prunable());
        for batch in [1, 7, 64] {
            let x = Tensor::randn([batch, 1, 28, 28], (Kind::Float, Device::Cpu));
            let dense = tch::no_grad(|| model.forward_t(&x, false));
            // The same sums in another order: the rounding law's bound for this network.
            let bound = Reductions::of(&model, batch as usize, 10).forward_bound();
            for kernel in [SparseKernel::Own, SparseKernel::Torch] {
                let out = sparse.forward(&x, kernel).unwrap();
                assert_eq!(out.size(), [batch, 10]);
                let d = relative(&out, &dense, 1e-3);
                assert!(
                    d <= bound,
                    "density {density}, batch {batch}, {kernel:?}: {d:e} > {bound:e}"
                );
            }
        }
    }
}

#[test]
fn the_export_rebuilds_each_weight_in_pytorch_layout() {
    let model = masked_lenet(0.1, 5);
    let sparse = SparseMlp::from_named("lenet_300_100", &model.state()).unwrap();
    let named = sparse.to_named_csr();
    let get = |n: &str| &named.iter().find(|(k, _)| k == n).unwrap().1;
    for (name, dense) in model.prunable_tensors() {
        let size = Vec::<i64>::try_from(get(&format!("{name}.size"))).unwrap();
        let w = Tensor::sparse_csr_tensor_crow_col_value_size(
            get(&format!("{name}.crow_indices")),
            get(&format!("{name}.col_indices")),
            get(&format!("{name}.values")),
            size,
            (Kind::Float, Device::Cpu),
        )
        .to_dense(None, false);
        assert!(w.equal(&dense), "{name}");
    }
    let bias = model
        .state()
        .into_iter()
        .find(|(n, _)| n == "fc.bias")
        .unwrap()
        .1;
    assert!(get("fc.bias").equal(&bias));
}

#[test]
fn other_networks_and_wrong_inputs_are_refused_with_their_names() {
    let err = SparseMlp::from_named("cifar_resnet_20", &[]).unwrap_err();
    assert!(err.to_string().contains("only the LeNet family"), "{err}");
    let err = SparseMlp::from_named("lenet_300_100", &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("no tensor named fc_layers.0.weight"),
        "{err}"
    );
    let model = masked_lenet(0.5, 6);
    let sparse = SparseMlp::from_named("lenet_300_100", &model.state()).unwrap();
    let x = Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let err = sparse.forward(&x, SparseKernel::Own).unwrap_err();
    assert!(
        err.to_string().contains("3072 features (it takes 784)"),
        "{err}"
    );
}
