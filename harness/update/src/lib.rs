//! Software updates as hilt plays them: the manufacturer's signed release manifest (a DSSE envelope,
//! Ed25519, around a small JSON manifest naming the image by SHA-256 and size, with an anti-rollback
//! security version), the check a device must make before installing ([`verify`]), and the bad
//! variants a lab offers to prove the device makes it ([`variant`]): tampered, foreign-signed,
//! unsigned, downgraded and insecurely delivered.
//!
//! The mock cloud's update server publishes what [`variant::Publisher`] makes; the virtual board's
//! update agent verifies with [`verify`]. A real board verifies with its own code, and the same
//! variants test it.

pub mod manifest;
pub mod variant;
mod verify;

pub use manifest::{ImageRef, Manifest, PAYLOAD_TYPE};
pub use verify::{Checks, Trust, UpdateError, verify, verify_image, verify_manifest};
