//! Load balancing over several endpoints: one HTTP/2 connection (a
//! single-endpoint [`Channel`]) per endpoint, and a policy that picks one
//! for each call.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures::future::BoxFuture;
use h2::client::SendRequest;

use super::Channel;
use crate::http2::recv::ConnectionFlag;
use crate::Status;

/// How a balanced channel picks the endpoint of each call (gRPC's
/// load-balancing policies of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LoadBalancing {
    /// Every call goes to the first endpoint, in the order given, that is
    /// connected or connects; the others are tried only when it fails.
    #[default]
    PickFirst,
    /// Calls take the endpoints in turn, skipping those that are not
    /// connected while any is; an endpoint that comes back rejoins the
    /// rotation.
    RoundRobin,
}

/// Finds more endpoints for a balanced channel whose endpoints failed:
/// returns channels to add (the balancer skips those it already has, by
/// authority).
pub(crate) type Refresh = Arc<dyn Fn() -> BoxFuture<'static, Vec<Channel>> + Send + Sync>;

/// The endpoints of a balanced channel and the policy between them.
pub(crate) struct Balancer {
    /// Grows when a refresh finds new endpoints; calls take a snapshot.
    endpoints: Arc<RwLock<Arc<[Arc<Endpoint>]>>>,
    policy: LoadBalancing,
    next: AtomicUsize,
    refresh: Option<Refresh>,
    /// A refresh is running.
    refreshing: Arc<AtomicBool>,
}

struct Endpoint {
    channel: Channel,
    /// A background reconnect is running.
    probing: Arc<AtomicBool>,
}

impl Balancer {
    /// `channels`: one lazy, reconnecting channel per endpoint (at least one).
    pub(crate) fn new(
        channels: Vec<Channel>,
        policy: LoadBalancing,
        refresh: Option<Refresh>,
    ) -> Self {
        Balancer {
            endpoints: Arc::new(RwLock::new(
                channels.into_iter().map(Endpoint::new).collect(),
            )),
            policy,
            next: AtomicUsize::new(0),
            refresh,
            refreshing: Arc::new(AtomicBool::new(false)),
        }
    }

    fn snapshot(&self) -> Arc<[Arc<Endpoint>]> {
        self.endpoints
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// The endpoints' channels, now.
    pub(crate) fn channels(&self) -> Vec<Channel> {
        self.snapshot()
            .iter()
            .map(|endpoint| endpoint.channel.clone())
            .collect()
    }

    /// A ready stream handle on the endpoint the policy picks.
    pub(crate) async fn ready(
        &self,
        wait_for_ready: bool,
    ) -> Result<(SendRequest<Bytes>, ConnectionFlag), Status> {
        let endpoints = self.snapshot();
        let count = endpoints.len();
        let turn = match self.policy {
            LoadBalancing::PickFirst => 0,
            LoadBalancing::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed),
        };
        self.probe_disconnected(&endpoints);
        // The endpoints connected now share the calls evenly (a dead one's
        // turns are not all handed to its neighbour).
        let connected: Vec<&Endpoint> = endpoints
            .iter()
            .map(|e| &**e)
            .filter(|e| e.channel.is_connected())
            .collect();
        if !connected.is_empty() {
            let first = turn % connected.len();
            for i in 0..connected.len() {
                let endpoint = connected[(first + i) % connected.len()];
                if let Ok(ready) = endpoint.channel.ready_single(false).await {
                    return Ok(ready);
                }
            }
        }
        let start = turn % count;
        let in_turn = || (0..count).map(|i| &endpoints[(start + i) % count]);
        // None is: connect one, in turn (those backing off fail at once).
        let mut failures = Vec::new();
        for endpoint in in_turn() {
            match endpoint.channel.ready_single(false).await {
                Ok(ready) => return Ok(ready),
                Err(status) => failures.push(format!(
                    "{}: {}",
                    endpoint.channel.authority(),
                    status.message()
                )),
            }
        }
        if wait_for_ready {
            // Wait through the backoff of the endpoint whose turn it is.
            return in_turn()
                .next()
                .expect("a balanced channel has an endpoint")
                .channel
                .ready_single(true)
                .await;
        }
        Err(Status::unavailable(format!(
            "no endpoint is reachable ({})",
            failures.join("; ")
        )))
    }

    /// Reconnects, in the background, every endpoint that is neither
    /// connected nor waiting out its backoff, so that one that came back
    /// rejoins the rotation without a call having to fail on it.
    ///
    /// With a refresh, an endpoint found dead also asks it for new ones.
    fn probe_disconnected(&self, endpoints: &[Arc<Endpoint>]) {
        for endpoint in endpoints {
            let channel = &endpoint.channel;
            if channel.is_connected() {
                continue;
            }
            if channel.is_backing_off() {
                self.start_refresh();
                continue;
            }
            if endpoint.probing.swap(true, Ordering::AcqRel) {
                continue;
            }
            let probe = channel.clone();
            let probing = endpoint.probing.clone();
            channel.runtime().spawn(Box::pin(async move {
                if let Err(status) = probe.ready_single(false).await {
                    tracing::debug!(endpoint = %probe.authority(), %status, "endpoint still unreachable");
                }
                probing.store(false, Ordering::Release);
            }));
        }
    }
}

impl Endpoint {
    fn new(channel: Channel) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            channel,
            probing: Arc::new(AtomicBool::new(false)),
        })
    }
}

impl Balancer {
    /// Asks the refresh, in the background and one at a time, for
    /// endpoints to add.
    fn start_refresh(&self) {
        let Some(refresh) = self.refresh.clone() else {
            return;
        };
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(runtime) = self.snapshot().first().map(|e| e.channel.runtime().clone()) else {
            return;
        };
        let refreshing = self.refreshing.clone();
        let endpoints = self.endpoints.clone();
        runtime.spawn(Box::pin(async move {
            let found = refresh().await;
            let mut endpoints = endpoints.write().unwrap_or_else(|poison| poison.into_inner());
            let mut all = endpoints.to_vec();
            for channel in found {
                let known = all
                    .iter()
                    .any(|e| e.channel.authority() == channel.authority());
                if !known {
                    tracing::debug!(endpoint = %channel.authority(), "new endpoint joins the rotation");
                    all.push(Endpoint::new(channel));
                }
            }
            *endpoints = all.into();
            drop(endpoints);
            refreshing.store(false, Ordering::Release);
        }));
    }
}
