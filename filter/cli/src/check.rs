//! `cagate check`: the filter's own configuration compiler, run on a file. Accepts the JSON document,
//! an Envoy bootstrap (YAML or JSON) with the Wasm filter's `configuration`, or an Istio WasmPlugin.

use cagate_core::compile;
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;

/// Finds the cagate configuration documents inside a parsed file: (where, JSON text).
fn documents(root: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(root, "", &mut out);
    if out.is_empty() && (root.get("apis").is_some() || root.get("apps").is_some()) {
        out.push(("(document)".to_string(), root.to_string()));
    }
    out
}

fn walk(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            // Envoy: the Wasm filter's StringValue configuration
            if let (Some(Value::String(t)), Some(Value::String(value))) = (m.get("@type"), m.get("value")) {
                if t.ends_with("google.protobuf.StringValue") {
                    out.push((path.to_string(), value.clone()));
                    return;
                }
            }
            // Istio: WasmPlugin.spec.pluginConfig (a structure, sent to the filter as JSON)
            if let Some(pc) = m.get("pluginConfig") {
                out.push((format!("{path}.pluginConfig"), pc.to_string()));
                return;
            }
            for (k, child) in m {
                walk(child, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                walk(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Envoy's default `per_connection_buffer_limit_bytes`.
const ENVOY_BUFFER_LIMIT: u64 = 1 << 20;

/// What the Envoy configuration around a cagate configuration must set (docs/security.md): warnings,
/// since the filter still loads without them. `limit` is the enclosing listener's buffer limit.
fn envoy_warnings(v: &Value, limit: Option<u64>, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let limit = if m.contains_key("filter_chains") {
                Some(m.get("per_connection_buffer_limit_bytes").and_then(Value::as_u64).unwrap_or(ENVOY_BUFFER_LIMIT))
            } else {
                limit
            };
            let wasm = m.get("@type").and_then(Value::as_str).is_some_and(|t| t.ends_with("envoy.extensions.filters.http.wasm.v3.Wasm"));
            let config = m.get("config").filter(|_| wasm);
            let cagate = config.and_then(|c| c.get("configuration")).and_then(|c| c.get("value")).and_then(Value::as_str);
            if let (Some(config), Some(cagate)) = (config, cagate) {
                if config.get("allow_on_headers_stop_iteration").and_then(Value::as_bool) != Some(true) {
                    out.push(
                        "the Wasm filter's config lacks allow_on_headers_stop_iteration: true: signed form bodies and Content-MD5 checks wait until Envoy's timeout"
                            .into(),
                    );
                }
                let max_body = compile(cagate.as_bytes()).ok().map(|g| g.max_body_bytes);
                if let (Some(limit), Some(max_body)) = (limit, max_body) {
                    if limit < max_body {
                        out.push(format!(
                            "the listener's per_connection_buffer_limit_bytes ({limit}) is below maxBodyBytes ({max_body}): Envoy refuses a larger body the filter would read (413) before cagate sees it"
                        ));
                    }
                }
            }
            for child in m.values() {
                envoy_warnings(child, limit, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                envoy_warnings(child, limit, out);
            }
        }
        _ => {}
    }
}

/// The clusters a configuration embedded in an Envoy bootstrap sends to that the bootstrap does not
/// define: Envoy loads it, and each request that needs one fails. A bootstrap that takes clusters
/// from a management server (CDS) may get them there, and is not checked.
fn missing_clusters(root: &Value, out: &mut Vec<String>) {
    let Some(statics) = root.get("static_resources") else { return };
    if root.get("dynamic_resources").and_then(|d| d.get("cds_config")).is_some() {
        return;
    }
    let defined: Vec<&str> =
        statics.get("clusters").and_then(Value::as_array).into_iter().flatten().filter_map(|c| c.get("name").and_then(Value::as_str)).collect();
    for (_, doc) in documents(root) {
        let Ok(g) = compile(doc.as_bytes()) else { continue };
        for u in g.clusters_used().into_iter().filter(|u| !defined.contains(&u.cluster.as_str())) {
            out.push(format!("the cluster {} ({}) is not in static_resources.clusters: requests that need it fail", u.cluster, u.by));
        }
    }
}

/// An app registry document (top-level `authorizations` or `version`, no `apis`), checked as the
/// filter installs it: over the static configuration `base` names.
fn registry(file: &Path, root: &Value, base: Option<&Path>) -> Result<Option<ExitCode>, String> {
    let is_registry = root.get("apis").is_none() && (root.get("authorizations").is_some() || root.get("version").is_some());
    if !is_registry {
        return Ok(None);
    }
    let registry_text = root.to_string();
    // Without the static configuration, one that has every API and stage the grants name stands in.
    let (doc, over) = match base {
        Some(base) => {
            let docs: Vec<(String, String)> = roots(base)?.iter().flat_map(documents).collect();
            let [(_, doc)] = docs.as_slice() else {
                return Err(format!("{}: --config needs a file with one cagate configuration, it holds {}", base.display(), docs.len()));
            };
            (doc.clone(), format!("over {}", base.display()))
        }
        None => (crate::apps::stand_in_base(&registry_text), "(API names, stages and static apps not checked: give --config)".to_string()),
    };
    let gateway =
        compile(doc.as_bytes()).map_err(|p| format!("the static configuration (--config) is invalid ({} problem(s)): check it first", p.len()))?;
    match gateway.with_registry(registry_text.as_bytes()) {
        Ok(g) => {
            println!("{}: valid registry document {over}, {} apps in all", file.display(), g.app_count());
            Ok(Some(ExitCode::SUCCESS))
        }
        Err(problems) => {
            println!("{}: {} problem(s)", file.display(), problems.len());
            for p in problems {
                println!("  {p}");
            }
            Ok(Some(ExitCode::from(1)))
        }
    }
}

/// The file's parsed documents: one JSON value, or each document of a YAML stream.
fn roots(file: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return Ok(vec![v]);
    }
    serde_yaml::Deserializer::from_str(&text)
        .enumerate()
        .map(|(i, doc)| {
            serde::Deserialize::deserialize(doc).map_err(|e: serde_yaml::Error| {
                format!(
                    "{}: document {i} is neither JSON nor YAML ({})",
                    file.display(),
                    e.location().map_or(String::new(), |l| format!("line {}", l.line()))
                )
            })
        })
        .collect()
}

pub(crate) fn run(file: &Path, base: Option<&Path>) -> Result<ExitCode, String> {
    let roots = roots(file)?;
    if let [root] = roots.as_slice() {
        if let Some(code) = registry(file, root, base)? {
            return Ok(code);
        }
    }
    if base.is_some() {
        return Err("--config is for an app registry document".into());
    }
    let mut warnings = Vec::new();
    for root in &roots {
        envoy_warnings(root, None, &mut warnings);
        missing_clusters(root, &mut warnings);
    }
    let docs: Vec<(String, String)> = roots.iter().flat_map(documents).collect();
    if docs.is_empty() {
        println!("{}: no cagate configuration found (a JSON document, an Envoy Wasm filter configuration, or an Istio WasmPlugin)", file.display());
        return Ok(ExitCode::from(1));
    }
    let mut ok = true;
    for (at, doc) in docs {
        let label = if at.is_empty() { file.display().to_string() } else { format!("{} at {at}", file.display()) };
        match compile(doc.as_bytes()) {
            Ok(g) => {
                println!("{label}: valid ({} apps, {} apis, {} plugins)", g.app_count(), g.apis.len(), g.plugins.len());
                for w in &g.warnings {
                    println!("  warning: {w}");
                }
            }
            Err(problems) => {
                ok = false;
                println!("{label}: {} problem(s)", problems.len());
                for p in problems {
                    println!("  {p}");
                }
            }
        }
    }
    for w in warnings {
        println!("{}: warning: {w}", file.display());
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
