//! Command-line flags of [`TrainHparams`] (feature `clap`): each overrides one field of the model's
//! recipe. The `lth` binary and the reproduction harness parse the same flags, so a spec row's
//! flags mean exactly what they mean on the command line.

use clap::Args;

use lth_models::Init;

use crate::{OptimizerKind, Precision, Result, StepList, Steps, TrainError, TrainHparams};

pub use crate::method::early_bird::{EarlyBirdFlags, EarlyBirdMethodFlags};
pub use crate::method::gmp::GmpFlags;
pub use crate::method::pai::PaiFlags;
pub(crate) use crate::method::set;
pub use crate::method::sparse::SparseFlags;
pub use crate::method::supermask::SupermaskFlags;
pub use crate::method::{DistributionFlags, MethodArgs, MethodFlags, Shared};

/// Flags for the hyperparameters of a training run; unset flags keep the model's recipe, which
/// `lth models <model>` prints.
#[derive(Args, Debug, Clone, Default)]
pub struct TrainFlags {
    /// Model name from the registry (see `lth models`), e.g. lenet_300_100.
    // An `Option` that clap requires: `lth lottery branch` negates the parent's requirements.
    #[arg(long, required = true)]
    pub model: Option<String>,
    /// Dataset name (see `lth datasets`); default: the model's.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Training length, e.g. 2ep, 50000it, 2ep100it (default: the model's recipe).
    // A negative count reaches the parser and its message, not clap's "unexpected argument".
    #[arg(long, allow_hyphen_values = true)]
    pub steps: Option<Steps>,
    /// Examples per step (default: the model's recipe; `lth models <model>` shows it).
    #[arg(long)]
    pub batch_size: Option<u64>,
    /// sgd or adam (default: the model's recipe).
    #[arg(long)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate, the peak after any warmup (default: the model's recipe).
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD's momentum (default: the model's recipe; Adam ignores it).
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Nesterov momentum for SGD (true/false; default: the model's recipe).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub nesterov: Option<bool>,
    /// Weight decay, an L2 term on every parameter (default: the model's recipe).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Linear learning-rate warmup length, e.g. 500it (default: the model's recipe).
    // A negative count reaches the parser and its message, not clap's "unexpected argument".
    #[arg(long, allow_hyphen_values = true)]
    pub warmup: Option<Steps>,
    /// Steps at which the rate is multiplied by --gamma, comma-separated (80ep,120ep), or none
    /// (default: the model's recipe).
    // A negative count reaches the parser and its message, not clap's "unexpected argument".
    #[arg(long, allow_hyphen_values = true)]
    pub milestones: Option<StepList>,
    /// The factor applied to the learning rate at each milestone (default: the model's recipe).
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Evaluate every this many steps (default: every epoch).
    // A negative count reaches the parser and its message, not clap's "unexpected argument".
    #[arg(long, allow_hyphen_values = true)]
    pub eval_every: Option<Steps>,
    /// Training examples held out for validation (default: the model's recipe).
    #[arg(long)]
    pub validation: Option<u64>,
    /// Train on a fixed subset of this many examples (default: all of them).
    #[arg(long)]
    pub subset: Option<u64>,
    /// kaiming_normal or glorot_normal (default: the model family's).
    #[arg(long)]
    pub init: Option<Init>,
    /// Seed of the initial weights (default: the replicate number).
    #[arg(long)]
    pub init_seed: Option<u64>,
    /// The initial value of every BatchNorm scale (default: the family's, U(0, 1)); the Early-Bird
    /// reference uses 0.5.
    #[arg(long, value_name = "GAMMA")]
    pub bn_init: Option<f64>,
    /// Seed of the data order (default: the replicate number).
    #[arg(long)]
    pub data_order_seed: Option<u64>,
    /// Apply the dataset's standard training augmentation (true/false; default: the recipe's).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub augment: Option<bool>,
    /// Seed of the augmentation draws (default: the replicate number).
    #[arg(long)]
    pub augment_seed: Option<u64>,
    /// fp32, or bf16 (the forward pass under bfloat16 autocast; never a recipe's default).
    #[arg(long)]
    pub precision: Option<Precision>,
}

impl TrainFlags {
    /// The `--model` given.
    pub fn model_name(&self) -> Result<&str> {
        self.model
            .as_deref()
            .ok_or_else(|| TrainError::Invalid("--model is required".into()))
    }

    /// The model's recipe with these flags applied, validated.
    pub fn resolve(&self) -> Result<TrainHparams> {
        // Zero means zero, never "all": the stored defaults use 0 for "not set", which a flag
        // does not get to say.
        if self.subset == Some(0) {
            return Err(TrainError::Invalid(
                "--subset 0: at least one example (leave --subset out to train on all of them)"
                    .into(),
            ));
        }
        if self.eval_every.is_some_and(Steps::is_zero) {
            return Err(TrainError::Invalid(
                "--eval-every 0: at least one step (leave --eval-every out to evaluate once per \
                 epoch)"
                    .into(),
            ));
        }
        let mut hp = TrainHparams::recipe(self.model_name()?)?;
        let (d, m, t) = (&mut hp.dataset, &mut hp.model, &mut hp.training);
        set(&mut d.dataset, self.dataset.clone());
        set(&mut d.batch_size, self.batch_size);
        set(&mut d.validation, self.validation);
        set(&mut d.subset, self.subset);
        d.data_order_seed = self.data_order_seed.or(d.data_order_seed);
        set(&mut d.augment, self.augment);
        d.augment_seed = self.augment_seed.or(d.augment_seed);
        m.init = self.init.or(m.init);
        m.init_seed = self.init_seed.or(m.init_seed);
        m.bn_init = self.bn_init.or(m.bn_init);
        set(&mut t.steps, self.steps);
        set(&mut t.optimizer, self.optimizer);
        set(&mut t.lr, self.lr);
        set(&mut t.momentum, self.momentum);
        set(&mut t.nesterov, self.nesterov);
        set(&mut t.weight_decay, self.weight_decay);
        set(&mut t.warmup, self.warmup);
        set(&mut t.milestones, self.milestones.clone().map(|l| l.0));
        set(&mut t.gamma, self.gamma);
        set(&mut t.eval_every, self.eval_every);
        set(&mut t.precision, self.precision);
        hp.validate()?;
        Ok(hp)
    }
}

/// The value of every [`TrainFlags`] flag in `hp`, as the flag and what it means there: what
/// `lth models <model>` prints of a model's recipe.
pub fn flag_values(hp: &TrainHparams) -> Vec<(&'static str, String)> {
    let (d, m, t) = (&hp.dataset, &hp.model, &hp.training);
    let or = |v: Option<u64>, none: &str| v.map_or_else(|| none.to_owned(), |v| v.to_string());
    let optimizer = match t.optimizer {
        OptimizerKind::Sgd => "sgd",
        OptimizerKind::Adam => "adam",
    };
    let precision = match t.precision {
        Precision::Fp32 => "fp32",
        Precision::Bf16 => "bf16",
    };
    let milestones = if t.milestones.is_empty() {
        "none".to_owned()
    } else {
        t.milestones
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        ("--dataset", d.dataset.clone()),
        ("--steps", t.steps.to_string()),
        ("--batch-size", d.batch_size.to_string()),
        ("--optimizer", optimizer.to_owned()),
        ("--lr", t.lr.to_string()),
        ("--momentum", t.momentum.to_string()),
        ("--nesterov", t.nesterov.to_string()),
        ("--weight-decay", t.weight_decay.to_string()),
        ("--warmup", t.warmup.to_string()),
        ("--milestones", milestones),
        ("--gamma", t.gamma.to_string()),
        (
            "--eval-every",
            if t.eval_every.is_zero() {
                "every epoch".to_owned()
            } else {
                t.eval_every.to_string()
            },
        ),
        ("--validation", d.validation.to_string()),
        (
            "--subset",
            if d.subset == 0 {
                "all examples".to_owned()
            } else {
                d.subset.to_string()
            },
        ),
        (
            "--init",
            m.init
                .map_or_else(|| "the family's".to_owned(), |i| i.to_string()),
        ),
        ("--init-seed", or(m.init_seed, "the replicate number")),
        (
            "--bn-init",
            m.bn_init
                .map_or_else(|| "the family's, U(0, 1)".to_owned(), |g| g.to_string()),
        ),
        (
            "--data-order-seed",
            or(d.data_order_seed, "the replicate number"),
        ),
        ("--augment", d.augment.to_string()),
        ("--augment-seed", or(d.augment_seed, "the replicate number")),
        ("--precision", precision.to_owned()),
    ]
}

/// The attack adversarial training trains against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttackKind {
    /// Projected gradient descent (Madry et al.), from a random start in the ball.
    Pgd,
    /// The fast gradient sign method: one step of ε from the clean input.
    Fgsm,
}

/// Flags of adversarial training (`lth train --adversarial`, and a `fast_tickets` row's
/// adversarial trainings). Radii and steps are in pixel units of [0, 1] images.
#[derive(Args, Debug, Clone, Default)]
pub struct AdversarialFlags {
    /// Train on adversarial examples: pgd (Madry et al.) or fgsm (PGD with one step of ε).
    #[arg(long, value_name = "ATTACK")]
    pub adversarial: Option<AttackKind>,
    /// The L∞ radius in pixel units (default 0.1, the usual Fashion-MNIST radius; 8/255 ≈ 0.031
    /// is CIFAR-10's).
    #[arg(long, value_name = "EPS")]
    pub adv_epsilon: Option<f64>,
    /// PGD's steps (default 7; fgsm takes 1).
    #[arg(long, value_name = "N")]
    pub adv_steps: Option<u32>,
    /// PGD's step size in pixel units (default 2.5 ε / steps, Madry et al.'s).
    #[arg(long, value_name = "SIZE")]
    pub adv_step_size: Option<f64>,
    /// Steps of the PGD attack robust accuracy is measured under (default 20).
    #[arg(long, value_name = "N")]
    pub adv_eval_steps: Option<u32>,
    /// Test examples robust accuracy is measured on, the first of the test split (default 1000).
    #[arg(long, value_name = "N")]
    pub adv_eval_examples: Option<u64>,
}

impl AdversarialFlags {
    /// Whether any of these flags was given.
    pub fn given(&self) -> bool {
        self.adversarial.is_some()
            || self.adv_epsilon.is_some()
            || self.adv_steps.is_some()
            || self.adv_step_size.is_some()
            || self.adv_eval_steps.is_some()
            || self.adv_eval_examples.is_some()
    }

    /// The adversarial training these flags ask for (`None` without `--adversarial`), checked.
    pub fn resolve(&self) -> Result<Option<crate::AdversarialHparams>> {
        let Some(kind) = self.adversarial else {
            if self.given() {
                return Err(TrainError::Invalid(
                    "--adv-epsilon, --adv-steps, --adv-step-size, --adv-eval-steps and \
                     --adv-eval-examples set up --adversarial pgd or fgsm, which was not given"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let epsilon = self.adv_epsilon.unwrap_or(0.1);
        let (eval_steps, eval_examples) = (
            self.adv_eval_steps.unwrap_or(20),
            self.adv_eval_examples.unwrap_or(1000),
        );
        let mut hp = match (kind, self.adv_steps) {
            (AttackKind::Fgsm, Some(n)) if n != 1 => {
                return Err(TrainError::Invalid(format!(
                    "--adv-steps {n}: fgsm is one step (use --adversarial pgd for more)"
                )));
            }
            (AttackKind::Fgsm, _) => {
                crate::AdversarialHparams::fgsm(epsilon, eval_steps, eval_examples)
            }
            (AttackKind::Pgd, n) => {
                crate::AdversarialHparams::pgd(epsilon, n.unwrap_or(7), eval_steps, eval_examples)
            }
        };
        set(&mut hp.step_size, self.adv_step_size);
        hp.validate()?;
        Ok(Some(hp))
    }
}

/// The basis a generalized ticket is sparse in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BasisKind {
    /// The identity: ordinary IMP.
    Canonical,
    /// The orthonormal DCT-II on each linear layer's rows and columns.
    Dct,
    /// A Haar-random orthogonal matrix per side of each layer, drawn from the replicate.
    Random,
    /// The identity, pruned a row (one unit's incoming weights) at a time: structured pruning.
    Units,
    /// Each level's singular vectors of the weights it prunes, pruned on the diagonal (singular
    /// values): a low-rank factorisation.
    LowRank,
}

/// Flags of a generalized lottery ticket (a `generalized` row): the basis its coefficients are
/// pruned in.
#[derive(Args, Debug, Clone, Default)]
pub struct BasisFlags {
    /// Prune coefficients in this basis (Alabdulmohsin et al.).
    #[arg(long, value_name = "BASIS")]
    pub basis: Option<BasisKind>,
}

impl BasisKind {
    /// The basis of replicate `replicate` (a random basis is drawn from its number).
    pub fn basis(self, replicate: u64) -> lth_prune::basis::Basis {
        use lth_prune::basis::Basis;
        match self {
            BasisKind::Canonical => Basis::Canonical,
            BasisKind::Dct => Basis::Dct,
            BasisKind::Random => Basis::Random(replicate),
            BasisKind::Units => Basis::Units,
            BasisKind::LowRank => Basis::LowRank,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn flags(kind: Option<AttackKind>) -> AdversarialFlags {
        AdversarialFlags {
            adversarial: kind,
            ..AdversarialFlags::default()
        }
    }

    /// PGD defaults to Madry et al.'s shape (random start, step 2.5 ε / steps), FGSM is one step
    /// of ε from the clean input, and the settings without `--adversarial` or FGSM with more steps
    /// are refused by name.
    #[test]
    fn adversarial_flags_resolve_to_pgd_or_fgsm_and_refuse_what_does_not_fit() {
        assert_eq!(flags(None).resolve().unwrap(), None);
        let pgd = flags(Some(AttackKind::Pgd)).resolve().unwrap().unwrap();
        assert_eq!((pgd.epsilon, pgd.steps, pgd.random_start), (0.1, 7, true));
        assert!((pgd.step_size - 2.5 * 0.1 / 7.0).abs() < 1e-15);
        assert_eq!((pgd.eval_steps, pgd.eval_examples), (20, 1000));
        let fgsm = flags(Some(AttackKind::Fgsm)).resolve().unwrap().unwrap();
        assert_eq!(fgsm.attack(), crate::adversarial::Pgd::fgsm(0.1));
        let one_step_pgd = AdversarialFlags {
            adv_steps: Some(1),
            ..flags(Some(AttackKind::Pgd))
        };
        // One step of PGD is PGD's (random start, step 2.5 ε), not FGSM's.
        let one = one_step_pgd.resolve().unwrap().unwrap();
        assert!(one.random_start);
        assert!((one.step_size - 0.25).abs() < 1e-15, "{}", one.step_size);
        let e = AdversarialFlags {
            adv_steps: Some(3),
            ..flags(Some(AttackKind::Fgsm))
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--adv-steps 3: fgsm is one step"), "{e}");
        let e = AdversarialFlags {
            adv_epsilon: Some(0.2),
            ..flags(None)
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--adversarial pgd or fgsm"), "{e}");
        let e = AdversarialFlags {
            adv_epsilon: Some(0.0),
            ..flags(Some(AttackKind::Pgd))
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--adv-epsilon 0: a radius"), "{e}");
        let e = AdversarialFlags {
            adv_eval_examples: Some(0),
            ..flags(Some(AttackKind::Pgd))
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--adv-eval-examples 0: at least 1"), "{e}");
    }
}
