//! Methods: the ways of training one run. A method is one file: its run's hyperparameters (what
//! `hparams.json` holds and its folder's hash is taken of), its flags, its checks, what it does to
//! the run (a mask before the first step, hooks during training, files at the end), and what a
//! person is told about a finished run. The registry (`methods!` below) lists the methods, one
//! line each, declaring their modules; `lth train` knows them only through [`Method`].
//!
//! | Method | File | Flag | Run folder |
//! |---|---|---|---|
//! | dense training | `method/mod.rs` ([`Dense`]) | none | `train_<hash>` |
//! | pruning at initialisation | `method/pai.rs` ([`crate::PrunedRun`]) | `--prune-at-init` | `pai_<hash>` |
//! | sparse training from scratch | `method/sparse.rs` ([`crate::SparseRun`]) | `--sparse` | `sparse_<hash>` |
//! | gradual magnitude pruning | `method/gmp.rs` ([`crate::GmpRun`]) | `--gmp` | `gmp_<hash>` |
//! | learned supermask | `method/supermask.rs` ([`crate::SupermaskRun`]) | `--supermask` | `supermask_<hash>` |
//! | Early-Bird search | `method/early_bird.rs` ([`crate::EarlyBirdRun`]) | `--early-bird` | `earlybird_<hash>` |
//!
//! Adversarial training is not a method but a part of the step (`--adversarial` changes the
//! batch the loss sees), so it is a training hyperparameter that dense training takes.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use lth_prune::Mask;
use lth_store::{RunDir, RunKind, Store};

use crate::{Data, Hooks, Progress, Result, RunSummary, Setup, TrainHparams, run_resumable};

/// The store's side of a run's hyperparameters, given by every type that serialises: where its
/// folder is and how `hparams.json` is bound to it. (A supertrait of [`Method`], so that a
/// `dyn Method` has them.)
pub trait Stored {
    /// The folder `<kind>_<hash of these hyperparameters>` in `store`.
    fn home_in(&self, kind: RunKind, store: &Store) -> RunDir;
    /// Writes these hyperparameters to `run`'s `hparams.json`, or refuses a folder that holds
    /// other ones.
    fn bind_to(&self, run: &RunDir) -> Result<()>;
}

impl<T: Serialize + DeserializeOwned + Default> Stored for T {
    fn home_in(&self, kind: RunKind, store: &Store) -> RunDir {
        store.run(kind, self)
    }

    fn bind_to(&self, run: &RunDir) -> Result<()> {
        Ok(run.bind_hparams(self)?)
    }
}

/// A way of training one run (see the module's documentation).
pub trait Method: Stored + std::fmt::Debug {
    /// The flag, with its value, that asks for the method (`--sparse rigl`); empty for dense
    /// training.
    fn flag(&self) -> String;
    /// The kind of run it trains: the first part of its folder's name.
    fn kind(&self) -> RunKind;
    /// The run's training hyperparameters.
    fn train_hparams(&self) -> &TrainHparams;
    /// What the method does, for the line that announces a run (`, sparse from scratch (…)`).
    fn describe(&self) -> String;
    /// Checks the method against its model's layers (built on the CPU, no data read): a bad layer
    /// name or budget is an error before any training.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// Checks the method against the run's data (its length), before anything is written.
    fn check_data(&self, _data: &Data) -> Result<()> {
        Ok(())
    }
    /// Trains replicate `replicate` in `dir`, resumably: a finished replicate trains nothing and
    /// gives its summary again. Returns the summary and the final mask of a sparse run.
    fn train(
        &self,
        dir: &RunDir,
        replicate: u64,
        data: &Data,
        progress: &mut dyn Progress,
    ) -> Result<(RunSummary, Option<Mask>)>;
    /// Lines about a finished replicate's own files, for a person (none by default).
    fn report(&self, _dir: &RunDir, _summary: &RunSummary) -> Vec<String> {
        Vec::new()
    }
    /// Whether several replicates may train at once, packed into one network (`lth train
    /// --replicates`): only runs without hooks or masks (dense training) can.
    fn packs(&self) -> bool {
        false
    }
    /// The run's folder in `store`.
    fn home(&self, store: &Store) -> RunDir {
        self.home_in(self.kind(), store)
    }
}

/// Dense training: the plain loop, what `lth train` without a method's flag stores (folder
/// `train_<hash>`; `hparams.json` holds the [`TrainHparams`] themselves).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Dense(pub TrainHparams);

impl Method for Dense {
    fn flag(&self) -> String {
        String::new()
    }

    fn kind(&self) -> RunKind {
        RunKind::Train
    }

    fn train_hparams(&self) -> &TrainHparams {
        &self.0
    }

    fn describe(&self) -> String {
        String::new()
    }

    fn train(
        &self,
        dir: &RunDir,
        replicate: u64,
        data: &Data,
        progress: &mut dyn Progress,
    ) -> Result<(RunSummary, Option<Mask>)> {
        let mut setup = Setup::new(&self.0, replicate, data)?;
        let plan = setup.plan(&self.0);
        let summary = run_resumable(dir, &mut setup, &plan, &mut Hooks::none(), progress)?;
        Ok((summary, None))
    }

    fn packs(&self) -> bool {
        true
    }
}

/// A report's line for one layer of a mask: its name, kept and total counts, and the share kept.
pub(crate) fn layer_line(name: &str, kept: i64, total: i64) -> String {
    format!(
        "    {name:<28} {kept:>9} of {total:>9} ({:6.2}%)",
        100.0 * kept as f64 / total.max(1) as f64
    )
}

/// The network of `hp` on the CPU (replicate 0's initialisation, `--bn-init` applied), for checks
/// of its layers before any data is read.
pub fn outline(hp: &TrainHparams) -> Result<lth_models::Model> {
    let info = lth_data::info(&hp.dataset.dataset)?;
    crate::initial_model(hp, 0, info, tch::Device::Cpu)
}

#[cfg(feature = "clap")]
/// Sets `field` to `value` where one was given (a flag overriding a default).
pub(crate) fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

#[cfg(feature = "clap")]
/// How a sparsity is spread over the layers (`lth train --sparse`, `lth sparsity`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DistributionFlags {
    /// uniform, er or erk (Erdős–Rényi-kernel; the default).
    #[arg(long)]
    pub distribution: Option<lth_prune::Spread>,
    /// ERK's power on the raw density (default 1; below 1 is closer to uniform).
    #[arg(long)]
    pub erk_power: Option<f64>,
    /// Leave the first prunable layer dense, outside the budget (rigl's uniform variant).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub first_layer_dense: Option<bool>,
    /// Layers left dense, comma-separated; they count against the budget, so the others get
    /// sparser and the network's total stays at --sparsity.
    #[arg(long, value_delimiter = ',', value_name = "LAYER")]
    pub dense_layers: Vec<String>,
    /// Per-layer sparsities, comma-separated LAYER=S; these layers are outside the budget (the
    /// others meet --sparsity among themselves).
    #[arg(long, value_delimiter = ',', value_name = "LAYER=S")]
    pub layer_sparsity: Vec<String>,
}

#[cfg(feature = "clap")]
impl DistributionFlags {
    /// The per-layer sparsity map of `--layer-sparsity`.
    pub fn layer_sparsity(&self) -> Result<std::collections::BTreeMap<String, f64>> {
        self.layer_sparsity
            .iter()
            .map(|item| {
                let bad = || {
                    crate::TrainError::Invalid(format!(
                        "--layer-sparsity: `{item}` is not LAYER=S with S in [0, 1]"
                    ))
                };
                let (name, s) = item.split_once('=').ok_or_else(bad)?;
                let s: f64 = s.trim().parse().map_err(|_| bad())?;
                if !(0.0..=1.0).contains(&s) {
                    return Err(bad());
                }
                Ok((name.trim().to_owned(), s))
            })
            .collect()
    }

    /// `mode` at `sparsity` spread as these flags say.
    pub fn hparams(&self, mode: crate::SparseMode, sparsity: f64) -> Result<crate::SparseHparams> {
        let mut sp = crate::SparseHparams::new(
            mode,
            self.distribution
                .unwrap_or(lth_prune::Spread::ErdosRenyiKernel),
            sparsity,
        );
        set(&mut sp.erk_power, self.erk_power);
        sp.first_layer_dense = self.first_layer_dense.unwrap_or(false);
        sp.dense_layers = self.dense_layers.clone();
        sp.layer_sparsity = self.layer_sparsity()?;
        Ok(sp)
    }

    /// Whether any of these flags was given.
    pub fn given(&self) -> bool {
        self.distribution.is_some()
            || self.erk_power.is_some()
            || self.first_layer_dense.is_some()
            || !self.dense_layers.is_empty()
            || !self.layer_sparsity.is_empty()
    }

    /// Refuses these flags when the run's method does not spread a sparsity (`used`: it does).
    pub fn refuse_unused(&self, used: bool) -> Result<()> {
        if self.given() && !used {
            return Err(crate::TrainError::Invalid(
                "--distribution and the mask-update flags need --sparse static|set|rigl (the \
                 spread flags also fit --gmp)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The registry: one line per method, its file (a module of this one), its flags' type and their
/// heading in `lth train --help`.
/// Declares the module and gives the clap group of every method's flags ([`MethodArgs`], with the
/// spread they share) and the list [`MethodArgs::groups`] that resolves it.
macro_rules! methods {
    ($($module:ident: $flags:ident, $heading:literal;)*) => {
        $(pub mod $module;)*

        /// The flags of every method `lth train` runs, each group under its heading in `--help`,
        /// with the spread they share.
        #[cfg(feature = "clap")]
        #[derive(clap::Args, Debug, Clone, Default)]
        pub struct MethodArgs {
            $(#[command(flatten, next_help_heading = $heading)] pub $module: $module::$flags,)*
            #[command(flatten, next_help_heading = "Layerwise sparsity (--sparse and --gmp)")]
            pub spread: DistributionFlags,
        }

        #[cfg(feature = "clap")]
        impl MethodArgs {
            /// Every method's group of flags, in the registry's order.
            pub fn groups(&self) -> Vec<&dyn MethodFlags> {
                vec![$(&self.$module),*]
            }
        }
    };
}

methods! {
    pai: PaiFlags, "Pruning at initialisation (--prune-at-init)";
    sparse: SparseFlags, "Sparse training from scratch (--sparse)";
    gmp: GmpFlags, "Gradual magnitude pruning (--gmp)";
    supermask: SupermaskFlags, "Learned supermask (--supermask)";
    early_bird: EarlyBirdMethodFlags, "Early-Bird search (--early-bird)";
}

#[cfg(feature = "clap")]
pub use registry::{MethodFlags, Shared, Takes};

#[cfg(feature = "clap")]
mod registry {
    use super::{Dense, DistributionFlags, Method, MethodArgs};
    use crate::{Result, TrainError, TrainHparams};

    /// The flags every method may share: `--sparsity` (declared with pruning at initialisation,
    /// whose group `lth lottery` also takes for its level 1) and the layerwise spread.
    #[derive(Debug, Clone, Copy)]
    pub struct Shared<'a> {
        pub sparsity: Option<f64>,
        pub spread: &'a DistributionFlags,
    }

    /// The shared flags a method reads.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Takes {
        Nothing,
        /// `--sparsity`.
        Sparsity,
        /// `--sparsity` and the layerwise spread (`--distribution` and its flags).
        SparsityAndSpread,
    }

    /// A method's group of flags: one clap group, which `lth train` and spec rows parse alike.
    pub trait MethodFlags {
        /// The flag and value that ask for the method (`--sparse rigl`), if given.
        fn asked(&self) -> Option<String>;
        /// The shared flags the method reads (none by default).
        fn takes(&self) -> Takes {
            Takes::Nothing
        }
        /// The method the flags ask for, checked (`None` when not asked); refuses the group's
        /// other flags given without the one that asks for it.
        fn method(&self, shared: Shared, hp: &TrainHparams) -> Result<Option<Box<dyn Method>>>;
    }

    impl MethodArgs {
        /// `--sparsity`, which every method that prunes reads from pruning at initialisation's
        /// group.
        pub fn shared(&self) -> Shared<'_> {
            Shared {
                sparsity: self.pai.sparsity,
                spread: &self.spread,
            }
        }

        /// The one method these flags ask for, checked against `hp` (dense training when none
        /// is asked for). Two methods' flags are refused, naming both, before either is checked;
        /// so are the shared flags when the method does not take them.
        pub fn resolve(&self, hp: &TrainHparams) -> Result<Box<dyn Method>> {
            let groups = self.groups();
            let asked: Vec<String> = groups.iter().filter_map(|g| g.asked()).collect();
            if let [a, b, ..] = asked.as_slice() {
                return Err(TrainError::Invalid(format!(
                    "{a} and {b} exclude each other (a run trains by one method)"
                )));
            }
            let shared = self.shared();
            let mut chosen = None;
            for g in &groups {
                if let Some(m) = g.method(shared, hp)? {
                    chosen = Some((m, *g));
                }
            }
            let takes = chosen.as_ref().map_or(Takes::Nothing, |(_, g)| g.takes());
            self.spread
                .refuse_unused(takes == Takes::SparsityAndSpread)?;
            if shared.sparsity.is_some() && takes == Takes::Nothing {
                return Err(TrainError::Invalid(
                    "--sparsity needs --prune-at-init or --sparse (static|set|rigl) or --gmp: \
                     it is the fraction of prunable weights they remove"
                        .into(),
                ));
            }
            Ok(chosen.map_or_else(
                || Box::new(Dense(hp.clone())) as Box<dyn Method>,
                |(m, _)| m,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Dense training keeps the folder and `hparams.json` that `lth train` always gave it: the
    /// hash of the training hyperparameters themselves, so stores written before methods had a
    /// trait are found.
    #[test]
    fn dense_training_keeps_the_folder_of_its_hyperparameters() {
        let mut hp = TrainHparams::recipe("lenet_300_100").unwrap();
        hp.training.lr = 0.05;
        let store = Store::new("runs");
        let dense = Dense(hp.clone());
        assert_eq!(
            dense.home(&store).path(),
            store.run(RunKind::Train, &hp).path()
        );
        // The `hparams.json` it binds is the one a dense run always bound: a folder bound by
        // either accepts the other, and refuses other hyperparameters.
        let tmp = tempfile::tempdir().unwrap();
        let run = Store::new(tmp.path()).run(RunKind::Train, &hp);
        run.create().unwrap();
        dense.bind_to(&run).unwrap();
        run.bind_hparams(&hp).unwrap();
        let mut other = hp.clone();
        other.training.lr = 0.1;
        assert!(Dense(other).bind_to(&run).is_err());
        assert!(dense.packs() && dense.flag().is_empty() && dense.describe().is_empty());
    }

    #[cfg(feature = "clap")]
    mod registry {
        use clap::Parser;

        use super::*;
        use crate::flags::MethodArgs;

        #[derive(Parser, Debug)]
        #[command(no_binary_name = true)]
        struct Cli {
            #[command(flatten)]
            methods: MethodArgs,
        }

        /// The flags that ask for each registered method, in the registry's order, with the
        /// kind of run each gives and a model it fits. A method added to the registry without a
        /// line here fails `every_method_in_the_registry_is_asked_for_by_its_flags`.
        const ASKED: [(&str, &[&str], RunKind, &str); 5] = [
            (
                "--prune-at-init snip",
                &["--sparsity", "0.5"],
                RunKind::PruneAtInit,
                LENET,
            ),
            (
                "--sparse rigl",
                &["--sparsity", "0.5"],
                RunKind::Sparse,
                LENET,
            ),
            ("--gmp", &["--sparsity", "0.5"], RunKind::Gmp, LENET),
            ("--supermask edge-popup", &[], RunKind::Supermask, LENET),
            // Early-Bird prunes channels: a network with BatchNorm scales.
            ("--early-bird", &[], RunKind::EarlyBird, SMALL_VGG),
        ];
        const LENET: &str = "lenet_300_100";
        const SMALL_VGG: &str = "cifar_vgg_11:channels=4,4,8,8,8,8,8,8";

        /// The flags that ask for a method, with what else it needs.
        fn args<'a>(asked: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
            asked.split(' ').chain(rest.iter().copied()).collect()
        }

        fn resolve_for(model: &str, args: &[&str]) -> Result<Box<dyn Method>> {
            let hp = TrainHparams::recipe(model).unwrap();
            Cli::try_parse_from(args).unwrap().methods.resolve(&hp)
        }

        fn resolve(args: &[&str]) -> Result<Box<dyn Method>> {
            resolve_for(LENET, args)
        }

        fn refusal(args: &[&str]) -> String {
            resolve(args).unwrap_err().to_string()
        }

        /// Each method's flags give that method: its run kind, its flag in errors, and a folder
        /// named by its kind and the hash of its whole run (so two methods never share one).
        #[test]
        fn every_method_in_the_registry_is_asked_for_by_its_flags() {
            let cli = Cli::try_parse_from(["--sparsity", "0.5"]).unwrap();
            assert_eq!(cli.methods.groups().len(), ASKED.len());
            let store = Store::new("runs");
            let mut folders = std::collections::BTreeSet::new();
            for (asked, rest, kind, model) in ASKED {
                let m = resolve_for(model, &args(asked, rest)).unwrap();
                assert_eq!(m.kind(), kind, "{asked}");
                assert_eq!(m.flag(), asked);
                assert!(!m.describe().is_empty() && !m.packs(), "{asked}");
                m.check().unwrap();
                let home = m.home(&store);
                let name = home
                    .path()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                assert!(name.starts_with(&format!("{}_", kind.name())), "{name}");
                assert!(folders.insert(name));
            }
            let dense = resolve(&[]).unwrap();
            assert_eq!(dense.kind(), RunKind::Train);
        }

        /// Any two methods' flags are refused, naming both, before either is checked.
        #[test]
        fn two_methods_exclude_each_other_whichever_they_are() {
            for (i, (a, ..)) in ASKED.iter().enumerate() {
                for (b, ..) in &ASKED[i + 1..] {
                    let both = args(a, &args(b, &[]));
                    let e = refusal(&both);
                    assert!(e.contains("exclude each other"), "{both:?}: {e}");
                    assert!(e.contains(a) && e.contains(b), "{e}");
                }
            }
        }

        /// The shared flags are refused where the method does not take them, and a group's own
        /// flags without the one that asks for it are refused by name.
        #[test]
        fn shared_and_stray_flags_are_refused_by_name() {
            for (args, expected) in [
                (
                    &["--sparsity", "0.5"][..],
                    "--sparsity needs --prune-at-init",
                ),
                (
                    &["--supermask", "bernoulli", "--sparsity", "0.5"][..],
                    "--sparsity needs --prune-at-init",
                ),
                (
                    &["--distribution", "erk"][..],
                    "--distribution and the mask-update flags",
                ),
                (
                    &[
                        "--prune-at-init",
                        "snip",
                        "--sparsity",
                        "0.5",
                        "--distribution",
                        "er",
                    ][..],
                    "--distribution and the mask-update flags",
                ),
                (
                    &["--prune-rounds", "3"][..],
                    "--prune-rounds need --prune-at-init",
                ),
                (&["--update-every", "3"][..], "need --sparse"),
                (&["--gmp-every", "10it"][..], "need --gmp"),
                (&["--keep", "0.3"][..], "need --supermask"),
                (&["--eb-window", "3"][..], "need --early-bird"),
                (
                    &["--early-bird", "--sparsity", "0.5"][..],
                    "--sparsity needs --prune-at-init",
                ),
                (&["--sparse", "set"][..], "--sparse set needs --sparsity"),
                (&["--gmp"][..], "--gmp needs --sparsity"),
            ] {
                let e = refusal(args);
                assert!(e.contains(expected), "{args:?}: {e}");
            }
            // The spread fits both methods that spread a sparsity.
            for m in [&["--sparse", "static"][..], &["--gmp"][..]] {
                let mut args = m.to_vec();
                args.extend(["--sparsity", "0.5", "--distribution", "uniform"]);
                resolve(&args).unwrap();
            }
        }

        /// A method's check reads its model's layers before any data: a layer the model does
        /// not have is refused.
        #[test]
        fn a_method_checks_its_layers_before_any_data() {
            let e = resolve(&[
                "--sparse",
                "rigl",
                "--sparsity",
                "0.9",
                "--dense-layers",
                "fc9",
            ])
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
            assert!(e.contains("fc9"), "{e}");
            // Early-Bird prunes channels: a network without BatchNorm scales has none.
            let e = resolve(&["--early-bird"])
                .unwrap()
                .check()
                .unwrap_err()
                .to_string();
            assert!(e.contains("lenet_300_100"), "{e}");
        }
    }
}
