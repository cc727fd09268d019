//! A polled NVMe driver in the spirit of SPDK's queue-pair API.
//!
//! * [`Controller::init`] resets and enables a controller (timeouts from
//!   CAP.TO), sets up the admin queue, identifies the controller, and
//!   [`Controller::first_namespace`] / [`Controller::namespace`] identify a
//!   namespace.
//! * [`Controller::create_io_queue_pair`] creates one I/O CQ/SQ pair for the
//!   polling core (interrupts off).
//! * [`IoQueuePair::submit_read`] queues a read of any size straight into the
//!   caller's buffer (split by MDTS, PRP lists pre-allocated per command id);
//!   [`IoQueuePair::process_completions`] rings the doorbell once per batch,
//!   reaps completions by phase tag, matches them by command id, refills the
//!   queue, and reports finished reads with their tag.
//!
//! Hardware access goes through [`crate::hw`]; the host tests run this code
//! against [`sim::SimController`], a software model of a controller.

pub mod command;
pub mod controller;
pub mod error;
pub mod identify;
pub mod prp;
pub mod qpair;
pub mod queue;
pub mod regs;
pub mod status;
pub mod stream;

#[cfg(any(test, feature = "sim"))]
pub mod sim;

#[cfg(test)]
mod tests;

pub use command::{Command, CommandInfo, Completion, Opcode};
pub use controller::{Controller, ControllerOptions, Namespace};
pub use error::{BufferError, NvmeError};
pub use identify::{ControllerIdentity, NamespaceIdentity};
pub use qpair::{IoQueuePair, QueuePairOptions, QueuePairStats, ReadBuffer, ReadCompletion};
pub use status::Status;
pub use stream::{read_sequential, StreamStats};
