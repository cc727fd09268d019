//! AXIOM's inference engine: GGUF models, quantized matmuls, the LLaMA forward
//! pass, tokenizers and sampling.
//!
//! `no_std` + `alloc`: the same code runs on the kernel's compute cores and, in
//! host tests and the `axiom` host command, on std threads.

#![no_std]

extern crate alloc;

#[cfg(test)]
extern crate std;

pub mod cpu;
pub mod crc32c;
pub mod ggml_type;
pub mod gguf;
pub mod model;
pub mod image;
pub mod team;
pub mod sampler;
pub mod tokenizer;
pub mod matmul;
pub mod quant;
pub mod forward;
pub mod state;
