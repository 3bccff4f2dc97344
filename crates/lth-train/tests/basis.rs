//! Training a ticket that is sparse in the DCT basis, through the ordinary loop with the
//! [`InBasis`] hook: the trained weights stay in the kept coefficients' subspace, the network
//! computes with the weights those coefficients reconstruct, and the weights are dense in the
//! canonical basis while a fifth of their DCT coefficients carry them.
#![allow(clippy::unwrap_used)]

mod common;

use common::{data, hparams};

use lth_models::Named;
use lth_models::rounding::{F32, Reductions, relative};
use lth_prune::basis::{Basis, LayerBasis};
use lth_prune::{Count, Keep, Mask, select_layerwise};
use lth_store::RunDir;
use lth_train::basis::InBasis;
use lth_train::{Hooks, OptimizerKind, RunPlan, Setup, load_tensors, run_resumable};
use tch::{Kind, Tensor};

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

#[test]
fn a_ticket_trained_in_the_dct_basis_stays_in_its_subspace_and_computes_with_it() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let mut hp = hparams();
    hp.training.optimizer = OptimizerKind::Sgd;
    hp.training.lr = 0.05;
    hp.training.momentum = 0.9;
    hp.training.weight_decay = 1e-4;
    let mut setup = Setup::new(&hp, 1, &data).unwrap();
    // The ticket: each layer's 20% largest DCT coefficients of W0.
    let kernels = setup.model.prunable_tensors();
    let bases: Vec<(String, LayerBasis)> = kernels
        .iter()
        .map(|(n, w)| {
            let l = LayerBasis::new(Basis::Dct, &w.size(), w.device()).unwrap();
            (n.clone(), l)
        })
        .collect();
    let scores: Vec<(String, Tensor)> = kernels
        .iter()
        .zip(&bases)
        .map(|((n, w), (_, l))| (n.clone(), l.coefficients(w).abs()))
        .collect();
    let keep = select_layerwise(&scores, &Mask::ones(&kernels), Keep::Largest, |_| {
        Count::PruneFraction(0.8)
    })
    .unwrap();
    // In the network's order, as `bases` (a mask iterates by name).
    let keep: Vec<(String, Tensor)> = kernels
        .iter()
        .map(|(n, _)| (n.clone(), keep.get(n).unwrap().shallow_clone()))
        .collect();
    let mut hook = InBasis::fixed(Basis::Dct, &keep, false).unwrap();
    hook.project_weights(&setup.optimizer.weights()).unwrap();
    let dir = RunDir::new(root.path().join("dct"));
    let plan = RunPlan::whole(&hp, data.iterations_per_epoch(hp.dataset.batch_size));
    let summary = {
        let mut hooks = Hooks::new(vec![&mut hook]).unwrap();
        run_resumable(&dir, &mut setup, &plan, &mut hooks, &mut ()).unwrap()
    };
    assert!(summary.final_test_accuracy > 0.5, "{summary:?}");
    let trained: Named = load_tensors(&dir.join(lth_train::FINAL)).unwrap().into();
    for ((name, l), (_, k)) in bases.iter().zip(&keep) {
        let w = trained.get(name).unwrap();
        // One projection's float32 rounding (four products: out, in, out, in) and the
        // coefficients taken again (two more), on the weights' scale.
        let s: Vec<usize> = w.size().iter().map(|&d| d as usize).collect();
        let tol = Reductions::bound(&[s[0], s[1], s[0], s[1], s[0], s[1]], F32, F32) * max_abs(w);
        let off = l.coefficients(w) * k.logical_not().to_kind(Kind::Float);
        assert!(
            max_abs(&off) <= tol,
            "{name}: {} off the mask",
            max_abs(&off)
        );
        let dense = w.abs().gt(tol).to_kind(Kind::Double).mean(Kind::Double);
        assert!(
            dense.double_value(&[]) > 0.9,
            "{name}: sparse in the DCT basis, dense in the canonical one"
        );
    }
    // The network computes with the weights its kept coefficients reconstruct.
    let mut rebuilt = Setup::new(&hp, 1, &data).unwrap();
    let mut weights: Vec<(String, Tensor)> = trained
        .iter()
        .map(|(n, t)| (n.to_owned(), t.copy()))
        .collect();
    for ((name, l), (_, k)) in bases.iter().zip(&keep) {
        let w = weights.iter_mut().find(|(n, _)| n == name).unwrap();
        w.1 = l.weights(&(l.coefficients(&w.1) * k.to_kind(Kind::Float)));
    }
    rebuilt.model.load_state(&weights).unwrap();
    let same: Vec<(String, Tensor)> = trained
        .iter()
        .map(|(n, t)| (n.to_owned(), t.shallow_clone()))
        .collect();
    setup.model.load_state(&same).unwrap();
    let x = data.eval.test.sequential(64).next().unwrap().unwrap().x;
    let (a, b) = tch::no_grad(|| {
        (
            setup.model.forward_t(&x, false),
            rebuilt.model.forward_t(&x, false),
        )
    });
    // The reconstruction's products (four per layer) and the forward pass's reductions.
    let recon: Vec<usize> = kernels
        .iter()
        .flat_map(|(_, w)| {
            let s = w.size();
            [s[0], s[1], s[0], s[1]].map(|d| d as usize)
        })
        .collect();
    let bound =
        Reductions::bound(&recon, F32, F32) + Reductions::of(&setup.model, 64, 10).forward_bound();
    let diff = relative(&b, &a, 1.0);
    assert!(diff <= bound, "logits {diff} apart, bound {bound}");
}
