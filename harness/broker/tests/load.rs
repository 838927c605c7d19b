//! Load: 100 simulated devices x 1,000 QoS 1 messages each through the broker to one subscriber; every
//! message must arrive. Prints the time taken (run with `--nocapture` to see it).

mod common;

use common::*;
use hilt_cloud::FlowKind;
use rumqttc::{Event, Packet, QoS};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const DEVICES: usize = 100;
const PER_DEVICE: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_devices_thousand_messages_each_lose_nothing() {
    let env = start(config()).await;
    let addr = env.plain();
    let mut o = v4_opts("load-sub", addr, None, Some(("ops", "opspass")));
    o.set_max_packet_size(64 * 1024, 64 * 1024);
    let (sub, mut el) = rumqttc::AsyncClient::new(o, 100);
    sub.subscribe("load/#", QoS::AtLeastOnce).await.unwrap();
    let total = DEVICES * PER_DEVICE;
    let receiver = tokio::spawn(async move {
        let mut seen = HashSet::with_capacity(total);
        let mut deliveries = 0usize;
        while seen.len() < total {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    deliveries += 1;
                    seen.insert(p.payload.to_vec());
                }
                Ok(_) => {}
                Err(e) => panic!("subscriber failed after {} messages: {e}", seen.len()),
            }
        }
        (seen.len(), deliveries)
    });
    subscribed(&env, "load/#").await;

    let started = Instant::now();
    let mut devices = Vec::new();
    for d in 0..DEVICES {
        devices.push(tokio::spawn(async move {
            let (c, mut el) = rumqttc::AsyncClient::new(
                v4_opts(&format!("dev-{d}"), addr, None, Some(("ops", "opspass"))),
                100,
            );
            let sender = tokio::spawn(async move {
                for i in 0..PER_DEVICE {
                    c.publish(
                        format!("load/dev-{d}"),
                        QoS::AtLeastOnce,
                        false,
                        format!("{d}:{i}"),
                    )
                    .await
                    .unwrap();
                }
                c
            });
            let mut acked = 0;
            while acked < PER_DEVICE {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                    Ok(_) => {}
                    Err(e) => panic!("device {d} failed after {acked} acks: {e}"),
                }
            }
            let c = sender.await.unwrap();
            c.disconnect().await.unwrap();
            while el.poll().await.is_ok() {}
        }));
    }
    let outcome = tokio::time::timeout(Duration::from_secs(120), async {
        for d in devices {
            d.await.unwrap();
        }
        let sent = started.elapsed();
        let got = receiver.await.unwrap();
        (sent, got)
    })
    .await;
    let (sent, (distinct, deliveries)) = outcome.expect("finished within 120 s");
    let elapsed = started.elapsed();
    let s = env.broker.stats();
    println!(
        "load: {DEVICES} devices x {PER_DEVICE} QoS 1 msgs: all published+acked in {sent:.2?}, all {distinct} received in {elapsed:.2?} \
         ({:.0} msg/s end to end); deliveries {deliveries}; stats {s:?}",
        total as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(distinct, total);
    assert_eq!(s.dropped, 0);
    assert_eq!(s.messages_in as usize, total);
    assert_eq!(
        env.log
            .snapshot()
            .iter()
            .filter(|f| f.kind == FlowKind::Publish)
            .count(),
        total
    );
    env.broker.shutdown().await;
}
