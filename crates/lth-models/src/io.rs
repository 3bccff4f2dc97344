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
    let _io = lth_store::ledger::span(lth_store::ledger::Activity::Io);
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
    // Whatever fails (a full disk mid-write, the rename), the temporary file goes.
    Tensor::write_safetensors(&cpu, &tmp)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .and_then(|()| fs::rename(&tmp, path))
                .map_err(|e| e.to_string())
        })
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            fail(e)
        })
}

/// Reads the named tensors of a safetensors file (on the CPU), sorted by name.
pub fn load_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let _io = lth_store::ledger::span(lth_store::ledger::Activity::Io);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file belongs: the rename fails after the temporary was written.
        let target = dir.path().join("final.safetensors");
        fs::create_dir_all(target.join("occupied")).unwrap();
        let t = vec![("w".to_owned(), Tensor::from_slice(&[1.0f32, 2.0]))];
        assert!(save_tensors(&target, &t).is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["final.safetensors"]);
    }
}
