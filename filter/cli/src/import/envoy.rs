//! `--envoy FILE`: a runnable Envoy bootstrap for the imported configuration, made like
//! `envoy/envoy.yaml`: the listener with its connection-manager options, cagate with the configuration
//! embedded, a route to the cluster cagate names in `x-cagate-cluster`, and one cluster per backend
//! address.

use super::backend::Clusters;
use super::value::{map, s};
use serde_yaml::Value;

/// `--listen` / `--admin`: `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocketAddr {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl std::str::FromStr for SocketAddr {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (host, port) = text.rsplit_once(':').ok_or_else(|| format!("{text}: expected HOST:PORT"))?;
        let port = port.parse::<u16>().map_err(|_| format!("{text}: bad port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{text}: expected HOST:PORT"));
        }
        Ok(SocketAddr { host: host.to_string(), port })
    }
}

impl SocketAddr {
    /// Whether only this host reaches the address (127.0.0.0/8, ::1, localhost): where Envoy's admin
    /// belongs, since it can drain, stop and dump the configuration, secrets included.
    pub(crate) fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost") || self.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

pub(crate) struct Options<'a> {
    pub(crate) listen: &'a SocketAddr,
    pub(crate) admin: &'a SocketAddr,
    pub(crate) wasm: &'a str,
    /// Envoy's buffer limit: at least the configuration's maxBodyBytes.
    pub(crate) buffer_limit: u64,
}

fn socket(a: &SocketAddr) -> Value {
    map([("socket_address", map([("address", s(&a.host)), ("port_value", Value::Number(a.port.into()))]))])
}

fn typed(t: &str, rest: Vec<(&str, Value)>) -> Value {
    let mut m = serde_yaml::Mapping::new();
    m.insert(s("@type"), s(t));
    for (k, v) in rest {
        m.insert(s(k), v);
    }
    Value::Mapping(m)
}

fn seq(items: Vec<Value>) -> Value {
    Value::Sequence(items)
}

/// The bootstrap as YAML text, with a header comment.
pub(crate) fn bootstrap(config_json: &str, clusters: &Clusters, o: &Options<'_>) -> Result<String, String> {
    let boot = map([
        ("admin", map([("address", socket(o.admin))])),
        ("stats_config", stats_config()?),
        ("overload_manager", connection_limit()),
        (
            "static_resources",
            map([
                (
                    "listeners",
                    seq(vec![map([
                        ("name", s("gateway")),
                        ("address", socket(o.listen)),
                        ("per_connection_buffer_limit_bytes", Value::Number(o.buffer_limit.into())),
                        ("filter_chains", seq(vec![map([("filters", seq(vec![connection_manager(config_json, o.wasm)]))])])),
                    ])]),
                ),
                ("clusters", seq(clusters.iter().map(|(name, c)| cluster(name, c, o.buffer_limit)).collect())),
            ]),
        ),
    ]);
    let yaml = serde_yaml::to_string(&boot).map_err(|e| format!("cannot write YAML: {e}"))?;
    let mut head = String::from(
        "# Written by `cagate import … --envoy`: Envoy with cagate in front of the imported APIs' backends.\n\
         # cagate names the backend's cluster in x-cagate-cluster; the first route sends the request there.\n\
         # Check it with `cagate check` and `envoy --mode validate -c`. Clusters:\n",
    );
    if !o.admin.is_loopback() {
        head.push_str(&format!(
            "# WARNING: Envoy's admin listens on {}:{}, not on loopback: whoever reaches it can drain or stop\n\
             # Envoy and dump this configuration with its secrets. The default (--admin) is 127.0.0.1:9901.\n",
            o.admin.host, o.admin.port
        ));
    }
    for (name, c) in clusters {
        let kind = if c.ip { "STATIC" } else { "STRICT_DNS" };
        let check = if c.placeholder { " (a placeholder: set the address of this VPC access)" } else { "" };
        head.push_str(&format!("#   {name}: {kind} {}:{} from {}{check}\n", c.host, c.port, c.source));
    }
    Ok(head + &yaml)
}

/// A bound on open client connections, as the samples set (Envoy warns at start without one).
fn connection_limit() -> Value {
    let monitor = map([
        ("name", s("envoy.resource_monitors.global_downstream_max_connections")),
        (
            "typed_config",
            typed(
                "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                vec![("max_active_downstream_connections", Value::Number(50_000.into()))],
            ),
        ),
    ]);
    map([("resource_monitors", seq(vec![monitor]))])
}

/// The stats tags and the filter-time histogram's buckets, as in envoy/envoy.yaml: one list, in the
/// repository's envoy/observability/.
fn stats_config() -> Result<Value, String> {
    let tags: Value = serde_yaml::from_str(include_str!("../../../../envoy/observability/stats-tags.json")).map_err(|e| e.to_string())?;
    let buckets: Value = serde_yaml::from_str(include_str!("../../../../envoy/observability/histogram-buckets.json")).map_err(|e| e.to_string())?;
    Ok(map([("stats_tags", tags), ("histogram_bucket_settings", buckets)]))
}

fn no_backend_route() -> Value {
    let e = &cagate_core::errors::I404SR;
    let message = e.render(&["no backend for this API"]);
    let body = serde_json::json!({ "code": e.code, "message": message }).to_string();
    let header = |name: &str, value: &str| map([("header", map([("key", s(name)), ("value", s(value))]))]);
    map([
        ("match", map([("prefix", s("/"))])),
        ("direct_response", map([("status", Value::Number(e.status.into())), ("body", map([("inline_string", s(&body))]))])),
        (
            "response_headers_to_add",
            seq(vec![
                header(cagate_core::ERROR_CODE_HEADER, e.code),
                header(cagate_core::ERROR_MESSAGE_HEADER, &message),
                header("content-type", "application/json"),
            ]),
        ),
    ])
}

fn connection_manager(config_json: &str, wasm: &str) -> Value {
    let header = cagate_core::BACKEND_CLUSTER_HEADER;
    let routes = seq(vec![
        map([
            ("match", map([("prefix", s("/")), ("headers", seq(vec![map([("name", s(header)), ("present_match", Value::Bool(true))])]))])),
            ("route", map([("cluster_header", s(header)), ("timeout", s("30s"))])),
        ]),
        // An API without a backend (cagate sets no cluster): the gateway's I404SR, in its contract
        // (the filter adds X-Ca-Request-Id to every response).
        no_backend_route(),
    ]);
    let hcm = typed(
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        vec![
            ("stat_prefix", s("gateway")),
            ("use_remote_address", Value::Bool(true)),
            ("skip_xff_append", Value::Bool(true)),
            ("normalize_path", Value::Bool(true)),
            ("merge_slashes", Value::Bool(true)),
            ("path_with_escaped_slashes_action", s("UNESCAPE_AND_REDIRECT")),
            ("common_http_protocol_options", map([("headers_with_underscores_action", s("DROP_HEADER"))])),
            ("http_protocol_options", map([("override_stream_error_on_invalid_http_message", Value::Bool(true))])),
            ("route_config", map([("virtual_hosts", seq(vec![map([("name", s("all")), ("domains", seq(vec![s("*")])), ("routes", routes)])]))])),
            ("http_filters", seq(vec![compressor(), wasm_filter(config_json, wasm), router()])),
        ],
    );
    map([("name", s("envoy.filters.network.http_connection_manager")), ("typed_config", hcm)])
}

/// Aliyun's gzip rule: the request accepts gzip, the body is over 2 KB, the type is one of these.
fn compressor() -> Value {
    let types = [
        "text/xml",
        "text/plain",
        "text/css",
        "application/javascript",
        "application/x-javascript",
        "application/rss+xml",
        "application/xml",
        "application/json",
        "application/octet-stream",
    ];
    let config = typed(
        "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
        vec![
            (
                "response_direction_config",
                map([(
                    "common_config",
                    map([
                        ("min_content_length", Value::Number(2049.into())),
                        ("content_type_matcher", seq(types.iter().map(|t| map([("exact", s(t))])).collect())),
                    ]),
                )]),
            ),
            (
                "compressor_library",
                map([
                    ("name", s("gzip")),
                    ("typed_config", typed("type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip", vec![])),
                ]),
            ),
        ],
    );
    map([("name", s("envoy.filters.http.compressor")), ("typed_config", config)])
}

fn wasm_filter(config_json: &str, wasm: &str) -> Value {
    let config = map([
        ("name", s("cagate")),
        ("root_id", s("cagate")),
        // cagate holds the headers while it reads a form body or checks Content-MD5.
        ("allow_on_headers_stop_iteration", Value::Bool(true)),
        (
            "vm_config",
            map([("vm_id", s("cagate")), ("runtime", s("envoy.wasm.runtime.v8")), ("code", map([("local", map([("filename", s(wasm))]))]))]),
        ),
        ("configuration", typed("type.googleapis.com/google.protobuf.StringValue", vec![("value", s(config_json))])),
    ]);
    map([
        ("name", s("envoy.filters.http.wasm")),
        ("typed_config", typed("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", vec![("config", config)])),
    ])
}

fn router() -> Value {
    map([
        ("name", s("envoy.filters.http.router")),
        ("typed_config", typed("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", vec![])),
    ])
}

fn cluster(name: &str, c: &super::backend::Cluster, buffer_limit: u64) -> Value {
    let endpoint = map([("endpoint", map([("address", socket(&SocketAddr { host: c.host.clone(), port: c.port }))]))]);
    let mut m = serde_yaml::Mapping::new();
    m.insert(s("name"), s(name));
    m.insert(s("connect_timeout"), s("1s"));
    m.insert(s("type"), s(if c.ip { "STATIC" } else { "STRICT_DNS" }));
    if !c.ip {
        m.insert(s("dns_lookup_family"), s("V4_PREFERRED"));
    }
    m.insert(s("per_connection_buffer_limit_bytes"), Value::Number(buffer_limit.into()));
    m.insert(s("load_assignment"), map([("cluster_name", s(name)), ("endpoints", seq(vec![map([("lb_endpoints", seq(vec![endpoint]))])]))]));
    if c.tls {
        let sni = if c.ip { vec![] } else { vec![("sni", s(&c.host))] };
        let tls = typed("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", sni);
        m.insert(s("transport_socket"), map([("name", s("envoy.transport_sockets.tls")), ("typed_config", tls)]));
    }
    Value::Mapping(m)
}
