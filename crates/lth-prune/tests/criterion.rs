//! The mask criteria of "Deconstructing Lottery Tickets" on weights small enough to rank by hand.
#![allow(clippy::unwrap_used)]

use lth_prune::{Criterion, Mask, PruningHparams, Strategy, magnitude_layerwise};
use tch::Tensor;

fn layer(name: &str, v: &[f32]) -> (String, Tensor) {
    (name.to_owned(), Tensor::from_slice(v))
}

/// Which positions survive halving a layer by `criterion` (layerwise, 50%).
fn kept(criterion: &str, wi: &[f32], wf: &[f32]) -> Vec<usize> {
    let hp = PruningHparams {
        strategy: Strategy::Layerwise,
        rate: 0.5,
        criterion: criterion.parse().unwrap(),
        ..Default::default()
    };
    let (first, last) = (vec![layer("w", wi)], vec![layer("w", wf)]);
    let m = hp
        .prune_from(&last, &first, &Mask::ones(&last), "none")
        .unwrap();
    let keep: Vec<bool> = Vec::try_from(m.get("w").unwrap()).unwrap();
    keep.iter()
        .enumerate()
        .filter(|(_, k)| **k)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn each_criterion_keeps_the_weights_its_score_ranks_highest() {
    // signs:        +     −     +     −        (w_i)
    //               +     +     −     −        (w_f): the same at 0 and 3
    let wi = [0.5, -0.2, 0.1, -0.4];
    let wf = [0.6, 0.3, -0.05, -0.1];
    for (criterion, expected) in [
        ("large_final", vec![0, 1]),           // |w_f| = .6 .3 .05 .1
        ("small_final", vec![2, 3]),           // the smallest |w_f|
        ("large_init", vec![0, 3]),            // |w_i| = .5 .2 .1 .4
        ("small_init", vec![1, 2]),            // the smallest |w_i|
        ("magnitude_increase", vec![0, 1]),    // |w_f| − |w_i| = .1 .1 −.05 −.3
        ("movement", vec![1, 3]),              // |w_f − w_i| = .1 .5 .15 .3
        ("large_final_same_sign", vec![0, 3]), // 1 and 2 changed sign
        ("large_final_diff_sign", vec![1, 2]),
        ("small_final_same_sign", vec![0, 3]), // demoted below even the largest −|w_f|
        ("movement_diff_sign", vec![1, 2]),
    ] {
        assert_eq!(kept(criterion, &wi, &wf), expected, "{criterion}");
    }
}

#[test]
fn large_final_is_imps_magnitude_pruning_and_the_others_need_the_starting_weights() {
    tch::manual_seed(3);
    let w = vec![
        (
            "a".to_owned(),
            Tensor::randn([20, 10], tch::kind::FLOAT_CPU),
        ),
        ("b".to_owned(), Tensor::randn([5, 20], tch::kind::FLOAT_CPU)),
    ];
    let hp = PruningHparams {
        strategy: Strategy::Layerwise,
        rate: 0.3,
        ..Default::default()
    };
    assert_eq!(hp.criterion, Criterion::LARGE_FINAL);
    let ours = hp.prune(&w, &Mask::ones(&w), "b").unwrap();
    let imp = magnitude_layerwise(&w, &Mask::ones(&w), |_, _| 0.3).unwrap();
    for (n, m) in imp.iter() {
        assert!(ours.get(n).unwrap().equal(m), "{n}");
    }
    let needs = PruningHparams {
        criterion: "magnitude_increase".parse().unwrap(),
        ..hp
    };
    let e = needs.prune(&w, &Mask::ones(&w), "b").unwrap_err();
    assert!(
        e.to_string()
            .contains("criterion magnitude_increase needs the starting weights of a"),
        "{e}"
    );
}

#[test]
fn sign_conditions_hold_across_layers_under_a_global_threshold() {
    // Layer a: large weights that all flipped sign; layer b: small ones that kept it. Keeping half
    // of all weights by large_final_same_sign keeps b whole before anything of a.
    let first = vec![
        layer("a", &[1.0, 1.0, 1.0, 1.0]),
        layer("b", &[0.1, 0.1, 0.1, 0.1]),
    ];
    let last = vec![
        layer("a", &[-2.0, -3.0, -4.0, -5.0]),
        layer("b", &[0.01, 0.02, 0.03, 0.04]),
    ];
    let hp = PruningHparams {
        strategy: Strategy::Global,
        rate: 0.5,
        criterion: "large_final_same_sign".parse().unwrap(),
        ..Default::default()
    };
    let m = hp
        .prune_from(&last, &first, &Mask::ones(&last), "none")
        .unwrap();
    assert_eq!(m.counts()[0].kept, 0);
    assert_eq!(m.counts()[1].kept, 4);
}

#[test]
fn every_name_parses_back_and_unknown_ones_are_listed() {
    let names = Criterion::names();
    assert_eq!(names.len(), 18);
    for n in &names {
        assert_eq!(n.parse::<Criterion>().unwrap().to_string(), *n);
    }
    assert_eq!(
        "magnitude-increase"
            .parse::<Criterion>()
            .unwrap()
            .to_string(),
        "magnitude_increase"
    );
    let e = "largest".parse::<Criterion>().unwrap_err();
    assert!(e.contains("unknown criterion `largest`") && e.contains("movement_diff_sign"));
    // Stored as its name, so a stored lottery reads back.
    let json = serde_json::to_string(&"movement_same_sign".parse::<Criterion>().unwrap()).unwrap();
    assert_eq!(json, "\"movement_same_sign\"");
}

#[test]
fn reshuffle_permutes_the_kept_values_within_each_layer_and_nothing_else() {
    tch::manual_seed(5);
    let w = vec![
        ("a".to_owned(), Tensor::randn([6, 8], tch::kind::FLOAT_CPU)),
        ("b".to_owned(), Tensor::randn([3, 6], tch::kind::FLOAT_CPU)),
    ];
    let mask = lth_prune::random_like(
        &lth_prune::select_layerwise(
            &lth_prune::score::random(&w, 2),
            &Mask::ones(&w),
            lth_prune::Keep::Largest,
            |_| lth_prune::Count::PruneFraction(0.5),
        )
        .unwrap(),
        1,
    );
    let out = lth_prune::reshuffle(&w, &mask, 7).unwrap();
    let again = lth_prune::reshuffle(&w, &mask, 7).unwrap();
    let other = lth_prune::reshuffle(&w, &mask, 8).unwrap();
    let sorted = |t: &Tensor| t.sort(0, false).0;
    for (((name, new), (_, same)), (_, diff)) in out.iter().zip(&again).zip(&other) {
        let (_, old) = w.iter().find(|(n, _)| n == name).unwrap();
        let keep = mask.get(name).unwrap();
        // The same seed, the same permutation; another seed, another one.
        assert!(new.equal(same), "{name}");
        assert!(!new.equal(diff), "{name}");
        // Kept positions hold the kept values in another order; pruned ones are untouched.
        assert!(!new.equal(old), "{name}");
        assert!(
            sorted(&new.masked_select(keep)).equal(&sorted(&old.masked_select(keep))),
            "{name}"
        );
        let pruned = keep.logical_not();
        assert!(
            new.masked_select(&pruned)
                .equal(&old.masked_select(&pruned)),
            "{name}"
        );
    }
}
