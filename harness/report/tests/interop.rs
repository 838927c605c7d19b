//! Our envelopes verified by independent tools: Python securesystemslib (DSSE + Ed25519) and
//! openssl. Each test runs by default and skips with a message when its tool is missing.
mod common;

use std::fs;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use hilt_report::keys::{key_id, public_pem};
use hilt_report::sign::{Envelope, pae};

const VERIFY_PY: &str = r#"
import base64, hashlib, json, os, sys
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

env_path, pub_path, keyid = sys.argv[1:4]
pem = open(pub_path).read()
der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
assert der[:12] == bytes.fromhex("302a300506032b6570032100"), "not an Ed25519 SPKI"
assert hashlib.sha256(der).hexdigest() == keyid, "keyid is not sha256(SPKI DER)"
key = SSlibKey(keyid, "ed25519", "ed25519", {"public": der[12:].hex()})
with open(env_path) as f:
    env = Envelope.from_dict(json.load(f))
assert env.payload_type == "application/vnd.in-toto+json"
env.verify([key], 1)

st = json.loads(env.payload)
assert st["_type"] == "https://in-toto.io/Statement/v1"
assert st["predicateType"] == "https://hilt.dev/conformance-report/v1"
base = os.path.dirname(env_path)
files = 0
for s in st["subject"]:
    if s["name"].startswith("evidence/"):
        with open(os.path.join(base, s["name"]), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == s["digest"]["sha256"], s["name"]
        files += 1
with open(os.path.join(base, "report.json")) as f:
    assert st["predicate"] == json.load(f)

env.payload += b" "
try:
    env.verify([key], 1)
    sys.exit("tampered payload accepted")
except VerificationError:
    pass

try:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    k2 = SSlibKey.from_crypto(load_pem_public_key(pem.encode()), keyid=keyid)
    with open(env_path) as f:
        Envelope.from_dict(json.load(f)).verify([k2], 1)
    print("pem via cryptography: ok")
except ImportError:
    print("pem via cryptography: skipped (no cryptography module)")
print(f"verified {files} evidence files")
"#;

fn python_with_securesystemslib() -> bool {
    match Command::new("python3")
        .args(["-c", "import securesystemslib"])
        .output()
    {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "skipping: python3 cannot import securesystemslib (pip install securesystemslib): {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            false
        }
        Err(e) => {
            eprintln!("skipping: python3 not runnable: {e}");
            false
        }
    }
}

#[test]
fn securesystemslib_verifies_our_envelope() {
    if !python_with_securesystemslib() {
        return;
    }
    let (dir, env) = signed_dir();
    let key = test_key();
    let pub_path = dir.path().join("signer.pub.pem");
    fs::write(&pub_path, public_pem(&key.verifying_key())).unwrap();
    let out = Command::new("python3")
        .args(["-c", VERIFY_PY])
        .arg(&env)
        .arg(&pub_path)
        .arg(key.key_id())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python verification failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verified 2 evidence files"), "{stdout}");
    eprintln!("{stdout}");
}

#[test]
fn openssl_verifies_signature_over_pae() {
    let have = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("skipping: `openssl` is not on PATH");
        return;
    }
    let (dir, env) = signed_dir();
    let vk = test_key().verifying_key();
    let e: Envelope = serde_json::from_slice(&fs::read(&env).unwrap()).unwrap();
    assert_eq!(e.signatures[0].keyid, key_id(&vk));
    let payload = STANDARD.decode(&e.payload).unwrap();
    let (pub_path, msg, sig) = (
        dir.path().join("k.pub"),
        dir.path().join("pae"),
        dir.path().join("sig"),
    );
    fs::write(&pub_path, public_pem(&vk)).unwrap();
    fs::write(&sig, STANDARD.decode(&e.signatures[0].sig).unwrap()).unwrap();
    let run = |message: &[u8]| {
        fs::write(&msg, message).unwrap();
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&pub_path)
            .arg("-in")
            .arg(&msg)
            .arg("-sigfile")
            .arg(&sig)
            .output()
            .unwrap()
    };
    let good = run(&pae(&e.payload_type, &payload));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let mut tampered = payload.clone();
    tampered[0] ^= 1;
    assert!(!run(&pae(&e.payload_type, &tampered)).status.success());
}
