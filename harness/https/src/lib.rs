//! placeholder: the HTTPS services (in progress)
