//! AXIOM's inference engine: GGUF models, quantized matmuls, the LLaMA forward
//! pass, tokenizers and sampling.
//!
//! `no_std` + `alloc`: the same code runs on the kernel's compute cores and, in
//! host tests and the `axiom` host command, on std threads.

#![no_std]
// `unsafe` is allowed only in the small modules named where they are declared
// (list and reasons: docs/engine.md, "Where unsafe lives"), and every block
// says why it is sound.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

#[cfg(test)]
extern crate std;

#[allow(unsafe_code)] // XGETBV: the register state the OS enabled
pub mod cpu;
pub mod crc32c;
pub mod ggml_type;
pub mod gguf;
pub mod model;
pub mod image;
pub mod team;
pub mod sampler;
pub mod tokenizer;
pub mod conversation;
pub mod matmul;
pub mod quant;
pub mod forward;
pub mod reference;
pub mod state;
