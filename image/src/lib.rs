//! kubeha-image (see README).
