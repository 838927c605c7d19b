//! Our envelopes and key files checked by independent tools: Python securesystemslib (DSSE +
//! Ed25519) and openssl. A trial whose tool is missing reports itself *ignored* with the reason,
//! never passed (hence `harness = false` and libtest-mimic).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use hilt_report::keys::{KeyPair, key_id, load_private, load_public, public_pem, write_key_files};
use hilt_report::sign::{Envelope, pae};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let trials = vec![
        Trial::ignorable_test(
            "securesystemslib_verifies_our_envelope",
            securesystemslib_verifies_our_envelope,
        ),
        Trial::ignorable_test(
            "openssl_verifies_signature_over_pae",
            openssl_verifies_signature_over_pae,
        ),
        Trial::ignorable_test("openssl_reads_our_keys", openssl_reads_our_keys),
        Trial::ignorable_test("loads_keys_made_by_openssl", loads_keys_made_by_openssl),
    ];
    libtest_mimic::run(&args, trials).exit();
}

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

/// Why python3 with securesystemslib cannot be used, if it cannot.
fn python_missing() -> Option<String> {
    match Command::new("python3")
        .args(["-c", "import securesystemslib"])
        .output()
    {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "python3 cannot import securesystemslib (pip install securesystemslib): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(e) => Some(format!("python3 not runnable: {e}")),
    }
}

/// Why openssl cannot be used, if it cannot.
fn openssl_missing() -> Option<String> {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    (!ok).then(|| "`openssl` is not on PATH (apt-get install openssl)".to_owned())
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(what().into()) }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn securesystemslib_verifies_our_envelope() -> Result<Completion, Failed> {
    if let Some(reason) = python_missing() {
        return Ok(Completion::ignored_with(reason));
    }
    let (dir, env) = signed_dir();
    let key = test_key();
    let pub_path = dir.path().join("signer.pub.pem");
    fs::write(&pub_path, public_pem(&key.verifying_key()))?;
    let out = Command::new("python3")
        .args(["-c", VERIFY_PY])
        .arg(&env)
        .arg(&pub_path)
        .arg(key.key_id())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure(out.status.success(), || {
        format!("python verification failed:\n{stdout}\n{}", stderr(&out))
    })?;
    ensure(stdout.contains("verified 2 evidence files"), || {
        stdout.to_string()
    })?;
    eprintln!("{stdout}");
    Ok(Completion::Completed)
}

fn openssl_verifies_signature_over_pae() -> Result<Completion, Failed> {
    if let Some(reason) = openssl_missing() {
        return Ok(Completion::ignored_with(reason));
    }
    let (dir, env) = signed_dir();
    let vk = test_key().verifying_key();
    let e: Envelope = serde_json::from_slice(&fs::read(&env)?)?;
    let [signature] = e.signatures.as_slice() else {
        return Err(format!("{} signatures, expected one", e.signatures.len()).into());
    };
    ensure(signature.keyid == key_id(&vk), || {
        format!("keyid {} is not the key's", signature.keyid)
    })?;
    let payload = STANDARD.decode(&e.payload)?;
    let (pub_path, msg, sig) = (
        dir.path().join("k.pub"),
        dir.path().join("pae"),
        dir.path().join("sig"),
    );
    fs::write(&pub_path, public_pem(&vk))?;
    fs::write(&sig, STANDARD.decode(&signature.sig)?)?;
    let verify = |message: &[u8]| -> Result<Output, Failed> {
        fs::write(&msg, message)?;
        Ok(openssl()
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&pub_path)
            .arg("-in")
            .arg(&msg)
            .arg("-sigfile")
            .arg(&sig)
            .output()?)
    };
    let good = verify(&pae(&e.payload_type, &payload))?;
    ensure(good.status.success(), || stderr(&good))?;
    let mut tampered = payload.clone();
    tampered[0] ^= 1;
    let bad = verify(&pae(&e.payload_type, &tampered))?;
    ensure(!bad.status.success(), || {
        "openssl accepted the signature over a tampered payload".to_owned()
    })?;
    Ok(Completion::Completed)
}

/// Runs `cmd` (an openssl command) and requires it to succeed.
fn succeed(cmd: &mut Command) -> Result<Output, Failed> {
    let out = cmd.output()?;
    ensure(out.status.success(), || {
        format!("{cmd:?} failed: {}", stderr(&out))
    })?;
    Ok(out)
}

fn openssl() -> Command {
    Command::new("openssl")
}

fn openssl_reads_our_keys() -> Result<Completion, Failed> {
    if let Some(reason) = openssl_missing() {
        return Ok(Completion::ignored_with(reason));
    }
    let tmp = tempfile::tempdir()?;
    let key = KeyPair::from_seed(&[3; 32]);
    let (private, public) = write_key_files(tmp.path(), "k", &key)?;
    let out = succeed(openssl().args(["pkey", "-pubout", "-in"]).arg(&private))?;
    let ours = fs::read_to_string(&public)?;
    ensure(String::from_utf8(out.stdout)? == ours, || {
        "openssl derives another public key from our private key".to_owned()
    })?;
    succeed(
        openssl()
            .args(["pkey", "-pubin", "-noout", "-in"])
            .arg(&public),
    )?;
    Ok(Completion::Completed)
}

fn loads_keys_made_by_openssl() -> Result<Completion, Failed> {
    if let Some(reason) = openssl_missing() {
        return Ok(Completion::ignored_with(reason));
    }
    let tmp = tempfile::tempdir()?;
    let private = tmp.path().join("o.key.pem");
    let public = tmp.path().join("o.pub.pem");
    succeed(
        openssl()
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&private),
    )?;
    succeed(
        openssl()
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public),
    )?;
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600))?;
    let pair = load_private(&private)?;
    ensure(pair.verifying_key() == load_public(&public)?, || {
        "the public key openssl wrote is not the private key's".to_owned()
    })?;
    Ok(Completion::Completed)
}
