//! `hilt-vboard run`: provision or boot from flash, open the UART, serve.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::agent_link::{AgentHandle, WakeSource};
use crate::auth::RateLimitPolicy;
use crate::ble::{BleRadio, DeviceFacts, Peripheral, SharedFacts};
use crate::clock::SystemClock;
use crate::cloud::{CloudError, CloudHandle, CloudOptions};
use crate::console::Console;
use crate::debug_port::{Access, DebugPort};
use crate::defects::{Defect, DefectSet};
use crate::flash::{Flash, FlashError, FlashState, write_atomic};
use crate::privacy::{PrivacyLink, PrivacyOptions};
use crate::provision::{ProvisionError, provision, write_label};
use crate::pty::{Pty, PtyError, open_raw};
use crate::serve::{Loop, ServeError, Stop, signal_fd};
use crate::storage::{Sealing, unit_key};
use crate::update::{Snapshot, StartError, UpdateHandle, UpdateLink, UpdateOptions};
use crate::usb::{UsbLink, UsbOptions};

pub const FLASH_FILE: &str = "flash.img";
pub const LABEL_FILE: &str = "label.txt";
/// How long a stopping board waits for its MQTT goodbye.
const CLOUD_STOP_WAIT: Duration = Duration::from_secs(1);
/// How long a stopping board waits for its update agent.
const UPDATE_STOP_WAIT: Duration = Duration::from_millis(500);
/// How long a stopping board waits for its privacy agent.
const PRIVACY_STOP_WAIT: Duration = Duration::from_millis(500);

/// Everything `run` needs, already validated.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub state_dir: PathBuf,
    /// Only used at factory provisioning; the serial in flash wins afterwards.
    pub serial: Option<String>,
    /// Where the unit came in the factory's sequence (1 = first); only the `sequential-passwords`
    /// defect lets it show.
    pub factory_seq: u32,
    pub defects: DefectSet,
    pub policy: RateLimitPolicy,
    pub ready_file: Option<PathBuf>,
    pub exit_on_stdin_eof: bool,
    /// The cloud link; `None` runs the board without one.
    pub cloud: Option<CloudOptions>,
    /// The update agent; `None` runs the board without one.
    pub update: Option<UpdateOptions>,
    /// The privacy agent (which needs the update service's origin); `None` runs without one.
    pub privacy: Option<PrivacyOptions>,
    /// Where the debug port (a GDB remote stub over TCP) listens; `None` runs without one.
    pub debug_port: Option<SocketAddr>,
    /// The bus file the USB device is published in, and whether it re-enumerates at reboot.
    pub usb: Option<UsbOptions>,
    /// The BLE radio's socket; `None` runs without a radio.
    pub ble: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Flash(#[from] FlashError),
    #[error("factory provisioning failed: {0}")]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Pty(#[from] PtyError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Update(#[from] StartError),
    #[error(transparent)]
    Privacy(#[from] crate::privacy::StartError),
    #[error("cannot open the debug port on {addr}: {source}")]
    DebugPort {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the BLE radio on {path}: {source}")]
    Ble {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the USB bus file {path}: {source}")]
    Usb {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write ready file {path}: {source}")]
    ReadyFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RunError {
    /// Exit code: 2 for a state the board refuses to boot from, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Flash(FlashError::Corrupt(_) | FlashError::UnsupportedVersion(_)) => 2,
            _ => 1,
        }
    }
}

/// Boots the board and serves its console until told to stop.
pub fn run(opts: &RunOptions) -> Result<Stop, RunError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&opts.state_dir)
        .map_err(|source| RunError::StateDir {
            path: opts.state_dir.clone(),
            source,
        })?;
    // The device key (eFuse stand-in) lives beside the image, never in it.
    let image = opts.state_dir.join(FLASH_FILE);
    let key = unit_key(&opts.state_dir, &image)?;
    let flash = Flash::new(image, key).with_sealing(Sealing::for_defects(&opts.defects));
    let state = boot_state(&flash, opts)?;
    let policy = if opts.defects.has(Defect::NoLoginRateLimit) {
        RateLimitPolicy::OFF
    } else {
        opts.policy
    };
    let defects: Vec<_> = opts.defects.iter().map(Defect::name).collect();
    tracing::info!(serial = %state.serial, ?defects, ?policy, "booting");

    // Signals are blocked before anyone learns the pty path, so an early
    // SIGTERM is queued for the loop instead of killing the process mid-write.
    let signals = signal_fd()?;
    // Started after the signals are blocked, so its thread inherits the mask.
    let cloud: Option<CloudHandle> = match &opts.cloud {
        Some(c) => Some(crate::cloud::start(c.clone(), &state.serial)?),
        None => None,
    };
    let update = match &opts.update {
        Some(u) => Some(start_update(u, &state, &opts.state_dir)?),
        None => None,
    };
    let privacy = match &opts.privacy {
        Some(p) => Some(start_privacy(p, &state)?),
        None => None,
    };
    let debug = match opts.debug_port {
        Some(addr) => Some(start_debug_port(addr, &flash, &opts.defects)?),
        None => {
            if opts.defects.has(Defect::DebugPortOpen) {
                tracing::warn!("no --debug-port: debug-port-open has no effect");
            }
            None
        }
    };
    // Listening before the ready line, so a host that saw it can connect at once.
    let ble = start_ble(opts, &state)?;
    let pty = open_raw()?;
    let usb = plug_usb(opts, &state.serial, &pty)?;
    announce(
        &pty.slave_path,
        debug.as_ref().map(DebugPort::local_addr),
        opts.ready_file.as_deref(),
    )?;

    let mut console = Console::new(state, policy, SystemClock);
    if opts.defects.has(Defect::WrongModelDesignation) {
        console.show_model("VRB");
    }
    if opts.defects.has(Defect::LockoutBypass) {
        console.bypass_lockout_for_the_right_password();
    }
    if opts.defects.has(Defect::NoSupportPeriod) {
        console.hide_support_period();
    }
    if let Some(handle) = &cloud {
        console.attach_cloud(handle.view());
    }
    if let Some((link, _)) = &update {
        console.attach_update(link.clone());
    }
    if let Some((link, _)) = &privacy {
        console.attach_privacy(link.clone());
    }
    if opts.defects.has(Defect::EraseKeepsUserData) {
        console.keep_user_data_on_erase();
    }
    if opts.defects.has(Defect::EraseSkipsThirdParties) {
        console.skip_third_parties_on_erase();
    }
    if opts.defects.has(Defect::WithdrawalHarder) {
        console.confirm_withdrawals();
    }
    if opts.defects.has(Defect::NoticeToOwnerOnly) {
        console.notify_owner_only();
    }
    if opts.defects.has(Defect::ExportLeaksOtherUser) {
        console.leak_other_users_in_export();
    }
    if opts.defects.has(Defect::IgnoresAppConsent) {
        console.ignore_app_consent();
    }
    if opts.defects.has(Defect::PrivacyNeedsLogin) {
        console.require_login_for_privacy();
    }
    if opts.defects.has(Defect::ConsentRecordUnstamped) {
        console.store_consents_unstamped();
    }
    if opts.defects.has(Defect::EraseKeepsPresenceName) {
        console.keep_presence_name();
    }
    if opts.defects.has(Defect::EraseKeepsWifiHistory) {
        console.keep_wifi_history();
    }
    if let Some((_, facts)) = &ble {
        console.attach_ble(facts.clone());
    }
    console.boot();
    let mut agents: Vec<&dyn WakeSource> = Vec::new();
    if let Some((link, _)) = &update {
        agents.push(link);
    }
    if let Some((link, _)) = &privacy {
        agents.push(link);
    }
    let stop = Loop {
        console: &mut console,
        pty,
        flash: &flash,
        signals: &signals,
        agents,
        watch_stdin: opts.exit_on_stdin_eof,
        usb: usb.as_ref().filter(|u| u.reenumerates()),
    }
    .run()?;
    if let Some(usb) = &usb
        && let Err(e) = usb.unplug()
    {
        tracing::warn!(error = %e, "cannot take the USB device off the bus");
    }
    if let Some((radio, _)) = ble {
        radio.shutdown();
    }
    if let Some(port) = debug {
        port.shutdown();
    }
    if let Some((_, handle)) = privacy {
        handle.shutdown(PRIVACY_STOP_WAIT);
    }
    if let Some((_, handle)) = update {
        handle.shutdown(UPDATE_STOP_WAIT);
    }
    if let Some(handle) = cloud {
        handle.shutdown(CLOUD_STOP_WAIT);
    }
    tracing::info!(?stop, "board stopped");
    Ok(stop)
}

/// Starts the BLE radio when asked for, showing the unit as `state` has it until the console
/// publishes; returns the radio and the facts the console keeps current.
fn start_ble(
    opts: &RunOptions,
    state: &FlashState,
) -> Result<Option<(BleRadio, SharedFacts)>, RunError> {
    let ble_defects = [
        Defect::BleLeaksSerial,
        Defect::BleAdvertisesOwner,
        Defect::BleExtraService,
    ];
    let Some(path) = &opts.ble else {
        for d in ble_defects.into_iter().filter(|d| opts.defects.has(*d)) {
            tracing::warn!("no --ble: {} has no effect", d.name());
        }
        return Ok(None);
    };
    let facts = SharedFacts::new(DeviceFacts::of(state));
    let peripheral = Peripheral::new(facts.clone(), &opts.defects, opts.factory_seq);
    let radio = BleRadio::start(path, peripheral).map_err(|source| RunError::Ble {
        path: path.clone(),
        source,
    })?;
    Ok(Some((radio, facts)))
}

/// Puts the USB device on the bus file when asked for, its console on `pty`.
fn plug_usb(opts: &RunOptions, serial: &str, pty: &Pty) -> Result<Option<UsbLink>, RunError> {
    let Some(usb) = &opts.usb else {
        if opts.defects.has(Defect::UsbDfuExposed) {
            tracing::warn!("no --usb-bus: usb-dfu-exposed has no effect");
        }
        return Ok(None);
    };
    let link = UsbLink::new(usb, serial, &opts.defects);
    link.plug(&pty.slave_path).map_err(|source| RunError::Usb {
        path: usb.bus.clone(),
        source,
    })?;
    Ok(Some(link))
}

/// Opens the debug port on `addr`, serving the flash image; locked unless `debug-port-open`.
fn start_debug_port(
    addr: SocketAddr,
    flash: &Flash,
    defects: &DefectSet,
) -> Result<DebugPort, RunError> {
    let access = if defects.has(Defect::DebugPortOpen) {
        Access::Open
    } else {
        Access::Locked
    };
    DebugPort::start(addr, flash.path().to_path_buf(), access)
        .map_err(|source| RunError::DebugPort { addr, source })
}

/// Starts the update agent, which sees `state` until the console publishes.
fn start_update(
    opts: &UpdateOptions,
    state: &FlashState,
    state_dir: &Path,
) -> Result<(UpdateLink, UpdateHandle), StartError> {
    let snapshot = Snapshot {
        update: state.update.clone(),
        session: false,
    };
    let (link, agent) = crate::update::channel(snapshot)?;
    let handle = crate::update::start(opts.clone(), state_dir.to_path_buf(), agent)?;
    Ok((link, handle))
}

/// Starts the privacy agent, which sees `state`'s owner until the console publishes.
fn start_privacy(
    opts: &PrivacyOptions,
    state: &FlashState,
) -> Result<(PrivacyLink, AgentHandle), crate::privacy::StartError> {
    let snapshot = crate::privacy::Snapshot::of(&state.privacy);
    let (link, end) = crate::privacy::channel(snapshot)?;
    let handle = crate::privacy::start(opts.clone(), state.serial.clone(), end)?;
    Ok((link, handle))
}

fn boot_state(flash: &Flash, opts: &RunOptions) -> Result<FlashState, RunError> {
    if let Some(state) = flash.load()? {
        if opts.defects.has(Defect::UniversalDefaultPassword) {
            tracing::warn!("unit already provisioned: universal-default-password has no effect");
        }
        // Written back at once in this firmware's format and storage policy: an image of earlier
        // firmware (user data in the clear) is sealed from this boot on.
        flash.store(&state)?;
        return Ok(state);
    }
    tracing::info!("no flash image: factory provisioning");
    let unit = provision(opts.serial.as_deref(), opts.factory_seq, &opts.defects)?;
    // Label first: a crash before the flash write re-provisions next boot
    // instead of leaving a unit whose password nobody knows.
    write_label(&opts.state_dir.join(LABEL_FILE), &unit.label)?;
    flash.store(&unit.state)?;
    Ok(unit.state)
}

/// Tells the host where the console is: the ready file first, then the ready
/// line (`PTY <path>`, or `PTY <path> DEBUG <ip:port>` with a debug port), so a
/// host that saw either can rely on both.
fn announce(
    slave: &Path,
    debug_port: Option<SocketAddr>,
    ready_file: Option<&Path>,
) -> Result<(), RunError> {
    if let Some(path) = ready_file {
        write_atomic(path, slave.as_os_str().as_encoded_bytes(), 0o644).map_err(|source| {
            RunError::ReadyFile {
                path: path.to_path_buf(),
                source,
            }
        })?;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{}", ready_line(slave, debug_port)).and_then(|()| out.flush()) {
        tracing::warn!(error = %e, "cannot print the PTY line on stdout");
    }
    Ok(())
}

/// The line on stdout that says the board is up: `PTY <path>`, then ` DEBUG <ip:port>` when it
/// has a debug port.
pub fn ready_line(slave: &Path, debug_port: Option<SocketAddr>) -> String {
    match debug_port {
        Some(addr) => format!("PTY {} DEBUG {addr}", slave.display()),
        None => format!("PTY {}", slave.display()),
    }
}
