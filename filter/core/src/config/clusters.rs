//! Every Envoy cluster a configuration sends requests to, and what sends them: a cluster the Envoy
//! configuration lacks fails only when a request needs it, so tools check the list before Envoy loads.

use crate::config::backend::Backend;
use crate::config::model::Gateway;
use crate::plugins::binding::PluginKind;
use crate::plugins::routing::{Overlay, Route};

/// One cluster and the first part of the configuration that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUse {
    pub cluster: String,
    pub by: String,
}

impl Gateway {
    /// The clusters named, each once: the APIs', the plugins', then the gateway's own services'.
    pub fn clusters_used(&self) -> Vec<ClusterUse> {
        let mut out: Vec<ClusterUse> = Vec::new();
        let mut add = |cluster: &str, by: String| {
            if !out.iter().any(|u| u.cluster == cluster) {
                out.push(ClusterUse { cluster: cluster.to_string(), by });
            }
        };
        for api in &self.apis {
            if let Some(Backend::Http(h)) = &api.backend {
                for (stage, cluster) in &h.clusters {
                    let stage = self.stages.get(*stage as usize).map_or("?", String::as_str);
                    add(cluster, format!("API {}, stage {stage}", api.name));
                }
            }
        }
        for p in &self.plugins {
            match &p.kind {
                PluginKind::Routing(r) => {
                    for route in &r.routes {
                        if let Some(c) = own_cluster(route) {
                            add(c, format!("plugin {}, route {}", p.name, route.name));
                        }
                    }
                }
                PluginKind::Breaker(b) => {
                    if let Some(c) = b.downgrade.as_ref().and_then(own_cluster) {
                        add(c, format!("plugin {} (downgradeBackend)", p.name));
                    }
                }
                PluginKind::RemoteAuth(a) => add(&a.cluster, format!("plugin {}", p.name)),
                PluginKind::Jwt(j) => {
                    if let Some(f) = &j.remote {
                        add(&f.cluster, format!("plugin {} (jwksCluster)", p.name));
                    }
                }
                _ => {}
            }
        }
        if let Some(r) = &self.cluster_mode.rate_limit_service {
            add(&r.grpc_cluster, "cluster.rateLimitService".to_string());
        }
        if let Some(k) = &self.cluster_mode.one_time_keys {
            add(&k.etcd_cluster, "cluster.oneTimeKeys".to_string());
        }
        if let Some(r) = &self.registry {
            add(&r.cluster, "appRegistry".to_string());
        }
        out
    }
}

/// The cluster a route names itself (none: it keeps the API's, or answers).
fn own_cluster(route: &Route) -> Option<&str> {
    match &route.backend {
        Overlay::Http(o) => o.cluster.as_deref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::compile;

    #[test]
    fn every_named_cluster_once_with_its_first_user() {
        let cfg = r##"{
          "stageVariables": { "RELEASE": { "o": "orders-prod" }, "TEST": { "o": "orders-test" } },
          "cluster": { "oneTimeKeys": { "etcdCluster": "etcd" } },
          "appRegistry": { "uri": "http://registry/apps.json", "cluster": "registry" },
          "plugins": [ { "name": "ra", "type": "remoteAuth", "data": { "cluster": "auth", "authUriType": "HTTP",
                          "authUri": { "address": "http://auth.internal", "path": "/check" } } },
                       { "name": "r", "type": "routing", "data": { "routes": [ { "name": "canary", "condition": "$CaAppId = 1",
                          "backend": { "type": "HTTP", "cluster": "orders-canary" } } ] } },
                       { "name": "cb", "type": "circuitBreaker", "data": { "downgradeBackend": { "type": "HTTP", "cluster": "fallback" } } } ],
          "apis": [ { "name": "a", "method": "GET", "path": "/a", "authType": "ANONYMOUS", "stages": ["RELEASE", "TEST"],
                      "backend": { "type": "HTTP", "cluster": "#o#" } },
                    { "name": "b", "method": "GET", "path": "/b", "authType": "ANONYMOUS", "backend": { "type": "HTTP", "cluster": "orders-prod" } } ]
        }"##;
        let g = compile(cfg.as_bytes()).unwrap();
        let got: Vec<(String, String)> = g.clusters_used().into_iter().map(|u| (u.cluster, u.by)).collect();
        let want = [
            ("orders-prod", "API a, stage RELEASE"),
            ("orders-test", "API a, stage TEST"),
            ("auth", "plugin ra"),
            ("orders-canary", "plugin r, route canary"),
            ("fallback", "plugin cb (downgradeBackend)"),
            ("etcd", "cluster.oneTimeKeys"),
            ("registry", "appRegistry"),
        ];
        assert_eq!(got, want.map(|(c, b)| (c.to_string(), b.to_string())));
    }
}
