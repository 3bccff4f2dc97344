//! `lth export --sparse`: a lottery level's ticket as compressed sparse rows, for PyTorch.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use lth_models::sparse::SparseMlp;

/// What `lth export` writes.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The lottery's folder (`runs/lottery_<hash>`, or one of its `replicate_<n>`) whose ticket
    /// is written in compressed sparse rows, one per layer (LeNet family).
    #[arg(long, value_name = "DIR")]
    pub sparse: PathBuf,
    /// The level whose ticket is written (its trained weights under its mask; 0 is dense).
    #[arg(long)]
    pub level: u64,
    /// The replicate of a lottery folder (default: 1, or the folder's own).
    #[arg(long)]
    pub replicate: Option<u64>,
    /// The file written (default: ticket_<lottery folder>_replicate_<n>_level_<L>.safetensors
    /// here).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let (hp, replicate, store) =
        super::transplant::from_folder("--sparse", &args.sparse, args.replicate)?;
    let model = &hp.train.model.model;
    let weights = lth_lottery::level_ticket(&store, &hp, replicate, args.level)
        .with_context(|| format!("--sparse {}", args.sparse.display()))?;
    let sparse = SparseMlp::from_named(model, &weights)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let folder = store.run(lth_store::RunKind::Lottery, &hp);
        let name = folder.path().file_name().map_or_else(
            || lth_store::RunKind::Lottery.name().into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let stem = format!("ticket_{name}_{}", lth_store::layout::replicate(replicate));
        PathBuf::from(format!(
            "{}.safetensors",
            lth_store::layout::at_level(&stem, args.level)
        ))
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: cannot create {}", out.display(), dir.display()))?;
    }
    lth_models::save_tensors(&out, &sparse.to_named_csr())?;
    println!(
        "wrote {}: {model}, level {}, {} of {} weights kept ({:.2}%), {} in compressed sparse \
         rows; in PyTorch: python3 bench/load_sparse_ticket.py {}",
        out.display(),
        args.level,
        sparse.nnz(),
        sparse.total(),
        100.0 * sparse.nnz() as f64 / sparse.total() as f64,
        lth_report::count(sparse.layers().len(), "layer"),
        out.display()
    );
    Ok(())
}
