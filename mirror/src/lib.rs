//! kubeha-mirror (see README).
pub mod rpm;
