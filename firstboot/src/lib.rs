//! kubeha-firstboot (see README).
