//! remoteAuth in the engine: a request every local check admitted (trafficControl included) is held
//! while the authentication service is asked, through an HTTP call the adapter makes via Envoy
//! (`StreamIo::send_http`). Its answer refuses the request, or admits it with the headers the answer
//! may pass to the backend, and the request goes on as any admitted one (cluster-mode checks, a mock,
//! the backend). Envoy bounds the call by the plugin's timeout; a call that cannot be sent refuses.

use super::{Engine, Exchange, Flow, Services, StreamIo};
use crate::contract::errors;
use crate::contract::refusal::Refusal;
use crate::ids::PluginId;
use crate::plugins::binding::{Plugin, PluginKind};
use crate::plugins::remote_auth::{self, HttpAnswer, RemoteAuthConfig};
use crate::request::model::{Admission, Request};
use crate::wire::headers::{same_name, Headers};

/// A request waiting for the service's answer: the call's token, the admission to complete, the
/// plugin, and the key its success would be remembered under.
#[derive(Debug)]
pub(super) struct RemoteWait {
    token: u32,
    admission: Admission,
    plugin: PluginId,
    key: u128,
}

fn config(engine: &Engine, idx: PluginId) -> Option<&RemoteAuthConfig> {
    match engine.gateway.plugins.get(idx.index()) {
        Some(Plugin { kind: PluginKind::RemoteAuth(cfg), .. }) => Some(cfg),
        _ => None,
    }
}

/// The answer's headers for the backend, after the gateway's own edits: a name the gateway already
/// sets (identity, mapping, backend signature, …) keeps the gateway's value. A configured name the
/// answer lacks is removed, in every spelling: the backend trusts these names to come from the
/// service, never from the client.
fn add_headers(a: &mut Admission, cfg: &RemoteAuthConfig, headers: &[(String, Vec<u8>)]) {
    for name in &cfg.success_headers {
        if a.edits.iter().any(|(n, _)| same_name(n.as_bytes(), name.as_bytes())) {
            continue;
        }
        let value = headers.iter().find(|(n, _)| same_name(n.as_bytes(), name.as_bytes())).map(|(_, v)| v.clone());
        a.edits.push((name.to_ascii_lowercase().into(), value));
    }
}

impl Exchange {
    /// Asks the service when the API has a remoteAuth plugin: `Ok` goes on now (no plugin, or a
    /// remembered success), `Err` is the flow of a request held for the answer or refused.
    pub(super) fn remote_auth(
        &mut self,
        engine: &Engine,
        svc: &Services<'_>,
        io: &dyn StreamIo,
        req: &Request<'_>,
        mut a: Admission,
    ) -> Result<Admission, Flow> {
        let gw = &engine.gateway;
        let Some(idx) = gw.bound(a.identity.api, a.identity.stage).remote_auth else { return Ok(a) };
        let Some(cfg) = config(engine, idx) else { return Ok(a) };
        if let Some(name) = remote_auth::repeated_source(cfg, req.headers, req.query) {
            let r = Refusal { app: a.identity.app, ..Refusal::new(&errors::I400IP, &[name, "is given more than once"], "repeated parameter") };
            return Err(self.refuse(gw, svc, io, &r));
        }
        let seed = engine.runtime.borrow().remote_auth.seed;
        let (call, key) = remote_auth::call(cfg, idx.0, a.identity.api.0, req.headers, req.raw_path, req.query, seed);
        if cfg.cache_ms > 0 {
            if let Some(headers) = engine.runtime.borrow().remote_auth.get(key, svc.coarse.now_ms()) {
                add_headers(&mut a, cfg, headers);
                return Ok(a);
            }
        }
        match io.send_http(&call) {
            Some(token) => {
                self.remote = Some(RemoteWait { token, admission: a, plugin: idx, key });
                Err(Flow::Pause)
            }
            None => {
                log::warn!("cagate: remoteAuth: cannot call cluster {}", cfg.cluster);
                let r = Refusal { app: a.identity.app, ..Refusal::new(&errors::X503RA, &["call not sent"], "remote auth: call not sent") };
                Err(self.refuse(gw, svc, io, &r))
            }
        }
    }

    /// Whether `token` is this request's remoteAuth call (an adapter whose callouts share one
    /// callback tells them apart with it).
    pub fn awaits_http(&self, token: u32) -> bool {
        self.remote.as_ref().is_some_and(|w| w.token == token)
    }

    /// The service's answer: refuse, or admit and resume the held request.
    pub fn on_http_answer(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, token: u32, answer: &HttpAnswer) {
        if !self.awaits_http(token) {
            return;
        }
        let Some(wait) = self.remote.take() else { return };
        let gw = &engine.gateway;
        let mut a = wait.admission;
        let cfg = config(engine, wait.plugin);
        let verdict = match cfg {
            Some(cfg) => remote_auth::verdict(cfg, answer).inspect(|headers| {
                if cfg.cache_ms > 0 {
                    let until = svc.coarse.now_ms().saturating_add(cfg.cache_ms);
                    engine.runtime.borrow_mut().remote_auth.remember(wait.key, until, headers.clone());
                }
            }),
            None => Err(Refusal::new(&errors::X500ER, &[], "remote auth: plugin missing")),
        };
        let flow = match (verdict, cfg) {
            (Ok(headers), Some(cfg)) => {
                add_headers(&mut a, cfg, &headers);
                let head = io.request_headers();
                match Headers::from_serialized(&head) {
                    Some(headers) => self.proceed(engine, svc, io, &headers, a),
                    None => self.refuse(gw, svc, io, &Refusal::new(&errors::X500ER, &[], "malformed header map from host")),
                }
            }
            (Err(r), _) => self.refuse(gw, svc, io, &Refusal { app: a.identity.app, ..r }),
            (Ok(_), None) => self.refuse(gw, svc, io, &Refusal::new(&errors::X500ER, &[], "remote auth: plugin missing")),
        };
        // Continue: admitted (or report-only); the request was held, so it is resumed here.
        if flow == Flow::Continue {
            io.resume_request();
        }
    }
}
