//! kubeha-mirror (see README).
