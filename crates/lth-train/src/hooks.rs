//! Hooks: how a method reaches into the training loop (pruning during training, regrowing, early
//! stopping), without the loop knowing the method.
//!
//! A [`Hook`] is called at three points of every step and at each evaluation:
//! - [`Hook::after_backward`], with the dense gradients before any masking, and the same mutable
//!   access as after the step; it may skip this step's update ([`Update::Skip`], as RigL does on
//!   the steps where it rewires);
//! - [`Hook::after_step`], with mutable access to the weights, the mask and the optimiser state;
//! - [`Hook::on_eval`], which may stop training early.
//!
//! Several hooks compose ([`Hooks`], called in order). The defaults do nothing, and the loop only
//! calls a hook, never reads the device for it: a hook that does nothing on a step costs no host
//! synchronisation on that step. A hook's state ([`Hook::state`]) goes into the resume checkpoint
//! with the mask in force, so a run whose mask changes resumes bit-identically.

use lth_models::{Model, Named};

use crate::{MetricsRow, Optimizer, Result, TrainError};

/// Whether training goes on after an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Control {
    #[default]
    Continue,
    /// Stop now: the row just measured is the run's last.
    Stop,
}

/// Whether the optimiser applies this step's update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Update {
    #[default]
    Apply,
    /// Skip the update (the optimiser's step count does not advance); the step still counts as
    /// taken and [`Hook::after_step`] is called.
    Skip,
}

/// What a hook may touch between steps.
#[derive(Debug)]
pub struct StepContext<'a> {
    pub model: &'a Model,
    /// Weights ([`Optimizer::weights`]), mask ([`Optimizer::mask`], [`Optimizer::set_mask`]),
    /// state ([`Optimizer::reset_state`]) and this step's gradients ([`Optimizer::grad`]).
    pub optimizer: &'a mut Optimizer,
}

/// A method's reach into the loop. `step` counts from 0: the step in progress.
pub trait Hook {
    /// A short name, unique among the hooks of a run: the hook's state is saved as
    /// `hook.<name>.<key>`.
    fn name(&self) -> &str;

    /// After backward, before the update: `ctx.optimizer.grad(name)` are the dense gradients. A
    /// mask set here ([`Optimizer::set_mask`]) masks this step's update.
    fn after_backward(&mut self, _step: u64, _ctx: &mut StepContext<'_>) -> Result<Update> {
        Ok(Update::Apply)
    }

    /// After the update of step `step`.
    fn after_step(&mut self, _step: u64, _ctx: &mut StepContext<'_>) -> Result<()> {
        Ok(())
    }

    /// A row of metrics was measured (after `row.step` steps); before it is checkpointed.
    fn on_eval(&mut self, _row: &MetricsRow, _ctx: &mut StepContext<'_>) -> Result<Control> {
        Ok(Control::Continue)
    }

    /// The run reached its end: write the method's final files into the run folder `dir` (before
    /// the run is marked done, so they are part of it). `model` holds the final weights.
    fn finish(&mut self, _dir: &std::path::Path, _model: &Model) -> Result<()> {
        Ok(())
    }

    /// The FLOPs of the whole run, when the hook counts them (a method whose density changes
    /// during training); asked once, when the run finishes.
    fn flops(&self) -> Option<lth_prune::Flops> {
        None
    }

    /// Everything the hook needs to resume (on the host or the device), by key.
    fn state(&self) -> Named {
        Named::new()
    }

    /// Restores what [`Hook::state`] gave.
    fn load_state(&mut self, _state: &Named) -> Result<()> {
        Ok(())
    }
}

/// Hooks called in order.
#[derive(Default)]
pub struct Hooks<'a> {
    hooks: Vec<&'a mut dyn Hook>,
}

impl std::fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.hooks.iter().map(|h| h.name()))
            .finish()
    }
}

const PREFIX: &str = "hook.";

impl<'a> Hooks<'a> {
    /// No hooks.
    pub fn none() -> Hooks<'a> {
        Hooks::default()
    }

    /// These hooks, in order; names must be unique.
    pub fn new(hooks: Vec<&'a mut dyn Hook>) -> Result<Hooks<'a>> {
        for (i, h) in hooks.iter().enumerate() {
            if hooks[..i].iter().any(|o| o.name() == h.name()) {
                return Err(TrainError::Invalid(format!(
                    "two hooks are called `{}`; their states would collide",
                    h.name()
                )));
            }
        }
        Ok(Hooks { hooks })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Every hook is called; the update is skipped if any asks to.
    pub(crate) fn after_backward(
        &mut self,
        step: u64,
        ctx: &mut StepContext<'_>,
    ) -> Result<Update> {
        let mut update = Update::Apply;
        for h in &mut self.hooks {
            if h.after_backward(step, ctx)? == Update::Skip {
                update = Update::Skip;
            }
        }
        Ok(update)
    }

    pub(crate) fn after_step(&mut self, step: u64, ctx: &mut StepContext<'_>) -> Result<()> {
        for h in &mut self.hooks {
            h.after_step(step, ctx)?;
        }
        Ok(())
    }

    /// Every hook hears of the row; training stops if any asks to.
    pub(crate) fn on_eval(
        &mut self,
        row: &MetricsRow,
        ctx: &mut StepContext<'_>,
    ) -> Result<Control> {
        let mut control = Control::Continue;
        for h in &mut self.hooks {
            if h.on_eval(row, ctx)? == Control::Stop {
                control = Control::Stop;
            }
        }
        Ok(control)
    }

    /// Every hook writes its final files.
    pub(crate) fn finish(&mut self, dir: &std::path::Path, model: &Model) -> Result<()> {
        for h in &mut self.hooks {
            h.finish(dir, model)?;
        }
        Ok(())
    }

    /// The first FLOPs count a hook gives.
    pub fn flops(&self) -> Option<lth_prune::Flops> {
        self.hooks.iter().find_map(|h| h.flops())
    }

    /// The states of all hooks, as `hook.<name>.<key>`.
    pub fn state(&self) -> Named {
        let mut out = Named::new();
        for h in &self.hooks {
            for (k, t) in h.state() {
                out.insert(format!("{PREFIX}{}.{k}", h.name()), t);
            }
        }
        out
    }

    /// Restores the hooks from tensors named as [`Hooks::state`] names them.
    pub fn load_state(&mut self, named: &Named) -> Result<()> {
        for h in &mut self.hooks {
            let mine = named.strip_prefix(&format!("{PREFIX}{}.", h.name()));
            h.load_state(&mine)?;
        }
        Ok(())
    }
}
