//! 2-D convolution (NCHW) and transposed convolution.
//!
//! Three ops close under differentiation: the convolution, its input gradient and its weight
//! gradient. Each one's backward rule is written with the other two (they are each other's
//! adjoints), so gradients of gradients (WGAN-GP) work to any order. On the GPU each is an
//! implicit GEMM (`shaders/gemm.wgsl` with a convolution mode); the forward pass has a second,
//! selectable variant that materialises the im2col matrix and runs the matmul kernel. On the
//! CPU each is im2col/col2im around one large blocked GEMM, except for thin layers (a few
//! output channels), which `direct` convolves without the im2col matrix.

mod cpu;
mod direct;
mod upsampled;

use super::activation::{Activated, Activation};
use super::gemm::{gemm_kernels, launch_gemm, GemmKernels, GemmParams};
use crate::cpu::with_cpu2;
use crate::device::{read, write, GpuBuffer, Kernel, KernelSource};
use crate::tensor::graph::{no_grad, GradFn};
use crate::tensor::Storage;
use crate::{Error, Result, Tensor};
use cpu::{forward_cpu, input_grad_cpu, weight_grad_cpu};
use std::cell::Cell;

/// How a convolution pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding.
    Valid,
    /// TensorFlow/Keras `"same"`: output = ceil(input / stride); an odd total padding puts the
    /// extra pixel at the bottom/right (so 28 -> 14 -> 7 with k3 s2, as in Keras).
    Same,
    Explicit {
        top: usize,
        bottom: usize,
        left: usize,
        right: usize,
    },
}

impl Padding {
    pub fn symmetric(p: usize) -> Padding {
        Padding::Explicit {
            top: p,
            bottom: p,
            left: p,
            right: p,
        }
    }

    /// `[top, bottom, left, right]` for an h x w input, kh x kw kernel and stride.
    pub fn resolve(self, h: usize, w: usize, kh: usize, kw: usize, stride: usize) -> [usize; 4] {
        let same = |size: usize, k: usize| {
            let out = size.div_ceil(stride);
            let total = ((out.max(1) - 1) * stride + k).saturating_sub(size);
            (total / 2, total - total / 2)
        };
        match self {
            Padding::Valid => [0; 4],
            Padding::Same => {
                let (t, b) = same(h, kh);
                let (l, r) = same(w, kw);
                [t, b, l, r]
            }
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => [top, bottom, left, right],
        }
    }
}

/// The GPU forward variant; the bench compares them. Gradients always use implicit GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgo {
    /// The im2col matrix is never stored: the GEMM's B loads gather input pixels directly.
    ImplicitGemm,
    /// An im2col kernel writes the K x (N*OH*OW) matrix, then the matmul kernel runs.
    Im2col,
}

thread_local! {
    static ALGO: Cell<ConvAlgo> = const { Cell::new(ConvAlgo::ImplicitGemm) };
}

/// Chooses the GPU forward variant for convolutions on this thread.
pub fn set_conv_algo(algo: ConvAlgo) {
    ALGO.with(|a| a.set(algo));
}

pub fn conv_algo() -> ConvAlgo {
    ALGO.with(Cell::get)
}

/// The CPU kernel family: chosen by shape, or forced (tests and benches compare them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuConv {
    /// Direct for thin layers (a few output channels, or a forward pass with a few weights per
    /// output), im2col + GEMM otherwise.
    Auto,
    /// im2col (col2im for the input gradient) around the blocked GEMM.
    Gemm,
    /// The direct kernels wherever they apply (the input gradient: stride 1 only), else the
    /// GEMM.
    Direct,
}

thread_local! {
    static CPU_CONV: Cell<CpuConv> = const { Cell::new(CpuConv::Auto) };
}

/// Runs `f` with this thread's CPU convolutions forced to `algo`.
pub fn with_cpu_conv<T>(algo: CpuConv, f: impl FnOnce() -> T) -> T {
    crate::scoped::with_cell(&CPU_CONV, algo, f)
}

/// Whether a CPU pass runs the direct kernel, where it `applies` to the pass and, unless
/// forced, where the layer is `thin` for that pass.
fn cpu_direct(g: &Geometry, applies: bool, thin: bool) -> bool {
    applies
        && match CPU_CONV.with(Cell::get) {
            // A dense layer in disguise is one GEMM over the batch, faster than either.
            CpuConv::Auto => thin && !g.is_dense(),
            CpuConv::Gemm => false,
            CpuConv::Direct => true,
        }
}

/// Every size of one convolution, padding resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub stride: usize,
    pub pt: usize,
    pub pl: usize,
    /// The input is stored `up` times smaller in each direction and convolved as if
    /// nearest-upsampled to h x w (1: as stored).
    pub up: usize,
}

impl Geometry {
    pub fn new(x: &[usize], weight: &[usize], stride: usize, pad: [usize; 4]) -> Result<Self> {
        let (&[batch, cin, h, w], &[cout, wcin, kh, kw]) = (x, weight) else {
            return Err(Error::shape(
                "conv2d",
                format!(
                    "input must be NCHW and weight [cout, cin, kh, kw], got {x:?} and {weight:?}"
                ),
            ));
        };
        if cin != wcin {
            return Err(Error::shape(
                "conv2d",
                format!("input has {cin} channels, weight expects {wcin}"),
            ));
        }
        if stride == 0 || kh == 0 || kw == 0 {
            return Err(Error::Invalid(
                "conv2d: stride and kernel size must be positive".into(),
            ));
        }
        let (ph, pw) = (h + pad[0] + pad[1], w + pad[2] + pad[3]);
        if ph < kh || pw < kw {
            return Err(Error::shape(
                "conv2d",
                format!("kernel {kh}x{kw} is larger than the padded input {ph}x{pw}"),
            ));
        }
        Ok(Geometry {
            batch,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            oh: (ph - kh) / stride + 1,
            ow: (pw - kw) / stride + 1,
            stride,
            pt: pad[0],
            pl: pad[2],
            up: 1,
        })
    }

    /// The convolution of input `x` (NCHW) nearest-upsampled `up` times, stride 1: Keras'
    /// `UpSampling2D` then `Conv2D`, as one op that never stores the upsampled image.
    pub fn upsampled(x: &[usize], weight: &[usize], up: usize, pad: [usize; 4]) -> Result<Self> {
        let &[batch, cin, h, w] = x else {
            return Err(Error::shape(
                "conv2d",
                format!("input must be NCHW, got {x:?}"),
            ));
        };
        let (uh, uw) = upsampled_size(h, w, up)?;
        let g = Geometry::new(&[batch, cin, uh, uw], weight, 1, pad)?;
        Ok(Geometry { up, ..g })
    }

    /// The same convolution of the upsampled input as stored.
    fn stored_input(&self) -> Geometry {
        Geometry { up: 1, ..*self }
    }

    fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// A kernel covering the whole unpadded input, one output pixel: a dense layer over the
    /// flattened image (a generator's first layer from z, a critic's last), whose im2col
    /// matrix is the batch itself.
    fn is_dense(&self) -> bool {
        (self.oh, self.ow, self.pt, self.pl, self.up) == (1, 1, 0, 0, 1)
            && (self.kh, self.kw) == (self.h, self.w)
    }

    fn ncols(&self) -> usize {
        self.batch * self.oh * self.ow
    }

    fn input_shape(&self) -> Vec<usize> {
        vec![self.batch, self.cin, self.h / self.up, self.w / self.up]
    }

    fn output_shape(&self) -> Vec<usize> {
        vec![self.batch, self.cout, self.oh, self.ow]
    }

    fn weight_shape(&self) -> Vec<usize> {
        vec![self.cout, self.cin, self.kh, self.kw]
    }

    /// FLOPs of one pass (forward, input or weight gradient): 2*N*Cout*OH*OW*Cin*KH*KW.
    pub fn flops(&self) -> f64 {
        2.0 * (self.ncols() * self.cout * self.k()) as f64
    }

    /// The GEMM kernels' view of this geometry for a product of m x k by k x n.
    fn params(&self, m: usize, n: usize, k: usize) -> ConvParams {
        let u = |v: usize| v as u32;
        ConvParams {
            m: u(m),
            n: u(n),
            k: u(k),
            batch: u(self.batch),
            cin: u(self.cin),
            h: u(self.h),
            w: u(self.w),
            cout: u(self.cout),
            kh: u(self.kh),
            kw: u(self.kw),
            oh: u(self.oh),
            ow: u(self.ow),
            stride: u(self.stride),
            pt: u(self.pt),
            pl: u(self.pl),
            up: u(self.up),
            ..Default::default()
        }
    }

    /// Input row of output row `o` at kernel row `k`, if inside the image.
    fn source(&self, o: usize, k: usize, pad: usize, size: usize) -> Option<usize> {
        (o * self.stride + k).checked_sub(pad).filter(|&i| i < size)
    }
}

crate::kernel_params! {
    /// A product's m, n, k, then the whole [`Geometry`], the phase kernel size (tpy x tpx) and
    /// the fullest phase's pixels (ph x pw) of the input gradient's stride phases or an
    /// upsampling convolution's phases, the split-K slice and count and the batch of products, and
    /// the activation the forward's bias variant folds into its store; also the im2col and
    /// phase-fold kernels' (k unused).
    pub(crate) struct ConvParams {
        m: u32, n: u32, k: u32,
        batch: u32, cin: u32, h: u32, w: u32,
        cout: u32, kh: u32, kw: u32, oh: u32, ow: u32,
        stride: u32, pt: u32, pl: u32, up: u32, tpy: u32, tpx: u32, ph: u32, pw: u32,
        k_split: u32, splits: u32, products: u32,
        act: u32, act_alpha: f32,
    }
}

impl ConvParams {
    /// The same params with a phase decomposition's kernel size (tpy, tpx) and its fullest
    /// phase's outputs per image (ph, pw): the stride phases of an input gradient, or an
    /// upsampling convolution's.
    fn with_phases(self, (tpy, tpx): (usize, usize), (ph, pw): (usize, usize)) -> ConvParams {
        let u = |v: usize| v as u32;
        ConvParams {
            tpy: u(tpy),
            tpx: u(tpx),
            ph: u(ph),
            pw: u(pw),
            ..self
        }
    }
}

impl GemmParams for ConvParams {
    fn set_split(&mut self, k_split: u32, splits: u32, products: u32) {
        (self.k_split, self.splits, self.products) = (k_split, splits, products);
    }
}

/// A convolution mode of the GEMM from its WGSL files (in order): A is always read along K;
/// `$b_n_fast` says whether B is contiguous along N; `k_limit` is WGSL for product z's depth
/// (p.k unless given: the stride phases' products have their own).
macro_rules! conv_mode {
    ($name:literal, [$($file:literal),+], $b_n_fast:literal $(, with $bias:ident)?) => {
        $crate::ops::conv::conv_mode!(
            $name, [$($file),+], $b_n_fast, k_limit "p.k" $(, with $bias)?
        )
    };
    ($name:literal, [$($file:literal),+], $b_n_fast:literal, k_limit $k:literal
        $(, with $bias:ident)?) => {
        $crate::ops::gemm::gemm_kernels!(
            $name,
            [
                $(include_str!(concat!("../../../shaders/", $file)),)+
                concat!(
                    "fn a_k_fast() -> bool {\n    return true;\n}\n",
                    "fn b_n_fast() -> bool {\n    return ",
                    $b_n_fast,
                    ";\n}\n",
                    "fn k_limit(z: u32) -> u32 {\n    return ",
                    $k,
                    ";\n}\n"
                ),
            ]
            $(, with $bias)?
        )
    };
}
pub(crate) use conv_mode;

static FORWARD: GemmKernels<ConvParams> = conv_mode!(
    "conv_forward",
    ["gemm_conv_forward.wgsl"],
    "true",
    with row_bias
);
static INPUT_GRAD: GemmKernels<ConvParams> =
    conv_mode!("conv_input_grad", ["gemm_conv_input_grad.wgsl"], "true").reading_gradients();
static STRIDED_INPUT_GRAD: GemmKernels<ConvParams> = conv_mode!(
    "conv_strided_input_grad",
    ["gemm_phase_taps.wgsl", "gemm_conv_strided_input_grad.wgsl"],
    "true",
    k_limit "phase_depth(z)"
)
.reading_gradients();
static WEIGHT_GRAD: GemmKernels<ConvParams> =
    conv_mode!("conv_weight_grad", ["gemm_conv_weight_grad.wgsl"], "false").reading_gradients();
static IM2COL: Kernel<ConvParams> = Kernel::new(
    "im2col",
    &[read("x"), write("cols")],
    &[include_str!("../../../shaders/im2col.wgsl")],
);

/// Every convolution kernel (for the portability test).
pub(crate) fn kernels() -> Vec<&'static dyn KernelSource> {
    let mut all: Vec<&'static dyn KernelSource> = vec![&IM2COL];
    all.extend(upsampled::kernels());
    for mode in [&FORWARD, &INPUT_GRAD, &STRIDED_INPUT_GRAD, &WEIGHT_GRAD] {
        all.extend(mode.all());
    }
    all
}

// ---- the three ops ---------------------------------------------------------------------------

fn check_shape(t: &Tensor, want: &[usize], what: &str) -> Result<()> {
    if t.shape() != want {
        return Err(Error::shape(
            "conv2d",
            format!("{what} has shape {:?}, expected {want:?}", t.shape()),
        ));
    }
    Ok(())
}

/// y = conv(x, w).
pub fn conv_forward(x: &Tensor, w: &Tensor, g: Geometry) -> Result<Tensor> {
    conv_forward_bias(x, w, None, g)
}

/// y = conv(x, w) + bias (per output channel): on the GPU the bias is added in the GEMM's
/// store, not by a broadcast add of its own.
pub fn conv_forward_bias(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    g: Geometry,
) -> Result<Tensor> {
    conv_forward_activated(x, w, bias, None, g)
}

/// y = act(conv(x, w) + bias): on the GPU's implicit GEMM with a bias, bias and activation
/// in the store; on the CPU, applied to the fresh output in place.
pub fn conv_forward_activated(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    act: Option<Activation>,
    g: Geometry,
) -> Result<Tensor> {
    let act = act.map(Activation::foldable).transpose()?;
    x.same_device(w, "conv2d")?;
    check_shape(x, &g.input_shape(), "input")?;
    check_shape(w, &g.weight_shape(), "weight")?;
    if let Some(b) = bias {
        x.same_device(b, "conv2d")?;
        if b.shape() != [g.cout] {
            return Err(Error::shape(
                "conv2d",
                format!("bias has shape {:?}, expected [{}]", b.shape(), g.cout),
            ));
        }
    }
    let bias_buffer = match bias.map(Tensor::storage) {
        Some(Storage::Gpu(b)) => Some(b),
        _ => None,
    };
    // The activation applied with the convolution (the rest runs as its own op).
    let mut folded = None;
    let storage = match (x.storage(), w.storage()) {
        (Storage::Cpu(xs), Storage::Cpu(ws)) => {
            let y = with_cpu2!("conv2d", xs, ws, x, w => forward_cpu(x, w, &g))?;
            let bias = bias.map(Tensor::to_vec_f64).transpose()?;
            folded = act;
            Activation::store_cpu(act, &y, bias.as_deref(), g.oh * g.ow);
            std::rc::Rc::new(Storage::Cpu(y))
        }
        (Storage::Gpu(_), Storage::Gpu(wb)) => match conv_algo() {
            ConvAlgo::ImplicitGemm => {
                // Only the bias variant's store applies an activation.
                folded = act.filter(|_| bias_buffer.is_some());
                let (act, act_alpha) = Activation::code(folded);
                let with_act = |params: ConvParams| ConvParams {
                    act,
                    act_alpha,
                    ..params
                };
                let out = if upsampled::gpu_phases(&g) {
                    upsampled::forward_gpu(gpu_buffer(x), wb, bias_buffer, &g, with_act)?
                } else {
                    // (A strided upsampling geometry, hand-built: upsampled first.)
                    let (x, g) = gpu_input(x, &g)?;
                    let xb = gpu_buffer(&x);
                    let ctx = xb.context();
                    let out = ctx.alloc(g.batch * g.cout * g.oh * g.ow)?;
                    let params = with_act(g.params(g.cout, g.ncols(), g.k()));
                    let mnk = (g.cout, g.ncols(), g.k());
                    launch_gemm(ctx, &FORWARD, &params, mnk, 1, [wb, xb, &out], bias_buffer)?;
                    out
                };
                std::rc::Rc::new(Storage::Gpu(out))
            }
            ConvAlgo::Im2col => {
                let (x, g) = gpu_input(x, &g)?;
                let xb = gpu_buffer(&x);
                let ctx = xb.context();
                let n = g.k() * g.ncols();
                let cols = ctx.alloc(n)?;
                let params = g.params(g.k(), g.ncols(), 0);
                ctx.dispatch(&IM2COL, &params, &[xb, &cols], ctx.grid(n)?)?;
                let cols = Tensor::from_storage(
                    std::rc::Rc::new(Storage::Gpu(cols)),
                    vec![g.k(), g.ncols()],
                );
                let y = no_grad(|| -> Result<Tensor> {
                    let y = w
                        .detach()
                        .reshape(&[g.cout, g.k()])?
                        .matmul(&cols)?
                        .reshape(&[g.cout, g.batch, g.oh * g.ow])?
                        .permute(&[1, 0, 2])?;
                    match bias {
                        Some(b) => y.add(&b.detach().reshape(&[1, g.cout, 1])?),
                        None => Ok(y),
                    }
                })?;
                y.storage_rc().clone()
            }
        },
        _ => unreachable!("same_device checked"),
    };
    let inputs: Vec<&Tensor> = [x, w].into_iter().chain(bias).collect();
    let y = Tensor::from_op_shared(
        storage,
        g.output_shape(),
        &inputs,
        Activated {
            op: ForwardGrad(g),
            act: folded,
        },
    );
    if folded.is_some() {
        return Ok(y);
    }
    y.activated(act)
}

/// dx = conv_input_grad(gy, w): the adjoint of conv in x (a transposed convolution).
pub fn conv_input_grad(gy: &Tensor, w: &Tensor, g: Geometry) -> Result<Tensor> {
    gy.same_device(w, "conv2d input gradient")?;
    check_shape(gy, &g.output_shape(), "output gradient")?;
    check_shape(w, &g.weight_shape(), "weight")?;
    let storage = match (gy.storage(), w.storage()) {
        (Storage::Cpu(gs), Storage::Cpu(ws)) => {
            Storage::Cpu(with_cpu2!("conv2d", gs, ws, gy, w => input_grad_cpu(gy, w, &g))?)
        }
        (Storage::Gpu(gb), Storage::Gpu(wb)) if upsampled::gpu_phases(&g) => {
            Storage::Gpu(upsampled::input_grad_gpu(gb, wb, &g)?)
        }
        (Storage::Gpu(_), Storage::Gpu(_)) if g.up > 1 => {
            // A strided upsampling geometry (hand-built): the upsampled image's gradient,
            // block-summed.
            let dx = no_grad(|| {
                conv_input_grad(&gy.detach(), &w.detach(), g.stored_input())?.sum_pool2d(g.up)
            })?;
            return Ok(Tensor::from_op_shared(
                dx.storage_rc().clone(),
                g.input_shape(),
                &[gy, w],
                InputGradGrad(g),
            ));
        }
        (Storage::Gpu(gb), Storage::Gpu(wb)) if g.stride > 1 => {
            let ctx = gb.context();
            // A product per stride phase of the input pixels. Rows: input channels; columns:
            // the phase's pixels; K: output channels and the phase's taps.
            let s = g.stride;
            let (tpy, tpx) = (g.kh.div_ceil(s), g.kw.div_ceil(s));
            let (ph, pw) = (g.h.div_ceil(s), g.w.div_ceil(s));
            let (m, n, k) = (g.cin, g.batch * ph * pw, g.cout * tpy * tpx);
            let out = ctx.alloc(g.batch * g.cin * g.h * g.w)?;
            let params = g.params(m, n, k).with_phases((tpy, tpx), (ph, pw));
            launch_gemm(
                ctx,
                &STRIDED_INPUT_GRAD,
                &params,
                (m, n, k),
                s * s,
                [wb, gb, &out],
                None,
            )?;
            Storage::Gpu(out)
        }
        (Storage::Gpu(gb), Storage::Gpu(wb)) => {
            let ctx = gb.context();
            // Rows: input channels; columns: input pixels; K: output channels and taps.
            let (m, n, k) = (g.cin, g.batch * g.h * g.w, g.cout * g.kh * g.kw);
            let out = ctx.alloc(m * n)?;
            let params = g.params(m, n, k);
            launch_gemm(
                ctx,
                &INPUT_GRAD,
                &params,
                (m, n, k),
                1,
                [wb, gb, &out],
                None,
            )?;
            Storage::Gpu(out)
        }
        _ => unreachable!("same_device checked"),
    };
    Ok(Tensor::from_op(
        storage,
        g.input_shape(),
        &[gy, w],
        InputGradGrad(g),
    ))
}

/// dw = conv_weight_grad(x, gy): the adjoint of conv in w.
pub fn conv_weight_grad(x: &Tensor, gy: &Tensor, g: Geometry) -> Result<Tensor> {
    x.same_device(gy, "conv2d weight gradient")?;
    check_shape(x, &g.input_shape(), "input")?;
    check_shape(gy, &g.output_shape(), "output gradient")?;
    let storage = match (x.storage(), gy.storage()) {
        (Storage::Cpu(xs), Storage::Cpu(gs)) => {
            Storage::Cpu(with_cpu2!("conv2d", xs, gs, x, gy => weight_grad_cpu(x, gy, &g))?)
        }
        (Storage::Gpu(xb), Storage::Gpu(gb)) if upsampled::gpu_phases(&g) => {
            Storage::Gpu(upsampled::weight_grad_gpu(xb, gb, &g)?)
        }
        (Storage::Gpu(_), Storage::Gpu(gb)) => {
            // (A strided upsampling geometry, hand-built: upsampled first.)
            let (x, g) = gpu_input(x, &g)?;
            let xb = gpu_buffer(&x);
            let ctx = xb.context();
            let (m, n) = (g.cout, g.k());
            let out = ctx.alloc(m * n)?;
            let params = g.params(m, n, g.ncols());
            launch_gemm(
                ctx,
                &WEIGHT_GRAD,
                &params,
                (m, n, g.ncols()),
                1,
                [gb, xb, &out],
                None,
            )?;
            Storage::Gpu(out)
        }
        _ => unreachable!("same_device checked"),
    };
    Ok(Tensor::from_op(
        storage,
        g.weight_shape(),
        &[x, gy],
        WeightGradGrad(g),
    ))
}

/// The input the im2col kernel reads, and its geometry: an upsampled input is upsampled
/// first (the implicit GEMM reads through the upsampling instead).
fn gpu_input(x: &Tensor, g: &Geometry) -> Result<(Tensor, Geometry)> {
    if g.up == 1 {
        return Ok((x.clone(), *g));
    }
    let up = no_grad(|| x.detach().upsample_nearest2d(g.up))?;
    Ok((up, g.stored_input()))
}

fn gpu_buffer(t: &Tensor) -> &GpuBuffer {
    match t.storage() {
        Storage::Gpu(b) => b,
        Storage::Cpu(_) => unreachable!("a GPU op's result is on the GPU"),
    }
}

/// The convolution's backward (it does not read the output).
struct ForwardGrad(Geometry);

impl GradFn for ForwardGrad {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, w) = (&inputs[0], &inputs[1]);
        let mut grads = vec![
            x.requires_grad()
                .then(|| conv_input_grad(g, w, self.0))
                .transpose()?,
            w.requires_grad()
                .then(|| conv_weight_grad(x, g, self.0))
                .transpose()?,
        ];
        if let Some(b) = inputs.get(2) {
            grads.push(
                b.requires_grad()
                    .then(|| g.sum(&[0, 2, 3], false))
                    .transpose()?,
            );
        }
        Ok(grads)
    }
}

/// <u, input_grad(gy, w)> = <conv(u, w), gy>, so d/dgy = conv(u, w) and d/dw = weight_grad(u, gy).
struct InputGradGrad(Geometry);

impl GradFn for InputGradGrad {
    fn name(&self) -> &'static str {
        "conv2d_input_grad"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, u: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (gy, w) = (&inputs[0], &inputs[1]);
        Ok(vec![
            gy.requires_grad()
                .then(|| conv_forward(u, w, self.0))
                .transpose()?,
            w.requires_grad()
                .then(|| conv_weight_grad(u, gy, self.0))
                .transpose()?,
        ])
    }
}

/// <u, weight_grad(x, gy)> = <conv(x, u), gy>, so d/dx = input_grad(gy, u) and d/dgy = conv(x, u).
struct WeightGradGrad(Geometry);

impl GradFn for WeightGradGrad {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, u: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, gy) = (&inputs[0], &inputs[1]);
        Ok(vec![
            x.requires_grad()
                .then(|| conv_input_grad(gy, u, self.0))
                .transpose()?,
            gy.requires_grad()
                .then(|| conv_forward(x, u, self.0))
                .transpose()?,
        ])
    }
}

fn add_channel_bias(y: Tensor, bias: Option<&Tensor>, channels: usize) -> Result<Tensor> {
    match bias {
        None => Ok(y),
        Some(b) if b.shape() == [channels] => y.add(&b.reshape(&[1, channels, 1, 1])?),
        Some(b) => Err(Error::shape(
            "conv2d",
            format!("bias has shape {:?}, expected [{channels}]", b.shape()),
        )),
    }
}

/// `h x w` upsampled by `up`, or an error for a factor of 0 or a size past `usize`.
fn upsampled_size(h: usize, w: usize, up: usize) -> Result<(usize, usize)> {
    match (h.checked_mul(up), w.checked_mul(up)) {
        (Some(uh), Some(uw)) if up > 0 => Ok((uh, uw)),
        _ => Err(Error::Invalid(format!(
            "conv2d: cannot upsample {h}x{w} by {up}: use a factor of 1 or more whose \
             upsampled size fits in memory"
        ))),
    }
}

/// Input height and width, kernel height and width, or an error naming the wrong shape.
fn conv_sizes(x: &Tensor, weight: &Tensor) -> Result<[usize; 4]> {
    let &[_, _, h, w] = x.shape() else {
        return Err(Error::shape(
            "conv2d",
            format!("input must be NCHW, got {:?}", x.shape()),
        ));
    };
    let &[_, _, kh, kw] = weight.shape() else {
        return Err(Error::shape(
            "conv2d",
            format!(
                "weight must be [cout, cin, kh, kw], got {:?}",
                weight.shape()
            ),
        ));
    };
    Ok([h, w, kh, kw])
}

impl Tensor {
    /// 2-D convolution of an NCHW input with weights `[cout, cin, kh, kw]` (cross-correlation,
    /// as in every framework), optional bias `[cout]`.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: Padding,
    ) -> Result<Tensor> {
        self.conv2d_activated(weight, bias, stride, padding, None)
    }

    /// `act(conv2d(..))`, the activation folded into the convolution's store where it can be.
    pub fn conv2d_activated(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: Padding,
        act: Option<Activation>,
    ) -> Result<Tensor> {
        let [h, w, kh, kw] = conv_sizes(self, weight)?;
        let pad = padding.resolve(h, w, kh, kw, stride);
        let g = Geometry::new(self.shape(), weight.shape(), stride, pad)?;
        conv_forward_activated(self, weight, bias, act, g)
    }

    /// `act(conv2d(upsample_nearest2d(x, up), ..))` with stride 1: Keras' `UpSampling2D` then
    /// `Conv2D`, as one op that never stores the upsampled image (on the CPU it runs as
    /// up x up smaller convolutions of the input itself, 2.25x fewer FLOPs for a 3x3 kernel
    /// and up = 2).
    pub fn upsample_conv2d(
        &self,
        up: usize,
        weight: &Tensor,
        bias: Option<&Tensor>,
        padding: Padding,
        act: Option<Activation>,
    ) -> Result<Tensor> {
        let [h, w, kh, kw] = conv_sizes(self, weight)?;
        let (uh, uw) = upsampled_size(h, w, up)?;
        let pad = padding.resolve(uh, uw, kh, kw, 1);
        let g = Geometry::upsampled(self.shape(), weight.shape(), up, pad)?;
        conv_forward_activated(self, weight, bias, act, g)
    }

    /// Transposed convolution (PyTorch `ConvTranspose2d`): weights [cin, cout, kh, kw],
    /// output size (in - 1) * stride - 2 * padding + k + output_padding.
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
        output_padding: usize,
    ) -> Result<Tensor> {
        let (&[batch, cin, h, w], &[wcin, cout, kh, kw]) = (self.shape(), weight.shape()) else {
            return Err(Error::shape(
                "conv_transpose2d",
                format!(
                    "input must be NCHW and weight [cin, cout, kh, kw], got {:?} and {:?}",
                    self.shape(),
                    weight.shape()
                ),
            ));
        };
        if wcin != cin || stride == 0 || output_padding >= stride.max(1) {
            return Err(Error::shape(
                "conv_transpose2d",
                format!("input channels {cin} vs weight {wcin}, stride {stride}, output_padding {output_padding} (must be < stride)"),
            ));
        }
        let size =
            |i: usize, k: usize| ((i - 1) * stride + k + output_padding).checked_sub(2 * padding);
        let (Some(oh), Some(ow)) = (size(h.max(1), kh), size(w.max(1), kw)) else {
            return Err(Error::shape(
                "conv_transpose2d",
                "padding larger than the output",
            ));
        };
        // The transposed convolution is the input gradient of the convolution it inverts:
        // oh x ow -> h x w with the same kernel, stride and padding.
        let g = Geometry::new(
            &[batch, cout, oh, ow],
            &[cin, cout, kh, kw],
            stride,
            [padding; 4],
        )?;
        if (g.oh, g.ow) != (h, w) {
            return Err(Error::shape(
                "conv_transpose2d",
                format!("inconsistent sizes {h}x{w} -> {oh}x{ow}"),
            ));
        }
        add_channel_bias(conv_input_grad(self, weight, g)?, bias, cout)
    }
}

#[cfg(test)]
mod tests {
    use super::Padding;

    #[test]
    fn same_padding_matches_keras() {
        // k3 s2: 28 -> 14 pads (0, 1); 14 -> 7 pads (0, 1); k3 s1 pads (1, 1); 7 with k3 s2 -> 4 pads (1, 1).
        assert_eq!(Padding::Same.resolve(28, 28, 3, 3, 2), [0, 1, 0, 1]);
        assert_eq!(Padding::Same.resolve(14, 14, 3, 3, 2), [0, 1, 0, 1]);
        assert_eq!(Padding::Same.resolve(7, 7, 3, 3, 1), [1, 1, 1, 1]);
        assert_eq!(Padding::Same.resolve(7, 7, 3, 3, 2), [1, 1, 1, 1]);
        assert_eq!(Padding::Same.resolve(8, 8, 4, 4, 1), [1, 2, 1, 2]);
    }
}
