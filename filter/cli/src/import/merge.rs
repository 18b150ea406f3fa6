//! The output document: the imported APIs, alone or in an existing configuration (`--merge`), whose
//! other fields (apps, plugins, group plugins, signature, …) are kept, and whose APIs of the same name
//! lend the imported ones what a Swagger document does not carry (grants, plugin bindings, stages,
//! AppCode auth). Stage variables: the file's, then `--stage-var`.

use super::backend::{address_target, Clusters};
use super::diag::Diags;
use super::swagger::Imported;
use super::value::{key_text, s};
use serde_yaml::{Mapping, Value};

/// cagate's stages when a configuration names none (the core's `DEFAULT_STAGES`).
const DEFAULT_STAGES: [&str; 3] = ["RELEASE", "PRE", "TEST"];
/// Fields of an existing API kept by a re-import: those a Swagger export does not carry (the import
/// writes none of them), so a re-import never switches a report-only API to enforcing.
const KEPT: &[&str] = &["authorizations", "plugins", "reportOnly", "disableInternet", "protocol"];

/// `--stage-var STAGE:NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StageVar {
    pub(crate) stage: String,
    pub(crate) name: String,
    pub(crate) value: String,
}

impl std::str::FromStr for StageVar {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text}: expected STAGE:NAME=VALUE (VALUE: an Envoy cluster name, or http://host:port)");
        let (stage, rest) = text.split_once(':').ok_or_else(bad)?;
        let (name, value) = rest.split_once('=').ok_or_else(bad)?;
        let ok = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !ok(stage) || !ok(name) || value.is_empty() {
            return Err(bad());
        }
        Ok(StageVar { stage: stage.to_string(), name: name.to_string(), value: value.to_string() })
    }
}

/// An existing configuration: its file name (for notes) and its document.
pub(crate) struct Existing<'a> {
    pub(crate) file: &'a str,
    pub(crate) doc: &'a Value,
}

/// The output document. `explicit_stages`: `--stage` was given, so the imported stages win.
pub(crate) fn build(existing: Option<Existing<'_>>, imported: &mut Imported, vars: &[StageVar], explicit_stages: bool, d: &mut Diags) -> Value {
    let top = match &existing {
        Some(e) => match e.doc.as_mapping() {
            Some(m) => m.clone(),
            None => {
                d.error(e.file, "not a cagate configuration: the top level must be an object");
                Mapping::new()
            }
        },
        None => Mapping::new(),
    };
    if let Some(e) = &existing {
        carry_over(&top, e.file, imported, explicit_stages, d);
    }
    let variables = stage_variables(&top, vars, &mut imported.clusters, d);
    stage_hosts(&mut imported.apis, &variables, &imported.origins, d);
    let mut out = Mapping::new();
    for (k, v) in &top {
        if !matches!(k.as_str(), Some("stageVariables" | "apis")) {
            out.insert(k.clone(), v.clone());
        }
    }
    if !variables.is_empty() {
        out.insert(s("stageVariables"), Value::Mapping(variables));
    }
    out.insert(s("apis"), Value::Sequence(imported.apis.clone()));
    add_stages(out, d)
}

fn carry_over(top: &Mapping, file: &str, imported: &mut Imported, explicit_stages: bool, d: &mut Diags) {
    let old: Vec<&Mapping> =
        top.get("apis").and_then(Value::as_sequence).map(|l| l.iter().filter_map(Value::as_mapping).collect()).unwrap_or_default();
    let name_of = |m: &Mapping| m.get("name").and_then(Value::as_str).map(str::to_string);
    for api in imported.apis.iter_mut().filter_map(Value::as_mapping_mut) {
        let Some(prev) = old.iter().find(|o| name_of(o).is_some() && name_of(o) == name_of(api)) else { continue };
        for k in KEPT {
            if let Some(v) = prev.get(*k) {
                api.insert(s(k), v.clone());
            }
        }
        if let (false, Some(v)) = (explicit_stages, prev.get("stages")) {
            api.insert(s("stages"), v.clone());
        }
        if let (false, Some(v)) = (api.contains_key("appCodeAuth"), prev.get("appCodeAuth")) {
            insert_after(api, "authType", "appCodeAuth", v.clone());
        }
    }
    let new_names: Vec<Option<String>> = imported.apis.iter().filter_map(Value::as_mapping).map(name_of).collect();
    for o in &old {
        if let Some(n) = name_of(o).filter(|n| !new_names.contains(&Some(n.clone()))) {
            d.note(file, format!("the API {n} is not in the Swagger document: removed"));
        }
    }
}

fn insert_after(m: &mut Mapping, after: &str, key: &str, v: Value) {
    let mut out = Mapping::new();
    for (k, old) in std::mem::take(m) {
        let here = k.as_str() == Some(after);
        out.insert(k, old);
        if here {
            out.insert(s(key), v.clone());
        }
    }
    if !out.contains_key(key) {
        out.insert(s(key), v);
    }
    *m = out;
}

/// The file's stage variables, then `--stage-var`s; an http(s) URL value becomes a cluster of its own.
fn stage_variables(top: &Mapping, vars: &[StageVar], clusters: &mut Clusters, d: &mut Diags) -> Mapping {
    let mut sv = top.get("stageVariables").and_then(Value::as_mapping).cloned().unwrap_or_default();
    for v in vars {
        let label = format!("--stage-var {}:{}", v.stage, v.name);
        let (value, host) = if v.value.contains("://") {
            let Some(t) = address_target(&v.value, &label, clusters, d) else { continue };
            if !t.prefix.is_empty() {
                d.warn(&label, "a stage variable names a cluster: the path of its URL is not used");
            }
            (t.cluster, t.host)
        } else {
            (v.value.clone(), None)
        };
        let stage = sv.entry(s(&v.stage)).or_insert_with(|| Value::Mapping(Mapping::new()));
        match stage.as_mapping_mut() {
            Some(m) => {
                m.insert(s(&v.name), s(&value));
                // The URL's host is the Host its backend expects, as for an API's own address; a host
                // variable given with --stage-var itself is the user's, whatever the order.
                let host_var = host_variable(&v.name);
                if !vars.iter().any(|o| o.stage == v.stage && o.name == host_var) {
                    match host {
                        Some(h) => m.insert(s(&host_var), s(&h)),
                        None => m.remove(host_var.as_str()),
                    };
                }
            }
            None => d.error(&label, format!("stageVariables.{} of the merged file is not an object", v.stage)),
        }
    }
    sv
}

/// An API's stages (none listed: RELEASE, the core's default).
fn api_stages(api: &Value) -> Vec<&str> {
    match api.get("stages").and_then(Value::as_sequence) {
        Some(l) => l.iter().filter_map(Value::as_str).collect(),
        None => vec!["RELEASE"],
    }
}

/// The stages the APIs of a configuration are published in, in order of first use.
pub(crate) fn published_stages(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for api in doc.get("apis").and_then(Value::as_sequence).into_iter().flatten() {
        for st in api_stages(api) {
            if !out.iter().any(|o| o == st) {
                out.push(st.to_string());
            }
        }
    }
    out
}

/// Where the i-th imported API's backend came from in the Swagger document.
fn backend_at(origins: &[String], i: usize) -> String {
    origins.get(i).map_or_else(|| format!("apis[{i}]"), |o| format!("{o}.{}", super::backend::BACKEND))
}

/// The stage variable holding the Host of the URL a `--stage-var NAME=URL` gave.
fn host_variable(name: &str) -> String {
    format!("{name}.host")
}

/// An API whose address is a stage variable sends, in each stage, the Host of the URL that stage's
/// `--stage-var` gave; a stage whose variable names a cluster leaves it unknown, and then every stage
/// forwards the client's Host (one `host` template serves all the API's stages).
fn stage_hosts(apis: &mut [Value], variables: &Mapping, origins: &[String], d: &mut Diags) {
    for (i, api) in apis.iter_mut().enumerate() {
        let stages: Vec<String> = api_stages(api).into_iter().map(str::to_string).collect();
        let Some(backend) = api.get_mut("backend").and_then(Value::as_mapping_mut) else { continue };
        if backend.contains_key("host") {
            continue;
        }
        let Some(var) = backend.get("cluster").and_then(Value::as_str).and_then(|c| c.strip_prefix('#')?.strip_suffix('#')) else { continue };
        if var.contains('#') {
            continue;
        }
        let host_var = host_variable(var);
        let defined = |st: &String| variables.get(st.as_str()).and_then(|m| m.get(host_var.as_str())).is_some();
        let without: Vec<&String> = stages.iter().filter(|st| !defined(st)).collect();
        if without.is_empty() {
            backend.insert(s("host"), s(&format!("#{host_var}#")));
        } else if without.len() < stages.len() {
            let at = backend_at(origins, i);
            let names: Vec<&str> = without.iter().map(|st| st.as_str()).collect();
            d.warn(&at, format!("#{var}# names a cluster, not a URL, in {}: every stage of this API forwards the client's Host", names.join(", ")));
        }
    }
}

/// Every stage an API or a stage variable uses must be one of the configuration's `stages`.
fn add_stages(mut out: Mapping, d: &mut Diags) -> Value {
    let mut used: Vec<String> = Vec::new();
    for api in out.get("apis").and_then(Value::as_sequence).into_iter().flatten() {
        for st in api.get("stages").and_then(Value::as_sequence).into_iter().flatten().filter_map(Value::as_str) {
            used.push(st.to_string());
        }
    }
    used.extend(out.get("stageVariables").and_then(Value::as_mapping).into_iter().flat_map(|m| m.keys().filter_map(key_text)));
    match out.get_mut("stages") {
        Some(Value::Sequence(list)) => {
            for st in &used {
                if !list.iter().any(|x| x.as_str() == Some(st)) {
                    d.note("stages", format!("{st} added: imported APIs or stage variables use it"));
                    list.push(s(st));
                }
            }
            Value::Mapping(out)
        }
        Some(_) => Value::Mapping(out),
        None => {
            let mut stages: Vec<String> = DEFAULT_STAGES.iter().map(|x| x.to_string()).collect();
            for st in &used {
                if !stages.contains(st) {
                    stages.push(st.clone());
                }
            }
            if stages.len() == DEFAULT_STAGES.len() {
                return Value::Mapping(out);
            }
            d.note("stages", format!("{} (cagate's default stages and those the import uses)", stages.join(", ")));
            let mut first = Mapping::new();
            first.insert(s("stages"), Value::Sequence(stages.iter().map(|x| s(x)).collect()));
            first.extend(out);
            Value::Mapping(first)
        }
    }
}

/// The stage variables an API's backend cluster uses must have a value in each of its stages.
pub(crate) fn check_stage_variables(doc: &Value, origins: &[String], d: &mut Diags) {
    let sv = doc.get("stageVariables");
    for (i, api) in doc.get("apis").and_then(Value::as_sequence).into_iter().flatten().enumerate() {
        let Some(cluster) = api.get("backend").and_then(|b| b.get("cluster")).and_then(Value::as_str) else { continue };
        let stages = api_stages(api);
        let at = backend_at(origins, i);
        for var in cluster.split('#').skip(1).step_by(2).filter(|v| !v.is_empty()) {
            for st in &stages {
                if sv.and_then(|m| m.get(*st)).and_then(|m| m.get(var)).is_none() {
                    d.error(&at, format!("the stage variable #{var}# has no value in stage {st}: add --stage-var {st}:{var}=CLUSTER"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stage_var_syntax() {
        let v: StageVar = "TEST:orders=http://orders-test:8080".parse().unwrap();
        assert_eq!((v.stage.as_str(), v.name.as_str(), v.value.as_str()), ("TEST", "orders", "http://orders-test:8080"));
        for bad in ["TEST", "TEST:orders", ":a=b", "T:=b", "T:a=", "T E:a=b"] {
            assert!(bad.parse::<StageVar>().is_err(), "{bad}");
        }
    }
}
