//! Memory links: where a device's storage and memory can be read (a flash image or dump file, a GDB
//! remote stub, a debug probe through probe-rs, a vendor dump command), and the regions to read.
//!
//! ```toml
//! [links.flash]
//! kind = "memory"
//! source = "file"                        # file | gdb-remote | probe-rs | command
//! path = "{state}/flash.img"
//! regions = [{ name = "flash", start = "0x0", len = "0x40000" }]
//! ```
//!
//! Sources take: `file` a `path`; `gdb-remote` an `address` (`host:port`); `probe-rs` a `probe`
//! selector (`VID:PID[:SERIAL]`) and a `chip` name, regions optional (the chip's memory map
//! otherwise); `command` an argv `command` that writes `output`, within `timeout_ms`. Bytes read are
//! kept in the evidence only with `keep_bytes = true` (a real dump holds real secrets).

use serde::Deserialize;

use crate::template::Template;

/// A readable region: `start` and `len` in bytes, written as integers or hex strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionDecl {
    pub name: String,
    #[serde(deserialize_with = "address")]
    pub start: u64,
    #[serde(deserialize_with = "address")]
    pub len: u64,
}

/// Where the bytes come from.
#[derive(Debug, Clone)]
pub enum MemorySource {
    File {
        path: Template,
    },
    GdbRemote {
        address: Template,
    },
    ProbeRs {
        probe: String,
        chip: String,
    },
    Command {
        argv: Vec<Template>,
        output: Template,
    },
}

impl MemorySource {
    pub fn name(&self) -> &'static str {
        match self {
            MemorySource::File { .. } => "file",
            MemorySource::GdbRemote { .. } => "gdb-remote",
            MemorySource::ProbeRs { .. } => "probe-rs",
            MemorySource::Command { .. } => "command",
        }
    }
}

/// Largest region read by default: a whole 16 MiB SPI flash.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;
/// Time for a whole snapshot by default: a slow SWD read of a few MiB.
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;

#[derive(Debug, Clone)]
pub struct MemoryLink {
    pub source: MemorySource,
    /// Empty only for `probe-rs`, which then reads the chip's own memory map.
    pub regions: Vec<RegionDecl>,
    pub keep_bytes: bool,
    pub max_bytes: u64,
    pub timeout_ms: u64,
}

/// The memory fields of a raw link, checked into a [`MemoryLink`].
#[derive(Debug, Default)]
pub(super) struct RawMemory {
    pub source: Option<String>,
    pub path: Option<Template>,
    pub address: Option<Template>,
    pub probe: Option<String>,
    pub chip: Option<String>,
    pub command: Option<Vec<Template>>,
    pub output: Option<Template>,
    pub regions: Option<Vec<RegionDecl>>,
    pub keep_bytes: bool,
    pub max_bytes: Option<u64>,
    pub timeout_ms: Option<u64>,
}

impl RawMemory {
    pub(super) fn into_link(self) -> Result<MemoryLink, String> {
        let source = match self.source.as_deref() {
            Some("file") => MemorySource::File {
                path: self.path.ok_or("a file memory link needs `path`")?,
            },
            Some("gdb-remote") => MemorySource::GdbRemote {
                address: self
                    .address
                    .ok_or("a gdb-remote memory link needs `address` (host:port)")?,
            },
            Some("probe-rs") => MemorySource::ProbeRs {
                probe: self
                    .probe
                    .ok_or("a probe-rs memory link needs `probe` (VID:PID[:SERIAL])")?,
                chip: self
                    .chip
                    .ok_or("a probe-rs memory link needs `chip` (e.g. \"nRF52840_xxAA\")")?,
            },
            Some("command") => MemorySource::Command {
                argv: self
                    .command
                    .filter(|c| !c.is_empty())
                    .ok_or("a command memory link needs `command` (its argv)")?,
                output: self
                    .output
                    .ok_or("a command memory link needs `output` (the dump file it writes)")?,
            },
            Some(other) => {
                return Err(format!(
                    "unknown memory source {other:?} (known: file, gdb-remote, probe-rs, command)"
                ));
            }
            None => return Err("a memory link needs `source`".into()),
        };
        let regions = self.regions.unwrap_or_default();
        if regions.is_empty() && !matches!(source, MemorySource::ProbeRs { .. }) {
            return Err(format!("a {} memory link needs `regions`", source.name()));
        }
        let max_bytes = self.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        for r in &regions {
            if r.len == 0 || r.len > max_bytes {
                return Err(format!(
                    "region {:?} is {} bytes: give 1 to max_bytes ({max_bytes})",
                    r.name, r.len
                ));
            }
            if r.start.checked_add(r.len).is_none() {
                return Err(format!("region {:?} runs past the address space", r.name));
            }
        }
        Ok(MemoryLink {
            source,
            regions,
            keep_bytes: self.keep_bytes,
            max_bytes,
            timeout_ms: self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        })
    }
}

/// An address or length: an integer, or a string in hex (`"0x40000"`) or decimal.
fn address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(n),
        Raw::Text(s) => parse_address(&s).map_err(serde::de::Error::custom),
    }
}

fn parse_address(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| format!("{s:?} is not an address or length (e.g. \"0x40000\" or 4096)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_in_hex_or_decimal() {
        assert_eq!(parse_address("0x4_0000"), Ok(0x40000));
        assert_eq!(parse_address("4096"), Ok(4096));
        for bad in ["", "0x", "0xg", "-1", "1k"] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_source_needs_its_fields_and_regions() {
        let region = RegionDecl {
            name: "flash".into(),
            start: 0,
            len: 4096,
        };
        let file = |regions| RawMemory {
            source: Some("file".into()),
            path: Some(Template::parse("{state}/flash.img").unwrap()),
            regions,
            ..RawMemory::default()
        };
        assert!(file(Some(vec![region.clone()])).into_link().is_ok());
        assert!(
            file(None)
                .into_link()
                .unwrap_err()
                .contains("needs `regions`")
        );
        let probe = RawMemory {
            source: Some("probe-rs".into()),
            probe: Some("1366:1015".into()),
            chip: Some("nRF52840_xxAA".into()),
            ..RawMemory::default()
        };
        assert!(probe.into_link().is_ok(), "the chip's memory map stands in");
        let gdb = RawMemory {
            source: Some("gdb-remote".into()),
            regions: Some(vec![region.clone()]),
            ..RawMemory::default()
        };
        assert!(gdb.into_link().unwrap_err().contains("`address`"));
        let huge = RegionDecl {
            len: DEFAULT_MAX_BYTES + 1,
            ..region
        };
        assert!(
            file(Some(vec![huge]))
                .into_link()
                .unwrap_err()
                .contains("max_bytes")
        );
        let odd = RawMemory {
            source: Some("jtag".into()),
            ..RawMemory::default()
        };
        assert!(
            odd.into_link()
                .unwrap_err()
                .contains("unknown memory source")
        );
    }
}
