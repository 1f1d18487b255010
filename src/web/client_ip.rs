//! Who a request came from: the outermost layer of the router resolves the
//! client address once — the TCP peer, or behind a `[web] trusted_proxies`
//! proxy the address its `X-Forwarded-For` gives (the rule is
//! [`TrustedProxies::client_of`]) — and puts it in the request as a
//! [`ClientIp`]. The audit log's `remote_addr` and the "email me my links"
//! limits both read that, never the header themselves.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::domain::TrustedProxies;

/// The client address of this request (absent only when the server was
/// started without connection info, as in tests that call the router).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientIp(pub IpAddr);

/// The layer (`axum::middleware::from_fn_with_state` with the proxies).
pub(crate) async fn resolve(
    State(trusted): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = trusted.client_of(
            peer,
            request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok()),
        );
        request.extensions_mut().insert(ClientIp(client));
    }
    next.run(request).await
}
