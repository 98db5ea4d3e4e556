//! A linear layer carrying several task LoRA deltas, unmerged.
//!
//! jina-embeddings-v4 keeps one LoRA per task on every decoder projection and on the
//! multi-vector projector (`MultiAdapterLinear` in jina's `custom_lora_module.py`):
//! `y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ` with `A: [r, in]`, `B: [out, r]` and `s = alpha/r`
//! (or `alpha/√r` with rsLoRA). Keeping all tasks resident costs `2·r·(in+out)` extra
//! FLOPs per token and lets one process serve every task; [`LoraLinear::merge`] folds one
//! task into the weight for single-task serving.

use candle_core::{CpuStorage, DType, Device, InplaceOp3, Layout, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use super::cpu_f32s;

/// One task's low-rank pair, with the scaling folded into `B` at load (one pass fewer per call).
#[derive(Debug, Clone)]
struct Delta {
    a: Tensor,
    /// `s · B`, `[out, r]`.
    b_scaled: Tensor,
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
        let deltas = match adapters {
            None => Vec::new(),
            Some(ad) => {
                let r = ad.rank;
                let mut deltas = Vec::with_capacity(ad.tasks.len());
                for task in &ad.tasks {
                    let a = ad.vb.pp("lora_A").pp(task).get((r, in_dim), "weight")?;
                    let b = ad.vb.pp("lora_B").pp(task).get((out_dim, r), "weight")?;
                    // Scaled in f32, so a bf16 model rounds once.
                    let b_scaled = (b.to_dtype(DType::F32)? * ad.scaling)?.to_dtype(b.dtype())?;
                    deltas.push(Delta { a, b_scaled });
                }
                deltas
            }
        };
        Ok(LoraLinear {
            weight,
            bias,
            deltas,
            merged: None,
        })
    }

    /// One layer computing several projections of the same input side by side (Q, K and V, or
    /// gate and up): weights and biases stacked along the output, each task's `A` matrices stacked
    /// (`[Σr, in]`) and its `s·B` matrices block-diagonal (`[Σout, Σr]`), so one GEMM, one low-rank
    /// GEMM and one accumulation serve all parts. Outputs come in the order of `parts`.
    pub fn fuse(parts: &[LoraLinear]) -> Result<Self> {
        let Some(first) = parts.first() else {
            candle_core::bail!("lora fuse: no parts");
        };
        if parts.iter().any(|p| p.merged.is_some())
            || parts.iter().any(|p| p.deltas.len() != first.deltas.len())
            || parts
                .iter()
                .any(|p| p.weight.dim(1).ok() != first.weight.dim(1).ok())
        {
            candle_core::bail!("lora fuse: parts differ in input size, tasks or merge state");
        }
        let weights: Vec<&Tensor> = parts.iter().map(|p| &p.weight).collect();
        let weight = Tensor::cat(&weights, 0)?;
        let bias = if parts.iter().any(|p| p.bias.is_some()) {
            let biases = parts
                .iter()
                .map(|p| match &p.bias {
                    Some(b) => Ok(b.clone()),
                    None => Tensor::zeros(p.weight.dim(0)?, p.weight.dtype(), p.weight.device()),
                })
                .collect::<Result<Vec<_>>>()?;
            Some(Tensor::cat(&biases, 0)?)
        } else {
            None
        };
        let mut deltas = Vec::with_capacity(first.deltas.len());
        for t in 0..first.deltas.len() {
            let ranks: Vec<usize> = parts
                .iter()
                .map(|p| p.deltas[t].a.dim(0))
                .collect::<Result<_>>()?;
            let total: usize = ranks.iter().sum();
            let a: Vec<&Tensor> = parts.iter().map(|p| &p.deltas[t].a).collect();
            let mut before = 0;
            let mut blocks = Vec::with_capacity(parts.len());
            for (p, r) in parts.iter().zip(&ranks) {
                blocks.push(
                    p.deltas[t]
                        .b_scaled
                        .pad_with_zeros(1, before, total - before - r)?,
                );
                before += r;
            }
            deltas.push(Delta {
                a: Tensor::cat(&a, 0)?,
                b_scaled: Tensor::cat(&blocks, 0)?,
            });
        }
        Ok(LoraLinear {
            weight,
            bias,
            deltas,
            merged: None,
        })
    }

    /// Number of task deltas held.
    pub fn num_tasks(&self) -> usize {
        self.deltas.len()
    }

    /// Size of the output.
    pub fn out_dim(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Kernels [`LoraLinear::forward_task_unbiased`] launches on a GPU: the GEMM, and two more
    /// (low-rank GEMM, accumulation) when an unmerged task delta applies.
    pub fn launches(&self, task: Option<usize>) -> u64 {
        match (task, self.merged) {
            (Some(_), None) => 3,
            _ => 1,
        }
    }

    /// `x·Wᵀ + b`, plus the delta of `task` when given. `x` is `[.., in]`.
    pub fn forward_task(&self, x: &Tensor, task: Option<usize>) -> Result<Tensor> {
        let y = self.forward_task_unbiased(x, task)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// [`LoraLinear::forward_task`] without the bias, for callers that fold it into their next
    /// kernel.
    pub fn forward_task_unbiased(&self, x: &Tensor, task: Option<usize>) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let in_dim = dims[dims.len() - 1];
        let rows = x.elem_count() / in_dim.max(1);
        let x2 = x.reshape((rows, in_dim))?;
        let mut y = x2.matmul(&self.weight.t()?)?;
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
                if accumulate_in_place(&y, &low, &d.b_scaled) {
                    // `y` is this call's own fresh matmul output, so nothing else sees it change.
                    y.inplace_op3(&low, &d.b_scaled, &AddLowRank)?;
                } else {
                    y = (y + low.matmul(&d.b_scaled.t()?)?)?;
                }
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
        let ba = d
            .b_scaled
            .to_dtype(DType::F32)?
            .matmul(&d.a.to_dtype(DType::F32)?)?;
        let w = (self.weight.to_dtype(DType::F32)? + ba)?;
        self.weight = w.to_dtype(dtype)?;
        self.deltas.clear();
        self.merged = Some(task);
        Ok(())
    }
}

/// Whether [`AddLowRank`] can add `low · bᵀ` into `y` in place: f32 on the CPU, f32 or bf16 on
/// CUDA, all contiguous and of one dtype.
fn accumulate_in_place(y: &Tensor, low: &Tensor, b: &Tensor) -> bool {
    let dtype_ok = match y.device() {
        Device::Cpu => y.dtype() == DType::F32,
        Device::Cuda(_) => matches!(y.dtype(), DType::F32 | DType::BF16),
        _ => false,
    };
    dtype_ok
        && [y, low, b]
            .iter()
            .all(|t| t.dtype() == y.dtype() && t.is_contiguous())
}

/// `y += low · bᵀ` in one GEMM that reads and writes `y`, for `y [rows, out]`, `low [rows, r]`
/// and `b [out, r]`. The unfused form wrote the delta to a new tensor and added it in another
/// pass; at batch 1 those two passes over `[rows, out]` cost a third of the forward.
struct AddLowRank;

impl InplaceOp3 for AddLowRank {
    fn name(&self) -> &'static str {
        "lora-add-low-rank"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let (rows, out) = l1.shape().dims2()?;
        let (low_rows, r) = l2.shape().dims2()?;
        if l3.shape().dims2()? != (out, r) || low_rows != rows {
            candle_core::bail!(
                "lora-add-low-rank: y {:?}, low {:?}, b {:?} do not fit",
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        let Some((y0, y1)) = l1.contiguous_offsets() else {
            candle_core::bail!("lora-add-low-rank needs contiguous tensors");
        };
        let low = cpu_f32s(s2, l2, "lora-add-low-rank")?;
        let b = cpu_f32s(s3, l3, "lora-add-low-rank")?;
        let y = match s1 {
            CpuStorage::F32(v) => &mut v[y0..y1],
            _ => candle_core::bail!("lora-add-low-rank needs f32"),
        };
        let threads = rayon::current_num_threads();
        // SAFETY: the three slices hold exactly rows·out, rows·r and out·r values (contiguous
        // layouts of the checked shapes), which is all the strides below reach.
        unsafe {
            gemm::gemm(
                rows,
                out,
                r,
                y.as_mut_ptr(),
                1,
                out as isize,
                true,
                low.as_ptr(),
                1,
                r as isize,
                b.as_ptr(),
                r as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                if rows * out >= 1 << 16 {
                    gemm::Parallelism::Rayon(threads)
                } else {
                    gemm::Parallelism::None
                },
            );
        }
        Ok(())
    }

    /// The same GEMM through cuBLAS with `beta = 1`, accumulating in f32.
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &mut candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<()> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::cublas::{result::gemm_ex, sys};
        use candle_core::cuda_backend::cudarc::driver::{DevicePtr, DevicePtrMut};
        use candle_core::cuda_backend::WrapErr;

        const OP: &str = "lora-add-low-rank";
        let (rows, out) = l1.shape().dims2()?;
        let (low_rows, r) = l2.shape().dims2()?;
        if l3.shape().dims2()? != (out, r) || low_rows != rows {
            candle_core::bail!(
                "{OP}: y {:?}, low {:?}, b {:?} do not fit",
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        let (Some((y0, y1)), Some((a0, a1)), Some((b0, b1))) = (
            l1.contiguous_offsets(),
            l2.contiguous_offsets(),
            l3.contiguous_offsets(),
        ) else {
            candle_core::bail!("{OP} needs contiguous tensors");
        };
        let dev = s1.device().clone();
        let blas = dev.cublas_handle();
        let stream = dev.cuda_stream();
        let one = 1f32;
        // Row-major y[rows, out] is column-major yᵀ[out, rows]: yᵀ += B[out, r] · lowᵀ[r, rows],
        // with B stored row-major [out, r] (column-major [r, out], hence op T) and low row-major
        // [rows, r] (column-major [r, rows]).
        macro_rules! gemm {
            ($t:ty, $cuda_t:expr) => {{
                let low = s2.as_cuda_slice::<$t>()?.slice(a0..a1);
                let b = s3.as_cuda_slice::<$t>()?.slice(b0..b1);
                let mut y = s1.as_cuda_slice_mut::<$t>()?.slice_mut(y0..y1);
                let (low_p, _g1) = low.device_ptr(&stream);
                let (b_p, _g2) = b.device_ptr(&stream);
                let (y_p, _g3) = y.device_ptr_mut(&stream);
                // SAFETY: the pointers cover rows·r, out·r and rows·out values of the checked
                // shapes, which is all the leading dimensions below reach; alpha and beta are f32
                // as CUBLAS_COMPUTE_32F requires.
                unsafe {
                    gemm_ex(
                        *blas.handle(),
                        sys::cublasOperation_t::CUBLAS_OP_T,
                        sys::cublasOperation_t::CUBLAS_OP_N,
                        out as i32,
                        rows as i32,
                        r as i32,
                        (&one) as *const f32 as *const _,
                        b_p as *const _,
                        $cuda_t,
                        r as i32,
                        low_p as *const _,
                        $cuda_t,
                        r as i32,
                        (&one) as *const f32 as *const _,
                        y_p as *mut _,
                        $cuda_t,
                        out as i32,
                        sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                        sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                    )
                }
                .w()?;
            }};
        }
        match s1.dtype() {
            DType::F32 => gemm!(f32, sys::cudaDataType_t::CUDA_R_32F),
            DType::BF16 => gemm!(half::bf16, sys::cudaDataType_t::CUDA_R_16BF),
            other => candle_core::bail!("{OP}: {other:?} is not supported"),
        }
        Ok(())
    }
}

impl Module for LoraLinear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_task(x, None)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn t(rows: usize, cols: usize, seed: u32) -> Tensor {
        let v: Vec<f32> = (0..rows * cols)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn unmerged_task_matches_the_formula_and_the_merge() {
        let (inp, out, r, s) = (24, 40, 3, 2.5);
        let mut ts = HashMap::new();
        ts.insert("weight".to_string(), t(out, inp, 1));
        ts.insert("bias".to_string(), t(1, out, 2).flatten_all().unwrap());
        for (i, task) in ["a", "b"].iter().enumerate() {
            ts.insert(format!("lora_A.{task}.weight"), t(r, inp, 10 + i as u32));
            ts.insert(format!("lora_B.{task}.weight"), t(out, r, 20 + i as u32));
        }
        let vb = VarBuilder::from_tensors(ts.clone(), DType::F32, &Device::Cpu);
        let ad = TaskAdapters {
            vb: vb.clone(),
            tasks: vec!["a".into(), "b".into()],
            scaling: s,
            rank: r,
        };
        let mut lin = LoraLinear::new(inp, out, true, vb, Some(&ad)).unwrap();
        let x = t(70, inp, 3).reshape((7, 10, inp)).unwrap();
        let x2 = x.reshape((70, inp)).unwrap();
        let got = lin.forward_task(&x, Some(1)).unwrap();
        let want = {
            let base = x2
                .matmul(&ts["weight"].t().unwrap())
                .unwrap()
                .broadcast_add(&ts["bias"])
                .unwrap();
            let low = x2.matmul(&ts["lora_A.b.weight"].t().unwrap()).unwrap();
            let delta = low.matmul(&ts["lora_B.b.weight"].t().unwrap()).unwrap();
            (base + (delta * s).unwrap()).unwrap()
        };
        let diff =
            |a: &Tensor, b: &Tensor| super::super::max_abs_diff(&a.reshape((70, out)).unwrap(), b);
        assert!(diff(&got, &want) < 1e-5, "{}", diff(&got, &want));
        lin.merge(1).unwrap();
        let merged = lin.forward_task(&x, Some(1)).unwrap();
        assert!(diff(&merged, &want) < 1e-5, "{}", diff(&merged, &want));
    }

    #[test]
    fn fused_parts_equal_the_parts_side_by_side() {
        let (inp, r, s) = (16, 2, 0.5);
        let part = |out: usize, seed: u32, bias: bool| {
            let mut ts = HashMap::new();
            ts.insert("weight".to_string(), t(out, inp, seed));
            if bias {
                ts.insert(
                    "bias".to_string(),
                    t(1, out, seed + 1).flatten_all().unwrap(),
                );
            }
            for (i, task) in ["a", "b"].iter().enumerate() {
                ts.insert(
                    format!("lora_A.{task}.weight"),
                    t(r, inp, seed + 10 + i as u32),
                );
                ts.insert(
                    format!("lora_B.{task}.weight"),
                    t(out, r, seed + 20 + i as u32),
                );
            }
            let vb = VarBuilder::from_tensors(ts, DType::F32, &Device::Cpu);
            let ad = TaskAdapters {
                vb: vb.clone(),
                tasks: vec!["a".into(), "b".into()],
                scaling: s,
                rank: r,
            };
            LoraLinear::new(inp, out, bias, vb, Some(&ad)).unwrap()
        };
        let parts = [part(12, 1, true), part(5, 2, true), part(7, 3, true)];
        let mut fused = LoraLinear::fuse(&parts).unwrap();
        assert_eq!(fused.out_dim(), 24);
        let x = t(9, inp, 4);
        for task in [None, Some(0), Some(1)] {
            let want = Tensor::cat(
                &parts
                    .iter()
                    .map(|p| p.forward_task(&x, task).unwrap())
                    .collect::<Vec<_>>(),
                1,
            )
            .unwrap();
            let got = fused.forward_task(&x, task).unwrap();
            let d = super::super::max_abs_diff(&got, &want);
            assert!(d < 1e-5, "{task:?}: {d}");
        }
        // Merging the fused layer merges every part (no cross terms from the block layout).
        let want = Tensor::cat(
            &parts
                .iter()
                .map(|p| p.forward_task(&x, Some(1)).unwrap())
                .collect::<Vec<_>>(),
            1,
        )
        .unwrap();
        fused.merge(1).unwrap();
        let d = super::super::max_abs_diff(&fused.forward_task(&x, Some(1)).unwrap(), &want);
        assert!(d < 1e-5, "merged: {d}");
        assert!(LoraLinear::fuse(&[]).is_err());
    }
}
