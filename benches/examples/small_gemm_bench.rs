//! One dense layer's product `x · W + b` for all-MiniLM-L6-v2's shapes, through the few-row kernel
//! (`SmallGemm`, f32 and f16 weights) and through candle's `matmul` + bias (gemm), for a range of
//! row counts: where the kernel stops being the faster path.
//!
//! `cargo run --release --locked -p quiver-benches --example small_gemm_bench -- [--threads 2]
//!  [--ms 300] [--rows 1,4,8,16,24,32,48,64,96,128] [--hot]`
//!
//! Both paths start and end at a tensor, as in `Dense::forward`. Each shape has enough copies of its
//! weights (over 64 MB per path) that a call finds its weight out of cache, as in a forward pass
//! that streams 42 MB of projections; calls cycle through the copies and alternate between paths,
//! so a shared machine's load falls on all of them alike. `--hot` keeps one copy of each shape
//! instead (7 MB of f32 weights in all, within the last-level cache): the kernel's arithmetic
//! without the memory stream. Prints the median time per call in µs.

#[path = "common/values.rs"]
mod values;

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use quiver_encoder::layers::small_gemm::{Precision, SmallGemm};
use values::values;

// The allocator of the `quiver` binary, so this measures what the server runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// (in, out) of all-MiniLM-L6-v2's projections: q·k·v fused, attention output, up, down.
const SHAPES: [(usize, usize); 4] = [(384, 1152), (384, 384), (384, 1536), (1536, 384)];
/// Bytes of weights per path and shape, above the 32 MiB last-level cache.
const COLD_BYTES: usize = 64 << 20;

struct Copy {
    w_t: Tensor,
    bias: Tensor,
    f32: SmallGemm,
    f16: SmallGemm,
}

type Path = fn(&Copy, &Tensor, usize) -> candle_core::Result<Tensor>;

fn gemm(c: &Copy, x: &Tensor, _rows: usize) -> candle_core::Result<Tensor> {
    x.matmul(&c.w_t)?.broadcast_add(&c.bias)
}

fn kernel(g: &SmallGemm, x: &Tensor, rows: usize) -> candle_core::Result<Tensor> {
    let y = g.forward(&x.flatten_all()?.to_vec1::<f32>()?, rows);
    let out = y.len() / rows;
    Tensor::from_vec(y, (rows, out), x.device())
}

const PATHS: [(&str, Path); 3] = [
    ("gemm", gemm),
    ("kernel f32", |c, x, r| kernel(&c.f32, x, r)),
    ("kernel f16", |c, x, r| kernel(&c.f16, x, r)),
];

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut threads = 2usize;
    let mut budget = Duration::from_millis(300);
    let mut row_counts = vec![1, 4, 8, 16, 24, 32, 48, 64, 96, 128];
    let mut hot = false;
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--threads" => threads = value()?.parse()?,
            "--ms" => budget = Duration::from_millis(value()?.parse()?),
            "--hot" => hot = true,
            "--rows" => {
                row_counts = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let dev = Device::Cpu;
    println!("rayon threads {threads}; median µs per call over ≥ {budget:?} per cell\n");
    // Per row count, the sum over the four shapes (one layer's projections), per path.
    let mut layer = vec![[0f64; PATHS.len()]; row_counts.len()];
    for (i_n, o_n) in SHAPES {
        let copies = if hot {
            1
        } else {
            COLD_BYTES.div_ceil(i_n * o_n * 4)
        };
        let set = (0..copies)
            .map(|c| {
                let w = values(i_n * o_n, 100 + c as u64);
                let b = values(o_n, 200 + c as u64);
                Ok(Copy {
                    w_t: Tensor::from_vec(w.clone(), (i_n, o_n), &dev)?,
                    bias: Tensor::from_vec(b.clone(), o_n, &dev)?,
                    f32: SmallGemm::pack(&w, &b, i_n, o_n, Precision::F32),
                    f16: SmallGemm::pack(&w, &b, i_n, o_n, Precision::F16),
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        println!("[rows, {i_n}] x [{i_n}, {o_n}] + bias ({copies} copies)\n");
        println!("| rows | gemm µs | kernel f32 µs | kernel f16 µs | f32 / gemm |");
        println!("|---|---|---|---|---|");
        for (ri, &rows) in row_counts.iter().enumerate() {
            let x = Tensor::from_vec(values(rows * i_n, rows as u64), (rows, i_n), &dev)?;
            let mut times = vec![Vec::new(); PATHS.len()];
            pool.install(|| -> candle_core::Result<()> {
                for c in set.iter().take(4) {
                    for (_, p) in PATHS {
                        p(c, &x, rows)?;
                    }
                }
                let start = Instant::now();
                let mut n = 0usize;
                while start.elapsed() < budget || n < 20 {
                    let c = &set[n % set.len()];
                    for (t, (_, p)) in times.iter_mut().zip(PATHS) {
                        let t0 = Instant::now();
                        std::hint::black_box(p(c, &x, rows)?);
                        t.push(t0.elapsed().as_secs_f64() * 1e6);
                    }
                    n += 1;
                }
                Ok(())
            })?;
            let m: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
            for (acc, v) in layer[ri].iter_mut().zip(&m) {
                *acc += v;
            }
            println!(
                "| {rows} | {:.1} | {:.1} | {:.1} | {:.2} |",
                m[0],
                m[1],
                m[2],
                m[1] / m[0]
            );
        }
        println!();
    }
    println!("One layer's four projections (sum of the medians above)\n");
    println!("| rows | gemm µs | kernel f32 µs | kernel f16 µs | f32 / gemm |");
    println!("|---|---|---|---|---|");
    for (rows, m) in row_counts.iter().zip(&layer) {
        println!(
            "| {rows} | {:.1} | {:.1} | {:.1} | {:.2} |",
            m[0],
            m[1],
            m[2],
            m[1] / m[0]
        );
    }
    Ok(())
}
