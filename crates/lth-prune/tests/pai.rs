//! Pruning at initialisation against values derived by hand, SynFlow's conservation law and
//! schedule, and the counting rules.
#![allow(clippy::unwrap_used)]

use lth_prune::{
    Count, Keep, Mask, Method, Network, PaiOptions, Plain, score, select_global, select_layerwise,
};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1e-3),
            "entry {i}: {x} vs {y} (tolerance {tol})"
        );
    }
}

#[test]
fn counting_rules_are_exact() {
    // SNIP keeps round(N(1−S)); RigL, GraSP and Synaptic-Flow keep N − ⌊S·N⌋ (= ⌈N(1−S)⌉).
    assert_eq!(Count::SparsityRound(0.18).kept(10, 10), 8);
    assert_eq!(Count::SparsityFloor(0.18).kept(10, 10), 9);
    assert_eq!(Count::SparsityRound(0.95).kept(266_200, 266_200), 13_310);
    assert_eq!(Count::SparsityFloor(0.95).kept(266_200, 266_200), 13_310);
    // 0.95 · 1000 is 950.0000000000001 in binary; the noise must not cost a weight.
    assert_eq!(Count::SparsityFloor(0.95).kept(1000, 1000), 50);
    assert_eq!(Count::SparsityRound(0.7).kept(1000, 1000), 300);
    // OpenLTH: remove ⌈p·r⌉ of the r remaining.
    assert_eq!(
        Count::PruneFraction(0.2).kept(300_000, 235_200),
        235_200 - 47_040
    );
    assert_eq!(Count::PruneFraction(0.25).kept(10, 5), 3);
    // A target below the current sparsity keeps what remains.
    assert_eq!(Count::SparsityFloor(0.1).kept(10, 5), 5);
}

#[test]
fn selection_keeps_either_end_with_ties_by_position() {
    let s = vec![
        ("a".to_owned(), Tensor::from_slice(&[3.0f64, 1.0, 1.0, 5.0])),
        ("b".to_owned(), Tensor::from_slice(&[1.0f64, 2.0])),
    ];
    let mask = Mask::ones(&s);
    let names = vec!["a".to_owned(), "b".to_owned()];
    let bits = |m: &Mask, n: &str| Vec::<bool>::try_from(m.get(n).unwrap()).unwrap();
    // Keep 4 of 6 largest: the three 1.0s compete for two removals; a's come first.
    let m = select_global(
        &s,
        &mask,
        &names,
        Keep::Largest,
        Count::SparsityFloor(2.0 / 6.0),
    )
    .unwrap();
    assert_eq!(bits(&m, "a"), [true, false, false, true]);
    assert_eq!(bits(&m, "b"), [true, true]);
    // Keep the 2 smallest: remove 5, 3, 2 and then the first 1.0 (a's first tie).
    let m = select_global(
        &s,
        &mask,
        &names,
        Keep::Smallest,
        Count::SparsityFloor(4.0 / 6.0),
    )
    .unwrap();
    assert_eq!(bits(&m, "a"), [false, false, true, false]);
    assert_eq!(bits(&m, "b"), [true, false]);
    // Per layer, each with its own rule; the pruned never come back.
    let m = select_layerwise(&s, &m, Keep::Largest, |n| {
        Count::SparsityFloor(if n == "a" { 0.0 } else { 0.5 })
    })
    .unwrap();
    assert_eq!(m.kept(), 2);
    let bad = vec![
        (
            "a".to_owned(),
            Tensor::from_slice(&[f64::NAN, 1.0, 1.0, 5.0]),
        ),
        ("b".to_owned(), s[1].1.shallow_clone()),
    ];
    let err = select_global(
        &bad,
        &mask,
        &names,
        Keep::Largest,
        Count::SparsityFloor(0.5),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("scores of `a` are not all finite"),
        "{err}"
    );
}

#[test]
fn synflow_schedule_follows_the_paper() {
    let d = |r| score::synflow_density(0.1, r, 100);
    assert!((d(1) - 0.97724).abs() < 5e-6, "{}", d(1));
    assert!((d(50) - 0.31623).abs() < 5e-6, "{}", d(50));
    assert!((d(100) - 0.1).abs() < 1e-12, "{}", d(100));
}

/// A bias-free ReLU MLP 6 → 5 → 4 → 3 with random signed weights, in float64.
fn mlp(vs: &nn::VarStore) -> nn::SequentialT {
    let no_bias = nn::LinearConfig {
        bias: false,
        ..Default::default()
    };
    nn::seq_t()
        .add(nn::linear(vs.root() / "l1", 6, 5, no_bias))
        .add_fn(|x| x.relu())
        .add(nn::linear(vs.root() / "l2", 5, 4, no_bias))
        .add_fn(|x| x.relu())
        .add(nn::linear(vs.root() / "l3", 4, 3, no_bias))
}

#[test]
fn synflow_conserves_the_flow_through_every_layer() {
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = mlp(&vs);
    let plain = Plain::new(&vs, |x, t| net.forward_t(x, t)).with_prunable(&[
        "l1.weight",
        "l2.weight",
        "l3.weight",
    ]);
    let before: Vec<Vec<f64>> = plain.variables().iter().map(|(_, t)| values(t)).collect();
    let mask = Mask::ones(&plain.prunable());
    let s = score::synflow(&plain, &mask, &[6]).unwrap();
    // R, computed directly: |W3| |W2| |W1| 1 (all entries non-negative, so ReLU is the identity).
    let w = |n: &str| plain.prunable().get(n).unwrap().abs().to_kind(Kind::Double);
    let r = w("l3.weight")
        .matmul(
            &w("l2.weight")
                .matmul(&w("l1.weight").matmul(&Tensor::ones([6, 1], (Kind::Double, Device::Cpu)))),
        )
        .sum(Kind::Double)
        .double_value(&[]);
    for (name, t) in s.iter() {
        let total = t.sum(Kind::Double).double_value(&[]);
        assert!((total - r).abs() <= 1e-12 * r, "{name}: {total} vs R = {r}");
    }
    // The network is left exactly as it was.
    let after: Vec<Vec<f64>> = plain.variables().iter().map(|(_, t)| values(t)).collect();
    assert_eq!(before, after);
    // A pruned weight scores zero and stays pruned through the rounds; counts are exact.
    let opts = PaiOptions {
        rounds: 10,
        ..PaiOptions::new(&[6], 0)
    };
    let m = Method::Synflow
        .prune(&plain, &mask, 0.5, None, &opts)
        .unwrap();
    assert_eq!(m.kept(), 62 - 31);
}

/// The network of the hand derivations: x (D) → h = W1 x → ReLU → z = W2 h (C), no biases, f64.
struct Tiny {
    w1: Vec<Vec<f64>>,
    w2: Vec<Vec<f64>>,
}

impl Tiny {
    /// ∂L/∂W1 and ∂L/∂W2 of the mean cross-entropy of logits z / t over the batch, by the chain
    /// rule written out: δ = (softmax(z/t) − onehot)/(t·B), ∂W2 = δ hᵀ, ∂W1 = (W2ᵀ δ ⊙ [h > 0]) xᵀ.
    fn grads(&self, xs: &[Vec<f64>], ys: &[usize], t: f64) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let (hn, dn, cn) = (self.w1.len(), self.w1[0].len(), self.w2.len());
        let mut g1 = vec![vec![0.0; dn]; hn];
        let mut g2 = vec![vec![0.0; hn]; cn];
        for (x, &y) in xs.iter().zip(ys) {
            let pre: Vec<f64> = (0..hn)
                .map(|i| (0..dn).map(|j| self.w1[i][j] * x[j]).sum())
                .collect();
            let h: Vec<f64> = pre.iter().map(|v| v.max(0.0)).collect();
            let z: Vec<f64> = (0..cn)
                .map(|k| (0..hn).map(|i| self.w2[k][i] * h[i]).sum::<f64>() / t)
                .collect();
            let zmax = z.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - zmax).exp()).collect();
            let sum: f64 = e.iter().sum();
            let delta: Vec<f64> = (0..cn)
                .map(|k| (e[k] / sum - if k == y { 1.0 } else { 0.0 }) / (t * xs.len() as f64))
                .collect();
            for k in 0..cn {
                for i in 0..hn {
                    g2[k][i] += delta[k] * h[i];
                }
            }
            for i in 0..hn {
                let back: f64 = (0..cn).map(|k| self.w2[k][i] * delta[k]).sum::<f64>()
                    * if pre[i] > 0.0 { 1.0 } else { 0.0 };
                for j in 0..dn {
                    g1[i][j] += back * x[j];
                }
            }
        }
        (g1, g2)
    }

    fn shifted(&self, d1: &[Vec<f64>], d2: &[Vec<f64>], eps: f64) -> Tiny {
        let add = |w: &[Vec<f64>], d: &[Vec<f64>]| -> Vec<Vec<f64>> {
            w.iter()
                .zip(d)
                .map(|(r, s)| r.iter().zip(s).map(|(a, b)| a + eps * b).collect())
                .collect()
        };
        Tiny {
            w1: add(&self.w1, d1),
            w2: add(&self.w2, d2),
        }
    }
}

fn flat(m: &[Vec<f64>]) -> Vec<f64> {
    m.iter().flatten().copied().collect()
}

fn tiny_setup() -> (Tiny, Vec<Vec<f64>>, Vec<usize>) {
    let tiny = Tiny {
        w1: vec![
            vec![0.5, -0.3, 0.8],
            vec![-0.6, 0.9, 0.1],
            vec![0.4, 0.2, -0.7],
            vec![0.3, 0.6, 0.5],
        ],
        w2: vec![vec![0.7, -0.4, 0.2, 0.9], vec![-0.5, 0.8, -0.3, 0.1]],
    };
    let xs = vec![
        vec![1.0, 0.5, -0.2],
        vec![-0.4, 1.2, 0.9],
        vec![0.3, -0.8, 0.6],
    ];
    (tiny, xs, vec![0, 1, 1])
}

/// The same network as a `tch` module, in float64.
fn tiny_net(tiny: &Tiny) -> (nn::VarStore, nn::SequentialT) {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let no_bias = nn::LinearConfig {
        bias: false,
        ..Default::default()
    };
    let net = nn::seq_t()
        .add(nn::linear(vs.root() / "fc1", 3, 4, no_bias))
        .add_fn(|x| x.relu())
        .add(nn::linear(vs.root() / "fc2", 4, 2, no_bias));
    vs.double();
    let to =
        |m: &[Vec<f64>]| Tensor::from_slice(&flat(m)).view([m.len() as i64, m[0].len() as i64]);
    tch::no_grad(|| {
        let vars = vs.variables();
        vars["fc1.weight"].shallow_clone().copy_(&to(&tiny.w1));
        vars["fc2.weight"].shallow_clone().copy_(&to(&tiny.w2));
    });
    (vs, net)
}

fn batch(xs: &[Vec<f64>], ys: &[usize]) -> (Tensor, Tensor) {
    (
        Tensor::from_slice(&flat(xs)).view([xs.len() as i64, xs[0].len() as i64]),
        Tensor::from_slice(&ys.iter().map(|&y| y as i64).collect::<Vec<_>>()),
    )
}

#[test]
fn snip_scores_match_the_hand_derivation() {
    let (tiny, xs, ys) = tiny_setup();
    let (vs, net) = tiny_net(&tiny);
    let plain =
        Plain::new(&vs, |x, t| net.forward_t(x, t)).with_prunable(&["fc1.weight", "fc2.weight"]);
    let (x, y) = batch(&xs, &ys);
    let s = score::snip(&plain, &Mask::ones(&plain.prunable()), &x, &y).unwrap();
    let (g1, g2) = tiny.grads(&xs, &ys, 1.0);
    let mut want: Vec<f64> = flat(&g1)
        .iter()
        .zip(flat(&tiny.w1))
        .map(|(g, w)| (g * w).abs())
        .collect();
    want.extend(
        flat(&g2)
            .iter()
            .zip(flat(&tiny.w2))
            .map(|(g, w)| (g * w).abs()),
    );
    let norm: f64 = want.iter().sum();
    want.iter_mut().for_each(|v| *v /= norm);
    let mut got = values(s.get("fc1.weight").unwrap());
    got.extend(values(s.get("fc2.weight").unwrap()));
    close(&got, &want, 1e-9);
    assert!((got.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn grasp_scores_match_the_hand_derivation() {
    let (tiny, xs, ys) = tiny_setup();
    let (vs, net) = tiny_net(&tiny);
    let plain =
        Plain::new(&vs, |x, t| net.forward_t(x, t)).with_prunable(&["fc1.weight", "fc2.weight"]);
    let (x, y) = batch(&xs, &ys);
    let t = 200.0;
    let s = score::grasp(&plain, &Mask::ones(&plain.prunable()), &x, &y, t).unwrap();
    // Hg by central differences of the hand-written gradient along g (exact up to O(ε²)).
    let (g1, g2) = tiny.grads(&xs, &ys, t);
    let eps = 1e-3;
    let (p1, p2) = tiny.shifted(&g1, &g2, eps).grads(&xs, &ys, t);
    let (m1, m2) = tiny.shifted(&g1, &g2, -eps).grads(&xs, &ys, t);
    let hg = |p: &[Vec<f64>], m: &[Vec<f64>]| -> Vec<f64> {
        flat(p)
            .iter()
            .zip(flat(m))
            .map(|(a, b)| (a - b) / (2.0 * eps))
            .collect()
    };
    let mut want: Vec<f64> = hg(&p1, &m1)
        .iter()
        .zip(flat(&tiny.w1))
        .map(|(h, w)| -w * h)
        .collect();
    want.extend(hg(&p2, &m2).iter().zip(flat(&tiny.w2)).map(|(h, w)| -w * h));
    let norm = want.iter().sum::<f64>().abs() + 1e-10;
    want.iter_mut().for_each(|v| *v /= norm);
    let mut got = values(s.get("fc1.weight").unwrap());
    got.extend(values(s.get("fc2.weight").unwrap()));
    close(&got, &want, 1e-5);
}

#[test]
fn methods_that_need_data_say_so_and_sparsity_is_checked() {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = mlp(&vs);
    let plain = Plain::new(&vs, |x, t| net.forward_t(x, t));
    let mask = Mask::ones(&plain.prunable());
    let opts = PaiOptions::new(&[6], 0);
    let err = Method::Snip
        .prune(&plain, &mask, 0.5, None, &opts)
        .unwrap_err();
    assert!(
        err.to_string().contains("snip scores with a batch of data"),
        "{err}"
    );
    let err = Method::Random
        .prune(&plain, &mask, 1.0, None, &opts)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("sparsity must be in [0, 1), got 1"),
        "{err}"
    );
    let m = Method::Random
        .prune(&plain, &mask, 0.5, None, &opts)
        .unwrap();
    assert_eq!(m.kept(), 62 - 31);
    assert_eq!("grasp".parse::<Method>().unwrap(), Method::Grasp);
    assert!("snipp".parse::<Method>().is_err());
}

#[test]
fn synflow_on_a_batchnorm_vgg_leaves_the_model_untouched() {
    let model =
        lth_models::Model::new("cifar_vgg_16", [3, 32, 32], 100, None, 3, Device::Cpu).unwrap();
    let before: Vec<(String, Tensor)> = model
        .state()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    let mask = Mask::ones(&model.prunable_tensors());
    let opts = PaiOptions {
        rounds: 3,
        ..PaiOptions::new(&[3, 32, 32], 0)
    };
    let m = Method::Synflow
        .prune(&model, &mask, 0.99, None, &opts)
        .unwrap();
    let n = model.num_prunable();
    assert_eq!(m.kept(), n - (0.99 * n as f64).floor() as i64);
    for ((name, a), (_, b)) in before.iter().zip(model.state()) {
        assert!(a.equal(&b), "{name} changed");
        assert_eq!(b.kind(), Kind::Float, "{name}");
    }
}
