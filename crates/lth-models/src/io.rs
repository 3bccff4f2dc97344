//! Files of named tensors (weights, optimiser state, masks) in the safetensors format, written
//! atomically.
//!
//! A weights file holds exactly the model's variables under their PyTorch names, so
//! `safetensors.torch.load_file` followed by `load_state_dict` works in PyTorch.

use std::fs;
use std::path::Path;

use tch::Tensor;

use crate::{ModelError, Result};

/// Writes named tensors to `path` atomically (CPU copies, contiguous).
pub fn save_tensors(path: &Path, named: &[(String, Tensor)]) -> Result<()> {
    let fail = |problem: String| ModelError::File {
        path: path.to_owned(),
        problem,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    }
    let cpu: Vec<(String, Tensor)> = named
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.detach().to_device(tch::Device::Cpu).contiguous(),
            )
        })
        .collect();
    let tmp = lth_store::tmp_path(path);
    Tensor::write_safetensors(&cpu, &tmp).map_err(|e| fail(e.to_string()))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            fail(e.to_string())
        })
}

/// Reads the named tensors of a safetensors file (on the CPU), sorted by name.
pub fn load_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.is_file() {
        return Err(ModelError::File {
            path: path.to_owned(),
            problem: "no such file".into(),
        });
    }
    let mut named = Tensor::read_safetensors(path).map_err(|e| ModelError::File {
        path: path.to_owned(),
        problem: format!("not a readable safetensors file ({e})"),
    })?;
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(named)
}
