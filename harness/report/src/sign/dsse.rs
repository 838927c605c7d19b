//! DSSE envelopes (secure-systems-lab/dsse v1): the signature covers the pre-authentication
//! encoding (PAE) of payload type and payload, never the JSON around them.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::keys::KeyPair;

/// The payload type DSSE uses for in-toto Statements.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Standard base64 that accepts exactly one spelling per byte string: padding required and
/// canonical, no stray trailing bits. Otherwise one signed envelope would have many valid files.
const STRICT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(false),
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Standard base64 of the payload bytes.
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Lowercase hex SHA-256 of the signer's SPKI DER (see `keys::key_id`).
    pub keyid: String,
    /// Standard base64 of the 64-byte Ed25519 signature.
    pub sig: String,
}

/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths as ASCII decimal byte counts.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            payload.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

/// Signs arbitrary payload bytes into a one-signature envelope.
pub fn sign_payload(payload_type: &str, payload: &[u8], key: &KeyPair) -> Envelope {
    let signature = key.sign(&pae(payload_type, payload));
    Envelope {
        payload: STANDARD.encode(payload),
        payload_type: payload_type.to_string(),
        signatures: vec![EnvelopeSignature {
            keyid: key.key_id(),
            sig: STANDARD.encode(signature.to_bytes()),
        }],
    }
}

/// The one canonical file form of an envelope: pretty JSON (two-space indent, keys in this fixed
/// order) plus a final newline. The verifier re-serialises and compares byte for byte.
pub fn envelope_bytes(env: &Envelope) -> Vec<u8> {
    let signatures: Vec<_> = env
        .signatures
        .iter()
        .map(|s| json!({"keyid": s.keyid, "sig": s.sig}))
        .collect();
    let value = json!({
        "payload": env.payload,
        "payloadType": env.payload_type,
        "signatures": signatures,
    });
    // Value's alternate Display is serde_json's pretty printer and cannot fail.
    format!("{value:#}\n").into_bytes()
}

/// Decodes strict standard base64; the reason says what was wrong.
pub(crate) fn decode_strict(text: &str) -> Result<Vec<u8>, String> {
    let bytes = STRICT_B64.decode(text).map_err(|e| e.to_string())?;
    // Belt and braces: only the canonical spelling of these bytes is accepted.
    if STANDARD.encode(&bytes) != text {
        return Err("not the canonical encoding of its bytes".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // From DSSE protocol.md's test vector.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn strict_base64_rejects_variants() {
        assert_eq!(decode_strict("aGk=").unwrap(), b"hi");
        assert!(decode_strict("aGk").is_err(), "missing padding");
        assert!(decode_strict("aGl=").is_err(), "non-zero trailing bits");
        assert!(decode_strict("aGk==").is_err(), "extra padding");
        assert!(decode_strict("aG k=").is_err(), "whitespace");
        assert!(decode_strict("aGk-").is_err(), "url-safe alphabet");
    }

    #[test]
    fn canonical_form_is_stable() {
        let env = Envelope {
            payload: "e30=".into(),
            payload_type: PAYLOAD_TYPE.into(),
            signatures: vec![EnvelopeSignature {
                keyid: "ab".into(),
                sig: "cd==".into(),
            }],
        };
        let text = String::from_utf8(envelope_bytes(&env)).unwrap();
        assert_eq!(
            text,
            "{\n  \"payload\": \"e30=\",\n  \"payloadType\": \"application/vnd.in-toto+json\",\n  \
             \"signatures\": [\n    {\n      \"keyid\": \"ab\",\n      \"sig\": \"cd==\"\n    }\n  ]\n}\n"
        );
        let parsed: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, env);
    }
}
