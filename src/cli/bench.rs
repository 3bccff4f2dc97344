//! `lth bench`: the training loop against a bare loop over pre-batched tensors, in one process.
//!
//! Both loops train the same model with the same optimiser for one epoch; the bare loop reads
//! batches that were gathered and normalised beforehand and does nothing else, the full loop is
//! what `lth train` runs (the on-device loader, loss accumulation, progress reporting). Runs
//! alternate so drift in the machine's speed hits both alike; medians are reported.

use std::time::Instant;

use anyhow::Context;
use clap::Args;

use lth_data::data_root;
use lth_train::speed::median;
use lth_train::{Data, Hooks, MetricsRow, Progress, Setup, Steps, resolve_device};

use super::DataArgs;
use super::TrainFlags;

/// Which benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// The training loop against a bare loop over pre-batched tensors (loop overhead).
    Loop,
    /// Training throughput of LeNet, ResNet-20 and VGG-16 on synthetic data, next to a PyTorch
    /// eager loop of the same networks and recipes run by `--python` in the same command.
    Models,
    /// RigL (mask updates every 100 steps) against static sparse training, ERK at 90%, on
    /// LeNet-300-100 and ResNet-20 (synthetic data): the cost of rewiring.
    Sparse,
    /// The narrow networks of Early-Bird channel pruning (p = 0.3, 0.5, 0.7 of a global |γ|
    /// threshold) against the dense one: parameters, FLOPs, and training and inference throughput
    /// measured in the same run (ResNet-20 and VGG-16, synthetic CIFAR-shaped data).
    EarlyBird,
    /// Learned supermasks (Bernoulli and edge-popup at k = 0.5) against dense training of the
    /// same model with the same optimiser (SGD, momentum 0.9, as both references train scores;
    /// LeNet-300-100 on MNIST-shaped, ResNet-20 on CIFAR-shaped synthetic data): the cost of a
    /// step that trains scores through a mask in the forward pass. On the CPU, LeNet's rows come
    /// twice: with the fused kernels runs use there, and with the chains of libtorch operations
    /// that CUDA runs.
    Supermask,
    /// N copies trained packed (one step of one packed network) against the same N trained as
    /// separate runs in the same process, N from --copies, LeNet-300-100 and ResNet-20 on
    /// synthetic data: copies × images per second and the ratio.
    Packed,
    /// A pruned LeNet's forward pass (inference) in compressed sparse rows against the dense
    /// network under its mask, at batch 1, 32 and 256, at the sparsity of each IMP level
    /// (hidden layers keep 0.8^L of their weights, the output layer 0.9^L): this module's own
    /// sparse kernel and libtorch's sparse CSR product, with a plot of the speed-up.
    SparseInference,
    /// SynFlow pruning at initialisation (float64, global, VGG-16 with BatchNorm at CIFAR-100
    /// shapes) against the same algorithm written plainly in PyTorch
    /// (`bench/synflow_pytorch.py`), run by `--python` in the same command.
    Synflow,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// loop (default), models, sparse, early-bird, supermask, packed, sparse-inference or
    /// synflow.
    #[arg(long, value_enum, default_value = "loop")]
    pub suite: Suite,
    /// Models suite: the models to time.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "lenet_300_100,cifar_resnet_20,cifar_vgg_16"
    )]
    pub models: Vec<String>,
    /// Models suite: timed steps per model (after --warmup untimed ones).
    #[arg(long, default_value_t = 200)]
    pub steps: u64,
    /// Models suite: untimed steps per model before the timed ones (allocator and cuDNN warm-up).
    #[arg(long, default_value_t = 20)]
    pub warmup: u64,
    /// Models suite: the Python that runs the PyTorch reference (needs torch).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Models and synflow suites: the reference script (default: pytorch_eager.py, or
    /// synflow_pytorch.py, beside the binary, else in bench/).
    #[arg(long)]
    pub pytorch_script: Option<std::path::PathBuf>,
    /// Models suite: channels-last layout, in both implementations.
    #[arg(long)]
    pub channels_last: bool,
    /// Models suite: bfloat16 autocast, in both implementations.
    #[arg(long)]
    pub bf16: bool,
    /// SynFlow suite: pruning rounds (the paper's 100).
    #[arg(long, default_value_t = 100)]
    pub rounds: u32,
    /// SynFlow suite: the final density (0.01: compression 100×).
    #[arg(long, default_value_t = 0.01)]
    pub density: f64,
    /// Sparse-inference suite: the SVG plot of the speed-up against sparsity.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "target/bench/sparse-inference.svg"
    )]
    pub plot: std::path::PathBuf,
    /// Loop suite: the model trained (on real data).
    #[arg(long, default_value = "lenet_300_100")]
    pub model: String,
    /// Loop suite: the dataset it trains on.
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: String,
    /// Examples per step, in every suite.
    #[arg(long, default_value_t = 128)]
    pub batch_size: u64,
    /// Packed suite: the numbers of copies N to time (1 is the plain network, the baseline).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16", value_name = "N,...",
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub copies: Vec<u64>,
    /// Timed epochs per loop (loop suite), or timed rounds (the other suites).
    #[arg(long, default_value_t = 9)]
    pub repeats: usize,
    /// Also time both loops with 80% of the prunable weights masked (the IMP case).
    #[arg(long)]
    pub masked: bool,
    /// Exit with failure when the ratio full / bare exceeds this.
    #[arg(long)]
    pub max_ratio: Option<f64>,
    /// cpu, cuda or cuda:N (auto: CUDA when libtorch sees a GPU).
    #[arg(long, default_value = "cpu")]
    pub device: lth_train::DeviceChoice,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Counts steps the way a progress bar would, so the full loop pays for reporting.
struct Counter(u64);

impl Progress for Counter {
    fn step(&mut self, step: u64) {
        self.0 = step;
    }
    fn row(&mut self, r: &MetricsRow) {
        self.0 = r.step;
    }
}

impl lth_train::Observer for Counter {
    fn on_step(&mut self, step: u64) {
        Progress::step(self, step);
    }
}

/// A hook that does nothing: what the loop costs a method on the steps where it does nothing.
struct Idle;

impl lth_train::Hook for Idle {
    fn name(&self) -> &str {
        "idle"
    }
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    match args.suite {
        Suite::Loop => loop_suite(args),
        Suite::Models => models_suite(args),
        Suite::Sparse => sparse_suite(args),
        Suite::EarlyBird => early_bird_suite(args),
        Suite::Supermask => supermask_suite(args),
        Suite::Packed => packed_suite(args),
        Suite::SparseInference => sparse_inference_suite(args),
        Suite::Synflow => synflow_suite(args),
    }
}

/// Microseconds per call of each of `fs`, medians over `rounds` rounds; within a round the
/// functions alternate, each called often enough to take about 20 ms.
fn time_alternating(fs: &mut [&mut dyn FnMut()], rounds: usize) -> Vec<f64> {
    let calls: Vec<u32> = fs
        .iter_mut()
        .map(|f| {
            f();
            let t = Instant::now();
            f();
            let once = t.elapsed().as_secs_f64().max(1e-7);
            ((0.02 / once).ceil() as u32).clamp(1, 10_000)
        })
        .collect();
    let mut times = vec![Vec::new(); fs.len()];
    for _ in 0..rounds {
        for ((f, &n), out) in fs.iter_mut().zip(&calls).zip(&mut times) {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            out.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
    }
    times.iter_mut().map(|v| median(v)).collect()
}

/// The sparsity at which `ratio` (by increasing sparsity) first reaches 1, interpolated
/// linearly between the points around it.
fn crossover(points: &[(f64, f64)]) -> Option<f64> {
    if points.first()?.1 >= 1.0 {
        return Some(points[0].0);
    }
    points.windows(2).find_map(|w| {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        (y0 < 1.0 && y1 >= 1.0).then(|| x0 + (1.0 - y0) * (x1 - x0) / (y1 - y0))
    })
}

/// A pruned LeNet's forward pass: CSR kernels against the dense network under its mask.
fn sparse_inference_suite(args: &BenchArgs) -> anyhow::Result<()> {
    use lth_models::sparse::{SparseKernel, SparseMlp};
    use tch::{Device, Kind, Tensor};

    if lth_models::lenet::parse(&args.model).is_none() {
        anyhow::bail!(
            "--model {}: the sparse-inference suite times the LeNet family (lenet_300_100, \
             lenet_<w>_<w>…), whose layers are all fully connected",
            args.model
        );
    }
    let model_name = args.model.clone();
    let levels = [0u32, 2, 4, 6, 8, 10, 12, 13, 14, 16, 18, 20];
    let batches = [1i64, 32, 256];
    println!(
        "lth bench --suite sparse-inference: {model_name} under IMP's layerwise masks (hidden \
         layers keep 0.8^L of their weights, the output layer 0.9^L), cpu, {} libtorch threads; \
         forward pass (inference) in µs per batch, medians of {}",
        tch::get_num_threads(),
        lth_report::count(args.repeats, "round"),
    );
    println!(
        "  {:>5} {:>8} {:>5} {:>10} {:>10} {:>10} {:>8}",
        "level", "sparsity", "batch", "dense", "own CSR", "torch CSR", "speed-up"
    );
    let mut curves: Vec<Vec<(f64, f64)>> = vec![Vec::new(); batches.len()];
    let mut at95: Option<(f64, Vec<f64>)> = None;
    for &level in &levels {
        let model = lth_models::Model::new(&model_name, [1, 28, 28], 10, None, 1, Device::Cpu)?;
        tch::manual_seed(i64::from(level));
        tch::no_grad(|| {
            for (name, t) in model.prunable_tensors() {
                let keep = if name == model.output_layer() {
                    0.9f64
                } else {
                    0.8
                }
                .powi(level as i32);
                let mask = Tensor::rand(t.size(), (Kind::Float, Device::Cpu)).lt(keep);
                let _ = t.shallow_clone().g_mul_(&mask.to_kind(Kind::Float));
            }
        });
        let sparse = SparseMlp::from_named(&model_name, &model.state())?;
        let sparsity = 1.0 - sparse.nnz() as f64 / sparse.total() as f64;
        let mut speedups = Vec::new();
        for (bi, &batch) in batches.iter().enumerate() {
            let x = Tensor::randn([batch, 1, 28, 28], (Kind::Float, Device::Cpu));
            let dense = tch::no_grad(|| model.forward_t(&x, false));
            let check = sparse.forward(&x, SparseKernel::Own)?;
            let bound =
                lth_models::rounding::Reductions::of(&model, batch as usize, 10).forward_bound();
            let diff = lth_models::rounding::relative(&check, &dense, 1e-3);
            anyhow::ensure!(
                diff <= bound,
                "the sparse forward differs from the dense one by {diff:e} of its scale (bound {bound:e})"
            );
            let t = time_alternating(
                &mut [
                    &mut || {
                        let _ = tch::no_grad(|| model.forward_t(&x, false));
                    },
                    &mut || {
                        let _ = sparse.forward(&x, SparseKernel::Own);
                    },
                    &mut || {
                        let _ = sparse.forward(&x, SparseKernel::Torch);
                    },
                ],
                args.repeats,
            );
            let best = t[1].min(t[2]);
            let speedup = t[0] / best;
            speedups.push(speedup);
            curves[bi].push((100.0 * sparsity, speedup));
            println!(
                "  {level:>5} {:>7.2}% {batch:>5} {:>10.1} {:>10.1} {:>10.1} {speedup:>7.2}×",
                100.0 * sparsity,
                t[0],
                t[1],
                t[2]
            );
        }
        if at95
            .as_ref()
            .is_none_or(|(s, _)| (sparsity - 0.95).abs() < (s - 0.95).abs())
        {
            at95 = Some((sparsity, speedups));
        }
    }
    for (curve, batch) in curves.iter().zip(batches) {
        match crossover(curve) {
            Some(x) => println!("batch {batch}: sparse is faster than dense from {x:.1}% sparsity"),
            None => println!("batch {batch}: sparse is never faster than dense here"),
        }
    }
    if let Some((s, sp)) = at95 {
        let verdict = |ok: bool| if ok { "met" } else { "not met" };
        println!(
            "targets at the level nearest 95% ({:.1}%): batch 1 at least 3× dense: {:.2}×, {}; \
             batch 256 no slower than dense: {:.2}×, {}",
            100.0 * s,
            sp[0],
            verdict(sp[0] >= 3.0),
            sp[2],
            verdict(sp[2] >= 1.0)
        );
    }
    if let Some(dir) = args.plot.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "--plot {}: cannot create {}",
                args.plot.display(),
                dir.display()
            )
        })?;
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = batches
        .iter()
        .zip(curves)
        .map(|(b, c)| {
            let from =
                crossover(&c).map_or("never faster".into(), |x| format!("faster from {x:.0}%"));
            (format!("batch {b} ({from})"), c)
        })
        .collect();
    lth_report::lines_svg(
        &args.plot,
        &format!("{model_name}: sparse forward (best CSR kernel) against dense under a mask"),
        "sparsity (%)",
        "speed-up over dense (×)",
        &series,
        Some(1.0),
    )?;
    println!("plot: {}", args.plot.display());
    Ok(())
}

/// N copies packed against N separate runs of the same model, in the same process.
fn packed_suite(args: &BenchArgs) -> anyhow::Result<()> {
    let device = resolve_device(args.device)?;
    let on = super::on_device(device);
    println!(
        "lth bench --suite packed: batch {}, {}, {on}; \
         throughput in copies × images per second, medians; the ratio is the median of paired \
         rounds",
        args.batch_size,
        lth_report::count(args.repeats, "round"),
    );
    // A ResNet-20 step costs about 40 LeNet steps: it gets a tenth of the steps per round.
    for (model, dataset, steps) in [
        ("lenet_300_100", "mnist", args.steps),
        ("cifar_resnet_20", "cifar10", (args.steps / 10).max(1)),
    ] {
        let info = lth_data::info(dataset)?;
        let mut hp = lth_train::TrainHparams::recipe(model)?;
        hp.dataset.batch_size = args.batch_size;
        let title = format!(
            "  {model} ({} per copy per round):",
            lth_report::count(steps, "step")
        );
        println!(
            "{title} {:>3} {:>14} {:>14} {:>7}",
            "N", "separate", "packed", "ratio"
        );
        // The numbers stand under their headings.
        let w = title.len() - 2;
        for &copies in &args.copies {
            let copies = copies as usize;
            if copies == 1 {
                // One copy is not packed: the plain network is the baseline.
                let speeds = lth_train::speed::compare(
                    &hp,
                    &[model.to_owned()],
                    info,
                    device,
                    steps,
                    args.repeats,
                )?;
                println!(
                    "  {:>w$} {copies:>3} {:>14.0} {:>14} {:>7}",
                    "", speeds[0].0.train, "(plain)", "1.00×"
                );
                continue;
            }
            let (separate, packed, ratio) = lth_train::speed::packed_against_separate(
                &hp,
                info,
                device,
                copies,
                steps,
                args.repeats,
            )?;
            println!(
                "  {:>w$} {copies:>3} {separate:>14.0} {packed:>14.0} {ratio:>6.2}×",
                ""
            );
        }
    }
    println!("target on a GPU: at least 4× the separate runs' throughput at N = 8 for ResNet-20");
    Ok(())
}

/// Learned-supermask steps against dense steps of the same model, in the same process.
fn supermask_suite(args: &BenchArgs) -> anyhow::Result<()> {
    use lth_train::speed::{Net, compare_nets};
    use lth_train::{SupermaskHparams, SupermaskMethod};
    let device = resolve_device(args.device)?;
    let on = super::on_device(device);
    println!(
        "lth bench --suite supermask: batch {}, {} per round, {}, {on}; step-cost ratios are \
         medians of paired rounds",
        args.batch_size,
        lth_report::count(args.steps, "timed LeNet step"),
        lth_report::count(args.repeats, "round"),
    );
    let mut worst: f64 = 0.0;
    // A ResNet-20 step costs about 40 LeNet steps: it gets a tenth of the steps per round.
    for (model, dataset, steps) in [
        ("lenet_300_100", "mnist", args.steps),
        ("cifar_resnet_20", "cifar10", (args.steps / 10).max(5)),
    ] {
        let info = lth_data::info(dataset)?;
        let mut hp = lth_train::TrainHparams::recipe(model)?;
        hp.dataset.batch_size = args.batch_size;
        // Both references train their scores with SGD and momentum 0.9; the dense steps use the
        // same optimiser, so the ratio is the mask's cost alone.
        hp.training.optimizer = lth_train::OptimizerKind::Sgd;
        hp.training.momentum = 0.9;
        // On the CPU each method runs twice: with the fused kernels (its default there) and with
        // the chains of libtorch operations that CUDA runs, so the kernels' gain is measured in
        // the same rounds. LeNet only: a ResNet-20 step is dominated by its convolutions.
        let cpu = device == tch::Device::Cpu;
        let mut nets = vec![(
            "dense".to_owned(),
            Net {
                model: model.to_owned(),
                supermask: None,
                fused: false,
            },
        )];
        for method in [SupermaskMethod::Bernoulli, SupermaskMethod::EdgePopup] {
            let variants: &[bool] = match (cpu, model) {
                (true, "lenet_300_100") => &[true, false],
                (true, _) => &[true],
                (false, _) => &[false],
            };
            for &fused in variants {
                let name = match (cpu, fused) {
                    (true, true) => format!("{method} (fused)"),
                    (true, false) => format!("{method} (chained)"),
                    (false, _) => method.to_string(),
                };
                nets.push((
                    name,
                    Net {
                        model: model.to_owned(),
                        supermask: Some(SupermaskHparams::new(method)),
                        fused,
                    },
                ));
            }
        }
        let list: Vec<Net> = nets.iter().map(|(_, n)| n.clone()).collect();
        let speeds = compare_nets(&hp, &list, info, device, steps, args.repeats)?;
        println!(
            "  {model} ({steps} steps per round): {:>20} {:>10} {:>15}",
            "", "train i/s", "cost vs dense"
        );
        for ((name, net), (speed, ratio)) in nets.iter().zip(&speeds) {
            let cost = 1.0 / ratio.train;
            // The target is for what a run uses: the fused kernels on the CPU.
            if net.supermask.is_some() && (net.fused || !cpu) {
                worst = worst.max(cost);
            }
            println!(
                "  {:>w$}  {name:>20} {:>10.0} {:>14.2}×",
                "",
                speed.train,
                cost,
                w = model.len() + 24
            );
        }
    }
    println!(
        "target: a learned-supermask step costs at most 1.3× a dense step; worst here {worst:.2}×"
    );
    if let Some(max) = args.max_ratio
        && worst > max
    {
        anyhow::bail!("a supermask step cost {worst:.2}× a dense one, over --max-ratio {max}");
    }
    Ok(())
}

/// The narrow networks of Early-Bird channel pruning against their dense network.
fn early_bird_suite(args: &BenchArgs) -> anyhow::Result<()> {
    let device = resolve_device(args.device)?;
    let on = super::on_device(device);
    println!(
        "lth bench --suite early-bird: channel masks at p = 0.3, 0.5, 0.7 (a global threshold on \
         the initial |γ|), batch {}, {} per round, {}, {on}; speed-ups are medians of paired \
         rounds",
        args.batch_size,
        lth_report::count(args.steps, "timed step"),
        lth_report::count(args.repeats, "round"),
    );
    let info = lth_data::info("cifar10")?;
    for model in ["cifar_resnet_20", "cifar_vgg_16"] {
        let mut hp = lth_train::TrainHparams::recipe(model)?;
        hp.dataset.batch_size = args.batch_size;
        let dense = lth_models::Model::new(model, info.shape, 10, None, 1, tch::Device::Cpu)?;
        let mut names = vec![model.to_owned()];
        let mut rows = vec![(
            1.0,
            dense.num_parameters(),
            lth_prune::flops::network(&dense),
        )];
        for p in [0.3, 0.5, 0.7] {
            let mask = lth_prune::channels::channel_mask(&dense, p)?;
            let narrow = lth_prune::channels::narrow(&dense, info.shape, &mask)?;
            names.push(narrow.name().to_owned());
            rows.push((
                mask.density(),
                narrow.num_parameters(),
                lth_prune::flops::network(&narrow),
            ));
        }
        let speeds =
            lth_train::speed::compare(&hp, &names, info, device, args.steps, args.repeats)?;
        println!(
            "  {model}: {:>6} {:>8} {:>11} {:>7} {:>10} {:>8} {:>10} {:>8}",
            "p",
            "channels",
            "parameters",
            "FLOPs",
            "train i/s",
            "speed-up",
            "infer i/s",
            "speed-up"
        );
        for (k, ((kept, params, flops), (speed, ratio))) in rows.iter().zip(&speeds).enumerate() {
            let p = if k == 0 {
                "dense".to_owned()
            } else {
                format!("{:.1}", [0.3, 0.5, 0.7][k - 1])
            };
            println!(
                "  {:>w$} {p:>6} {:>7.1}% {params:>11} {:>6.2}× {:>10.0} {:>7.2}× {:>10.0} {:>7.2}×",
                "",
                100.0 * kept,
                rows[0].2 / flops,
                speed.train,
                ratio.train,
                speed.infer,
                ratio.infer,
                w = model.len()
            );
        }
    }
    println!(
        "target: the narrow network at p = 0.5 trains at least 1.5× faster than the dense one"
    );
    Ok(())
}

/// `steps` steps of `lth train`'s loop over `setup` (the loader, the reporting, and `hook` if
/// any), in seconds, synchronised with the device by `sync`. Every suite that times the loop
/// times it here.
fn time_steps(
    setup: &mut Setup,
    steps: u64,
    hook: Option<&mut dyn lth_train::Hook>,
    sync: &dyn Fn(),
) -> anyhow::Result<f64> {
    let mut hooks = match hook {
        Some(h) => Hooks::new(vec![h])?,
        None => Hooks::none(),
    };
    let mut session = setup.session();
    let t = Instant::now();
    session.train(0, steps, 0, &[], &mut hooks, &mut Counter(0))?;
    sync();
    Ok(t.elapsed().as_secs_f64())
}

/// One epoch of the loop over `setup`, with or without a hook that does nothing (what the loop
/// costs a method on the steps where it does nothing).
fn time_epoch(
    setup: &mut Setup,
    steps: u64,
    with_hook: bool,
    sync: &dyn Fn(),
) -> anyhow::Result<f64> {
    let mut idle = Idle;
    time_steps(setup, steps, with_hook.then_some(&mut idle as _), sync)
}

fn loop_suite(args: &BenchArgs) -> anyhow::Result<()> {
    let device = resolve_device(args.device)?;
    let on = super::on_device(device);
    let mut hp = TrainFlags {
        model: Some(args.model.clone()),
        dataset: Some(args.dataset.clone()),
        batch_size: Some(args.batch_size),
        validation: Some(0),
        ..Default::default()
    }
    .resolve()?;
    hp.training.steps = Steps::ep(1);
    let data = Data::load(
        &hp.dataset,
        &data_root(args.data.data_dir.as_deref()),
        device,
    )
    .context("the benchmark trains on real data")?;
    let mut setup = Setup::new(&hp, 1, &data)?;
    let spe = setup.loader.steps_per_epoch();
    println!(
        "lth bench: {} on {}, batch {}, {} steps per epoch, {on}, {} at lr {}",
        hp.model.model,
        hp.dataset.dataset,
        hp.dataset.batch_size,
        spe,
        super::optimizer_word(hp.training.optimizer),
        hp.training.lr
    );
    let mut cases = vec![false];
    if args.masked {
        cases.push(true);
    }
    let mut worst: f64 = 0.0;
    for masked in cases {
        if masked {
            let masks: Vec<(String, tch::Tensor)> = setup
                .model
                .prunable_tensors()
                .into_iter()
                .map(|(n, t)| (n, t.rand_like().ge(0.8)))
                .collect();
            setup
                .optimizer
                .set_mask(&lth_prune::Mask::from_named(masks)?)?;
        }
        let batches: Vec<_> = (0..spe)
            .map(|s| setup.loader.batch(s))
            .collect::<Result<_, _>>()?;
        let sync = || lth_train::speed::sync_device(device);
        let mut full = Vec::new();
        let mut hooked = Vec::new();
        let mut bare = Vec::new();
        // On the CPU the optimiser's step is one fused pass; the same loop with the chain of
        // libtorch operations it replaces (the same bits) times what the fusion saves.
        let fusable = setup.optimizer.set_fused(true).is_ok();
        let mut chained = Vec::new();
        let mut fused_ratio = Vec::new();
        // One untimed epoch of each warms caches and allocators. The two full loops alternate
        // which runs first, and their ratio is taken within a round (paired), so drift in the
        // machine's speed (a shared host, frequency changes) cancels rather than biasing one side.
        let mut paired = Vec::new();
        for round in 0..=args.repeats {
            let (f, h) = if round % 2 == 0 {
                let f = time_epoch(&mut setup, spe, false, &sync)?;
                (f, time_epoch(&mut setup, spe, true, &sync)?)
            } else {
                let h = time_epoch(&mut setup, spe, true, &sync)?;
                (time_epoch(&mut setup, spe, false, &sync)?, h)
            };
            if fusable {
                setup.optimizer.set_fused(false)?;
                let c = time_epoch(&mut setup, spe, false, &sync);
                setup.optimizer.set_fused(true)?;
                let c = c?;
                if round > 0 {
                    chained.push(c);
                    fused_ratio.push(c / f);
                }
            }

            let t = Instant::now();
            let mut last = None;
            for (step, b) in batches.iter().enumerate() {
                let logits = setup.model.forward_t(&b.x, true);
                let loss = logits.cross_entropy_for_logits(&b.y);
                setup.optimizer.zero_grad();
                loss.backward();
                setup.optimizer.step(setup.schedule.lr_at(step as u64));
                last = Some(loss);
            }
            if let Some(l) = last {
                let _ = l.double_value(&[]);
            }
            sync();
            let b = t.elapsed().as_secs_f64();
            if round > 0 {
                full.push(f);
                hooked.push(h);
                paired.push(h / f);
                bare.push(b);
            }
        }
        let mut pairs = paired.clone();
        let (mf, mh, mb) = (median(&mut full), median(&mut hooked), median(&mut bare));
        let mp = median(&mut pairs);
        let label = if masked { "masked 80%" } else { "dense" };
        println!("  {label}:");
        println!("    bare loop (pre-batched tensors)  {mb:8.3} s/epoch   runs {bare:.3?}");
        println!("    full loop (loader, reporting)    {mf:8.3} s/epoch   runs {full:.3?}");
        println!("    full loop with an idle hook      {mh:8.3} s/epoch   runs {hooked:.3?}");
        println!(
            "    ratio full / bare                {:8.3}   (target ≤ 1.10)",
            mf / mb
        );
        println!(
            "    ratio idle hook / no hook        {mp:8.3}   (target within 0.98-1.02; median of the paired ratios {paired:.3?})"
        );
        if fusable {
            let mc = median(&mut chained);
            println!("    full loop, chained optimiser     {mc:8.3} s/epoch   runs {chained:.3?}");
            println!(
                "    speed-up of the fused step       {:8.3}   (chained / fused epoch, median of the paired ratios {fused_ratio:.3?})",
                median(&mut fused_ratio.clone())
            );
        }
        worst = worst.max(mf / mb);
    }
    if let Some(max) = args.max_ratio
        && worst > max
    {
        anyhow::bail!("ratio {worst:.3} exceeds --max-ratio {max}");
    }
    Ok(())
}

/// The reference script: `--pytorch-script`, else `default` beside the binary, else in bench/.
fn reference_script(args: &BenchArgs, default: &str) -> std::path::PathBuf {
    match &args.pytorch_script {
        Some(p) => p.clone(),
        None => {
            let beside = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(|d| d.join(default)));
            beside
                .filter(|p| p.is_file())
                .unwrap_or_else(|| std::path::Path::new("bench").join(default))
        }
    }
}

/// Runs a PyTorch reference script (`--pytorch-script`, else `default` beside the binary, else in
/// bench/) with `script_args` and returns the JSON line it prints last, or why it could not.
fn run_reference(
    args: &BenchArgs,
    default: &str,
    script_args: &[String],
) -> Result<serde_json::Value, String> {
    let script = reference_script(args, default);
    let out = std::process::Command::new(&args.python)
        .arg(&script)
        .args(script_args)
        .output()
        .map_err(|e| format!("cannot run {} {}: {e}", args.python, script.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{} failed: {}",
            script.display(),
            err.lines().last().unwrap_or_default()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("no JSON line")?;
    serde_json::from_str(line).map_err(|e| e.to_string())
}

/// The PyTorch eager reference of one model (`pytorch_eager.py --serve`), warmed up and waiting:
/// each [`Reference::round`] times one round of `--steps` steps in it.
struct Reference {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    script: std::path::PathBuf,
}

impl Reference {
    fn start(args: &BenchArgs, model: &str, device: tch::Device) -> Result<Reference, String> {
        let dev = if device.is_cuda() { "cuda" } else { "cpu" };
        let mut script_args: Vec<String> = [
            "--model",
            model,
            "--device",
            dev,
            "--steps",
            &args.steps.to_string(),
            "--warmup",
            &args.warmup.to_string(),
            "--batch-size",
            &args.batch_size.to_string(),
            "--serve",
        ]
        .map(str::to_owned)
        .to_vec();
        if args.channels_last {
            script_args.push("--channels-last".into());
        }
        if args.bf16 {
            script_args.push("--bf16".into());
        }
        let script = reference_script(args, "pytorch_eager.py");
        let mut child = std::process::Command::new(&args.python)
            .arg(&script)
            .args(&script_args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {} {}: {e}", args.python, script.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("no pipes to the reference".into());
        };
        let mut r = Reference {
            child,
            stdin,
            stdout: std::io::BufReader::new(stdout),
            script,
        };
        r.line()?;
        Ok(r)
    }

    /// The next JSON line the reference prints, or why there is none (its last error line).
    fn line(&mut self) -> Result<serde_json::Value, String> {
        use std::io::{BufRead, Read};
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .stdout
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            if n == 0 {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!(
                    "{} failed: {}",
                    self.script.display(),
                    err.lines().last().unwrap_or("it exited without a result")
                ));
            }
            if line.starts_with('{') {
                return serde_json::from_str(&line).map_err(|e| e.to_string());
            }
        }
    }

    /// Images per second over one round.
    fn round(&mut self) -> Result<f64, String> {
        use std::io::Write;
        writeln!(self.stdin).map_err(|e| format!("the reference stopped: {e}"))?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        self.line()?["images_per_second"]
            .as_f64()
            .ok_or_else(|| "no images_per_second".into())
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        // The reference waits on stdin between rounds; it has nothing left to do.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SynFlow on VGG-16 (CIFAR-100 shapes) against the same algorithm written plainly in PyTorch.
fn synflow_suite(args: &BenchArgs) -> anyhow::Result<()> {
    use lth_prune::{Mask, Method, PaiOptions};

    let device = resolve_device(args.device)?;
    anyhow::ensure!(
        args.density > 0.0 && args.density < 1.0,
        "--density {}: expected a density in (0, 1)",
        args.density
    );
    anyhow::ensure!(
        args.rounds >= 1,
        "--rounds 0: SynFlow needs at least one round"
    );
    let on = super::on_device(device);
    println!(
        "lth bench --suite synflow: cifar_vgg_16 at CIFAR-100 shapes, {} to density {} \
         (float64, global), {on}; seconds for all rounds, lth against plain PyTorch",
        lth_report::count(args.rounds, "round"),
        args.density
    );
    let model = lth_models::Model::new("cifar_vgg_16", [3, 32, 32], 100, None, 0, device)?;
    let mut opts = PaiOptions::new(&[3, 32, 32], 0);
    opts.rounds = args.rounds;
    let mask = Mask::ones(&model.prunable_tensors());
    let sync = || lth_train::speed::sync_device(device);
    sync();
    let start = Instant::now();
    let pruned = Method::Synflow.prune(&model, &mask, 1.0 - args.density, None, &opts)?;
    sync();
    let ours = start.elapsed().as_secs_f64();
    let dev = if device.is_cuda() { "cuda" } else { "cpu" };
    let script_args: Vec<String> = [
        "--rounds".to_owned(),
        args.rounds.to_string(),
        "--density".into(),
        args.density.to_string(),
        "--device".into(),
        dev.into(),
        "--threads".into(),
        tch::get_num_threads().to_string(),
    ]
    .to_vec();
    println!(
        "  lth        {ours:9.2} s   {} of {} weights kept",
        pruned.kept(),
        pruned.total()
    );
    match run_reference(args, "synflow_pytorch.py", &script_args) {
        Ok(v) => {
            let theirs = v["seconds"].as_f64().unwrap_or(f64::NAN);
            println!(
                "  PyTorch    {theirs:9.2} s   {} of {} weights kept",
                v["kept"], v["total"]
            );
            println!(
                "  ratio lth / PyTorch {:.2} (target at most 1.2)",
                ours / theirs
            );
        }
        Err(why) => println!("  PyTorch    not run: {why}"),
    }
    Ok(())
}

fn models_suite(args: &BenchArgs) -> anyhow::Result<()> {
    let device = resolve_device(args.device)?;
    let on = super::on_device(device);
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let rounds = args.repeats.max(1);
    println!(
        "lth bench --suite models: batch {}, {rounds} rounds of {} timed steps after {} warm-up \
         steps, {}{}{}; throughput medians, the ratio the median of paired rounds (the order \
         alternates)",
        args.batch_size,
        args.steps,
        args.warmup,
        on,
        if args.channels_last {
            ", channels-last"
        } else {
            ""
        },
        if args.bf16 { ", bf16 autocast" } else { "" },
    );
    println!(
        "{:<18} {:>14} {:>16} {:>8}",
        "model", "lth img/s", "PyTorch img/s", "ratio"
    );
    for model in &args.models {
        let mut hp = lth_train::TrainHparams::recipe(model)?;
        let info = lth_data::info(if model.starts_with("lenet_") {
            "mnist"
        } else {
            "cifar10"
        })?;
        hp.dataset.batch_size = args.batch_size;
        hp.dataset.validation = 0;
        hp.training.steps = Steps::it(args.warmup + args.steps * rounds as u64);
        if args.bf16 {
            hp.training.precision = lth_train::Precision::Bf16;
        }
        let data = lth_train::speed::synthetic(info, device, args.channels_last, args.batch_size)?;
        let mut setup = Setup::new(&hp, 1, &data)?;
        let sync = || lth_train::speed::sync_device(device);
        let mut session = setup.session();
        session.train(0, args.warmup, 0, &[], &mut Hooks::none(), &mut ())?;
        sync();
        let mut from = args.warmup;
        let mut ours_round = || -> anyhow::Result<f64> {
            let t = Instant::now();
            session.train(from, from + args.steps, 0, &[], &mut Hooks::none(), &mut ())?;
            sync();
            from += args.steps;
            Ok((args.steps * args.batch_size) as f64 / t.elapsed().as_secs_f64())
        };
        let mut reference = match Reference::start(args, model, device) {
            Ok(r) => Some(r),
            Err(why) => {
                let mut ours: Vec<f64> = (0..rounds)
                    .map(|_| ours_round())
                    .collect::<anyhow::Result<_>>()?;
                println!(
                    "{model:<18} {:>14.0} {:>16} {:>8}   (PyTorch reference unavailable: {why})",
                    median(&mut ours),
                    "-",
                    "-"
                );
                None
            }
        };
        let Some(reference) = reference.as_mut() else {
            continue;
        };
        let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let mut failed = None;
        for r in 0..rounds {
            let (a, b) = if r % 2 == 0 {
                let a = ours_round()?;
                (a, reference.round())
            } else {
                let b = reference.round();
                (ours_round()?, b)
            };
            match b {
                Ok(b) => {
                    ours.push(a);
                    theirs.push(b);
                    ratios.push(a / b);
                }
                Err(why) => {
                    failed = Some(why);
                    break;
                }
            }
        }
        match failed {
            None => println!(
                "{model:<18} {:>14.0} {:>16.0} {:>7.2}×",
                median(&mut ours),
                median(&mut theirs),
                median(&mut ratios)
            ),
            Some(why) => println!(
                "{model:<18} {:>14} {:>16} {:>8}   (PyTorch reference failed: {why})",
                "-", "-", "-"
            ),
        }
    }
    Ok(())
}

/// RigL against static sparse training: per model, rounds of `steps` steps alternate which mode
/// runs first, and the ratio is the median of the per-round ratios (paired, so drift cancels).
fn sparse_suite(args: &BenchArgs) -> anyhow::Result<()> {
    use lth_train::{Rewiring, SparseHparams, SparseMode};
    let device = resolve_device(args.device)?;
    let on = super::on_device(device);
    println!(
        "lth bench --suite sparse: ERK at 90%, RigL updating every 100 steps against static sparse \
         training, batch {}, {on}",
        args.batch_size,
    );
    for (model, steps) in [("lenet_300_100", 300u64), ("cifar_resnet_20", 100)] {
        let mut hp = lth_train::TrainHparams::recipe(model)?;
        let info = lth_data::info(if model.starts_with("lenet_") {
            "mnist"
        } else {
            "cifar10"
        })?;
        hp.dataset.batch_size = args.batch_size;
        hp.dataset.validation = 0;
        hp.training.steps = Steps::it(steps);
        let data = lth_train::speed::synthetic(info, device, false, args.batch_size)?;
        let mut setup = Setup::new(&hp, 1, &data)?;
        let sp = SparseHparams::new(SparseMode::Rigl, lth_prune::Spread::ErdosRenyiKernel, 0.9);
        let layers = sp.layer_sparsities(&setup.model.prunable_tensors())?;
        let mask = lth_prune::distribution::random_mask(&layers, 1, device);
        setup.optimizer.set_mask(&mask)?;
        let sync = || lth_train::speed::sync_device(device);
        let mut time = |rigl: bool| -> anyhow::Result<f64> {
            let mut rewiring = Rewiring::new(&sp, &mask, steps, 1, None);
            time_steps(&mut setup, steps, rigl.then_some(&mut rewiring as _), &sync)
        };
        // One untimed round of each warms caches and allocators.
        time(false)?;
        time(true)?;
        let (mut ratios, mut statics, mut rigls) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..args.repeats.max(1) {
            let (st, rg) = if round % 2 == 0 {
                let st = time(false)?;
                (st, time(true)?)
            } else {
                let rg = time(true)?;
                (time(false)?, rg)
            };
            ratios.push(rg / st);
            statics.push(st);
            rigls.push(rg);
        }
        let mut sorted = ratios.clone();
        println!(
            "  {model:<16} {steps} steps: static {:.3} s, RigL {:.3} s (medians); ratio RigL / static {:.3} (median of paired rounds {ratios:.3?}; target ≤ {})",
            median(&mut statics),
            median(&mut rigls),
            median(&mut sorted),
            if model.starts_with("lenet_") {
                "1.10"
            } else {
                "1.05"
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::crossover;

    #[test]
    fn the_crossover_is_interpolated_where_the_ratio_reaches_one() {
        assert_eq!(
            crossover(&[(0.0, 0.5), (50.0, 0.75), (90.0, 1.25)]),
            Some(70.0)
        );
        assert_eq!(crossover(&[(0.0, 1.5), (50.0, 2.0)]), Some(0.0));
        assert_eq!(crossover(&[(0.0, 0.5), (50.0, 0.9)]), None);
    }
}
