//! Measured speed: training and inference throughput of networks against each other in one
//! process, on synthetic data (what `lth bench` and the Early-Bird reports print). Timing is
//! wall-clock: a measurement, never a test.

use std::time::Instant;

use crate::{Data, Hooks, Result, Setup, Steps, TrainHparams};

/// Waits for the work queued on `device`, so that a clock read next counts it; nothing on the CPU,
/// where every operation has finished when it returns.
pub fn sync_device(device: tch::Device) {
    if let tch::Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// The median (the upper one of an even count); sorts `v`.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Synthetic training data of `info`'s shape on `device`: uniform `u8` images and random labels,
/// as many of the 50,000 as fill whole batches of `batch_size`. Every timed step then takes a full
/// batch (as the PyTorch references do): an epoch's short last batch is a new input shape, for
/// which cuDNN's autotuner would time every algorithm again inside the timed steps.
pub fn synthetic(
    info: &'static lth_data::DatasetInfo,
    device: tch::Device,
    channels_last: bool,
    batch_size: u64,
) -> Result<Data> {
    let b = batch_size.clamp(1, 50_000) as i64;
    let n = 50_000 / b * b;
    let [c, h, w] = info.shape;
    tch::manual_seed(0);
    let split = lth_data::Split {
        images: tch::Tensor::randint(256, [n, c, h, w], (tch::Kind::Uint8, tch::Device::Cpu)),
        labels: tch::Tensor::randint(info.num_classes, [n], (tch::Kind::Int64, tch::Device::Cpu)),
    };
    let test = lth_data::Split {
        images: split.images.narrow(0, 0, 1000),
        labels: split.labels.narrow(0, 0, 1000),
    };
    Ok(Data {
        info,
        train: lth_data::DeviceSplit::new(&split, info, device)?.into(),
        eval: crate::EvalSets {
            test: lth_data::DeviceSplit::new(&test, info, device)?.into(),
            validation: None,
        },
        channels_last,
    })
}

/// `hp` for timing `rounds` rounds (and a warm-up) of `steps` steps on synthetic data: every
/// example used for training, and no schedule to fit into the timed steps (only step costs are
/// measured).
fn timed(hp: &TrainHparams, steps: u64, rounds: usize) -> TrainHparams {
    let mut hp = hp.clone();
    hp.dataset.validation = 0;
    hp.dataset.subset = 0;
    hp.training.steps = Steps::it(steps * (rounds as u64 + 1) + 1);
    hp.training.milestones = Vec::new();
    hp.training.warmup = Steps::it(0);
    hp
}

/// Training and inference speed of one network: images per second, medians over rounds.
#[derive(Debug, Clone, Copy)]
pub struct Speed {
    pub train: f64,
    pub infer: f64,
}

/// Training and inference throughput of networks against the first (the dense one), measured in
/// one process on synthetic data of `info`'s shape: per round every network trains `steps` steps
/// (after one untimed warm-up round) and runs `steps` forward passes in evaluation mode, the
/// order rotating between rounds so that drift cancels. `states` optionally gives each network's
/// weights. Returns each network's median speeds and its median per-round ratios to the first.
pub fn compare(
    hp: &TrainHparams,
    models: &[String],
    info: &'static lth_data::DatasetInfo,
    device: tch::Device,
    steps: u64,
    rounds: usize,
) -> Result<Vec<(Speed, Speed)>> {
    let nets: Vec<Net> = models
        .iter()
        .map(|m| Net {
            model: m.clone(),
            supermask: None,
            fused: false,
        })
        .collect();
    compare_nets(hp, &nets, info, device, steps, rounds)
}

/// A network whose speed is measured: a model, trained plainly or as a learned supermask.
#[derive(Debug, Clone)]
pub struct Net {
    pub model: String,
    pub supermask: Option<crate::SupermaskHparams>,
    /// A supermask's masks and gradients from `lth_kernels`' fused passes (the CPU's default) or
    /// from chains of libtorch operations (CUDA's); see [`crate::LearnedMask::set_fused`].
    pub fused: bool,
}

/// [`compare`] over networks that may learn supermasks (their training steps run the
/// [`crate::LearnedMask`] hook: scores updated, weights frozen).
pub fn compare_nets(
    hp: &TrainHparams,
    nets: &[Net],
    info: &'static lth_data::DatasetInfo,
    device: tch::Device,
    steps: u64,
    rounds: usize,
) -> Result<Vec<(Speed, Speed)>> {
    let data = synthetic(info, device, false, hp.dataset.batch_size)?;
    let mut setups = Vec::new();
    let mut masks = Vec::new();
    for net in nets {
        let mut hp = timed(hp, steps, rounds);
        hp.model.model = net.model.clone();
        let setup = Setup::new(&hp, 1, &data)?;
        masks.push(match &net.supermask {
            Some(sm) => {
                let mut hook = crate::LearnedMask::new(
                    sm,
                    &hp.training,
                    &setup.model,
                    setup.schedule.clone(),
                    1,
                )?;
                hook.set_fused(net.fused)?;
                hook.apply(0, &setup.optimizer.weights())?;
                Some(hook)
            }
            None => None,
        });
        setups.push(setup);
    }
    let batch = hp.dataset.batch_size as i64;
    let [c, h, w] = info.shape;
    let x = tch::Tensor::randn([batch, c, h, w], (tch::Kind::Float, device));
    let sync = || sync_device(device);
    let mut done = vec![0u64; nets.len()];
    let mut time = |i: usize, setups: &mut Vec<Setup>| -> Result<(f64, f64)> {
        let setup = &mut setups[i];
        let mut session = setup.session();
        let mut hooks = match &mut masks[i] {
            Some(hook) => Hooks::new(vec![hook])?,
            None => Hooks::none(),
        };
        let t = Instant::now();
        session.train(done[i], done[i] + steps, 0, &[], &mut hooks, &mut ())?;
        sync();
        let train = t.elapsed().as_secs_f64();
        done[i] += steps;
        let t = Instant::now();
        tch::no_grad(|| {
            for _ in 0..steps {
                let _ = setup.model.forward_t(&x, false);
            }
        });
        sync();
        Ok((train, t.elapsed().as_secs_f64()))
    };
    for i in 0..nets.len() {
        time(i, &mut setups)?;
    }
    let n = nets.len();
    let mut times: Vec<Vec<(f64, f64)>> = vec![Vec::new(); n];
    for round in 0..rounds.max(1) {
        for k in 0..n {
            let i = (round + k) % n;
            let t = time(i, &mut setups)?;
            times[i].push(t);
        }
    }
    let images = (steps * hp.dataset.batch_size) as f64;
    let speeds: Vec<(Speed, Speed)> = (0..n)
        .map(|i| {
            let mut train: Vec<f64> = times[i].iter().map(|t| images / t.0).collect();
            let mut infer: Vec<f64> = times[i].iter().map(|t| images / t.1).collect();
            let mut train_ratio: Vec<f64> = times[i]
                .iter()
                .zip(&times[0])
                .map(|(a, d)| d.0 / a.0)
                .collect();
            let mut infer_ratio: Vec<f64> = times[i]
                .iter()
                .zip(&times[0])
                .map(|(a, d)| d.1 / a.1)
                .collect();
            (
                Speed {
                    train: median(&mut train),
                    infer: median(&mut infer),
                },
                Speed {
                    train: median(&mut train_ratio),
                    infer: median(&mut infer_ratio),
                },
            )
        })
        .collect();
    Ok(speeds)
}

/// Throughput of N copies trained packed against the same N trained as separate runs in this
/// process (each a `Setup` stepping in turn), on synthetic data of `info`'s shape: per round each
/// side trains `steps` steps of every copy (after one untimed warm-up round), the side that goes
/// first alternating. Returns (separate, packed) in copies × images per second, medians, and the
/// median of the per-round ratios packed ÷ separate. `copies` must be at least 2.
pub fn packed_against_separate(
    hp: &TrainHparams,
    info: &'static lth_data::DatasetInfo,
    device: tch::Device,
    copies: usize,
    steps: u64,
    rounds: usize,
) -> Result<(f64, f64, f64)> {
    let data = synthetic(info, device, false, hp.dataset.batch_size)?;
    let hp = timed(hp, steps, rounds);
    let replicates: Vec<u64> = (1..=copies as u64).collect();
    let mut separate: Vec<Setup> = replicates
        .iter()
        .map(|&r| Setup::new(&hp, r, &data))
        .collect::<Result<_>>()?;
    let mut packed = crate::packed::PackedSetup::new(&hp, &replicates, &data)?;
    let sync = || sync_device(device);
    let mut done = [0u64; 2];
    let mut time = |side: usize,
                    separate: &mut Vec<Setup>,
                    packed: &mut crate::packed::PackedSetup|
     -> Result<f64> {
        let t = Instant::now();
        for step in done[side]..done[side] + steps {
            if side == 0 {
                for s in separate.iter_mut() {
                    let _ = s.session().step(step)?;
                }
            } else {
                let _ = packed.step(step)?;
            }
        }
        sync();
        done[side] += steps;
        Ok(t.elapsed().as_secs_f64())
    };
    time(0, &mut separate, &mut packed)?;
    time(1, &mut separate, &mut packed)?;
    let images = (steps * hp.dataset.batch_size * copies as u64) as f64;
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        let (ta, tb) = if round % 2 == 0 {
            let ta = time(0, &mut separate, &mut packed)?;
            (ta, time(1, &mut separate, &mut packed)?)
        } else {
            let tb = time(1, &mut separate, &mut packed)?;
            (time(0, &mut separate, &mut packed)?, tb)
        };
        a.push(images / ta);
        b.push(images / tb);
        ratio.push(ta / tb);
    }
    Ok((median(&mut a), median(&mut b), median(&mut ratio)))
}
