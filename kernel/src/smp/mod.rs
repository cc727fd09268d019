pub mod percpu;
