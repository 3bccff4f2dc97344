//! `lth models`, `lth datasets`, `lth info`: what the registry knows and what libtorch sees.

use lth_data::data_root;

use super::DataArgs;

/// `lth models`: the registry's families in aligned columns, or with a model name, its recipe as
/// the flags that override it.
pub fn models(args: &super::ModelsArgs) -> anyhow::Result<()> {
    if let Some(model) = &args.model {
        let hp = lth_train::TrainHparams::recipe(model)?;
        // The name is checked as a network, not only by its family's prefix.
        let info = lth_data::info(&hp.dataset.dataset)?;
        lth_models::kernels(model, info.shape, info.num_classes)?;
        println!(
            "{model}: the recipe its training flags default to (lth-train's `TrainHparams::recipe`, the papers' settings)"
        );
        let values = lth_train::flags::flag_values(&hp);
        let width = values.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
        for (flag, value) in values {
            println!("  {flag:<width$}  {value}");
        }
        return Ok(());
    }
    let families = lth_models::families();
    let w = |f: fn(&lth_models::Family) -> &str, title: &str| {
        families
            .iter()
            .map(|x| f(x).chars().count())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (wp, we) = (w(|f| f.pattern, "pattern"), w(|f| f.example, "example"));
    println!("{:<wp$}  {:<we$}  source", "pattern", "example");
    for f in families {
        println!("{:<wp$}  {:<we$}  {}", f.pattern, f.example, f.paper);
    }
    println!("`lth models <name>` prints a model's recipe (the defaults of its training flags).");
    Ok(())
}

pub fn datasets(args: &DataArgs) {
    let root = data_root(args.data_dir.as_deref());
    println!("data root: {}", root.display());
    for d in lth_data::registry() {
        let present = match lth_data::Dataset::load(d, &root) {
            Ok(ds) => format!("present ({} train, {} test)", ds.train.len(), ds.test.len()),
            Err(lth_data::DataError::Missing { .. }) => "absent".to_owned(),
            Err(e) => format!("unreadable: {e}"),
        };
        let place = match d.format {
            lth_data::Format::Generated(_) => "(drawn by lth)".to_owned(),
            _ => format!("{}/", d.dir),
        };
        println!("  {:<16} {place}  {present}", d.name);
    }
}

pub fn info() {
    println!("lth {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch threads: {}", tch::get_num_threads());
    println!(
        "CUDA available: {} ({}); cuDNN: {}",
        tch::Cuda::is_available(),
        lth_report::count(tch::Cuda::device_count(), "device"),
        tch::Cuda::cudnn_is_available()
    );
    println!(
        "built with CUDA: {}; MKL: {}; OpenMP: {}",
        tch::utils::has_cuda(),
        tch::utils::has_mkl(),
        tch::utils::has_openmp()
    );
}

/// `lth verify`: every finished unit under `root` (a folder with a `done.json`) checked against
/// its digests; one line per damaged unit, then the counts. Fails when any unit is damaged.
pub fn verify(root: &std::path::Path) -> anyhow::Result<()> {
    if !root.is_dir() {
        anyhow::bail!("{}: no run store here (not a folder)", root.display());
    }
    let (mut checked, mut damaged, mut unrecorded) = (0, 0, 0);
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let mut children: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        children.sort();
        stack.extend(children.into_iter().rev());
        let run = lth_store::RunDir::new(&dir);
        // A folder's hyperparameters must read, or the run behind it cannot be found again.
        let hparams = run.join(lth_store::HPARAMS_FILE);
        if hparams.is_file()
            && let Err(e) = std::fs::read(&hparams)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string())
                })
        {
            damaged += 1;
            println!(
                "DAMAGED {}: {} is not readable JSON ({e})",
                dir.display(),
                lth_store::HPARAMS_FILE
            );
        }
        if !run.join(lth_store::DONE_FILE).exists() {
            continue;
        }
        checked += 1;
        // One unit's unreadable done.json is that unit's damage; the others are still checked.
        match run
            .recorded_files()
            .and_then(|files| Ok((files, run.verify()?)))
        {
            Ok((None, _)) => unrecorded += 1,
            Ok((Some(_), Some(d))) => {
                damaged += 1;
                println!("DAMAGED {}: {} {}", dir.display(), d.file, d.problem);
            }
            Ok((Some(_), None)) => match lth_train::summary_disagrees(&run) {
                Ok(None) => {}
                Ok(Some(problem)) => {
                    damaged += 1;
                    println!("DAMAGED {}: {problem}", dir.display());
                }
                Err(e) => {
                    damaged += 1;
                    println!("DAMAGED {}: {e}", dir.display());
                }
            },
            Err(e) => {
                damaged += 1;
                println!("DAMAGED {}: {e}", dir.display());
            }
        }
    }
    println!(
        "verify {}: {checked} finished units, {damaged} damaged, {unrecorded} without digests \
         (finished before lth recorded them)",
        root.display()
    );
    if damaged > 0 {
        anyhow::bail!(
            "{} damaged: re-run their commands with --retrain-damaged, or delete their folders",
            lth_report::count(damaged, "unit")
        );
    }
    Ok(())
}
