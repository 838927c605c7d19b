//! ATT error names: the kebab-case form of the Core Specification's names (Vol 3, Part F, 3.4.1.1),
//! the vocabulary of [`BleError::Refused`](super::BleError::Refused) and [`Reply::Att`](super::wire::Reply::Att)
//! whichever backend heard the error.

pub const READ_NOT_PERMITTED: &str = "read-not-permitted";
pub const WRITE_NOT_PERMITTED: &str = "write-not-permitted";
pub const INSUFFICIENT_AUTHENTICATION: &str = "insufficient-authentication";
pub const INSUFFICIENT_AUTHORIZATION: &str = "insufficient-authorization";
pub const INSUFFICIENT_ENCRYPTION: &str = "insufficient-encryption";
pub const REQUEST_NOT_SUPPORTED: &str = "request-not-supported";

/// The name of an ATT error code; codes without a name in the specification are shown in hex
/// (`att-error-0x9a`), application errors (0x80–0x9f) included.
pub fn name(code: u8) -> String {
    let known = match code {
        0x01 => "invalid-handle",
        0x02 => READ_NOT_PERMITTED,
        0x03 => WRITE_NOT_PERMITTED,
        0x04 => "invalid-pdu",
        0x05 => INSUFFICIENT_AUTHENTICATION,
        0x06 => REQUEST_NOT_SUPPORTED,
        0x07 => "invalid-offset",
        0x08 => INSUFFICIENT_AUTHORIZATION,
        0x09 => "prepare-queue-full",
        0x0a => "attribute-not-found",
        0x0b => "attribute-not-long",
        0x0c => "encryption-key-size-too-short",
        0x0d => "invalid-attribute-value-length",
        0x0e => "unlikely-error",
        0x0f => INSUFFICIENT_ENCRYPTION,
        0x10 => "unsupported-group-type",
        0x11 => "insufficient-resources",
        0x12 => "database-out-of-sync",
        0x13 => "value-not-allowed",
        // Common profile and service error codes (Core Specification Supplement, Part B).
        0xfc => "write-request-rejected",
        0xfd => "cccd-improperly-configured",
        0xfe => "procedure-already-in-progress",
        0xff => "out-of-range",
        _ => return format!("att-error-0x{code:02x}"),
    };
    known.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_have_spec_names_and_unknown_codes_show_in_hex() {
        assert_eq!(super::name(0x05), "insufficient-authentication");
        assert_eq!(super::name(0x0f), "insufficient-encryption");
        assert_eq!(super::name(0x0a), "attribute-not-found");
        assert_eq!(super::name(0x80), "att-error-0x80");
        assert_eq!(super::name(0x00), "att-error-0x00");
    }
}
