//! Memory links: read a device's storage and memory (flash, RAM) into a [`Snapshot`] that checks
//! search for planted canaries and compare across units.
//!
//! Every source sits behind [`MemoryLink`]: a flash image file, a GDB remote stub (OpenOCD, J-Link,
//! Black Magic Probe, pyOCD, QEMU), a debug probe through probe-rs, or a vendor dump command. Reads
//! are bounded by [`Limits`] (bytes and time), and a stub or probe that refuses access is told apart
//! from one that cannot be reached: a refusal is a finding about the device (its debug port is
//! locked), an unreachable source is bench trouble.

pub mod command;
pub mod file;
pub mod gdb_remote;
pub mod probe;

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::Cancel;

/// A named address range to read, from the board profile (e.g. `flash` at 0x0, 1 MiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub start: u64,
    pub len: u64,
}

/// The bytes read from one region.
#[derive(Debug, Clone)]
pub struct RegionImage {
    pub region: Region,
    pub bytes: Vec<u8>,
}

impl RegionImage {
    /// SHA-256 of the bytes, lower-case hex: always evidence, even when the bytes are not kept.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// Everything read from one source in one go.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// What was read, e.g. `gdb-remote 127.0.0.1:3333` or `file boards/x/flash.bin`.
    pub source: String,
    pub regions: Vec<RegionImage>,
}

/// Bounds on one read: a hostile or broken source gets a clear error, never a hang or a huge buffer.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The most bytes one region may hold.
    pub max_bytes: u64,
    /// When the whole snapshot must be done.
    pub deadline: Instant,
    pub cancel: Cancel,
}

impl Limits {
    pub fn new(max_bytes: u64, within: Duration, cancel: Cancel) -> Self {
        Limits {
            max_bytes,
            deadline: Instant::now() + within,
            cancel,
        }
    }

    /// `Err(TooLarge)` for a region over the size limit, before anything is read.
    pub fn admit(&self, region: &Region) -> Result<(), MemoryError> {
        if region.len > self.max_bytes {
            return Err(MemoryError::TooLarge {
                region: region.name.clone(),
                len: region.len,
                max: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Time left before the deadline (zero when passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// What went wrong reading memory.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The target answered and refused access (readout protection, a locked debug port).
    #[error("{source_desc} refused to read {what}: {reason}")]
    Refused {
        source_desc: String,
        what: String,
        reason: String,
    },
    /// The source could not be reached at all (no probe, nothing listening, no file).
    #[error("{source_desc} cannot be reached: {reason}")]
    Unreachable { source_desc: String, reason: String },
    /// The source answered something that is not the protocol.
    #[error("{source_desc} broke the protocol: {detail}")]
    Protocol { source_desc: String, detail: String },
    #[error("{source_desc} did not finish {what} within {after:?}")]
    Timeout {
        source_desc: String,
        what: String,
        after: Duration,
    },
    #[error("region {region} is {len} bytes, more than the limit of {max}")]
    TooLarge { region: String, len: u64, max: u64 },
    #[error("interrupted")]
    Cancelled,
}

impl MemoryError {
    /// A refusal is the device's answer; everything else is trouble on the bench.
    pub fn is_refusal(&self) -> bool {
        matches!(self, MemoryError::Refused { .. })
    }
}

/// One source of memory.
pub trait MemoryLink {
    /// What is read, for evidence and errors, e.g. `gdb-remote 127.0.0.1:3333`.
    fn describe(&self) -> String;

    /// Read `region` whole, within `limits`.
    fn read(&mut self, region: &Region, limits: &Limits) -> Result<Vec<u8>, MemoryError>;
}

/// Read every region from `link` into one snapshot, refusing regions over the size limit up front.
pub fn snapshot(
    link: &mut dyn MemoryLink,
    regions: &[Region],
    limits: &Limits,
) -> Result<Snapshot, MemoryError> {
    let mut images = Vec::with_capacity(regions.len());
    for region in regions {
        limits.admit(region)?;
        if limits.cancel.is_cancelled() {
            return Err(MemoryError::Cancelled);
        }
        let bytes = link.read(region, limits)?;
        images.push(RegionImage {
            region: region.clone(),
            bytes,
        });
    }
    Ok(Snapshot {
        source: link.describe(),
        regions: images,
    })
}
