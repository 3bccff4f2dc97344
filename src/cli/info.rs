//! `lth models`, `lth datasets`, `lth info`: what the registry knows and what libtorch sees.

use lth_data::data_root;

use super::DataArgs;

pub fn models() {
    println!("{:<28} {:<16} source", "pattern", "example");
    for f in lth_models::families() {
        println!("{:<28} {:<16} {}", f.pattern, f.example, f.paper);
    }
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
        println!("  {:<16} {}/  {present}", d.name, d.dir);
    }
}

pub fn info() {
    println!("lth {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch threads: {}", tch::get_num_threads());
    println!(
        "CUDA available: {} ({} device(s)); cuDNN: {}",
        tch::Cuda::is_available(),
        tch::Cuda::device_count(),
        tch::Cuda::cudnn_is_available()
    );
    println!(
        "built with CUDA: {}; MKL: {}; OpenMP: {}",
        tch::utils::has_cuda(),
        tch::utils::has_mkl(),
        tch::utils::has_openmp()
    );
}
