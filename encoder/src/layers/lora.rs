//! A linear layer carrying several task LoRA deltas, unmerged.
//!
//! jina-embeddings-v4 keeps one LoRA per task on every decoder projection and on the
//! multi-vector projector (`MultiAdapterLinear` in jina's `custom_lora_module.py`):
//! `y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ` with `A: [r, in]`, `B: [out, r]` and `s = alpha/r`
//! (or `alpha/√r` with rsLoRA). Keeping all tasks resident costs `2·r·(in+out)` extra
//! FLOPs per token and lets one process serve every task; [`LoraLinear::merge`] folds one
//! task into the weight for single-task serving.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

/// One task's low-rank pair.
#[derive(Debug, Clone)]
struct Delta {
    a: Tensor,
    b: Tensor,
}

/// Where a model finds its task adapters: a VarBuilder rooted at the adapter file, the task
/// names in adapter order, and the scaling.
#[derive(Clone)]
pub struct TaskAdapters<'a> {
    pub vb: VarBuilder<'a>,
    pub tasks: Vec<String>,
    pub scaling: f64,
    pub rank: usize,
}

impl<'a> TaskAdapters<'a> {
    /// Adapters scoped to a sub-module, as `VarBuilder::pp` does for weights.
    pub fn pp(&self, name: &str) -> Self {
        TaskAdapters {
            vb: self.vb.pp(name),
            tasks: self.tasks.clone(),
            scaling: self.scaling,
            rank: self.rank,
        }
    }
}

/// `Linear` (optional bias) plus zero or more task deltas.
#[derive(Debug, Clone)]
pub struct LoraLinear {
    weight: Tensor,
    bias: Option<Tensor>,
    deltas: Vec<Delta>,
    scaling: f64,
    /// Set once a task has been merged into `weight`; then `task` must be that task or `None`.
    merged: Option<usize>,
}

impl LoraLinear {
    /// Loads `weight` (and `bias` when `with_bias`) from `vb`, and one `lora_A.{task}` /
    /// `lora_B.{task}` pair per task from `adapters` when given.
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        with_bias: bool,
        vb: VarBuilder,
        adapters: Option<&TaskAdapters>,
    ) -> Result<Self> {
        let weight = vb.get((out_dim, in_dim), "weight")?;
        let bias = if with_bias {
            Some(vb.get(out_dim, "bias")?)
        } else {
            None
        };
        let (deltas, scaling) = match adapters {
            None => (Vec::new(), 1.0),
            Some(ad) => {
                let r = ad.rank;
                let mut deltas = Vec::with_capacity(ad.tasks.len());
                for task in &ad.tasks {
                    let a = ad.vb.pp("lora_A").pp(task).get((r, in_dim), "weight")?;
                    let b = ad.vb.pp("lora_B").pp(task).get((out_dim, r), "weight")?;
                    deltas.push(Delta { a, b });
                }
                (deltas, ad.scaling)
            }
        };
        Ok(LoraLinear {
            weight,
            bias,
            deltas,
            scaling,
            merged: None,
        })
    }

    /// Number of task deltas held.
    pub fn num_tasks(&self) -> usize {
        self.deltas.len()
    }

    /// `x·Wᵀ + b`, plus the delta of `task` when given. `x` is `[.., in]`.
    pub fn forward_task(&self, x: &Tensor, task: Option<usize>) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let in_dim = dims[dims.len() - 1];
        let rows = x.elem_count() / in_dim.max(1);
        let x2 = x.reshape((rows, in_dim))?;
        let mut y = x2.matmul(&self.weight.t()?)?;
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        match (task, self.merged) {
            (Some(t), Some(m)) if t == m => {}
            (Some(t), Some(m)) => {
                candle_core::bail!("task {t} requested but task {m} is merged into this layer")
            }
            (Some(t), None) => {
                let d = self.deltas.get(t).ok_or_else(|| {
                    candle_core::Error::Msg(format!("no LoRA delta for task {t}"))
                })?;
                let low = x2.matmul(&d.a.t()?)?;
                let delta = low.matmul(&d.b.t()?)?;
                y = (y + (delta * self.scaling)?)?;
            }
            (None, None) => {}
            (None, Some(m)) => {
                candle_core::bail!("base weights requested but task {m} is merged into this layer")
            }
        }
        let mut out_dims = dims;
        let last = out_dims.len() - 1;
        out_dims[last] = y.dim(D::Minus1)?;
        y.reshape(out_dims)
    }

    /// Folds `task` into the weight (`W + s·B·A`, computed in f32) and drops every delta.
    pub fn merge(&mut self, task: usize) -> Result<()> {
        let d = self
            .deltas
            .get(task)
            .ok_or_else(|| candle_core::Error::Msg(format!("no LoRA delta for task {task}")))?;
        let dtype = self.weight.dtype();
        let ba =
            d.b.to_dtype(DType::F32)?
                .matmul(&d.a.to_dtype(DType::F32)?)?;
        let w = (self.weight.to_dtype(DType::F32)? + (ba * self.scaling)?)?;
        self.weight = w.to_dtype(dtype)?;
        self.deltas.clear();
        self.merged = Some(task);
        Ok(())
    }
}

impl Module for LoraLinear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_task(x, None)
    }
}
