//! Snapshot tests of what a reproduction prints and writes.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use lth_report::{
    Cell, Check, Expect, Finding, Margin, Measurement, RowResult, RowStatus, Source, Spec, Summary,
    assess, decide, plot_svg, render_skipped, render_table, render_verdicts, summary_line,
};

const SPEC: &str = r#"
title = "Figure 3: stability"
paper = "Frankle et al., Stabilizing the Lottery Ticket Hypothesis"
experiment = "stability"
columns = [
  { header = "Weights remaining", metric = "weights_remaining", format = "percent" },
  { header = "Data-order IMP", metric = "data_order_imp" },
  { header = "Data-order random", metric = "data_order_random" },
  { header = "Comp", metric = "comp_data_order", format = "ratio" },
  { header = "Acc IMP", metric = "accuracy_imp", format = "percent" },
]
plot = [{ title = "Data-order stability", metrics = ["data_order_imp", "data_order_random"], y_label = "L2 distance" }]
[scales.smoke]
description = "s"
replicates = 2
[scales.quick]
description = "q"
replicates = 5
samples = 2
[scales.paper]
description = "p"
replicates = 5
[[rows]]
id = "lenet"
label = "LeNet (MNIST)"
model = "lenet_300_100"
dataset = "mnist"
variants = ["fashion-mnist"]
level = 10
weights_remaining = 0.107
flags = { steps = "50000it" }
[[rows]]
id = "resnet20_low"
label = "ResNet-20 low"
model = "cifar_resnet_20"
dataset = "cifar10"
level = 8
weights_remaining = 0.167
flags = { steps = "30000it", lr = 0.01 }
"#;

fn cell(
    row: &str,
    dataset: &str,
    metric: &str,
    source: Source,
    scale: &str,
    check: &str,
    numbers: Option<(f64, f64, u64)>,
) -> Cell {
    Cell {
        row: row.into(),
        dataset: dataset.into(),
        metric: metric.into(),
        source,
        scale: scale.into(),
        device: if source == Source::Measured {
            "cpu".into()
        } else {
            String::new()
        },
        command: String::new(),
        mean: numbers.map(|n| n.0),
        spread: numbers.map(|n| n.1),
        n: numbers.map(|n| n.2),
        replicates: Vec::new(),
        check: check.parse::<Check>().unwrap(),
        alpha: 0.05,
        margin: (check == "equivalent").then_some(Margin::Relative(0.1)),
        expect: Expect::Holds,
        rationale: String::new(),
    }
}

/// The run's metrics, each replicate's value by number.
fn measured() -> BTreeMap<String, Measurement> {
    [
        ("weights_remaining", vec![0.1083]),
        ("data_order_imp", vec![3.32, 3.43, 3.37, 3.35, 3.40]),
        ("data_order_random", vec![7.1, 8.8, 8.1, 8.2, 8.3]),
        ("comp_data_order", vec![2.40]),
        ("accuracy_imp", vec![0.8835, 0.884, 0.883, 0.8838, 0.8832]),
    ]
    .into_iter()
    .map(|(k, v)| {
        let values = v
            .iter()
            .enumerate()
            .map(|(i, &x)| (i as u64 + 1, x))
            .collect();
        (k.to_owned(), Measurement::of(values))
    })
    .collect()
}

fn fixture() -> (Spec, Vec<RowResult>, Vec<Cell>) {
    let spec = Spec::parse(SPEC, Path::new("repro/fig3/spec.toml")).unwrap();
    let metrics: BTreeMap<String, Summary> = measured()
        .into_iter()
        .map(|(k, m)| (k, m.summary))
        .collect();
    let results = vec![
        RowResult {
            row: "lenet".into(),
            label: "LeNet (MNIST) · fashion-mnist variant".into(),
            dataset: "fashion-mnist".into(),
            variant_of: Some("mnist is absent: data/mnist lacks train-images-idx3-ubyte".into()),
            status: RowStatus::Ran { metrics },
        },
        RowResult {
            row: "resnet20_low".into(),
            label: "ResNet-20 low".into(),
            dataset: "cifar10".into(),
            variant_of: None,
            status: RowStatus::Skipped {
                reason: "dataset cifar10 is absent from data/cifar10 (see data/README.md)".into(),
            },
        },
    ];
    let cells = vec![
        cell(
            "lenet",
            "mnist",
            "data_order_imp",
            Source::Paper,
            "paper",
            "range",
            Some((20.7, 0.6, 18)),
        ),
        cell(
            "lenet",
            "mnist",
            "data_order_random",
            Source::Paper,
            "paper",
            "range",
            Some((58.6, 4.0, 18)),
        ),
        cell(
            "lenet",
            "mnist",
            "comp_data_order",
            Source::Paper,
            "paper",
            "none",
            Some((2.8, 0.0, 18)),
        ),
        cell(
            "lenet",
            "mnist",
            "accuracy_imp",
            Source::Paper,
            "paper",
            "range",
            Some((0.983, 0.001, 18)),
        ),
        cell(
            "lenet",
            "fashion-mnist",
            "data_order_imp",
            Source::Measured,
            "quick",
            "equivalent",
            Some((3.373, 0.044, 5)),
        ),
        cell(
            "lenet",
            "fashion-mnist",
            "data_order_random",
            Source::Measured,
            "quick",
            "equivalent",
            Some((8.101, 0.681, 5)),
        ),
        cell(
            "lenet",
            "fashion-mnist",
            "data_order_random",
            Source::Claim,
            "quick",
            "greater:data_order_imp",
            None,
        ),
        cell(
            "resnet20_low",
            "cifar10",
            "data_order_imp",
            Source::Paper,
            "paper",
            "range",
            Some((7.1, 1.2, 18)),
        ),
    ];
    (spec, results, cells)
}

#[test]
fn table_in_the_papers_layout() {
    let (spec, results, cells) = fixture();
    insta::assert_snapshot!(render_table(&spec, "quick", "cpu", &results, &cells, true));
}

#[test]
fn verdict_lines() {
    let (_, results, cells) = fixture();
    let metrics = measured();
    let verdicts = decide(
        cells
            .iter()
            .map(|c| {
                let finding = if c.row == "lenet" && c.dataset == "fashion-mnist" {
                    assess(c, &metrics)
                } else if c.row == "lenet" {
                    Finding::Skipped(
                        "ran on fashion-mnist, a labelled variant; these are the paper's MNIST \
                         numbers"
                            .into(),
                    )
                } else {
                    Finding::Skipped("dataset cifar10 is absent".into())
                };
                (c.clone(), finding)
            })
            .collect(),
    );
    insta::assert_snapshot!(format!(
        "{}{}{}",
        render_verdicts(&verdicts),
        render_skipped(&results, &verdicts),
        summary_line(
            "fig3",
            "quick",
            &verdicts,
            &["cifar10".into(), "mnist".into()]
        )
    ));
}

#[test]
fn the_plot_is_an_svg_with_a_bar_per_measured_metric() {
    let (spec, mut results, mut cells) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fig3.svg");
    plot_svg(&spec, &results, &cells, &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
    assert!(svg.contains("Data-order stability"));
    assert!(svg.contains("lenet (fashion-mnist)"));
    // Series are labelled with the table's headers, not metric ids.
    assert!(svg.contains("Data-order random"), "{svg}");
    assert!(!svg.contains("data_order_random"));
    // A variant is never marked with the paper's numbers; a row on the paper's dataset is.
    assert!(!svg.contains("the paper"));
    results[0].variant_of = None;
    results[0].dataset = "mnist".into();
    cells.retain(|c| c.dataset == "mnist");
    plot_svg(&spec, &results, &cells, &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.contains("the paper"), "{svg}");
}

#[test]
fn a_line_panel_draws_a_curve_against_weights_remaining() {
    let text = SPEC.replace(
        "plot = [{ title = \"Data-order stability\", metrics = [\"data_order_imp\", \"data_order_random\"], y_label = \"L2 distance\" }]",
        "plot = [{ title = \"Accuracy\", metrics = [\"accuracy_imp\"], y_label = \"Test accuracy\", kind = \"lines\", x = \"weights_remaining\", x_log = true }]",
    );
    let spec = Spec::parse(&text, Path::new("repro/curve/spec.toml")).unwrap();
    let point = |row: &str, w: f64, acc: f64| RowResult {
        row: row.into(),
        label: row.into(),
        dataset: "fashion-mnist".into(),
        variant_of: Some("mnist is absent".into()),
        status: RowStatus::Ran {
            metrics: [
                ("weights_remaining".to_owned(), Summary::of(&[w, w])),
                ("accuracy_imp".to_owned(), Summary::of(&[acc, acc + 0.002])),
            ]
            .into_iter()
            .collect(),
        },
    };
    let results = vec![
        point("l0", 1.0, 0.88),
        point("l7", 0.21, 0.89),
        point("l15", 0.036, 0.87),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curve.svg");
    plot_svg(&spec, &results, &[], &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(
        svg.contains("Weights remaining") && svg.contains("Acc IMP"),
        "{svg}"
    );
    assert!(svg.contains("<polyline"), "{svg}");
}

/// On a logarithmic axis a row at x = 0 (a rewind point k = 0) stays in the table and off the
/// line: the axis spans the other rows' x, not a fallback range.
#[test]
fn a_log_axis_leaves_out_rows_at_zero() {
    let text = SPEC.replace(
        "plot = [{ title = \"Data-order stability\", metrics = [\"data_order_imp\", \"data_order_random\"], y_label = \"L2 distance\" }]",
        "plot = [{ title = \"Accuracy\", metrics = [\"accuracy_imp\"], y_label = \"Test accuracy\", kind = \"lines\", x = \"data_order_imp\", x_log = true, x_label = \"Rewind iteration\" }]",
    );
    let spec = Spec::parse(&text, Path::new("repro/rewind/spec.toml")).unwrap();
    let point = |row: &str, k: f64, acc: f64| RowResult {
        row: row.into(),
        label: row.into(),
        dataset: "fashion-mnist".into(),
        variant_of: None,
        status: RowStatus::Ran {
            metrics: [
                ("data_order_imp".to_owned(), Summary::of(&[k, k])),
                ("accuracy_imp".to_owned(), Summary::of(&[acc, acc + 0.002])),
            ]
            .into_iter()
            .collect(),
        },
    };
    let svg_of = |results: &[RowResult]| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rewind.svg");
        plot_svg(&spec, results, &[], &path).unwrap();
        std::fs::read_to_string(&path).unwrap()
    };
    let with_zero = svg_of(&[
        point("k0", 0.0, 0.86),
        point("k20", 20.0, 0.87),
        point("k500", 500.0, 0.88),
    ]);
    let without = svg_of(&[point("k20", 20.0, 0.87), point("k500", 500.0, 0.88)]);
    assert!(with_zero.contains("<polyline"), "{with_zero}");
    // The horizontal axis's ticks (whole numbers; the vertical axis's are accuracies) are those
    // of the plot without the row at zero, not a fallback range's.
    let ticks = |svg: &str| -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let label = t.split_once('>')?.1.split_once("</text>")?.0.trim();
                label.parse::<u64>().is_ok().then(|| label.to_owned())
            })
            .collect()
    };
    assert!(ticks(&without).contains(&"100".to_owned()), "{without}");
    assert_eq!(ticks(&with_zero), ticks(&without), "{with_zero}");
}
