//! The privacy agent: on its own thread (the update agent's runtime pattern), it pairs users and
//! reports consent decisions to the cloud, asks the cloud every analytics period for the decisions
//! the owner made in the companion app, sends usage analytics to the third-party processor only
//! while the owner's consent allows it, and sends privacy notices to users and erasure notices.
//! Every exchange is best effort and bounded: failures are logged, and reported to the console
//! where it waits.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::config::{ConsentPolicy, MIN_ANALYTICS_MS, PrivacyOptions};
use super::link::{Event, PrivacyEnd, PrivacyOutbox, Request, Snapshot};
use super::state::{ANALYTICS, Decision, Purpose, valid_user_id};
use super::sync::{CloudDecision, SyncError, history_path, latest};
use crate::agent_link::{AgentHandle, spawn_agent};
use crate::update::NOTICES_PATH;
use crate::update::http::Client;
use crate::update::url::HttpUrl;

pub const PAIR_PATH: &str = "/device/pair";
pub const DEVICE_ERASURE_PATH: &str = "/device/erasure";
pub const INGEST_PATH: &str = "/thirdparty/analytics/ingest";
/// How the console names the manufacturer's cloud when it could not be told of an erase.
pub const CLOUD: &str = "cloud";

#[derive(Debug, thiserror::Error)]
#[error("cannot start the privacy agent: {0}")]
pub struct StartError(#[from] std::io::Error);

/// Starts the agent for the device `serial`. Call after signals are blocked (see [`spawn_agent`]).
pub fn start(
    opts: PrivacyOptions,
    serial: String,
    end: PrivacyEnd,
) -> Result<AgentHandle, StartError> {
    let client = Client::new(opts.tls.clone()).with_limits(opts.limits);
    // Held while data goes out, so an erase's notices never overtake an analytics event in flight.
    let sending = Arc::new(Mutex::new(()));
    // The command line refuses shorter intervals; a zero one would panic the timers.
    let every = opts
        .analytics_every
        .max(Duration::from_millis(MIN_ANALYTICS_MS));
    let analytics = Analytics {
        outbox: end.outbox(),
        client: client.clone(),
        url: opts.url.with_path(INGEST_PATH),
        serial,
        every,
        policy: opts.consent,
        granted_by: None,
        sending: sending.clone(),
    };
    let agent = Agent {
        poll_client: Client::new(opts.tls.clone()).with_limits(opts.poll_limits),
        url: opts.url,
        client,
        end,
        sending,
        every,
    };
    Ok(spawn_agent("privacy", move |stop| {
        run(agent, analytics, stop)
    })?)
}

async fn run(mut agent: Agent, mut analytics: Analytics, stop: oneshot::Receiver<()>) {
    tracing::info!(
        every_ms = analytics.every.as_millis(),
        "privacy agent starting"
    );
    tokio::select! {
        _ = stop => {}
        () = agent.serve() => {}
        () = analytics.run() => {}
    }
    tracing::info!("privacy agent stopped");
}

/// Answers the console's requests, one at a time, in order, and between them asks the cloud for the
/// owner's consent history every `every`.
struct Agent {
    url: HttpUrl,
    client: Client,
    /// The client of the consent-history poll (shorter bounds, a larger answer).
    poll_client: Client,
    end: PrivacyEnd,
    sending: Arc<Mutex<()>>,
    every: Duration,
}

impl Agent {
    async fn serve(&mut self) {
        let mut polls = tokio::time::interval_at(Instant::now() + self.every, self.every);
        polls.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Requests first, and never during a poll: a decision made on the console is in the
                // cloud's history (or its report failed) before the history is read again.
                biased;
                request = self.end.recv() => match request {
                    Some(request) => self.handle(request).await,
                    None => return,
                },
                _ = polls.tick() => self.poll_consent().await,
            }
        }
    }

    async fn handle(&self, request: Request) {
        match request {
            Request::Pair { id, user } => self.pair(id, user).await,
            Request::ReportConsent {
                user,
                purpose,
                granted,
            } => self.report_consent(&user, purpose, granted).await,
            Request::Notify { text, users } => self.notify(&text, users).await,
            Request::Erase {
                id,
                third_parties,
                users,
            } => self.erase(id, third_parties, users).await,
        }
    }

    /// Tells the console the owner's latest analytics decision in the cloud when it differs from the
    /// device's; failures are only logged, the next period asks again.
    async fn poll_consent(&self) {
        let snapshot = self.end.snapshot();
        let Some(owner) = snapshot.owner else { return };
        let purpose = Purpose::Analytics;
        match self.cloud_decision(&owner, purpose).await {
            Ok(None) => {}
            Ok(Some(latest)) if Decision::from_granted(latest.granted) == snapshot.analytics => {}
            Ok(Some(latest)) => {
                tracing::debug!(
                    granted = latest.granted,
                    "the cloud holds another consent decision"
                );
                self.end.push(Event::CloudConsent {
                    user: owner,
                    purpose,
                    latest,
                });
            }
            Err(reason) => tracing::debug!(%reason, "cannot read the owner's consent history"),
        }
    }

    /// The latest decision of `user` on `purpose` in the cloud's history, `None` for an empty one.
    async fn cloud_decision(
        &self,
        user: &str,
        purpose: Purpose,
    ) -> Result<Option<CloudDecision>, SyncError> {
        let url = self.url.with_path(&history_path(user));
        let response = self.poll_client.get(&url).await?;
        if !(200..300).contains(&response.status) {
            return Err(SyncError::Status(response.status));
        }
        latest(&response.body, user, purpose)
    }

    async fn pair(&self, id: u64, user: String) {
        let url = self.url.with_path(PAIR_PATH);
        let result = send(&self.client, Method::Post, &url, json!({ "user": user })).await;
        match &result {
            Ok(()) => tracing::info!("user paired in the cloud"),
            Err(reason) => tracing::warn!(%reason, "pairing failed"),
        }
        self.end.push(Event::Paired { id, user, result });
    }

    async fn report_consent(&self, user: &str, purpose: Purpose, granted: bool) {
        let url = self
            .url
            .with_path(&format!("/device/consents/{}", purpose.name()));
        let body = json!({ "user": user, "granted": granted });
        match send(&self.client, Method::Put, &url, body).await {
            Ok(()) => tracing::info!(purpose = purpose.name(), granted, "consent reported"),
            Err(reason) => {
                tracing::warn!(purpose = purpose.name(), %reason, "cannot report a consent decision");
            }
        }
    }

    /// Asks the cloud to deliver `text` to exactly `users` (the console chose them).
    async fn notify(&self, text: &str, users: Vec<String>) {
        let url = self.url.with_path(NOTICES_PATH);
        let addressees = users.len();
        let body = json!({ "text": text, "users": users });
        match send(&self.client, Method::Post, &url, body).await {
            Ok(()) => tracing::info!(addressees, "privacy notice sent"),
            Err(reason) => tracing::warn!(addressees, %reason, "cannot send a privacy notice"),
        }
    }

    /// Third parties first (together), then the cloud; answers with whoever could not be told.
    async fn erase(&self, id: u64, third_parties: Vec<(String, String)>, users: Vec<String>) {
        let _sending = self.sending.lock().await;
        let mut not_told = self.tell_third_parties(third_parties).await;
        let url = self.url.with_path(DEVICE_ERASURE_PATH);
        if let Err(reason) = send(&self.client, Method::Post, &url, json!({ "users": users })).await
        {
            tracing::warn!(%reason, "cannot tell the cloud about the erase");
            not_told.push(CLOUD.to_string());
        }
        tracing::info!(not_told = not_told.len(), "erasure notices sent");
        self.end.push(Event::Erased { id, not_told });
    }

    /// The recipients (each once, sorted) that did not confirm every notice meant for them.
    async fn tell_third_parties(&self, notices: Vec<(String, String)>) -> Vec<String> {
        let mut tasks = JoinSet::new();
        let mut not_told = std::collections::BTreeSet::new();
        for (recipient, user) in notices {
            if !valid_user_id(&recipient) {
                not_told.insert(recipient);
                continue;
            }
            let url = self
                .url
                .with_path(&format!("/thirdparty/{recipient}/erasure"));
            let client = self.client.clone();
            tasks.spawn(async move {
                let told = send(&client, Method::Post, &url, json!({ "user": user })).await;
                (recipient, told)
            });
        }
        // A task that died is a notice never confirmed: its recipient is reported below.
        let mut told = std::collections::BTreeSet::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((recipient, Ok(()))) => {
                    told.insert(recipient);
                }
                Ok((recipient, Err(reason))) => {
                    tracing::warn!(%recipient, %reason, "cannot send an erasure notice");
                    not_told.insert(recipient);
                }
                Err(e) => tracing::error!(error = %e, "an erasure notice task failed"),
            }
        }
        not_told.into_iter().collect()
    }
}

/// Sends usage analytics for the owner every interval, while the consent policy allows it.
struct Analytics {
    outbox: PrivacyOutbox,
    client: Client,
    url: HttpUrl,
    serial: String,
    every: Duration,
    policy: ConsentPolicy,
    /// The owner seen granting analytics consent (only the `ignores-consent-withdrawal` defect cares).
    granted_by: Option<String>,
    sending: Arc<Mutex<()>>,
}

impl Analytics {
    async fn run(&mut self) {
        let started = Instant::now();
        let mut ticks = tokio::time::interval_at(started + self.every, self.every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.tick(started).await,
                changed = self.outbox.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.note(&self.outbox.snapshot());
                }
            }
        }
    }

    /// Remembers an owner who granted consent (a later erase or new owner forgets it).
    fn note(&mut self, s: &Snapshot) {
        if s.analytics == Decision::Granted {
            self.granted_by = s.owner.clone();
        } else if s.owner != self.granted_by {
            self.granted_by = None;
        }
    }

    async fn tick(&mut self, started: Instant) {
        let sending = self.sending.clone();
        let _sending = sending.lock().await;
        // Read under the lock: an erase publishes "no owner" before it asks for notices.
        let s = self.outbox.snapshot();
        self.note(&s);
        let Some(owner) = s.owner else { return };
        let granted_before = self.granted_by.as_deref() == Some(owner.as_str());
        if !self.policy.allows(s.analytics, granted_before) {
            return;
        }
        // Recorded before it goes out: a recipient that may hold the data must hear of an erase.
        self.outbox.push(Event::Sent {
            user: owner.clone(),
            recipient: ANALYTICS.to_string(),
        });
        let event = json!({
            "user": owner,
            "device": self.serial,
            "event": "usage",
            "uptime_s": started.elapsed().as_secs(),
        });
        match send(&self.client, Method::Post, &self.url, event).await {
            Ok(()) => tracing::debug!("usage analytics sent"),
            Err(reason) => tracing::warn!(%reason, "cannot send usage analytics"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Post,
    Put,
}

/// One JSON exchange: `Ok` on a 2xx answer, else a one-line reason.
async fn send(client: &Client, method: Method, url: &HttpUrl, body: Value) -> Result<(), String> {
    let body = body.to_string().into_bytes();
    let response = match method {
        Method::Post => client.post_json(url, body).await,
        Method::Put => client.put_json(url, body).await,
    };
    match response {
        Ok(r) if (200..300).contains(&r.status) => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status)),
        Err(e) => Err(e.to_string()),
    }
}
