use clap::Args;
use std::path::PathBuf;

use super::Failure;

#[derive(Args)]
pub struct KeygenArgs {
    /// Directory for the key files (created 0700 if missing)
    #[arg(long)]
    out: PathBuf,
    /// File name stem: writes STEM.key.pem (0600) and STEM.pub.pem
    #[arg(long, default_value = "hilt-signing")]
    name: String,
}

pub fn run(a: KeygenArgs) -> Result<u8, Failure> {
    let (private, public) =
        hilt_report::keys::write_keypair(&a.out, &a.name).map_err(Failure::input)?;
    println!(
        "private key: {} (mode 0600: keep it secret)",
        private.display()
    );
    println!(
        "public key:  {} (give this to whoever verifies your reports)",
        public.display()
    );
    Ok(super::exit::OK)
}
