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
use lth_train::{Data, Masking, MetricsRow, Progress, Setup, Steps, resolve_device};

use super::DataArgs;
use super::hparams::HparamArgs;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = "lenet_300_100")]
    pub model: String,
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: String,
    #[arg(long, default_value_t = 128)]
    pub batch_size: u64,
    /// Timed epochs per loop.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Also time both loops with 80% of the prunable weights masked (the IMP case).
    #[arg(long)]
    pub masked: bool,
    /// Exit with failure when the ratio full / bare exceeds this.
    #[arg(long)]
    pub max_ratio: Option<f64>,
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

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let device = resolve_device(args.device)?;
    let mut hp = HparamArgs {
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
        "lth bench: {} on {}, batch {}, {} steps per epoch, {device:?}, {} libtorch thread(s), {:?} at lr {}",
        hp.model.model,
        hp.dataset.dataset,
        hp.dataset.batch_size,
        spe,
        tch::get_num_threads(),
        hp.training.optimizer,
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
            setup.masking = Some(Masking::new(&setup.model, &masks)?);
        }
        let batches: Vec<_> = (0..spe).map(|s| setup.loader.batch(s)).collect();
        let sync = || {
            if let tch::Device::Cuda(i) = device {
                tch::Cuda::synchronize(i as i64);
            }
        };
        let mut full = Vec::new();
        let mut bare = Vec::new();
        // One untimed epoch of each warms caches and allocators.
        for round in 0..=args.repeats {
            let mut session = setup.session();
            let t = Instant::now();
            session.train(0, spe, 0, &[], &mut Counter(0))?;
            sync();
            let f = t.elapsed().as_secs_f64();

            let t = Instant::now();
            let mut last = None;
            for (step, b) in batches.iter().enumerate() {
                let logits = setup.model.forward_t(&b.x, true);
                let loss = logits.cross_entropy_for_logits(&b.y);
                setup.optimizer.zero_grad();
                loss.backward();
                if let Some(m) = &setup.masking {
                    m.mask_grads();
                }
                setup.optimizer.step(setup.schedule.lr_at(step as u64));
                if let Some(m) = &setup.masking {
                    m.mask_weights();
                }
                last = Some(loss);
            }
            if let Some(l) = last {
                let _ = l.double_value(&[]);
            }
            sync();
            let b = t.elapsed().as_secs_f64();
            if round > 0 {
                full.push(f);
                bare.push(b);
            }
        }
        let (mf, mb) = (median(&mut full), median(&mut bare));
        let label = if masked { "masked 80%" } else { "dense" };
        println!("  {label}:");
        println!("    bare loop (pre-batched tensors)  {mb:8.3} s/epoch   runs {bare:.3?}");
        println!("    full loop (loader, reporting)    {mf:8.3} s/epoch   runs {full:.3?}");
        println!(
            "    ratio full / bare                {:8.3}   (target ≤ 1.10)",
            mf / mb
        );
        worst = worst.max(mf / mb);
    }
    if let Some(max) = args.max_ratio
        && worst > max
    {
        anyhow::bail!("ratio {worst:.3} exceeds --max-ratio {max}");
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
