//! Sparse training from scratch (static, SET, RigL) on generated MNIST-format data: the update
//! rules, the churn log, and exact resumption of a run killed between two updates.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Crash, data, hparams};

use lth_prune::{Mask, Spread};
use lth_store::{CsvLog, RunDir};
use lth_train::{
    Hook, Hooks, Rewiring, Setup, SparseHparams, SparseMode, SparseRun, StepContext, UPDATES_FILE,
    Update, UpdateRow, load_tensors, run_resumable, train_sparse,
};
use tch::{Device, Kind};

/// `mode` with ERK at 90%, rewiring every 4 steps until 75% of 30 (step 22): steps 0, 4, …, 20.
fn run(mode: SparseMode) -> SparseRun {
    let mut sp = SparseHparams::new(mode, Spread::ErdosRenyiKernel, 0.9);
    sp.update_every = 4;
    SparseRun {
        train: hparams(),
        sparse: Some(sp),
    }
}

fn rows(dir: &RunDir) -> Vec<UpdateRow> {
    CsvLog::<UpdateRow>::new(dir.join(UPDATES_FILE))
        .load()
        .unwrap()
}

#[test]
fn rewiring_runs_resume_bit_identically_after_a_kill_between_updates() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    for mode in [SparseMode::Rigl, SparseMode::Set] {
        let r = run(mode);
        let whole = RunDir::new(root.path().join(format!("whole-{mode}")));
        let cut = RunDir::new(root.path().join(format!("cut-{mode}")));
        let (expected, mask) = train_sparse(&whole, &r, 1, &data, &mut ()).unwrap();
        let mask = mask.unwrap();
        let log = rows(&whole);
        let steps: Vec<u64> = log.iter().map(|r| r.step).collect();
        let mut distinct = steps.clone();
        distinct.dedup();
        assert_eq!(distinct, vec![0, 4, 8, 12, 16, 20], "{mode}: update steps");
        assert!(log.iter().any(|r| r.grown > 0), "{mode} rewired nothing");
        // Killed after step 13 (checkpoint at 10, between the updates of steps 8 and 12; the
        // update of step 12 was logged and must be dropped on resume).
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            train_sparse(&cut, &r, 1, &data, &mut Crash(13)).unwrap();
        }));
        assert!(crashed.is_err());
        assert!(rows(&cut).iter().any(|r| r.step == 12));
        let (resumed, resumed_mask) = train_sparse(&cut, &r, 1, &data, &mut ()).unwrap();
        assert_eq!(resumed, expected, "{mode}");
        assert_eq!(rows(&cut), log, "{mode}: churn log after resuming");
        for ((n, a), (_, b)) in mask.iter().zip(resumed_mask.unwrap().iter()) {
            assert!(a.equal(b), "{mode}: mask of {n} differs after resuming");
        }
        let w = |d: &RunDir| load_tensors(&d.join("final.safetensors")).unwrap();
        for ((n1, t1), (_, t2)) in w(&whole).iter().zip(w(&cut).iter()) {
            assert!(t1.equal(t2), "{mode}: {n1} differs after resuming");
        }
        // A finished run is not retrained, and gives back its final mask.
        let (again, again_mask) = train_sparse(&whole, &r, 1, &data, &mut ()).unwrap();
        assert_eq!(again, expected);
        assert_eq!(again_mask.unwrap().kept(), mask.kept());
    }
}

#[test]
fn updates_keep_each_layers_count_and_static_keeps_its_mask() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let r = run(SparseMode::Rigl);
    let sp = r.sparse.clone().unwrap();
    let setup = Setup::new(&r.train, 1, &data).unwrap();
    let layers = sp
        .layer_sparsities(&setup.model.prunable_tensors())
        .unwrap();
    let dir = RunDir::new(root.path().join("rigl"));
    let (summary, mask) = train_sparse(&dir, &r, 1, &data, &mut ()).unwrap();
    let mask = mask.unwrap();
    // FLOPs: LeNet's kernels are applied once per example; a kernel of `kept` weights and `out`
    // units costs 2·kept + out. Six of the 30 steps (0, 4, …, 20) computed a dense gradient.
    let f = summary.flops.clone().unwrap();
    let cost = |kept: Vec<i64>| -> f64 {
        kept.iter()
            .zip([300, 100, 10])
            .map(|(&k, o)| (2 * k + o) as f64)
            .sum()
    };
    let f_s = cost(layers.iter().map(|l| l.kept).collect());
    let f_d = cost(vec![784 * 300, 300 * 100, 100 * 10]);
    assert_eq!((f.inference, f.dense_inference), (f_s, f_d));
    assert_eq!((f.steps, f.dense_gradient_steps), (30, 6));
    assert_eq!(
        f.training,
        50.0 * (24.0 * 3.0 * f_s + 6.0 * (2.0 * f_s + f_d))
    );
    assert_eq!(f.dense_training, 50.0 * 30.0 * 3.0 * f_d);
    let written: lth_train::RunSummary = dir.done_summary().unwrap().unwrap();
    assert_eq!(written.flops, Some(f));
    for l in &layers {
        let kept = mask.get(&l.name).unwrap().sum(Kind::Int64).int64_value(&[]);
        assert_eq!(kept, l.kept, "{}: the count moved", l.name);
    }
    for row in rows(&dir) {
        assert_eq!(row.dropped, row.grown, "{row:?}");
        assert!(
            row.reactivated <= row.grown && row.grown <= row.active,
            "{row:?}"
        );
        // ⌊f · active⌋ leave; some may rejoin at once, so at most that many are counted.
        assert!(row.dropped <= (row.drop_fraction * row.active as f64).floor() as i64);
    }
    // ERK gives the 784×300 input layer the highest sparsity and the 10-way output the lowest.
    assert!(layers[0].sparsity > layers[2].sparsity);

    let st = run(SparseMode::Static);
    let dir = RunDir::new(root.path().join("static"));
    let (summary, end) = train_sparse(&dir, &st, 1, &data, &mut ()).unwrap();
    let f = summary.flops.unwrap();
    assert_eq!(f.dense_gradient_steps, 0);
    assert!((f.training_relative - f_s / f_d).abs() < 1e-12);
    let start = lth_prune::distribution::random_mask(&layers, r.train.init_seed(1), Device::Cpu);
    for ((n, a), (_, b)) in start.iter().zip(end.unwrap().iter()) {
        assert!(a.equal(b), "static sparse training changed the mask of {n}");
    }
    assert!(rows(&dir).is_empty());
}

/// Runs after the rewiring hook: on update steps, the weights that just joined are zero and so
/// is their optimiser state; on other steps nothing changed the mask.
struct Inspect {
    before: Option<Mask>,
    checked: usize,
}

impl Hook for Inspect {
    fn name(&self) -> &str {
        "inspect"
    }

    fn after_backward(&mut self, t: u64, ctx: &mut StepContext<'_>) -> lth_train::Result<Update> {
        let now = ctx.optimizer.mask().unwrap().clone();
        if let Some(before) = &self.before {
            let weights = ctx.optimizer.weights();
            let state: lth_models::Named = ctx.optimizer.state().into_iter().collect();
            for (name, m) in now.iter() {
                let joined = m.logical_and(&before.get(name).unwrap().logical_not());
                let n = joined.sum(Kind::Int64).int64_value(&[]);
                if !t.is_multiple_of(4) || t > 22 {
                    assert_eq!(n, 0, "step {t}: {name} changed between updates");
                    continue;
                }
                let w = weights.get(name).unwrap();
                let zero = |x: &tch::Tensor| {
                    x.masked_select(&joined)
                        .abs()
                        .sum(Kind::Double)
                        .double_value(&[])
                        == 0.0
                };
                assert!(zero(w), "step {t}: grown weights of {name} are not zero");
                for b in ["exp_avg", "exp_avg_sq"] {
                    let s = state.get(&format!("optimizer.{name}.{b}")).unwrap();
                    assert!(
                        zero(s),
                        "step {t}: {b} of grown weights of {name} not reset"
                    );
                }
                self.checked += n as usize;
            }
        }
        self.before = Some(now);
        Ok(Update::Apply)
    }
}

#[test]
fn grown_weights_start_at_zero_with_their_optimizer_state_reset() {
    let root = tempfile::tempdir().unwrap();
    let data = data(root.path());
    let r = run(SparseMode::Rigl);
    let sp = r.sparse.clone().unwrap();
    let mut setup = Setup::new(&r.train, 1, &data).unwrap();
    let layers = sp
        .layer_sparsities(&setup.model.prunable_tensors())
        .unwrap();
    let mask = lth_prune::distribution::random_mask(&layers, 1, Device::Cpu);
    setup.optimizer.set_mask(&mask).unwrap();
    let plan = setup.plan(&r.train);
    let mut rewiring = Rewiring::new(&sp, &mask, 22, 1, None);
    let mut inspect = Inspect {
        before: None,
        checked: 0,
    };
    {
        let mut hooks = Hooks::new(vec![&mut rewiring, &mut inspect]).unwrap();
        let dir = RunDir::new(root.path().join("inspected"));
        run_resumable(&dir, &mut setup, &plan, &mut hooks, &mut ()).unwrap();
    }
    assert!(inspect.checked > 0, "no weight grew");
    assert!(!rewiring.rows().is_empty());
}
