//! Polled NVMe driver (placeholder while the modules land).
