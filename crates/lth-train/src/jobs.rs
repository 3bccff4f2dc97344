//! The scheduler of independent runs. Every experiment that trains several runs of one recipe
//! (a lottery's levels across replicates, a replicate's branches, stability copies and the
//! interpolation pairs made of them, `lth train --replicates`) describes each as a [`Job`] (its
//! folder, replicate, data order, starting weights, mask, plan) and hands them to [`train_jobs`],
//! which trains those not done: compatible jobs (same plan and learning-rate schedule; all share
//! one `TrainHparams`, hence one architecture, recipe and batch size) go up to `pack` at a time
//! into one packed network (`crate::packed`), the others alone, exactly as an unpacked run.
//!
//! Invariants: a job trained alone is bit-identical to the same run built by hand (`Setup::new`,
//! its weights loaded, its mask set, `run_resumable`); a packed job equals it to float tolerance
//! (`tests/packed.rs`); every job's folder ends with an unpacked run's files, its mask saved
//! before training starts; a job already done is never retrained, and its summary is returned in
//! its place.

use std::path::PathBuf;

use lth_models::{Named, load_tensors};
use lth_prune::Mask;
use lth_store::RunDir;

use crate::packed::{PackedSetup, run_packed};
use crate::run::replicate_loader;
use crate::{
    Data, Hooks, Progress, Result, RunPlan, RunSummary, Schedule, Setup, TrainError, TrainHparams,
    run_resumable,
};

/// Where a job's weights start.
#[derive(Debug, Clone)]
pub enum Start {
    /// W0 of the job's replicate (`TrainHparams::init_seed`).
    W0,
    /// W0 drawn from this initialisation seed instead (a random reinitialisation).
    Init(u64),
    /// The weights saved in this file, every variable of the model by PyTorch name (a rewind
    /// point W_k, a level's trained weights), read only when the job's training starts, so that
    /// a long list of jobs holds no weights.
    File(PathBuf),
    /// These weights, every variable of the model by PyTorch name (a transformed W0).
    Weights(Named),
}

impl Start {
    /// The weights to load over W0, if any.
    fn weights(&self) -> Result<Option<Named>> {
        Ok(match self {
            Start::W0 | Start::Init(_) => None,
            Start::File(path) => Some(Named::from(load_tensors(path)?)),
            Start::Weights(w) => Some(w.clone()),
        })
    }
}

/// One run for [`train_jobs`]: a folder of the run store and everything that sets it apart from
/// the other runs of the same `TrainHparams`.
#[derive(Debug, Clone)]
pub struct Job {
    pub dir: RunDir,
    /// The replicate whose initialisation (with [`Start::W0`]) and augmentation draws it uses.
    pub replicate: u64,
    /// The seed of its data order.
    pub data_order_seed: u64,
    pub start: Start,
    /// Kept at zero from the first step (`None`: dense); saved as the folder's
    /// `mask.safetensors` before training unless the folder already holds it.
    pub mask: Option<Mask>,
    pub plan: RunPlan,
    /// Train at this constant learning rate instead of the recipe's schedule (fine-tuning).
    pub constant_lr: Option<f64>,
}

impl Job {
    /// Replicate `replicate` of `hp`, from its W0 in its own data order, dense, through `plan`.
    pub fn new(dir: RunDir, hp: &TrainHparams, replicate: u64, plan: RunPlan) -> Job {
        Job {
            dir,
            replicate,
            data_order_seed: hp.data_order_seed(replicate),
            start: Start::W0,
            mask: None,
            plan,
            constant_lr: None,
        }
    }

    /// The same job starting from `start`.
    pub fn starting(mut self, start: Start) -> Job {
        self.start = start;
        self
    }

    /// The same job with `mask` in force.
    pub fn masked(mut self, mask: Option<Mask>) -> Job {
        self.mask = mask;
        self
    }

    /// The same job in the data order of `seed`.
    pub fn data_order(mut self, seed: u64) -> Job {
        self.data_order_seed = seed;
        self
    }

    /// The same job at a constant learning rate.
    pub fn constant_lr(mut self, lr: f64) -> Job {
        self.constant_lr = Some(lr);
        self
    }

    /// Whether two jobs can share a packed network: the same steps, evaluations, kept
    /// checkpoints and learning rates, and nothing a packed run does not write (FLOPs, a final
    /// mask that changed during training).
    pub fn packs_with(&self, other: &Job) -> bool {
        let plain = |j: &Job| j.plan.flops.is_none() && !j.plan.save_final_mask;
        plain(self)
            && plain(other)
            && self.plan == other.plan
            && self.constant_lr.map(f64::to_bits) == other.constant_lr.map(f64::to_bits)
    }

    /// The job's setup, alone: `Setup::new` for its replicate (W0 of its seed), its data order,
    /// its starting weights, its mask and learning rates.
    pub fn setup(&self, hp: &TrainHparams, data: &Data) -> Result<Setup> {
        let mut hp = hp.clone();
        if let Start::Init(seed) = self.start {
            hp.model.init_seed = Some(seed);
        }
        let mut setup = Setup::new(&hp, self.replicate, data)?;
        if self.data_order_seed != hp.data_order_seed(self.replicate) {
            setup.loader = replicate_loader(&hp, data, self.data_order_seed, self.replicate)?;
            if let Some(adv) = &mut setup.adversary {
                adv.seed = self.data_order_seed;
            }
        }
        if let Some(w) = self.start.weights()? {
            setup.model.load_state(&w)?;
        }
        if let Some(lr) = self.constant_lr {
            setup.schedule = Schedule::constant(lr);
        }
        if let Some(m) = &self.mask {
            setup.optimizer.set_mask(m)?;
        }
        Ok(setup)
    }

    /// Creates the folder and saves the mask into it, unless it holds one already.
    fn prepare(&self) -> Result<()> {
        self.dir.create()?;
        if let Some(m) = &self.mask {
            let path = self.dir.join(lth_prune::MASK_FILE);
            if !path.exists() {
                m.save(&path)
                    .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
            }
        }
        Ok(())
    }
}

/// Which jobs train together: indices into `jobs` of those not in `done`, in groups of up to
/// `pack` compatible jobs ([`Job::packs_with`]), each group in the order its first job comes.
pub fn groups(jobs: &[Job], done: &[bool], pack: usize) -> Vec<Vec<usize>> {
    let mut taken: Vec<bool> = done.to_vec();
    let mut out = Vec::new();
    for i in 0..jobs.len() {
        if taken[i] {
            continue;
        }
        taken[i] = true;
        let mut group = vec![i];
        for j in i + 1..jobs.len() {
            if group.len() >= pack.max(1) {
                break;
            }
            if !taken[j] && jobs[i].packs_with(&jobs[j]) {
                taken[j] = true;
                group.push(j);
            }
        }
        out.push(group);
    }
    out
}

/// Trains every job of `hp` on `data` not done yet, up to `pack` compatible ones at a time in one
/// packed network ([`groups`]), the others alone; returns every job's summary, in order.
pub fn train_jobs(
    hp: &TrainHparams,
    data: &Data,
    jobs: &[Job],
    pack: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<RunSummary>> {
    let mut summaries: Vec<Option<RunSummary>> = jobs
        .iter()
        .map(|j| j.dir.done_summary::<RunSummary>())
        .collect::<Result<_, _>>()?;
    let done: Vec<bool> = summaries.iter().map(Option::is_some).collect();
    // Adversarial training attacks each copy's batch through its own network; a packed network
    // has no per-copy attack, so such runs train one at a time.
    let pack = if hp.training.adversarial.is_some() {
        1
    } else {
        pack
    };
    for group in groups(jobs, &done, pack) {
        for &i in &group {
            jobs[i].prepare()?;
        }
        let names: Vec<String> = group.iter().map(|&i| unit_label(&jobs[i].dir)).collect();
        progress.unit(&match names.len() {
            1 => names.concat(),
            n => format!("{n} units packed: {}", names.join(", ")),
        });
        let trained = if let [i] = group[..] {
            let job = &jobs[i];
            let mut setup = job.setup(hp, data)?;
            vec![run_resumable(
                &job.dir,
                &mut setup,
                &job.plan,
                &mut Hooks::none(),
                progress,
            )?]
        } else {
            let members: Vec<&Job> = group.iter().map(|&i| &jobs[i]).collect();
            let mut setup = packed_setup(hp, data, &members)?;
            let dirs: Vec<RunDir> = members.iter().map(|j| j.dir.clone()).collect();
            run_packed(&dirs, &mut setup, &members[0].plan, progress)?
        };
        for (&i, s) in group.iter().zip(trained) {
            summaries[i] = Some(s);
        }
    }
    summaries
        .into_iter()
        .map(|s| s.ok_or_else(|| TrainError::Invalid("a job was left untrained".into())))
        .collect()
}

/// A unit's folder as a progress line names it: its last two components (`level_2/main`).
fn unit_label(dir: &RunDir) -> String {
    let parts: Vec<String> = dir
        .path()
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

/// The packed setup of compatible jobs: copy k is `members[k]`'s setup.
fn packed_setup(hp: &TrainHparams, data: &Data, members: &[&Job]) -> Result<PackedSetup> {
    let replicates: Vec<u64> = members.iter().map(|j| j.replicate).collect();
    let seeds: Vec<u64> = members
        .iter()
        .map(|j| match j.start {
            Start::Init(seed) => seed,
            _ => hp.init_seed(j.replicate),
        })
        .collect();
    let mut setup = PackedSetup::with_init_seeds(hp, &replicates, &seeds, data)?;
    let orders: Vec<u64> = members.iter().map(|j| j.data_order_seed).collect();
    if members
        .iter()
        .any(|j| j.data_order_seed != hp.data_order_seed(j.replicate))
    {
        setup = setup.with_data_orders(hp, data, &orders)?;
    }
    for (k, j) in members.iter().enumerate() {
        if let Some(w) = j.start.weights()? {
            setup.model.load_copy_state(k as i64, &w)?;
        }
    }
    if let Some(lr) = members[0].constant_lr {
        setup.schedule = Schedule::constant(lr);
    }
    let masks: Vec<Option<&Mask>> = members.iter().map(|j| j.mask.as_ref()).collect();
    setup.set_masks(&masks)?;
    Ok(setup)
}
