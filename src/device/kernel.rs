//! Kernel declarations: an op states its kernel once (name, buffers, a `Pod` params struct and
//! the WGSL body) and this module generates the rest of the WGSL (the params struct, the
//! bindings, the workgroup-size constant and the linear-index helper), so the Rust and WGSL
//! layouts cannot drift apart. [`GpuContext::dispatch`](super::GpuContext::dispatch) is the
//! only way a kernel runs.

use bytemuck::Pod;
use std::marker::PhantomData;

/// Threads per workgroup of the 1-D kernels (element-wise, copies, fills); `WG` in WGSL.
pub const WORKGROUP: u32 = 256;

/// The largest params struct a kernel may declare: Vulkan guarantees 128 bytes of push
/// constants, so every kernel fits in immediates wherever the adapter offers them.
pub const MAX_PARAMS_BYTES: usize = 128;

/// A WGSL type with the same layout as the Rust type (4-byte scalars and arrays of them, which
/// immediates and storage buffers lay out alike: std430).
pub trait WgslType {
    const WGSL: &'static str;
}

impl WgslType for u32 {
    const WGSL: &'static str = "u32";
}
impl WgslType for f32 {
    const WGSL: &'static str = "f32";
}

macro_rules! wgsl_arrays {
    ($($t:ty, $n:literal);*) => {
        $(impl WgslType for [$t; $n] {
            const WGSL: &'static str = concat!("array<", stringify!($t), ", ", $n, ">");
        })*
    };
}
wgsl_arrays!(u32, 2; u32, 3; u32, 6; f32, 4);

/// A kernel's parameters: a `#[repr(C)]` `Pod` struct whose fields are listed for WGSL.
/// Declare with [`kernel_params!`](crate::kernel_params).
pub trait KernelParams: Pod {
    /// (field name, WGSL type) in declaration order.
    const FIELDS: &'static [(&'static str, &'static str)];
}

/// Declares a params struct once for both sides: the Rust struct (`#[repr(C)]`, `Pod`) and the
/// field list the WGSL `struct Params` is generated from.
#[macro_export]
macro_rules! kernel_params {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $(pub $field: $ty),*
        }
        impl $crate::device::KernelParams for $name {
            const FIELDS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($field), <$ty as $crate::device::WgslType>::WGSL)),*];
        }
        const _: () = assert!(
            std::mem::size_of::<$name>() <= $crate::device::MAX_PARAMS_BYTES,
            "kernel params larger than the immediates every adapter offers"
        );
    };
}

/// How a kernel reads one storage buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// A storage buffer of `array<f32>`, bound in declaration order.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub name: &'static str,
    pub access: Access,
}

/// A buffer the kernel only reads.
pub const fn read(name: &'static str) -> Binding {
    Binding {
        name,
        access: Access::Read,
    }
}

/// A buffer the kernel writes (and may read).
pub const fn write(name: &'static str) -> Binding {
    Binding {
        name,
        access: Access::ReadWrite,
    }
}

/// How params reach the kernel: immediates (push constants) where the adapter has them, else
/// a read-only storage arena bound at binding 0 with a dynamic offset per dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamsMode {
    Immediate,
    Arena,
}

/// One kernel: declared as a `static`, whose address identifies its compiled pipeline.
/// Variants (an op's expression, a GEMM's load mode, another entry point) are separate
/// declarations sharing source fragments.
pub struct Kernel<P: KernelParams> {
    pub name: &'static str,
    pub entry: &'static str,
    pub buffers: &'static [Binding],
    /// WGSL fragments after the generated preamble, concatenated in order.
    pub source: &'static [&'static str],
    /// Uses subgroup operations: only for devices with `Features::SUBGROUP`.
    pub subgroups: bool,
    /// Tests only: the kernel's `whole_subgroups` always says no, so it takes the path for
    /// partial subgroups, which a device whose subgroups always fill the workgroup never runs.
    pub partial_subgroups: bool,
    /// Uses cooperative-matrix fragments: the function writes the WGSL that depends on the
    /// context's [`Matrices`] (fragment types and operations), placed after the preamble.
    pub matrices: Option<fn(&Matrices) -> String>,
    params: PhantomData<fn() -> P>,
}

/// The cooperative-matrix fragments a context builds its matrix kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Matrices {
    /// The fragments' side: 8 or 16 (one subgroup operation multiplies F x F by F x F).
    pub size: u32,
    /// A and B as f16 (else f32); the sums are f32 either way.
    pub half: bool,
    /// Plain WGSL stands in for the fragment operations (a subgroup's invocations share out a
    /// fragment's elements): tests the kernels' tiling where no adapter has them.
    pub emulated: bool,
}

impl Matrices {
    /// The WGSL `enable` directives these fragments need (they must open the module).
    fn enables(&self) -> String {
        let mut s = String::new();
        if self.half {
            s.push_str("enable f16;\n");
        }
        if !self.emulated {
            s.push_str("enable wgpu_cooperative_matrix;\n");
        }
        s
    }
}

impl<P: KernelParams> Kernel<P> {
    /// A kernel with entry point `main`.
    pub const fn new(
        name: &'static str,
        buffers: &'static [Binding],
        source: &'static [&'static str],
    ) -> Self {
        Kernel {
            name,
            entry: "main",
            buffers,
            source,
            subgroups: false,
            partial_subgroups: false,
            matrices: None,
            params: PhantomData,
        }
    }

    /// The same declaration with another entry point.
    pub const fn entry(self, entry: &'static str) -> Self {
        Kernel { entry, ..self }
    }

    /// The same declaration, marked as using subgroup operations.
    pub const fn with_subgroups(self) -> Self {
        Kernel {
            subgroups: true,
            ..self
        }
    }

    /// The same declaration, marked as using cooperative-matrix fragments (which need
    /// subgroups), their WGSL written by `ops`.
    pub const fn with_matrices(self, ops: fn(&Matrices) -> String) -> Self {
        Kernel {
            subgroups: true,
            matrices: Some(ops),
            ..self
        }
    }

    /// A copy of this kernel that always takes its path for partial subgroups (see
    /// `partial_subgroups`), leaked for the pipeline cache, which keys kernels by address:
    /// for tests, which build a few.
    pub fn partial_subgroups_copy(&self) -> &'static Kernel<P> {
        Box::leak(Box::new(Kernel {
            partial_subgroups: true,
            ..*self
        }))
    }

    /// Bytes of the params struct, as bound (a multiple of 4).
    pub const fn params_bytes() -> u32 {
        std::mem::size_of::<P>() as u32
    }
}

/// What the pipeline cache and the portability test need of a kernel, whatever its params.
pub trait KernelSource: Sync {
    fn name(&self) -> &'static str;
    fn entry(&self) -> &'static str;
    fn buffers(&self) -> &'static [Binding];
    fn params_bytes(&self) -> u32;
    /// Whether the kernel uses subgroup operations (`Features::SUBGROUP`).
    fn subgroups(&self) -> bool;
    /// Whether the kernel uses cooperative-matrix fragments.
    fn matrices(&self) -> bool;
    /// The whole WGSL module: generated preamble, then the declared fragments; a matrix
    /// kernel's fragments as `matrices` says (it has none without them).
    fn wgsl(&self, mode: ParamsMode, matrices: Option<&Matrices>) -> String;
}

impl<P: KernelParams> KernelSource for Kernel<P> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn entry(&self) -> &'static str {
        self.entry
    }
    fn buffers(&self) -> &'static [Binding] {
        self.buffers
    }
    fn params_bytes(&self) -> u32 {
        Self::params_bytes()
    }
    fn subgroups(&self) -> bool {
        self.subgroups
    }
    fn matrices(&self) -> bool {
        self.matrices.is_some()
    }
    fn wgsl(&self, mode: ParamsMode, matrices: Option<&Matrices>) -> String {
        let fragments = self.matrices.zip(matrices);
        let mut s = fragments.map_or(String::new(), |(_, m)| m.enables());
        s.push_str(&preamble(P::FIELDS, self.buffers, mode));
        if let Some((ops, m)) = fragments {
            s.push_str(&ops(m));
        }
        if self.subgroups {
            // WGSL does not promise full subgroups: a kernel checks that `count` subgroups of
            // `size` fill its `threads` before it relies on them.
            let whole = match self.partial_subgroups {
                false => "size * count == threads",
                true => "false",
            };
            s.push_str(&format!(
                "fn whole_subgroups(size: u32, count: u32, threads: u32) -> bool {{\n    \
                 return {whole};\n}}\n\n"
            ));
        }
        self.source.iter().for_each(|f| s.push_str(f));
        s
    }
}

/// The generated part of every kernel's WGSL.
fn preamble(fields: &[(&str, &str)], buffers: &[Binding], mode: ParamsMode) -> String {
    let mut s = format!("// generated by src/device/kernel.rs\nconst WG: u32 = {WORKGROUP}u;\n");
    s.push_str("struct Params {\n");
    for (name, ty) in fields {
        s.push_str(&format!("    {name}: {ty},\n"));
    }
    s.push_str("}\n");
    s.push_str(match mode {
        ParamsMode::Immediate => "var<immediate> p: Params;\n",
        ParamsMode::Arena => "@group(0) @binding(0) var<storage, read> p: Params;\n",
    });
    for (i, b) in buffers.iter().enumerate() {
        let access = match b.access {
            Access::Read => "read",
            Access::ReadWrite => "read_write",
        };
        s.push_str(&format!(
            "@group(0) @binding({}) var<storage, {access}> {}: array<f32>;\n",
            i + 1,
            b.name
        ));
    }
    // One grid dimension holds at most 65,535 workgroups: 1-D kernels run on a 2-D grid.
    s.push_str(
        "fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {\n    \
         return gid.x + gid.y * nwg.x * WG;\n}\n\n",
    );
    s
}
