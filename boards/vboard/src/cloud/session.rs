//! The MQTT session: a current-thread tokio runtime on its own thread, so the console's poll
//! loop never waits on the network. Reconnects with [`Backoff`] after every failure.

use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, Transport};
use tokio::sync::oneshot;

use super::backoff::Backoff;

/// The retry interval of the `reconnect-storm` defect.
const STORM_DELAY: std::time::Duration = std::time::Duration::from_millis(10);
use super::config::CloudOptions;
use super::state::{CloudView, Link};
use super::tls::{self, TlsError};
use crate::telemetry::{self, Topics};

const KEEP_ALIVE: Duration = Duration::from_secs(30);
const REQUEST_CAPACITY: usize = 32;
/// How long a clean MQTT DISCONNECT may take when the board stops.
const GOODBYE: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot start the cloud link: {0}")]
    Start(std::io::Error),
}

/// The running link. Dropping it stops the link without waiting.
pub struct CloudHandle {
    view: CloudView,
    stop: Option<oneshot::Sender<()>>,
    done: mpsc::Receiver<()>,
}

impl CloudHandle {
    pub fn view(&self) -> CloudView {
        self.view.clone()
    }

    /// Says goodbye to the broker and waits (at most `wait`) for the thread to finish.
    pub fn shutdown(mut self, wait: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.done.recv_timeout(wait).is_err() {
            tracing::debug!("cloud link did not stop in time");
        }
    }
}

/// Starts the link for unit `serial`. Call after signals are blocked: the new thread inherits
/// the mask, so SIGTERM still reaches the console loop's signalfd.
pub fn start(opts: CloudOptions, serial: &str) -> Result<CloudHandle, CloudError> {
    let mqtt = mqtt_options(&opts, serial)?;
    let view = CloudView::new(&opts.url.to_string());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CloudError::Start)?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let session = Session {
        view: view.clone(),
        topics: Topics::new(serial),
        serial: serial.to_string(),
        opts,
    };
    std::thread::Builder::new()
        .name("cloud".into())
        .spawn(move || {
            runtime.block_on(session.run(mqtt, stop_rx));
            let _ = done_tx.send(());
        })
        .map_err(CloudError::Start)?;
    Ok(CloudHandle {
        view,
        stop: Some(stop_tx),
        done: done_rx,
    })
}

fn mqtt_options(opts: &CloudOptions, serial: &str) -> Result<MqttOptions, CloudError> {
    let mut mqtt = MqttOptions::new(serial, opts.url.host.clone(), opts.url.port);
    mqtt.set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_request_channel_capacity(REQUEST_CAPACITY);
    if let Some(c) = &opts.credentials {
        mqtt.set_credentials(c.username.clone(), c.password.expose());
    }
    if opts.url.tls {
        // rumqttc checks the certificate against the URL's host (an IP address for an IP host).
        let config = if opts.accept_any_cert {
            tls::accepting_any()?
        } else {
            tls::trusting(&opts.ca)?
        };
        mqtt.set_transport(Transport::Tls(rumqttc::TlsConfiguration::Rustls(config)));
    } else {
        tracing::warn!(url = %opts.url, "connecting to the cloud WITHOUT TLS");
    }
    Ok(mqtt)
}

struct Session {
    view: CloudView,
    topics: Topics,
    serial: String,
    opts: CloudOptions,
}

impl Session {
    async fn run(self, mqtt: MqttOptions, stop: oneshot::Receiver<()>) {
        let (client, mut events) = AsyncClient::new(mqtt, REQUEST_CAPACITY);
        let reporter = tokio::spawn(report(
            client.clone(),
            self.view.clone(),
            self.topics.clone(),
            self.serial.clone(),
            self.opts.telemetry,
            self.opts.undeclared_flow,
        ));
        tracing::info!(url = %self.opts.url, "cloud link starting");
        tokio::select! {
            _ = stop => {}
            () = self.serve(&client, &mut events) => {}
        }
        reporter.abort();
        if self.view.link() == Link::Connected && client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(GOODBYE, async {
                while let Ok(ev) = events.poll().await {
                    if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
        tracing::info!("cloud link stopped");
    }

    /// Polls the connection forever: connects, handles incoming packets, backs off on failure.
    async fn serve(&self, client: &AsyncClient, events: &mut EventLoop) {
        let mut backoff = Backoff::with_ceiling(self.opts.backoff_max);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.connected(Instant::now());
                    self.view.set_connected();
                    tracing::info!(url = %self.opts.url, "connected to the cloud");
                    for topic in [&self.topics.cmd, &self.topics.notice] {
                        if let Err(e) = client.try_subscribe(topic.as_str(), QoS::AtLeastOnce) {
                            tracing::warn!(error = %e, topic, "cannot subscribe");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => self.incoming(client, &p),
                Ok(_) => {}
                Err(e) => {
                    // rumqttc's errors carry no credentials; shown as they are.
                    let error = e.to_string();
                    let was = self.view.link();
                    self.view.set_disconnected(&error);
                    backoff.lost(Instant::now());
                    let delay = if self.opts.reconnect_storm {
                        STORM_DELAY
                    } else {
                        backoff.next_random()
                    };
                    let retry_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                    if was == Link::Connected {
                        tracing::warn!(%error, retry_ms, "cloud connection lost");
                    } else {
                        tracing::warn!(%error, retry_ms, "cannot connect to the cloud");
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn incoming(&self, client: &AsyncClient, p: &Publish) {
        if p.topic == self.topics.notice {
            tracing::info!(bytes = p.payload.len(), "notice received");
            self.view.push_notice(&p.payload);
        } else if p.topic == self.topics.cmd {
            match telemetry::parse_command(&p.payload) {
                Ok(cmd) => {
                    tracing::info!(?cmd, "command received");
                    let ack = telemetry::ack(&cmd);
                    if let Err(e) =
                        client.try_publish(&self.topics.ack, QoS::AtLeastOnce, false, ack)
                    {
                        tracing::warn!(error = %e, "cannot queue the command's ack");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "malformed command ignored"),
            }
        } else {
            tracing::debug!(topic = %p.topic, "publish on an unexpected topic ignored");
        }
    }
}

/// Publishes telemetry and presence every period while connected (nothing is queued offline).
async fn report(
    client: AsyncClient,
    view: CloudView,
    topics: Topics,
    serial: String,
    period: Duration,
    undeclared_flow: bool,
) {
    let booted = Instant::now();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if view.link() != Link::Connected {
            continue;
        }
        let uptime_s = booted.elapsed().as_secs();
        let mut out = vec![
            (&topics.telemetry, telemetry::telemetry(&serial, uptime_s)),
            (
                &topics.presence,
                telemetry::presence(uptime_s, unix_now_s(), view.owner_name().as_deref()),
            ),
        ];
        if undeclared_flow {
            out.push((&topics.wifi_scan, telemetry::wifi_scan()));
        }
        for (topic, payload) in out {
            if let Err(e) = client.try_publish(topic.as_str(), QoS::AtLeastOnce, false, payload) {
                tracing::debug!(error = %e, topic, "report not queued");
            }
        }
    }
}

fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
