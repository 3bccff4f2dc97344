//! The IMP driver: levels and branches as units of the run store.

use std::path::PathBuf;

use tch::Tensor;

use lth_models::load_tensors;
use lth_prune::{MASK_FILE, Mask, random_like};
use lth_store::{CsvLog, RunDir, RunKind, Store};
use lth_train::{
    Data, FINAL, Job, Progress, RunPlan, RunSummary, Setup, Start, TrainHparams, step_checkpoint,
    train_jobs,
};

use crate::{
    BranchHparams, BranchKind, LayerRow, LotteryError, LotteryHparams, Result, ResultRow, Retrain,
    reinit_seed,
};

const RESULTS: &str = "results.csv";
/// The replicate's per-layer table over levels and branches ([`LayerRow`]s). A unit's own
/// `layers.csv` ([`lth_prune::LAYERS_FILE`]) is another schema, so this table has another name.
pub const LAYER_TABLE: &str = "layers_by_level.csv";
/// The name this table had before it got its own (a `layers.csv` beside `results.csv`), removed
/// when the table is next written so that no store keeps two schemas under one name.
const OLD_LAYER_TABLE: &str = "layers.csv";

/// The folder of level `level`'s IMP subnetwork in a replicate's folder.
fn level_unit(replicate: &RunDir, level: u64) -> RunDir {
    replicate.level(level).child("main")
}

/// A finished level's ticket, read without the data: the weights it ended training with, its
/// pruned weights zero (level 0 is dense). Its files are verified against their digests first.
pub fn level_ticket(
    store: &Store,
    hp: &LotteryHparams,
    replicate: u64,
    level: u64,
) -> Result<Vec<(String, Tensor)>> {
    let unit = level_unit(&store.run(RunKind::Lottery, hp).replicate(replicate), level);
    if !unit.is_done()? {
        return Err(LotteryError::Invalid(format!(
            "level {level} of {} is not finished; train it with `lth lottery` first",
            unit.path()
                .parent()
                .and_then(|p| p.parent())
                .unwrap_or(unit.path())
                .display()
        )));
    }
    let weights = load_tensors(&unit.join(FINAL))?;
    let mask_path = unit.join(MASK_FILE);
    if mask_path.exists() {
        let mask = Mask::load(&mask_path)?;
        mask.apply(&weights)?;
    }
    Ok(weights)
}

/// One replicate of a lottery, on prepared data.
#[derive(Debug)]
pub struct Lottery<'a> {
    hp: LotteryHparams,
    replicate: u64,
    data: &'a Data,
    dir: RunDir,
    /// Iterations per epoch, total steps T, rewind step k.
    per_epoch: u64,
    total: u64,
    rewind: u64,
}

impl<'a> Lottery<'a> {
    /// Binds the lottery's folder in `store` to `hp` and checks that the plan makes sense.
    pub fn new(store: &Store, hp: LotteryHparams, replicate: u64, data: &'a Data) -> Result<Self> {
        hp.validate()?;
        hp.train.check_data(data.train.len() as u64)?;
        if let Some(l1) = &hp.level1 {
            l1.check_data(data.train.len() as u64)?;
        }
        let per_epoch = data.iterations_per_epoch(hp.train.dataset.batch_size);
        let total = hp.train.training.steps.iterations(per_epoch);
        let rewind = hp.rewind.iterations(per_epoch);
        if rewind >= total {
            return Err(LotteryError::Invalid(format!(
                "the rewind point {} ({rewind} iterations) must come before the end of training \
                 {} ({total} iterations)",
                hp.rewind, hp.train.training.steps
            )));
        }
        // Only a lottery whose every input was checked gets a folder.
        let run = store.run(RunKind::Lottery, &hp);
        run.create()?;
        run.bind_hparams(&hp)?;
        Ok(Lottery {
            dir: run.replicate(replicate),
            hp,
            replicate,
            data,
            per_epoch,
            total,
            rewind,
        })
    }

    /// The hyperparameters.
    pub fn hparams(&self) -> &LotteryHparams {
        &self.hp
    }

    /// The replicate's folder (`runs/lottery_<hash>/replicate_<n>`).
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// The replicate number.
    pub fn replicate(&self) -> u64 {
        self.replicate
    }

    /// The data the lottery trains and evaluates on.
    pub fn data(&self) -> &Data {
        self.data
    }

    /// The data-order seed of the lottery's own levels.
    pub fn data_order_seed(&self) -> u64 {
        self.hp.train.data_order_seed(self.replicate)
    }

    /// The rewind step k and the final step T, in iterations.
    pub fn steps(&self) -> (u64, u64) {
        (self.rewind, self.total)
    }

    /// The folder of level `level`'s IMP subnetwork.
    pub fn level_dir(&self, level: u64) -> RunDir {
        level_unit(&self.dir, level)
    }

    /// The folder of a branch off `level`.
    pub fn branch_dir(&self, level: u64, branch: &BranchHparams) -> RunDir {
        self.dir.level(level).child(format!(
            "branch_{}_{}",
            branch.kind.name(),
            lth_store::hparams_hash(branch)
        ))
    }

    /// Records in `unit` (see [`RunDir::record_inputs`]) that it is made from level `level`
    /// (its mask or trained weights) and from level 0 (the rewind point): a level, a branch or a
    /// moved ticket. Trained again with other results, either makes `unit` damaged.
    pub fn record_made_from(&self, unit: &RunDir, level: u64) -> Result<()> {
        let (at, origin) = (self.level_dir(level), self.level_dir(0));
        let inputs = if level == 0 {
            vec![&at]
        } else {
            vec![&at, &origin]
        };
        Ok(unit.record_inputs(&inputs)?)
    }

    /// Whether level `level` has finished training.
    pub fn level_done(&self, level: u64) -> Result<bool> {
        Ok(self.level_dir(level).is_done()?)
    }

    /// The mask of level `level`: all ones at level 0, otherwise the one its folder holds.
    pub fn mask(&self, level: u64) -> Result<Mask> {
        // A finished level's mask is read only once its files pass their digests (once per
        // process): a damaged one is an error, never a moved or branched ticket.
        self.level_dir(level).is_done()?;
        let path = self.level_dir(level).join(MASK_FILE);
        if !path.exists() {
            return Err(LotteryError::Invalid(format!(
                "level {level} has no mask yet ({} is absent); train the levels before it first",
                path.display()
            )));
        }
        Ok(Mask::load(&path)?)
    }

    /// The weights of level 0 at step `step` (W0, or the rewind point W_k).
    pub fn dense_weights_at(&self, step: u64) -> Result<Vec<(String, Tensor)>> {
        Ok(load_tensors(&step_checkpoint(&self.level_dir(0), step))?)
    }

    /// The initial weights of the random reinitialisation of branch seed `seed` (a
    /// `random-reinit` branch without a seed uses the replicate's): every variable, unmasked, as
    /// that branch starts from them.
    pub fn reinit_weights(&self, seed: u64) -> Result<Vec<(String, Tensor)>> {
        Ok(self.setup(Some(reinit_seed(seed)))?.model.state())
    }

    /// The folder of the dense trajectory that keeps the weights at the steps `keep`:
    /// `trajectory_<hash of keep>` in the replicate's folder.
    pub fn trajectory_dir(&self, keep: &[u64]) -> RunDir {
        self.dir.child(format!(
            "trajectory_{}",
            lth_store::hparams_hash(&keep.to_vec())
        ))
    }

    /// Level 0's training again (W0, the replicate's data order, the whole plan) in
    /// [`Lottery::trajectory_dir`], keeping the weights at the steps `keep`: for measurements
    /// along the dense network's training at steps level 0 does not keep. Its weights at step `t`
    /// are level 0's at `t`.
    pub fn trajectory_job(&self, keep: &[u64]) -> Result<Job> {
        if let Some(&t) = keep.iter().find(|&&t| t > self.total) {
            return Err(LotteryError::Invalid(format!(
                "a trajectory checkpoint at step {t} is beyond the training's {} steps",
                self.total
            )));
        }
        let dir = self.trajectory_dir(keep);
        dir.create()?;
        dir.bind_hparams(&keep.to_vec())?;
        Ok(self.job(dir, self.plan(0, keep.to_vec())))
    }

    /// The weights of a finished trajectory (see [`Lottery::trajectory_job`]) at step `step`, one
    /// of its `keep`.
    pub fn trajectory_weights(&self, keep: &[u64], step: u64) -> Result<Vec<(String, Tensor)>> {
        let dir = self.trajectory_dir(keep);
        if !dir.is_done()? {
            return Err(LotteryError::Invalid(format!(
                "{} is not finished; train its trajectory job first",
                dir.path().display()
            )));
        }
        Ok(load_tensors(&step_checkpoint(&dir, step))?)
    }

    /// The weights a unit ended training with.
    pub fn final_weights(&self, unit: &RunDir) -> Result<Vec<(String, Tensor)>> {
        Ok(load_tensors(&unit.join(FINAL))?)
    }

    /// A setup for this replicate, optionally with another initialisation seed.
    fn setup(&self, init_seed: Option<u64>) -> Result<Setup> {
        let mut train: TrainHparams = self.hp.train.clone();
        if let Some(seed) = init_seed {
            train.model.init_seed = Some(seed);
        }
        Ok(Setup::new(&train, self.replicate, self.data)?)
    }

    /// The stability copy of the rewind point W_k in folder `dir`, masked by `mask` (`None`: the
    /// full network), trained over steps k..T in the data order of `data_order_seed`. Level 0
    /// must be done.
    pub fn rewind_copy_job(
        &self,
        dir: &RunDir,
        mask: Option<&Mask>,
        data_order_seed: u64,
    ) -> Result<Job> {
        if !self.level_done(0)? {
            return Err(LotteryError::Invalid(
                "level 0 is not finished, so its rewind point cannot be copied".into(),
            ));
        }
        Ok(self
            .job(dir.clone(), self.plan(self.rewind, Vec::new()))
            .starting(self.rewind_point())
            .masked(mask.cloned())
            .data_order(data_order_seed))
    }

    /// Trains a copy of the rewind point W_k, masked by `mask` (`None`: the full network), over
    /// steps k..T with data-order seed `data_order_seed`, as the unit `dir` of the store, unless it
    /// is done. Level 0 must be done. Stability analysis trains its copies with this.
    pub fn train_rewind_copy(
        &self,
        dir: &RunDir,
        mask: Option<&Mask>,
        data_order_seed: u64,
        progress: &mut dyn Progress,
    ) -> Result<RunSummary> {
        if let Some(s) = dir.done_summary::<RunSummary>()? {
            return Ok(s);
        }
        let job = self.rewind_copy_job(dir, mask, data_order_seed)?;
        Ok(self.train_jobs(&[job], 1, progress)?.remove(0))
    }

    /// The rewind point W_k, as a job's start (read when the job starts).
    fn rewind_point(&self) -> Start {
        Start::File(step_checkpoint(&self.level_dir(0), self.rewind))
    }

    /// A job of this replicate through `plan`, from its W0 in its own data order.
    fn job(&self, dir: RunDir, plan: RunPlan) -> Job {
        Job::new(dir, &self.hp.train, self.replicate, plan)
    }

    /// Trains `jobs` of this lottery's recipe on its data (levels, branches, copies,
    /// [`Lottery::trajectory_job`]), up to `pack` at a time, each unless it is done.
    pub fn train_jobs(
        &self,
        jobs: &[Job],
        pack: usize,
        progress: &mut dyn Progress,
    ) -> Result<Vec<RunSummary>> {
        Ok(train_jobs(&self.hp.train, self.data, jobs, pack, progress)?)
    }

    fn plan(&self, from: u64, keep: Vec<u64>) -> RunPlan {
        RunPlan {
            from,
            keep,
            ..RunPlan::whole(&self.hp.train, self.per_epoch)
        }
    }

    /// Trains level `level` (level 0: the dense network), unless it is done. The level before
    /// must be done.
    pub fn run_level(&self, level: u64, progress: &mut dyn Progress) -> Result<RunSummary> {
        Ok(Lottery::run_levels(&[self], level, 1, progress)?.remove(0))
    }

    /// Trains level `level` of each lottery not done yet, up to `pack` of them at a time in one
    /// packed network: the replicates of one lottery (the same hyperparameters on the same data;
    /// anything else is refused). Each level before must be done. Returns the summaries in order.
    pub fn run_levels(
        lotteries: &[&Lottery],
        level: u64,
        pack: usize,
        progress: &mut dyn Progress,
    ) -> Result<Vec<RunSummary>> {
        let Some(first) = lotteries.first() else {
            return Ok(Vec::new());
        };
        if let Some(other) = lotteries
            .iter()
            .find(|l| l.hp != first.hp || !std::ptr::eq(l.data, first.data))
        {
            return Err(LotteryError::Invalid(format!(
                "replicates {} and {} are not of one lottery on the same data, so they cannot \
                 train together",
                first.replicate, other.replicate
            )));
        }
        let mut jobs = Vec::new();
        let mut done = Vec::new();
        for l in lotteries {
            match l.level_dir(level).done_summary::<RunSummary>()? {
                Some(s) => done.push(Some(s)),
                None => {
                    jobs.push(l.level_job(level)?);
                    done.push(None);
                }
            }
        }
        let trained = first.train_jobs(&jobs, pack, progress)?;
        if !jobs.is_empty() {
            for l in lotteries {
                l.write_tables()?;
            }
        }
        merge(done, trained)
    }

    /// Level `level`'s training: its mask computed (and saved) now, from the level before.
    fn level_job(&self, level: u64) -> Result<Job> {
        let dir = self.level_dir(level);
        dir.create()?;
        let setup = self.setup(None)?;
        self.hp.pruning.validate(setup.model.prunable())?;
        if level == 0 {
            let mut keep = vec![0, self.rewind];
            keep.dedup();
            let mask = Mask::ones(&setup.model.prunable_tensors());
            return Ok(self.job(dir, self.plan(0, keep)).masked(Some(mask)));
        }
        let before = self.level_dir(level - 1);
        if !before.is_done()? {
            return Err(LotteryError::Invalid(format!(
                "level {} is not finished, so level {level} cannot be pruned from it",
                level - 1
            )));
        }
        // What this level is made from: the level before (its mask and trained weights) and
        // level 0 (the rewind point). If either is trained again with other results, this level
        // counts as damaged.
        self.record_made_from(&dir, level - 1)?;
        let trained = self.final_weights(&before)?;
        let mask = self.level_mask(level, &setup, &trained)?;
        let start = match self.hp.retrain {
            Retrain::WeightRewinding => self.rewind_point(),
            Retrain::LrRewinding | Retrain::FineTuning => Start::File(before.join(FINAL)),
        };
        let job = self
            .job(dir, self.plan(self.rewind, Vec::new()))
            .starting(start)
            .masked(Some(mask));
        Ok(match self.hp.retrain {
            Retrain::FineTuning => job.constant_lr(setup.schedule.lr_at(self.total - 1)),
            _ => job,
        })
    }

    /// The mask of `level`: read back if it was already computed, else pruned from level − 1's
    /// mask by the magnitudes of its trained weights (or, for level 1 with `level1`, pruned at
    /// initialisation from `setup`'s W0), and saved before any training.
    fn level_mask(&self, level: u64, setup: &Setup, trained: &[(String, Tensor)]) -> Result<Mask> {
        let path = self.level_dir(level).join(MASK_FILE);
        if path.exists() {
            return Ok(Mask::load(&path)?);
        }
        if let (1, Some(pai)) = (level, &self.hp.level1) {
            let mask = pai.prune(setup, self.data, &self.hp.train, self.replicate)?;
            mask.save(&path)?;
            return Ok(mask);
        }
        let model = &setup.model;
        let previous = self.mask(level - 1)?;
        let weights: Vec<(String, Tensor)> = model
            .prunable()
            .iter()
            .map(|name| {
                trained
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(n, t)| (n.clone(), t.shallow_clone()))
                    .ok_or_else(|| {
                        LotteryError::Invalid(format!(
                            "trained weights of level {} lack {name}",
                            level - 1
                        ))
                    })
            })
            .collect::<Result<_>>()?;
        // The weights this level's training starts from (W_k), for criteria that read them.
        let first = if self.hp.pruning.criterion.needs_init() {
            self.dense_weights_at(self.rewind)?
        } else {
            Vec::new()
        };
        let mask = self
            .hp
            .pruning
            .prune_from(&weights, &first, &previous, model.output_layer())?;
        mask.save(&path)?;
        Ok(mask)
    }

    /// Trains a branch off `level` (which must be done), unless it is done.
    pub fn run_branch(
        &self,
        level: u64,
        branch: &BranchHparams,
        progress: &mut dyn Progress,
    ) -> Result<RunSummary> {
        Ok(self
            .run_branches(&[(level, branch.clone())], 1, progress)?
            .remove(0))
    }

    /// Trains branches (each off a level, which must be done) not done yet, up to `pack`
    /// compatible ones at a time in one packed network. Returns the summaries in order.
    pub fn run_branches(
        &self,
        branches: &[(u64, BranchHparams)],
        pack: usize,
        progress: &mut dyn Progress,
    ) -> Result<Vec<RunSummary>> {
        let mut jobs = Vec::new();
        let mut done = Vec::new();
        for (level, branch) in branches {
            match self
                .branch_dir(*level, branch)
                .done_summary::<RunSummary>()?
            {
                Some(s) => done.push(Some(s)),
                None => {
                    jobs.push(self.branch_job(*level, branch)?);
                    done.push(None);
                }
            }
        }
        let trained = self.train_jobs(&jobs, pack, progress)?;
        if !jobs.is_empty() {
            self.write_tables()?;
        }
        merge(done, trained)
    }

    /// A branch's training, for a scheduler: its folder bound, its weights and mask made now
    /// from its level (which must be done).
    pub fn branch_job(&self, level: u64, branch: &BranchHparams) -> Result<Job> {
        if !self.level_done(level)? {
            return Err(LotteryError::Invalid(format!(
                "level {level} is not finished, so no branch can be run off it"
            )));
        }
        let dir = self.branch_dir(level, branch);
        dir.create()?;
        dir.bind_hparams(branch)?;
        self.record_made_from(&dir, level)?;
        let seed = branch.seed.unwrap_or(self.replicate);
        let level_mask = self.mask(level)?;
        let (start, mask) = match branch.kind {
            BranchKind::RandomReinit => (Start::Init(reinit_seed(seed)), level_mask),
            BranchKind::RandomPrune => (self.rewind_point(), random_like(&level_mask, seed)),
            BranchKind::RandomUniform => {
                let kernels = self.setup(None)?.model.prunable_tensors();
                let all: Vec<String> = kernels.iter().map(|(n, _)| n.clone()).collect();
                let mask = lth_prune::select_global(
                    &lth_prune::score::random(&kernels, seed),
                    &Mask::ones(&kernels),
                    &all,
                    lth_prune::Keep::Largest,
                    lth_prune::Count::Keep(level_mask.kept()),
                )?;
                (self.rewind_point(), mask)
            }
            BranchKind::SignPreserving => {
                let mut setup = self.setup(None)?;
                setup
                    .model
                    .load_state(&self.dense_weights_at(self.rewind)?)?;
                self.signed_constant(&setup)?;
                (Start::Weights(setup.model.state().into()), level_mask)
            }
            BranchKind::Reshuffle => {
                let mut wk = self.dense_weights_at(self.rewind)?;
                let shuffled = lth_prune::reshuffle(&wk, &level_mask, seed)?;
                for (n, t) in wk.iter_mut() {
                    if let Some((_, new)) = shuffled.iter().find(|(s, _)| s == n) {
                        *t = new.shallow_clone();
                    }
                }
                (Start::Weights(wk.into()), level_mask)
            }
            // W0 untrained.
            BranchKind::Supermask => (Start::W0, level_mask),
            BranchKind::SupermaskSigned => {
                let setup = self.setup(None)?;
                self.signed_constant(&setup)?;
                (Start::Weights(setup.model.state().into()), level_mask)
            }
        };
        let plan = if branch.kind.trains() {
            self.plan(self.rewind, Vec::new())
        } else {
            // Evaluated at step 0 and not trained.
            RunPlan {
                to: 0,
                ..self.plan(0, Vec::new())
            }
        };
        Ok(self.job(dir, plan).starting(start).masked(Some(mask)))
    }

    /// The test accuracy and loss of `mask` on the untrained W0 (with `signed`, the kept weights
    /// set to sign(W0) × the layer's init std): a supermask, measured without training or storing
    /// anything. The `supermask` branches store the same measurement as units.
    pub fn evaluate_at_init(&self, mask: &Mask, signed: bool) -> Result<lth_train::Evaluation> {
        let mut setup = self.setup(None)?;
        if signed {
            self.signed_constant(&setup)?;
        }
        setup.optimizer.set_mask(mask)?;
        Ok(lth_train::evaluate(&setup.model, &self.data.eval.test)?)
    }

    /// Sets `setup`'s kept-or-not prunable kernels to sign(W0) × the layer's init std: the signed
    /// constant of Zhou et al. (the mask, applied later, keeps the level's weights).
    fn signed_constant(&self, setup: &Setup) -> Result<()> {
        let w0 = self.dense_weights_at(0)?;
        let init = setup.model.init();
        for (name, mut kernel) in setup.model.prunable_tensors() {
            let (_, original) = w0
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| LotteryError::Invalid(format!("W0 lacks {name}")))?;
            let value = init.signed_constant(&original.to_device(kernel.device()));
            tch::no_grad(|| kernel.copy_(&value));
        }
        Ok(())
    }

    /// Every finished unit of this replicate, in order of level, IMP first.
    pub fn results(&self) -> Result<(Vec<ResultRow>, Vec<LayerRow>)> {
        let info = lth_data::info(&self.hp.train.dataset.dataset)
            .map_err(|e| LotteryError::Invalid(e.to_string()))?;
        let order = lth_models::kernels(&self.hp.train.model.model, info.shape, info.num_classes)?;
        let mut rows = Vec::new();
        let mut layers = Vec::new();
        for level in 0.. {
            let level_folder = self.dir.level(level).path().to_owned();
            if !level_folder.is_dir() {
                break;
            }
            let mut units: Vec<(String, Option<u64>, RunDir)> =
                vec![("imp".into(), None, self.level_dir(level))];
            let mut branches: Vec<PathBuf> = std::fs::read_dir(&level_folder)
                .map_err(|e| LotteryError::Invalid(format!("{}: {e}", level_folder.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("branch_"))
                })
                .collect();
            branches.sort();
            for b in branches {
                let unit = RunDir::new(b);
                if let Some(hp) = unit.hparams::<BranchHparams>()? {
                    units.push((hp.kind.name().to_owned(), hp.seed, unit));
                }
            }
            for (branch, seed, unit) in units {
                let Some(s) = unit.done_summary::<RunSummary>()? else {
                    continue;
                };
                let mask = Mask::load(&unit.join(MASK_FILE))?;
                let counts = mask.counts_in(order.names());
                rows.push(ResultRow {
                    level,
                    branch: branch.clone(),
                    seed,
                    weights_remaining: mask.density(),
                    weights_kept: mask.kept(),
                    steps: s.steps,
                    final_test_accuracy: s.final_test_accuracy,
                    best_test_accuracy: s.best_test_accuracy,
                    best_test_step: s.best_test_step,
                    min_val_loss_step: s.min_val_loss_step,
                    test_accuracy_at_min_val_loss: s.test_accuracy_at_min_val_loss,
                });
                layers.extend(counts.into_iter().map(|c| LayerRow {
                    level,
                    branch: branch.clone(),
                    seed,
                    density: c.density(),
                    layer: c.name,
                    kept: c.kept,
                    total: c.total,
                }));
            }
        }
        Ok((rows, layers))
    }

    /// Rewrites `results.csv` and `layers_by_level.csv` of the replicate from the finished units
    /// (and removes the table's old name, `layers.csv`, that an older version wrote here).
    pub fn write_tables(&self) -> Result<(PathBuf, PathBuf)> {
        let (rows, layers) = self.results()?;
        let results = CsvLog::<ResultRow>::new(self.dir.join(RESULTS));
        results.save(&rows)?;
        let per_layer = CsvLog::<LayerRow>::new(self.dir.join(LAYER_TABLE));
        per_layer.save(&layers)?;
        let old = self.dir.join(OLD_LAYER_TABLE);
        if old.is_file() {
            std::fs::remove_file(&old).map_err(|e| {
                LotteryError::Invalid(format!("removing the old table {}: {e}", old.display()))
            })?;
        }
        Ok((results.path().to_owned(), per_layer.path().to_owned()))
    }
}

/// The summaries of units in order: those already done (`Some`) and, in the places of the others,
/// those just trained.
fn merge(done: Vec<Option<RunSummary>>, trained: Vec<RunSummary>) -> Result<Vec<RunSummary>> {
    let mut trained = trained.into_iter();
    done.into_iter()
        .map(|d| {
            d.or_else(|| trained.next())
                .ok_or_else(|| LotteryError::Invalid("a unit was left untrained".into()))
        })
        .collect()
}
