//! The model: hyper-parameters from metadata ([`ModelConfig`]), where each
//! tensor lives ([`ModelLayout`]), and typed views of the weight bytes.

mod config;
mod layout;

pub use config::{Arch, ModelConfig, RopeConfig, RopeLayout};
pub use layout::{GlobalsLayout, LayerLayout, ModelLayout, TensorRef};
