//! The step loop: one optimisation step at a time, evaluation at intervals, observers for the rest.

use tch::{Kind, Tensor};

use lth_data::Loader;
use lth_models::{Model, Named};

use crate::evaluation::{EvalSets, MetricsRow, evaluate};
use crate::{Control, Hooks, Optimizer, Result, Schedule, StepContext, Update};

/// The entry of a resume checkpoint that says a hook stopped the run at its step.
pub const STOPPED: &str = "session.stopped";

/// Hears about a session's progress; the run store's bookkeeping and progress bars are observers.
pub trait Observer {
    /// Step `step` (the count of steps done) has finished. No device synchronisation happens here.
    fn on_step(&mut self, _step: u64) {}
    /// The weights after `step` steps must be kept (a rewind point, a named checkpoint).
    fn on_keep(&mut self, _step: u64, _model: &Model) -> Result<()> {
        Ok(())
    }
    /// A row of metrics was measured; the session's state is that of the row. `extra` is the
    /// rest of what resuming needs: the hooks' states, and [`STOPPED`] if a hook stopped the run.
    fn on_eval(
        &mut self,
        _row: &MetricsRow,
        _model: &Model,
        _opt: &Optimizer,
        _extra: &Named,
    ) -> Result<()> {
        Ok(())
    }
}

impl Observer for () {}

/// Everything one training step needs.
#[derive(Debug)]
pub struct Session<'a> {
    pub model: &'a Model,
    pub loader: &'a mut Loader,
    pub optimizer: &'a mut Optimizer,
    pub schedule: &'a Schedule,
    pub eval: &'a EvalSets,
    /// Run the forward pass under bfloat16 autocast.
    pub bf16: bool,
    /// Adversarial training: each batch is attacked before the step, and each row measures
    /// robust accuracy.
    pub adversary: Option<&'a crate::adversarial::Adversary>,
}

impl Session<'_> {
    /// Takes optimisation step `step` (counting from 0) and returns its loss, still on the device.
    pub fn step(&mut self, step: u64) -> Result<Tensor> {
        self.step_with(step, &mut Hooks::none())
    }

    /// [`Session::step`], calling `hooks` after backward and after the update.
    pub fn step_with(&mut self, step: u64, hooks: &mut Hooks<'_>) -> Result<Tensor> {
        let mut batch = self.loader.batch(step)?;
        if let Some(adv) = self.adversary {
            batch.x = adv.batch(self.model, &batch.x, &batch.y, step)?;
        }
        let forward = || {
            let logits = self.model.forward_t(&batch.x, true);
            logits.cross_entropy_for_logits(&batch.y)
        };
        let loss = if self.bf16 {
            lth_amp::autocast_bf16(self.model.device(), forward)
        } else {
            forward()
        };
        self.optimizer.zero_grad();
        loss.backward();
        let mut update = Update::Apply;
        if !hooks.is_empty() {
            self.optimizer.bind_grads();
            update = hooks.after_backward(step, &mut self.context())?;
        }
        if update == Update::Apply {
            self.optimizer.step(self.schedule.lr_at(step));
        }
        if !hooks.is_empty() {
            hooks.after_step(step, &mut self.context())?;
        }
        Ok(loss.detach())
    }

    fn context(&mut self) -> StepContext<'_> {
        StepContext {
            model: self.model,
            optimizer: self.optimizer,
        }
    }

    /// Measures a row of metrics after `step` steps.
    pub fn measure(&self, step: u64, train_loss: Option<f64>) -> Result<MetricsRow> {
        let test = evaluate(self.model, &self.eval.test)?;
        let val = match &self.eval.validation {
            Some(v) => Some(evaluate(self.model, v)?),
            None => None,
        };
        Ok(MetricsRow {
            step,
            epoch: step as f64 / self.loader.steps_per_epoch() as f64,
            lr: self.schedule.lr_at(step.saturating_sub(1)),
            train_loss,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            val_loss: val.map(|v| v.loss),
            val_accuracy: val.map(|v| v.accuracy),
            robust_accuracy: match self.adversary {
                Some(adv) => Some(adv.robust_accuracy(self.model, &self.eval.test)?),
                None => None,
            },
        })
    }

    /// Trains steps `from..to`, measuring metrics whenever the step count is a multiple of
    /// `eval_every` and at `to` (never, if `eval_every` is 0), and asking the observer to keep the
    /// weights at each step of `keep`. Returns the step count reached: `to`, or the step of the
    /// evaluation at which a hook stopped training.
    /// The starting row is the caller's business (a resumed run already has it).
    pub fn train(
        &mut self,
        from: u64,
        to: u64,
        eval_every: u64,
        keep: &[u64],
        hooks: &mut Hooks<'_>,
        observer: &mut dyn Observer,
    ) -> Result<u64> {
        let _training = lth_store::ledger::span(lth_store::ledger::Activity::Training);
        let device = self.model.device();
        let mut loss_sum = Tensor::zeros([], (Kind::Float, device));
        let mut since = 0u64;
        for step in from..to {
            let loss = self.step_with(step, hooks)?;
            loss_sum += loss;
            since += 1;
            let done = step + 1;
            observer.on_step(done);
            if keep.contains(&done) {
                observer.on_keep(done, self.model)?;
            }
            if eval_every > 0 && (done % eval_every == 0 || done == to) {
                let mean = loss_sum.double_value(&[]) / since as f64;
                let row = self.measure(done, Some(mean))?;
                let control = if hooks.is_empty() {
                    Control::Continue
                } else {
                    hooks.on_eval(&row, &mut self.context())?
                };
                let mut extra = hooks.state();
                if control == Control::Stop {
                    extra.insert(STOPPED, Tensor::from_slice(&[done as i64]));
                }
                observer.on_eval(&row, self.model, self.optimizer, &extra)?;
                let _ = loss_sum.zero_();
                since = 0;
                if control == Control::Stop {
                    return Ok(done);
                }
            }
        }
        Ok(to)
    }
}
