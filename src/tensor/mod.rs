//! f32 tensors (f64 on the CPU for gradient checks) with a shape, living on one device, with
//! an optional place in the autograd graph.

pub(crate) mod graph;
mod random;

pub use random::Rng;

use crate::cpu::CpuStorage;
use crate::device::{Device, GpuBuffer};
use crate::shape::numel;
use crate::{Error, Result};
use graph::{GradFn, Node};
use std::cell::{Cell, Ref, RefCell};
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
}

/// Where a tensor's values are. Shared (`Rc`) between a tensor and its reshaped views.
pub enum Storage {
    Cpu(CpuStorage),
    Gpu(GpuBuffer),
}

impl Storage {
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu(b) => Device::Gpu(b.context().clone()),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(CpuStorage::F64(_)) => DType::F64,
            _ => DType::F32,
        }
    }
}

/// A handle to a tensor; cloning is cheap and shares the tensor.
#[derive(Clone)]
pub struct Tensor(Rc<Inner>);

struct Inner {
    id: u64,
    shape: Vec<usize>,
    storage: Rc<Storage>,
    /// The op that made this tensor; taken by a `backward()` that has used it (see
    /// [`Tensor::release_node`]).
    node: RefCell<Option<Node>>,
    /// Whether a `backward()` released `node`.
    released: Cell<bool>,
    requires_grad: Cell<bool>,
    grad: RefCell<Option<Tensor>>,
}

impl Drop for Inner {
    /// Unlinks the graph iteratively: the default recursive drop of a long chain of ops
    /// (thousands of steps) would overflow the stack.
    fn drop(&mut self) {
        let Some(node) = self.node.get_mut().take() else {
            return;
        };
        let mut stack = node.inputs;
        while let Some(t) = stack.pop() {
            if let Ok(mut inner) = Rc::try_unwrap(t.0) {
                if let Some(n) = inner.node.get_mut().take() {
                    stack.extend(n.inputs);
                }
            }
        }
    }
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Tensor {
    /// A leaf tensor over `storage`. `shape` must describe exactly its element count.
    pub(crate) fn from_storage(storage: Rc<Storage>, shape: Vec<usize>) -> Tensor {
        Tensor(Rc::new(Inner {
            id: next_id(),
            shape,
            storage,
            node: RefCell::new(None),
            released: Cell::new(false),
            requires_grad: Cell::new(false),
            grad: RefCell::new(None),
        }))
    }

    /// The result of an op: records the graph edge when grad mode is on and any input
    /// requires a gradient.
    pub(crate) fn from_op(
        storage: Storage,
        shape: Vec<usize>,
        inputs: &[&Tensor],
        grad_fn: impl GradFn + 'static,
    ) -> Tensor {
        Self::from_op_shared(Rc::new(storage), shape, inputs, grad_fn)
    }

    pub(crate) fn from_op_shared(
        storage: Rc<Storage>,
        shape: Vec<usize>,
        inputs: &[&Tensor],
        grad_fn: impl GradFn + 'static,
    ) -> Tensor {
        let track = graph::is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        let node = track.then(|| Node {
            grad_fn: Box::new(grad_fn),
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
        });
        Tensor(Rc::new(Inner {
            id: next_id(),
            shape,
            storage,
            requires_grad: Cell::new(node.is_some()),
            node: RefCell::new(node),
            released: Cell::new(false),
            grad: RefCell::new(None),
        }))
    }

    // ---- creation -------------------------------------------------------------------------

    pub fn from_vec(data: Vec<f32>, shape: &[usize], device: &Device) -> Result<Tensor> {
        check_len("from_vec", data.len(), shape)?;
        let storage = match device {
            Device::Cpu => Storage::Cpu(CpuStorage::from(data)),
            Device::Gpu(ctx) => Storage::Gpu(ctx.upload(&data)?),
        };
        Ok(Tensor::from_storage(Rc::new(storage), shape.to_vec()))
    }

    /// An f64 tensor; CPU only (the GPU kernels are f32).
    pub fn from_vec_f64(data: Vec<f64>, shape: &[usize]) -> Result<Tensor> {
        check_len("from_vec_f64", data.len(), shape)?;
        Ok(Tensor::from_storage(
            Rc::new(Storage::Cpu(CpuStorage::from(data))),
            shape.to_vec(),
        ))
    }

    pub fn scalar(value: f32, device: &Device) -> Result<Tensor> {
        Tensor::from_vec(vec![value], &[], device)
    }

    pub fn full(shape: &[usize], value: f32, device: &Device) -> Result<Tensor> {
        let n = numel(shape);
        let storage = match device {
            Device::Cpu => Storage::Cpu(CpuStorage::from(vec![value; n])),
            Device::Gpu(ctx) => {
                let buf = ctx.alloc(n)?;
                ctx.fill(&buf, n, value)?;
                Storage::Gpu(buf)
            }
        };
        Ok(Tensor::from_storage(Rc::new(storage), shape.to_vec()))
    }

    pub fn zeros(shape: &[usize], device: &Device) -> Result<Tensor> {
        Tensor::full(shape, 0.0, device)
    }

    pub fn ones(shape: &[usize], device: &Device) -> Result<Tensor> {
        Tensor::full(shape, 1.0, device)
    }

    /// Same shape, device and dtype as `self`, filled with `value`.
    pub fn full_like(&self, value: f32) -> Result<Tensor> {
        match self.dtype() {
            DType::F32 => Tensor::full(self.shape(), value, &self.device()),
            DType::F64 => Tensor::from_vec_f64(vec![f64::from(value); self.numel()], self.shape()),
        }
    }

    pub fn zeros_like(&self) -> Result<Tensor> {
        self.full_like(0.0)
    }

    pub fn ones_like(&self) -> Result<Tensor> {
        self.full_like(1.0)
    }

    // ---- inspection -----------------------------------------------------------------------

    pub fn id(&self) -> u64 {
        self.0.id
    }

    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    pub fn rank(&self) -> usize {
        self.0.shape.len()
    }

    pub fn numel(&self) -> usize {
        numel(&self.0.shape)
    }

    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }

    pub fn device(&self) -> Device {
        self.0.storage.device()
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.0.storage
    }

    pub(crate) fn storage_rc(&self) -> &Rc<Storage> {
        &self.0.storage
    }

    pub(crate) fn node(&self) -> Option<Ref<'_, Node>> {
        Ref::filter_map(self.0.node.borrow(), Option::as_ref).ok()
    }

    /// Drops the op that made this tensor, and with it the references to its inputs, once
    /// `backward()` has used it (PyTorch's default `retain_graph=False`): activations are
    /// freed as the backward pass goes instead of all at its end.
    pub(crate) fn release_node(&self) {
        if self.0.node.borrow_mut().take().is_some() {
            self.0.released.set(true);
        }
    }

    /// Whether a `backward()` has released the op that made this tensor.
    pub(crate) fn is_released(&self) -> bool {
        self.0.released.get()
    }

    pub fn is_leaf(&self) -> bool {
        self.0.node.borrow().is_none() && !self.0.released.get()
    }

    // ---- host transfer --------------------------------------------------------------------

    /// The values as f32, reading back from the GPU if needed (this waits for the GPU).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        match self.storage() {
            Storage::Cpu(s) => Ok(s.to_f32()),
            Storage::Gpu(b) => {
                let bytes = b.context().read(b.raw(), self.numel() as u64 * 4)?;
                Ok(bytemuck::cast_slice(&bytes).to_vec())
            }
        }
    }

    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        match self.storage() {
            Storage::Cpu(s) => Ok(s.to_f64()),
            Storage::Gpu(_) => Ok(self.to_vec()?.into_iter().map(f64::from).collect()),
        }
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::shape(
                "item",
                format!("needs one element, tensor has shape {:?}", self.shape()),
            ));
        }
        Ok(self.to_vec()?[0])
    }

    /// The single values of several one-element tensors, read back together: one GPU wait
    /// for all of them (a training step's losses).
    pub fn items(tensors: &[Tensor]) -> Result<Vec<f32>> {
        if let Some(t) = tensors.iter().find(|t| t.numel() != 1) {
            return t.item().map(|v| vec![v]);
        }
        let buffers: Option<Vec<&GpuBuffer>> = tensors
            .iter()
            .map(|t| match t.storage() {
                Storage::Gpu(b) if t.device().same(&tensors[0].device()) => Some(b),
                _ => None,
            })
            .collect();
        match buffers {
            Some(bufs) if !bufs.is_empty() => {
                let parts: Vec<_> = bufs.iter().map(|b| (b.raw(), 4)).collect();
                let bytes = bufs[0].context().read_many(&parts)?;
                Ok(bytemuck::cast_slice(&bytes).to_vec())
            }
            _ => tensors.iter().map(Tensor::item).collect(),
        }
    }

    /// A copy on `device` (a leaf: transfers are not differentiated).
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if self.device().same(device) {
            return Ok(self.detach());
        }
        Tensor::from_vec(self.to_vec()?, self.shape(), device)
    }

    /// A copy with element type `dtype`; F64 lives on the CPU only.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        match (dtype, self.device()) {
            (d, _) if d == self.dtype() => Ok(self.detach()),
            (DType::F64, Device::Gpu(_)) => Err(Error::DType {
                op: "to_dtype",
                dtype,
                hint: "GPU tensors are f32; move the tensor to the CPU first",
            }),
            (DType::F64, Device::Cpu) => Tensor::from_vec_f64(self.to_vec_f64()?, self.shape()),
            (DType::F32, device) => Tensor::from_vec(self.to_vec()?, self.shape(), &device),
        }
    }

    // ---- autograd -------------------------------------------------------------------------

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.get()
    }

    /// Marks a leaf as a parameter whose gradient `backward` accumulates; returns `self`.
    pub fn with_grad(self) -> Tensor {
        self.set_requires_grad(true);
        self
    }

    pub fn set_requires_grad(&self, on: bool) {
        self.0.requires_grad.set(on);
    }

    /// The same values with no graph history.
    pub fn detach(&self) -> Tensor {
        Tensor::from_storage(self.0.storage.clone(), self.0.shape.clone())
    }

    /// The gradient accumulated by `backward`, if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.borrow().clone()
    }

    pub fn zero_grad(&self) {
        self.0.grad.replace(None);
    }

    pub(crate) fn set_grad(&self, g: Option<Tensor>) {
        self.0.grad.replace(g);
    }

    // ---- checks shared by the ops ---------------------------------------------------------

    pub(crate) fn same_device(&self, other: &Tensor, op: &'static str) -> Result<()> {
        let (a, b) = (self.device(), other.device());
        if a.same(&b) {
            Ok(())
        } else {
            Err(Error::DeviceMismatch {
                op,
                a: format!("{a:?}"),
                b: format!("{b:?}"),
            })
        }
    }
}

fn check_len(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
    if len != numel(shape) {
        return Err(Error::shape(
            op,
            format!("{len} values do not fill shape {shape:?}"),
        ));
    }
    Ok(())
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor(shape={:?}, dtype={:?}, device={:?}{})",
            self.shape(),
            self.dtype(),
            self.device(),
            if self.requires_grad() { ", grad" } else { "" }
        )
    }
}

impl Tensor {
    /// Overwrites `values.len()` values of this f32 tensor's flat storage from `offset` on
    /// (recorded like a kernel on the GPU).
    pub(crate) fn write_at(&self, offset: usize, values: &[f32]) -> Result<()> {
        if offset + values.len() > self.numel() {
            return Err(Error::shape(
                "write_at",
                format!(
                    "{} values at offset {offset} into {} elements",
                    values.len(),
                    self.numel()
                ),
            ));
        }
        match self.storage() {
            Storage::Cpu(CpuStorage::F32(d)) => {
                d.borrow_mut()[offset..offset + values.len()].copy_from_slice(values)
            }
            Storage::Cpu(CpuStorage::F64(_)) => {
                return Err(Error::DType {
                    op: "write_at",
                    dtype: DType::F64,
                    hint: "writes f32 values",
                })
            }
            Storage::Gpu(d) => {
                let ctx = d.context();
                let src = ctx.upload(values)?;
                ctx.copy_range(&src, 0, d, offset, values.len())?;
            }
        }
        Ok(())
    }

    /// Overwrites this tensor's values with `src`'s, in place and outside autograd: for
    /// parameters, optimiser state and running statistics. Views sharing the storage change too.
    pub fn assign(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(Error::shape(
                "assign",
                format!("source {:?} vs destination {:?}", src.shape(), self.shape()),
            ));
        }
        self.same_device(src, "assign")?;
        match (self.storage(), src.storage()) {
            // The source is read before the destination is borrowed: they may be one buffer.
            (Storage::Cpu(CpuStorage::F32(d)), Storage::Cpu(s)) => {
                let values = s.to_f32();
                d.borrow_mut().copy_from_slice(&values);
            }
            (Storage::Cpu(CpuStorage::F64(d)), Storage::Cpu(s)) => {
                let values = s.to_f64();
                d.borrow_mut().copy_from_slice(&values);
            }
            (Storage::Gpu(d), Storage::Gpu(s)) => {
                if !Rc::ptr_eq(self.storage_rc(), src.storage_rc()) {
                    d.context().copy(s, d, self.numel())?;
                }
            }
            _ => unreachable!("same_device checked"),
        }
        Ok(())
    }
}
