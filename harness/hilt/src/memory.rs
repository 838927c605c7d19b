//! Reading a board's memory links: the profile's declaration rendered into a [`MemoryPlan`] (paths,
//! addresses, the probe selector parsed once), then read into a snapshot within its limits; and the
//! snapshot's evidence (digests and an entropy map, never the bytes unless the profile allows it).

use std::path::PathBuf;
use std::time::Duration;

use hilt_link::Cancel;
use hilt_link::memory::command::DumpCommand;
use hilt_link::memory::file::FileImage;
use hilt_link::memory::gdb_remote::GdbRemote;
use hilt_link::memory::probe::{ProbeMemory, ProbeSelector, chip_regions};
use hilt_link::memory::{self, Limits, MemoryError, MemoryLink, Region, Snapshot};
use hilt_model::profile::{MemoryLink as MemoryDecl, MemorySource};
use hilt_model::template::Template;
use serde::Serialize;

/// Bytes per entropy-map block in the evidence: coarse enough to stay small for a 16 MiB dump.
const ENTROPY_BLOCK: usize = 4096;

/// Where the bytes come from, with every template rendered.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    GdbRemote(String),
    ProbeRs { probe: ProbeSelector, chip: String },
    Command { argv: Vec<String>, output: PathBuf },
}

/// A memory link ready to read.
#[derive(Debug, Clone)]
pub struct MemoryPlan {
    pub link: String,
    pub source: Source,
    /// Empty for a probe-rs link without declared regions: the chip's memory map is read.
    pub regions: Vec<Region>,
    pub max_bytes: u64,
    pub timeout: Duration,
    pub keep_bytes: bool,
}

impl MemoryPlan {
    /// Renders `decl` (link `link` of the profile) with `render`; a template that cannot be rendered
    /// or a bad probe selector is the profile's fault (the case is NOT_TESTED).
    pub fn new(
        link: &str,
        decl: &MemoryDecl,
        render: impl Fn(&Template) -> Result<String, String>,
    ) -> Result<MemoryPlan, String> {
        let source = match &decl.source {
            MemorySource::File { path } => Source::File(render(path)?.into()),
            MemorySource::GdbRemote { address } => Source::GdbRemote(render(address)?),
            MemorySource::ProbeRs { probe, chip } => Source::ProbeRs {
                probe: probe
                    .parse()
                    .map_err(|e| format!("link {link}: probe selector {probe:?}: {e}"))?,
                chip: chip.clone(),
            },
            MemorySource::Command { argv, output } => Source::Command {
                argv: argv.iter().map(&render).collect::<Result<_, _>>()?,
                output: render(output)?.into(),
            },
        };
        let regions = decl
            .regions
            .iter()
            .map(|r| Region {
                name: r.name.clone(),
                start: r.start,
                len: r.len,
            })
            .collect();
        Ok(MemoryPlan {
            link: link.to_string(),
            source,
            regions,
            max_bytes: decl.max_bytes,
            timeout: Duration::from_millis(decl.timeout_ms),
            keep_bytes: decl.keep_bytes,
        })
    }

    /// Reads every region once, within the plan's limits.
    pub fn read(&self, cancel: Cancel) -> Result<Snapshot, MemoryError> {
        let limits = Limits::new(self.max_bytes, self.timeout, cancel);
        let mut regions = self.regions.clone();
        let mut link: Box<dyn MemoryLink> = match &self.source {
            Source::File(path) => Box::new(FileImage::open(path)?),
            Source::GdbRemote(address) => Box::new(GdbRemote::connect(address, &limits)?),
            Source::ProbeRs { probe, chip } => {
                if regions.is_empty() {
                    regions = chip_regions(chip)?;
                }
                Box::new(ProbeMemory::probe_rs(probe.clone(), chip.clone()))
            }
            Source::Command { argv, output } => {
                Box::new(DumpCommand::new(argv.clone(), output.clone(), self.timeout))
            }
        };
        memory::snapshot(link.as_mut(), &regions, &limits)
    }
}

/// What one memory read got, on which unit (0 = the unit under test).
#[derive(Debug)]
pub struct MemoryRead {
    pub unit: usize,
    pub plan: MemoryPlan,
    pub snapshot: Snapshot,
}

/// A snapshot as evidence: where it came from, each region's digest and size, and its entropy map.
#[derive(Debug, Serialize)]
pub struct SnapshotEvidence<'a> {
    pub step: &'a str,
    /// 1-based, as profiles number units.
    pub unit: usize,
    pub link: &'a str,
    pub source: &'a str,
    pub regions: Vec<RegionEvidence>,
    pub bytes_kept: bool,
}

#[derive(Debug, Serialize)]
pub struct RegionEvidence {
    pub name: String,
    pub start: u64,
    pub len: u64,
    pub sha256: String,
    /// Share of the non-erased bytes that look encrypted or compressed.
    pub high_entropy_share: f64,
    /// Share of the region that is erased (all 0xFF or 0x00 blocks).
    pub erased_share: f64,
    pub entropy_map: Vec<hilt_canary::entropy::Block>,
}

impl<'a> SnapshotEvidence<'a> {
    pub fn of(step: &'a str, read: &'a MemoryRead) -> Self {
        let (plan, snapshot) = (&read.plan, &read.snapshot);
        let regions = snapshot
            .regions
            .iter()
            .map(|r| {
                let map = hilt_canary::entropy::map(&r.bytes, ENTROPY_BLOCK);
                RegionEvidence {
                    name: r.region.name.clone(),
                    start: r.region.start,
                    len: r.bytes.len() as u64,
                    sha256: r.sha256(),
                    high_entropy_share: hilt_canary::entropy::high_fraction(&map),
                    erased_share: erased_share(&map),
                    entropy_map: map,
                }
            })
            .collect();
        SnapshotEvidence {
            step,
            unit: read.unit + 1,
            link: &plan.link,
            source: &snapshot.source,
            regions,
            bytes_kept: plan.keep_bytes,
        }
    }
}

fn erased_share(map: &[hilt_canary::entropy::Block]) -> f64 {
    let total: usize = map.iter().map(|b| b.len).sum();
    if total == 0 {
        return 0.0;
    }
    let erased: usize = map
        .iter()
        .filter(|b| b.class == hilt_canary::entropy::Class::Erased)
        .map(|b| b.len)
        .sum();
    erased as f64 / total as f64
}

/// The digest over every region in order, as the step's `sha256` capture.
pub fn digest(snapshot: &Snapshot) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for r in &snapshot.regions {
        h.update(&r.bytes);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_model::profile::RegionDecl;

    fn file_decl() -> MemoryDecl {
        MemoryDecl {
            source: MemorySource::File {
                path: Template::parse("{state}/flash.img").unwrap(),
            },
            regions: vec![RegionDecl {
                name: "flash".into(),
                start: 4,
                len: 8,
            }],
            keep_bytes: false,
            max_bytes: 1024,
            timeout_ms: 5_000,
        }
    }

    #[test]
    fn a_file_link_reads_its_region_and_shows_digests_not_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("flash.img"),
            b"HDR:secret42\xff\xff\xff\xff",
        )
        .unwrap();
        let state = dir.path().display().to_string();
        let plan = MemoryPlan::new("flash", &file_decl(), |t| {
            Ok(t.source().replace("{state}", &state))
        })
        .unwrap();
        let snapshot = plan.read(Cancel::new()).unwrap();
        assert_eq!(snapshot.regions[0].bytes, b"secret42");
        let (sha, dig) = (snapshot.regions[0].sha256(), digest(&snapshot));
        let read = MemoryRead {
            unit: 0,
            plan,
            snapshot,
        };
        let ev = serde_json::to_string(&SnapshotEvidence::of("dump", &read)).unwrap();
        assert!(ev.contains(&sha) && !ev.contains("secret42"), "{ev}");
        assert_eq!(dig, sha);
    }

    #[test]
    fn a_missing_image_is_unreachable_and_a_bad_selector_is_the_profiles_fault() {
        let plan = MemoryPlan::new("flash", &file_decl(), |_| {
            Ok("/nonexistent/flash.img".into())
        })
        .unwrap();
        let e = plan.read(Cancel::new()).unwrap_err();
        assert!(matches!(e, MemoryError::Unreachable { .. }), "{e}");
        let probe = MemoryDecl {
            source: MemorySource::ProbeRs {
                probe: "not a selector".into(),
                chip: "nRF52840_xxAA".into(),
            },
            regions: vec![],
            ..file_decl()
        };
        let err = MemoryPlan::new("swd", &probe, |_| unreachable!()).unwrap_err();
        assert!(err.contains("probe selector"), "{err}");
    }
}
