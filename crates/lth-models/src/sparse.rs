//! Tickets that run faster: a pruned fully connected network (the LeNet family) held in
//! compressed sparse rows, whose forward pass touches only the weights the mask kept.
//!
//! A masked dense network multiplies every weight, kept or not. [`SparseMlp`] keeps each layer's
//! nonzero weights as CSR (row pointers, column indices, values; PyTorch's `crow_indices`,
//! `col_indices`, `values`) and runs the forward pass with one of two kernels:
//!
//! - [`SparseKernel::Own`]: a sparse × dense product written here. The activations are held
//!   feature-major (features × batch), so each kept weight w\[r, c\] adds w · x\[c, :\] to
//!   out\[r, :\], a contiguous run over the batch that the compiler vectorises. No libtorch call
//!   inside, so at batch 1 it is a plain CSR matrix-vector product without dispatch costs.
//! - [`SparseKernel::Torch`]: libtorch's sparse CSR `addmm` (MKL's sparse BLAS on the CPU).
//!
//! Both equal the masked dense forward up to float rounding of the sums' order
//! (`tests/sparse.rs`). `lth bench --suite sparse-inference` times them against the dense
//! forward; `lth export --sparse` writes [`SparseMlp::to_named_csr`].

use tch::{Device, Kind, Tensor};

use crate::{ModelError, Result};

/// One fully connected layer in compressed sparse rows.
#[derive(Debug)]
pub struct CsrLinear {
    /// The layer's PyTorch name without `.weight` (`fc_layers.0`, `fc`).
    pub name: String,
    rows: usize,
    cols: usize,
    row_ptr: Vec<u32>,
    col_idx: Vec<u32>,
    values: Vec<f32>,
    bias: Vec<f32>,
    /// The same layer as a libtorch sparse CSR tensor, for [`SparseKernel::Torch`].
    torch: Tensor,
    /// The bias as a column (rows × 1), for libtorch's `addmm`.
    torch_bias: Tensor,
}

/// Which kernel a sparse forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparseKernel {
    /// The sparse × dense product of this module (no libtorch call per layer).
    Own,
    /// libtorch's sparse CSR matrix product.
    Torch,
}

/// The tensor's values as float32, in its logical order; no libtorch call when it already is a
/// contiguous float32 CPU tensor (each call costs about a microsecond, which at batch 1 is the
/// size of a whole sparse layer).
fn to_f32(t: &Tensor) -> Result<Vec<f32>> {
    if t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous() {
        let mut out = vec![0f32; t.numel()];
        t.f_copy_data(&mut out, t.numel())?;
        return Ok(out);
    }
    Ok(Vec::<f32>::try_from(
        t.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .view(-1),
    )?)
}

/// CSR indices as the int64 tensor PyTorch's sparse formats take.
fn indices(v: &[u32]) -> Tensor {
    Tensor::from_slice(&v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>())
}

impl CsrLinear {
    /// The layer of dense `weight` (out × in; zeros are the pruned weights) and `bias`.
    pub fn from_dense(name: &str, weight: &Tensor, bias: &Tensor) -> Result<CsrLinear> {
        let bad = |problem: String| ModelError::StateMismatch {
            name: name.to_owned(),
            problem,
        };
        let size = weight.size();
        let [rows, cols] = size[..] else {
            return Err(bad(format!(
                "{name}.weight has shape {size:?}, not (out, in)"
            )));
        };
        if bias.size() != [rows] {
            return Err(bad(format!(
                "{name}.bias has shape {:?}, not ({rows})",
                bias.size()
            )));
        }
        let (rows, cols) = (rows as usize, cols as usize);
        let dense = to_f32(weight)?;
        let mut row_ptr = Vec::with_capacity(rows + 1);
        let (mut col_idx, mut values) = (Vec::new(), Vec::new());
        row_ptr.push(0u32);
        for r in 0..rows {
            for (c, &v) in dense[r * cols..(r + 1) * cols].iter().enumerate() {
                if v != 0.0 {
                    col_idx.push(c as u32);
                    values.push(v);
                }
            }
            row_ptr.push(values.len() as u32);
        }
        let bias = to_f32(bias)?;
        let torch = Tensor::f_sparse_csr_tensor_crow_col_value_size(
            &indices(&row_ptr),
            &indices(&col_idx),
            &Tensor::from_slice(&values),
            [rows as i64, cols as i64],
            (Kind::Float, Device::Cpu),
        )?;
        let torch_bias = Tensor::from_slice(&bias).view([rows as i64, 1]);
        Ok(CsrLinear {
            name: name.to_owned(),
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
            bias,
            torch,
            torch_bias,
        })
    }

    /// Kept weights.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// All weights, kept or not.
    pub fn total(&self) -> usize {
        self.rows * self.cols
    }

    /// out (rows × batch) = W · x (cols × batch) + bias, both feature-major.
    fn own(&self, x: &[f32], batch: usize, relu: bool) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * batch];
        for (r, row) in out.chunks_exact_mut(batch).enumerate() {
            row.fill(self.bias[r]);
            let (lo, hi) = (self.row_ptr[r] as usize, self.row_ptr[r + 1] as usize);
            if batch == 1 {
                // The matrix-vector product: one gathered sum per row, in four independent
                // partial sums so that the additions overlap.
                let (cols, vals) = (&self.col_idx[lo..hi], &self.values[lo..hi]);
                let mut acc = [0f32; 4];
                for (c, v) in cols.chunks_exact(4).zip(vals.chunks_exact(4)) {
                    for k in 0..4 {
                        acc[k] += v[k] * x[c[k] as usize];
                    }
                }
                let tail = cols.len() - cols.len() % 4;
                for (&c, &v) in cols[tail..].iter().zip(&vals[tail..]) {
                    acc[0] += v * x[c as usize];
                }
                row[0] += (acc[0] + acc[1]) + (acc[2] + acc[3]);
            } else {
                for (&c, &v) in self.col_idx[lo..hi].iter().zip(&self.values[lo..hi]) {
                    let xs = &x[c as usize * batch..(c as usize + 1) * batch];
                    for (o, &xi) in row.iter_mut().zip(xs) {
                        *o += v * xi;
                    }
                }
            }
            if relu {
                row.iter_mut().for_each(|o| *o = o.max(0.0));
            }
        }
        out
    }
}

/// A pruned fully connected network (ReLU between layers, none after the last) in CSR.
#[derive(Debug)]
pub struct SparseMlp {
    layers: Vec<CsrLinear>,
}

impl SparseMlp {
    /// The LeNet family's network (`lenet_<w>_<w>…`: `fc_layers.<i>`, then `fc`) from its named
    /// weights, in which the pruned weights are zero (apply the mask first).
    pub fn from_named(model: &str, weights: &[(String, Tensor)]) -> Result<SparseMlp> {
        let widths = crate::lenet::parse(model).ok_or_else(|| ModelError::Incompatible {
            name: model.to_owned(),
            what: "a sparse forward pass: only the LeNet family (fully connected) has one".into(),
        })?;
        let get = |name: &str| {
            weights
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| ModelError::StateMismatch {
                    name: model.to_owned(),
                    problem: format!("no tensor named {name}"),
                })
        };
        let names = (0..widths.len())
            .map(|i| format!("fc_layers.{i}"))
            .chain(std::iter::once("fc".to_owned()));
        let mut layers = Vec::new();
        for name in names {
            let layer = CsrLinear::from_dense(
                &name,
                get(&format!("{name}.weight"))?,
                get(&format!("{name}.bias"))?,
            )?;
            if let Some(prev) = layers.last().map(|l: &CsrLinear| l.rows)
                && prev != layer.cols
            {
                return Err(ModelError::StateMismatch {
                    name: model.to_owned(),
                    problem: format!("{name} takes {} inputs, not {prev}", layer.cols),
                });
            }
            layers.push(layer);
        }
        Ok(SparseMlp { layers })
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[CsrLinear] {
        &self.layers
    }

    /// Kept weights over all layers.
    pub fn nnz(&self) -> usize {
        self.layers.iter().map(CsrLinear::nnz).sum()
    }

    /// All weights over all layers.
    pub fn total(&self) -> usize {
        self.layers.iter().map(CsrLinear::total).sum()
    }

    /// The logits of a batch (batch × anything flattening to the first layer's inputs), on the
    /// CPU.
    pub fn forward(&self, xs: &Tensor, kernel: SparseKernel) -> Result<Tensor> {
        let batch = xs.size().first().copied().unwrap_or(0);
        let x = if xs.device() == Device::Cpu && xs.kind() == Kind::Float {
            xs.reshape([batch, -1])
        } else {
            xs.to_device(Device::Cpu)
                .to_kind(Kind::Float)
                .view([batch, -1])
        };
        let inputs = self.layers[0].cols as i64;
        if x.size()[1] != inputs {
            return Err(ModelError::Incompatible {
                name: "sparse network".into(),
                what: format!("inputs of {} features (it takes {inputs})", x.size()[1]),
            });
        }
        let last = self.layers.len() - 1;
        match kernel {
            SparseKernel::Torch => {
                let mut h = x.tr().contiguous();
                for (i, l) in self.layers.iter().enumerate() {
                    h = l.torch_bias.f_addmm(&l.torch, &h)?;
                    if i < last {
                        h = h.relu();
                    }
                }
                Ok(h.tr())
            }
            SparseKernel::Own => {
                let b = batch as usize;
                // Feature-major activations; one example is its own transpose.
                let mut h = if b == 1 {
                    to_f32(&x)?
                } else {
                    to_f32(&x.tr().contiguous())?
                };
                for (i, l) in self.layers.iter().enumerate() {
                    h = l.own(&h, b, i < last);
                }
                let rows = self.layers[last].rows as i64;
                let out = Tensor::from_slice(&h);
                Ok(if b == 1 {
                    out.view([1, rows])
                } else {
                    out.view([rows, batch]).tr().contiguous()
                })
            }
        }
    }

    /// The network as PyTorch names to tensors: per layer `<name>.weight.crow_indices`,
    /// `.col_indices` (int64), `.values` (float32) and `.size` (int64, [out, in]), and
    /// `<name>.bias`. `torch.sparse_csr_tensor(crow_indices, col_indices, values, size)` rebuilds
    /// each weight.
    pub fn to_named_csr(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for l in &self.layers {
            let w = format!("{}.weight", l.name);
            out.push((format!("{w}.crow_indices"), indices(&l.row_ptr)));
            out.push((format!("{w}.col_indices"), indices(&l.col_idx)));
            out.push((format!("{w}.values"), Tensor::from_slice(&l.values)));
            out.push((
                format!("{w}.size"),
                Tensor::from_slice(&[l.rows as i64, l.cols as i64]),
            ));
            out.push((format!("{}.bias", l.name), Tensor::from_slice(&l.bias)));
        }
        out
    }
}
