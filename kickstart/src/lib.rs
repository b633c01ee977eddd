//! kubeha-kickstart (see README).
