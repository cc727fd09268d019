//! The model: hyper-parameters from metadata ([`ModelConfig`]), where each
//! tensor lives ([`ModelLayout`]), and typed views of the weight bytes
//! ([`LayerWeights`], [`GlobalWeights`]).
//!
//! A [`Model`] holds what every worker needs for the whole run: the config,
//! the layout, the global weights (resident) and the matmul kernels. Layer
//! weights are not in it: a worker acquires them layer by layer
//! ([`crate::team::Worker::acquire_layer`]), because the kernel may stream them.

mod config;
mod layout;
pub mod packed;
mod weights;

use core::ops::Range;

pub use config::{Arch, FfnActivation, ModelConfig, RopeConfig, RopeLayout, SlidingWindow};
pub use layout::{GlobalsLayout, LayerLayout, ModelLayout, TensorRef};
pub use packed::{PackedLayerPlan, PackedLayers, PackedPlan};
pub use weights::{F32Vector, GlobalWeights, LayerWeights};

use crate::gguf::{Gguf, GgufError};
use crate::matmul::Kernels;

/// A loaded model, shared (by reference) by all workers.
pub struct Model<'w> {
    pub config: ModelConfig,
    pub layout: ModelLayout,
    pub globals: GlobalWeights<'w>,
    pub kernels: Kernels,
}

impl<'w> Model<'w> {
    /// A model whose global tensors are in `globals_bytes`, the bytes of
    /// `layout.globals.extent` (a resident copy in the kernel).
    pub fn new(config: ModelConfig, layout: ModelLayout, globals_bytes: &'w [u8], kernels: Kernels) -> Result<Self, GgufError> {
        let globals = GlobalWeights::from_extent(&layout.globals, globals_bytes)?;
        Ok(Model { config, layout, globals, kernels })
    }

    /// Config, layout and globals of a file held entirely in memory.
    pub fn from_gguf(g: &Gguf<'w>, kernels: Kernels) -> Result<Self, GgufError> {
        let config = ModelConfig::from_gguf(g)?;
        let layout = ModelLayout::from_gguf(g, &config)?;
        let globals = extent_bytes(g.bytes(), &layout.globals.extent).ok_or(GgufError::ExtentMismatch {
            what: "globals extent (is the whole file in memory?)",
            expected: layout.globals.extent.end - layout.globals.extent.start,
            found: 0,
        })?;
        Model::new(config, layout, globals, kernels)
    }
}

/// The bytes of `extent` inside a whole file in memory.
pub fn extent_bytes<'a>(file: &'a [u8], extent: &Range<u64>) -> Option<&'a [u8]> {
    file.get(usize::try_from(extent.start).ok()?..usize::try_from(extent.end).ok()?)
}

/// Gives the weights of any layer on demand, when all of them are in memory.
/// A worker with such a source never waits for weights.
pub trait LayerSource: Sync {
    fn layer(&self, layer: usize) -> LayerWeights<'_>;
}

/// Layer weights of a model file held entirely in memory (the host's mapped
/// file, or a kernel's resident copy of the whole image), in ggml's layout.
#[derive(Clone)]
pub struct ResidentLayers<'a> {
    file: &'a [u8],
    layers: alloc::vec::Vec<LayerLayout>,
}

impl<'a> ResidentLayers<'a> {
    /// Fails if a layer extent lies outside `file`.
    pub fn new(file: &'a [u8], layout: &ModelLayout) -> Result<Self, GgufError> {
        for l in &layout.layers {
            if extent_bytes(file, &l.extent).is_none() {
                return Err(GgufError::ExtentMismatch { what: "layer extent past the end of the bytes in memory", expected: l.extent.end, found: file.len() as u64 });
            }
        }
        Ok(ResidentLayers { file, layers: layout.layers.clone() })
    }

    /// The bytes of layer `layer`'s extent.
    pub fn extent(&self, layer: usize) -> &'a [u8] {
        let extent = &self.layers[layer].extent;
        // In bounds: checked in `new`.
        &self.file[extent.start as usize..extent.end as usize]
    }

    /// Layer `layer`'s layout.
    pub fn layout(&self, layer: usize) -> &LayerLayout {
        &self.layers[layer]
    }
}

impl LayerSource for ResidentLayers<'_> {
    fn layer(&self, layer: usize) -> LayerWeights<'_> {
        match LayerWeights::from_extent(&self.layers[layer], self.extent(layer)) {
            Ok(w) => w,
            Err(e) => panic!("layer {layer}: {e}"),
        }
    }
}
