//! The update agent: a current-thread tokio runtime on its own thread, so the console's poll loop
//! never waits on the network. Checks once after boot and then periodically, answers the console's
//! requests, tells the user and the cloud about security updates, and installs verified updates
//! into the standby slot, automatically only while no user is logged in.

use std::collections::HashSet;
use std::path::PathBuf;
use std::pin::pin;
use std::time::{SystemTime, UNIX_EPOCH};

use hilt_update::Manifest;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::config::UpdateOptions;
use super::http::Client;
use super::judge::{
    Outcome, Rejection, available_notice, installed_notice, installing_line, judge_image,
    judge_manifest, restart_warning, warn_secs,
};
use super::link::{AgentEnd, Event, Request, Wake};
use super::state::{AutoMode, SlotInfo};
use super::url::HttpUrl;
use crate::agent_link::{AgentHandle, spawn_agent};
use crate::flash::write_atomic;

/// Where device notices are posted, on the update service's origin.
pub const NOTICES_PATH: &str = "/device/notices";

#[derive(Debug, thiserror::Error)]
#[error("cannot start the update agent: {0}")]
pub struct StartError(#[from] std::io::Error);

/// The running agent. Dropping it stops the agent without waiting.
pub type UpdateHandle = AgentHandle;

/// Starts the agent; slot images go to `state_dir`. Call after signals are blocked: the new thread
/// inherits the mask, so SIGTERM still reaches the console loop's signalfd.
pub fn start(
    opts: UpdateOptions,
    state_dir: PathBuf,
    end: AgentEnd,
) -> Result<UpdateHandle, StartError> {
    let agent = Agent::new(opts, state_dir, end);
    Ok(spawn_agent("update", move |stop| agent.run(stop))?)
}

/// A release that passed every check the agent makes, with its image.
struct Verified {
    manifest: Manifest,
    image: Vec<u8>,
}

/// What a check found, before it is reported.
enum Found {
    Nothing,
    Update(Verified),
}

enum Trouble {
    Rejected(Rejection),
    Failed(String),
}

struct Agent {
    opts: UpdateOptions,
    client: Client,
    state_dir: PathBuf,
    end: AgentEnd,
    /// The last check's verified update, for `update install` and automatic installs.
    pending: Option<Verified>,
    /// Versions announced in this run (the console stores the notice a little later).
    announced: HashSet<String>,
}

impl Agent {
    fn new(opts: UpdateOptions, state_dir: PathBuf, end: AgentEnd) -> Self {
        let client = Client::new(opts.tls.clone()).with_limits(opts.limits);
        Self {
            opts,
            client,
            state_dir,
            end,
            pending: None,
            announced: HashSet::new(),
        }
    }

    async fn run(mut self, stop: oneshot::Receiver<()>) {
        tracing::info!(url = %self.opts.url, "update agent starting");
        tokio::select! {
            _ = stop => {}
            () = self.serve() => {}
        }
        tracing::info!("update agent stopped");
    }

    /// Checks at boot and on schedule, serves requests, installs when the device becomes idle.
    async fn serve(&mut self) {
        let mut next_check = Some(Instant::now());
        loop {
            let due = async move {
                match next_check {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = due => {
                    self.scheduled_check().await;
                    next_check = self.opts.periodic.then(|| Instant::now() + self.opts.check_interval);
                }
                wake = self.end.next() => match wake {
                    Wake::Closed => return,
                    Wake::Request(Request::Booted) => next_check = Some(Instant::now()),
                    Wake::Request(Request::Check { id }) => self.user_check(id).await,
                    Wake::Request(Request::Install { id }) => self.user_install(id).await,
                    Wake::Changed => self.install_if_idle().await,
                },
            }
        }
    }

    async fn scheduled_check(&mut self) {
        let outcome = self.check().await;
        tracing::debug!(line = %outcome.line(), "scheduled update check");
        self.install_if_idle().await;
    }

    async fn user_check(&mut self, id: u64) {
        let outcome = self.check().await;
        self.end.push(Event::Reply {
            id,
            line: outcome.line(),
        });
    }

    /// One check: its outcome is remembered (a verified update becomes pending) and announced.
    async fn check(&mut self) -> Outcome {
        let running = self.end.snapshot().update.running;
        let found = self.fetch_and_judge(&running).await;
        self.pending = None;
        match found {
            Ok(Found::Nothing) => Outcome::Current {
                running: running.version,
            },
            Ok(Found::Update(v)) => {
                let outcome = Outcome::Available {
                    version: v.manifest.version.clone(),
                    advisory: v.manifest.advisory.clone(),
                };
                self.announce(&v.manifest).await;
                self.pending = Some(v);
                outcome
            }
            Err(Trouble::Rejected(r)) => {
                tracing::warn!(version = ?r.version, reason = %r.reason, "update rejected");
                Outcome::Rejected(r)
            }
            Err(Trouble::Failed(error)) => {
                tracing::warn!(%error, "update check failed");
                Outcome::Failed(error)
            }
        }
    }

    /// The manifest, its checks, then (only if they pass) the image and its checks.
    async fn fetch_and_judge(&self, running: &SlotInfo) -> Result<Found, Trouble> {
        let url = self.opts.url.join("manifest.json");
        let response = self
            .client
            .get(&url)
            .await
            .map_err(|e| Trouble::Failed(format!("manifest: {e}")))?;
        match response.status {
            200 => {}
            404 => return Ok(Found::Nothing),
            status => return Err(Trouble::Failed(format!("manifest: HTTP {status}"))),
        }
        let checks = self.opts.checks;
        let Some(manifest) = judge_manifest(&response.body, running, &self.opts.vendor_key, checks)
            .map_err(Trouble::Rejected)?
        else {
            return Ok(Found::Nothing);
        };
        let image_url = HttpUrl::parse(&manifest.image.url).map_err(|e| {
            Trouble::Rejected(Rejection {
                version: Some(manifest.version.clone()),
                reason: format!("image URL {e}"),
            })
        })?;
        let image = self
            .client
            .get(&image_url)
            .await
            .map_err(|e| Trouble::Failed(format!("image: {e}")))?;
        if image.status != 200 {
            return Err(Trouble::Failed(format!("image: HTTP {}", image.status)));
        }
        judge_image(&manifest, &image.body, checks).map_err(Trouble::Rejected)?;
        tracing::info!(version = %manifest.version, "verified update available");
        Ok(Found::Update(Verified {
            manifest,
            image: image.body,
        }))
    }

    /// Tells the user (device notices) and the cloud, once per version, that a security update exists.
    async fn announce(&mut self, m: &Manifest) {
        let Some(risk) = &m.advisory else { return };
        if self.opts.silent {
            return;
        }
        let text = available_notice(&m.version, risk);
        if self.end.snapshot().update.has_notice(&text) || !self.announced.insert(m.version.clone())
        {
            return;
        }
        self.end.push(Event::Notice(text.clone()));
        self.post_notice(&text).await;
    }

    /// Installs the pending update if automatic updates are on and no user is logged in.
    async fn install_if_idle(&mut self) {
        if self.pending.is_none() || !self.may_install_automatically() {
            return;
        }
        let Some(update) = self.pending.take() else {
            return;
        };
        let warning = restart_warning(self.warn_s(), &update.manifest.version);
        tracing::info!(version = %update.manifest.version, "automatic install: warning the user");
        self.end.push(Event::Print(format!("\r\n{warning}\r\n")));
        self.post_notice(&warning).await;
        if !self.warn_unless_a_user_logs_in().await {
            tracing::info!("a user logged in during the warning: automatic install put off");
            self.pending = Some(update);
            return;
        }
        self.install(update).await;
    }

    fn may_install_automatically(&self) -> bool {
        let s = self.end.snapshot();
        let mode = s.update.auto_mode(unix_now_ms());
        !s.session && (mode == AutoMode::On || (self.opts.ignores_off && mode == AutoMode::Off))
    }

    /// Waits out the warning; false if a user logged in meanwhile (or the console went away).
    async fn warn_unless_a_user_logs_in(&mut self) -> bool {
        let mut warning = pin!(tokio::time::sleep(self.opts.warn));
        loop {
            if self.end.snapshot().session {
                return false;
            }
            tokio::select! {
                () = &mut warning => return true,
                changed = self.end.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                }
            }
        }
    }

    async fn user_install(&mut self, id: u64) {
        let Some(update) = self.pending.take() else {
            let line = "update: nothing to install".to_string();
            self.end.push(Event::Reply { id, line });
            return;
        };
        let version = update.manifest.version.clone();
        let line = installing_line(&version, self.warn_s());
        self.end.push(Event::Reply { id, line });
        self.post_notice(&restart_warning(self.warn_s(), &version))
            .await;
        tokio::time::sleep(self.opts.warn).await;
        self.install(update).await;
    }

    /// Writes the image to the standby slot and has the console switch to it and restart.
    async fn install(&mut self, update: Verified) {
        let m = update.manifest;
        let slot = self.end.snapshot().update.active.other();
        let path = self.state_dir.join(slot.file_name());
        if let Err(e) = write_atomic(&path, &update.image, 0o600) {
            tracing::error!(path = %path.display(), error = %e, "cannot write the update image");
            return;
        }
        tracing::info!(version = %m.version, slot = slot.letter(), "update written, restarting");
        let notice = match &m.advisory {
            Some(risk) if !self.opts.silent => Some(installed_notice(&m.version, risk)),
            _ => None,
        };
        self.end.push(Event::Installed {
            info: SlotInfo {
                version: m.version,
                security_version: m.security_version,
                sha256: m.image.sha256,
            },
            notice: notice.clone(),
        });
        if let Some(text) = notice {
            self.post_notice(&text).await;
        }
    }

    fn warn_s(&self) -> u64 {
        warn_secs(u64::try_from(self.opts.warn.as_millis()).unwrap_or(u64::MAX))
    }

    /// Best effort: a notice the cloud does not take is logged, never fatal.
    async fn post_notice(&self, text: &str) {
        let url = self.opts.url.with_path(NOTICES_PATH);
        let body = serde_json::json!({ "text": text }).to_string().into_bytes();
        match self.client.post_json(&url, body).await {
            Ok(r) if (200..300).contains(&r.status) => tracing::debug!("device notice sent"),
            Ok(r) => tracing::warn!(status = r.status, "the cloud refused a device notice"),
            Err(e) => tracing::warn!(error = %e, "cannot send a device notice to the cloud"),
        }
    }
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
