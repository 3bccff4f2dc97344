//! `lth tropical`: the tropical-geometry picture of a lottery level (Alfarra et al.): the trained
//! network's decision boundary and Newton polygon beside its ticket's and a random
//! reinitialisation's, with their shape distances.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use lth_lottery::Lottery;
use lth_train::Data;
use lth_tropical::{Panel, shape_distance};

/// What `lth tropical` draws.
#[derive(Args, Debug)]
pub struct TropicalArgs {
    /// The lottery's folder (`runs/lottery_<hash>`, or one of its `replicate_<n>`) of a network
    /// with one hidden layer on a 2-D dataset of two classes, e.g. `lth lottery --model lenet_100
    /// --dataset two-moons --levels 3 --rate 0.5`.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The level whose ticket is drawn (its mask on W0, and on a random reinitialisation).
    #[arg(long, default_value_t = 1)]
    pub level: u64,
    /// The replicate of a lottery folder (default: 1, or the folder's own).
    #[arg(long)]
    pub replicate: Option<u64>,
    /// Seed of the random reinitialisation (default: the replicate's, as the lottery's
    /// random-reinit branch draws it).
    #[arg(long)]
    pub reinit_seed: Option<u64>,
    /// The SVG written (default: tropical_<lottery folder>_replicate_<n>_level_<L>.svg here).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: &TropicalArgs) -> anyhow::Result<()> {
    let (hp, replicate, store) =
        super::transplant::from_folder("--from", &args.from, args.replicate)?;
    let from = || format!("--from {}", args.from.display());
    lth_repro::Experiment::check_row(&lth_repro::Tropical, &hp, args.level)
        .map_err(|why| anyhow::anyhow!("{}: {why}", from()))?;
    let info = lth_data::info(&hp.train.dataset.dataset)?;
    let data = Data::load(
        &hp.train.dataset,
        &lth_data::data_root(None),
        tch::Device::Cpu,
    )?;
    let lottery = Lottery::new(&store, hp, replicate, &data)?;
    if !lottery.level_done(args.level)? {
        anyhow::bail!(
            "{}: level {} of replicate {replicate} is not finished; train it with `lth lottery` \
             first",
            from(),
            args.level
        );
    }
    let seed = args.reinit_seed.unwrap_or(replicate);
    let nets = lth_repro::networks(&lottery, args.level, seed).with_context(from)?;
    let kept = 100.0 * nets.mask.density();
    let panels = vec![
        Panel {
            title: "trained (dense, level 0)".to_owned(),
            net: nets.trained,
        },
        Panel {
            title: format!("ticket: W0 under level {}'s mask ({kept:.1}%)", args.level),
            net: nets.ticket,
        },
        Panel {
            title: format!("random reinit. (seed {seed}) under the mask"),
            net: nets.reinit,
        },
    ];
    let out = args.out.clone().unwrap_or_else(|| {
        let name = lottery
            .dir()
            .path()
            .parent()
            .and_then(|p| p.file_name())
            .map_or_else(|| "lottery".into(), |n| n.to_string_lossy().into_owned());
        PathBuf::from(format!(
            "tropical_{name}_{}_{}.svg",
            lth_store::layout::replicate(replicate),
            lth_store::layout::level(args.level)
        ))
    });
    // The test points, where the dataset is drawn by lth; none over another 2-D dataset.
    let points = match info.format {
        lth_data::Format::Generated(lth_data::generated::Generator::TwoMoons) => {
            lth_data::generated::two_moons(600, "test")
        }
        _ => Vec::new(),
    };
    lth_tropical::picture(&panels, &points, &out)?;
    println!("wrote {}", out.display());
    println!(
        "{:<44} {:>9} {:>26}",
        "network", "vertices", "shape distance to trained"
    );
    let hulls: Vec<_> = panels.iter().map(|p| p.net.polygon().hull).collect();
    for (p, hull) in panels.iter().zip(&hulls) {
        let d = shape_distance(hull, &hulls[0])
            .map_or_else(|| "none (a point)".to_owned(), |d| format!("{d:.4}"));
        println!("{:<44} {:>9} {:>26}", p.title, hull.len(), d);
    }
    Ok(())
}
