//! Aliyun's plugin definitions and their API bindings, as the Aliyun CLI prints them (a Swagger export
//! holds none): DescribePlugins (`Plugins.PluginAttribute[]`: `PluginId`, `PluginName`, `PluginType`,
//! `PluginData`, `Description`) becomes `plugins[]`; DescribePluginApis for one plugin
//! (`ApiSummarys.ApiPluginSummary[]`: `ApiName`, `StageName`, …; or just that list) becomes bindings in
//! `apis[].plugins` of the APIs of that name. A type cagate does not support is an error: the import
//! must not drop a security policy silently.

use super::backend::{address_target, Clusters};
use super::diag::{at, Diags};
use super::value::{self, s, scalar_text};
use serde_yaml::{Mapping, Value};

/// A DescribePlugins answer: its file name and text.
pub(crate) struct Definitions<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
}

/// A DescribePluginApis answer for one plugin (`PLUGIN=FILE`: its PluginId or PluginName).
#[derive(Debug, Clone)]
pub(crate) struct PluginApis {
    pub(crate) plugin: String,
    pub(crate) file: String,
}

impl std::str::FromStr for PluginApis {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            Some((p, f)) if !p.is_empty() && !f.is_empty() => Ok(PluginApis { plugin: p.to_string(), file: f.to_string() }),
            _ => Err(format!("{text}: expected PLUGIN=FILE (the plugin's PluginId or PluginName, a DescribePluginApis answer)")),
        }
    }
}

/// Why cagate would refuse a plugin of this type, if it would (its own message).
fn unsupported(type_name: &str) -> Option<String> {
    let doc = serde_json::json!({ "plugins": [ { "name": "p", "type": type_name, "data": {} } ] });
    let problems = cagate_core::compile(doc.to_string().as_bytes()).err()?;
    problems.into_iter().find(|p| p.path == "plugins[0].type").map(|p| p.message)
}

fn text(item: &Value, key: &str) -> Option<String> {
    item.get(key).and_then(scalar_text).filter(|t| !t.is_empty())
}

/// `parent.child` of an Aliyun answer, or the document itself when it is already the list.
fn list<'v>(doc: &'v Value, parent: &str, child: &str) -> Option<&'v Vec<Value>> {
    doc.as_sequence().or_else(|| doc.get(parent)?.get(child)?.as_sequence())
}

/// Aliyun's Describe* answers are paged (10 items by default). Pages of one answer are passed as
/// several files: if all of them hold fewer items than their `TotalCount`, pages are missing, and so
/// are the plugins or bindings they hold.
fn missing_pages<'t>(what: &str, answers: impl Iterator<Item = (&'t str, &'t str)>, parent: &str, child: &str, d: &mut Diags) {
    let (mut files, mut held, mut total) = (Vec::new(), 0u64, 0u64);
    for (file, text) in answers {
        let Ok(doc) = value::parse(text) else { continue };
        let Some(items) = list(&doc, parent, child) else { continue };
        files.push(file);
        held += items.len() as u64;
        let t = doc.get("TotalCount").and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()));
        total = total.max(t.unwrap_or(0));
    }
    if total > held {
        d.warn(
            &files.join(", "),
            format!("{what}: TotalCount {total}, {held} items in all: pages are missing, and what they hold (ask with --PageSize 100, and --PageNumber for more; pass every page)"),
        );
    }
}

/// The definitions as `plugins[]` entries, with their PluginIds (for the bindings).
fn definitions(sources: &[Definitions<'_>], clusters: &mut Clusters, d: &mut Diags) -> Vec<(Option<String>, Value)> {
    let mut out: Vec<(Option<String>, Value)> = Vec::new();
    for src in sources {
        let doc = match value::parse(src.text) {
            Ok(v) => v,
            Err(e) => {
                d.error(src.file, format!("the DescribePlugins answer is {e}"));
                continue;
            }
        };
        let Some(items) = list(&doc, "Plugins", "PluginAttribute") else {
            d.error(src.file, "not a DescribePlugins answer: no Plugins.PluginAttribute list");
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}: Plugins.PluginAttribute[{i}]", src.file);
            let (Some(name), Some(type_name)) = (text(item, "PluginName"), text(item, "PluginType")) else {
                d.error(&path, "needs PluginName and PluginType");
                continue;
            };
            let Some(data) = item.get("PluginData").filter(|v| !v.is_null()) else {
                d.error(&at(&path, "PluginData"), "is required");
                continue;
            };
            if let Some(why) = unsupported(&type_name) {
                d.error(&at(&path, "PluginType"), format!("plugin {name}: {why}; remove it from the answer, or replace it as docs/plugins says"));
                continue;
            }
            if out.iter().any(|(_, p)| p.get("name").and_then(Value::as_str) == Some(name.as_str())) {
                d.error(&at(&path, "PluginName"), format!("a second plugin named {name}"));
                continue;
            }
            let mut m = Mapping::new();
            m.insert(s("name"), s(&name));
            m.insert(s("type"), s(&type_name));
            let data = backend_addresses(&type_name, data, &at(&path, "PluginData"), clusters, d);
            m.insert(s("data"), data);
            if let Some(desc) = text(item, "Description") {
                m.insert(s("description"), s(&desc));
            }
            out.push((text(item, "PluginId"), Value::Mapping(m)));
        }
    }
    out
}

/// Adds the definitions to `doc["plugins"]` (one of the same name from `--merge` is replaced, with a
/// note) and the bindings to the APIs they name.
pub(crate) fn add(doc: &mut Value, sources: &[Definitions<'_>], bindings: &[(PluginApis, String)], clusters: &mut Clusters, d: &mut Diags) {
    if !sources.is_empty() {
        missing_pages("DescribePlugins", sources.iter().map(|s| (s.file, s.text)), "Plugins", "PluginAttribute", d);
    }
    let mut plugins: Vec<&str> = bindings.iter().map(|(b, _)| b.plugin.as_str()).collect();
    plugins.sort_unstable();
    plugins.dedup();
    for plugin in plugins {
        let answers = bindings.iter().filter(|(b, _)| b.plugin == plugin).map(|(b, text)| (b.file.as_str(), text.as_str()));
        missing_pages(&format!("DescribePluginApis of {plugin}"), answers, "ApiSummarys", "ApiPluginSummary", d);
    }
    let defs = definitions(sources, clusters, d);
    let Some(top) = doc.as_mapping_mut() else { return };
    let plugins = top.entry(s("plugins")).or_insert_with(|| Value::Sequence(Vec::new()));
    if let Some(list) = plugins.as_sequence_mut() {
        for (_, def) in &defs {
            let name = def.get("name").cloned();
            if let Some(old) = list.iter().position(|p| p.get("name") == name.as_ref()) {
                d.note(
                    &format!("plugins[{old}]"),
                    format!("replaced by the imported plugin {}", name.as_ref().and_then(Value::as_str).unwrap_or("")),
                );
                list.remove(old);
            }
            list.push(def.clone());
        }
    }
    let known: Vec<String> = top
        .get("plugins")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    for (b, answer) in bindings {
        // The plugin by PluginId (imported here) or by name (imported, or already in the configuration).
        let by_id = defs.iter().find(|(id, _)| id.as_deref() == Some(b.plugin.as_str())).and_then(|(_, p)| p.get("name")?.as_str());
        let Some(name) = by_id.map(str::to_string).or_else(|| known.iter().find(|n| **n == b.plugin).cloned()) else {
            d.error(&format!("--plugin-apis {}", b.plugin), "no imported or configured plugin has this PluginId or PluginName");
            continue;
        };
        bind(top, &name, &b.file, answer, d);
    }
}

/// A routing plugin's or a circuitBreaker's data with each backend `address` (Aliyun's: a route's, the
/// downgrade backend's) turned into the cluster it becomes and the `Host` that address names, as an
/// API's own address is; data without one is kept as sent.
fn backend_addresses(type_name: &str, data: &Value, path: &str, clusters: &mut Clusters, d: &mut Diags) -> Value {
    if !matches!(type_name, "routing" | "circuitBreaker") {
        return data.clone();
    }
    let parsed = match data {
        Value::String(text) => value::parse(text).ok(),
        other => Some(other.clone()),
    };
    let Some(mut parsed) = parsed else { return data.clone() };
    let mut changed = false;
    if let Some(backend) = parsed.get_mut("downgradeBackend").and_then(Value::as_mapping_mut) {
        changed |= overlay_address(backend, &format!("{path}.downgradeBackend"), clusters, d);
    }
    for (i, route) in parsed.get_mut("routes").and_then(Value::as_sequence_mut).into_iter().flatten().enumerate() {
        if let Some(backend) = route.get_mut("backend").and_then(Value::as_mapping_mut) {
            changed |= overlay_address(backend, &format!("{path}.routes[{i}].backend"), clusters, d);
        }
    }
    if changed {
        parsed
    } else {
        data.clone()
    }
}

/// One backend overlay's `address` as `cluster`, `host` and the prefix of `path`; whether it had one.
fn overlay_address(backend: &mut Mapping, bp: &str, clusters: &mut Clusters, d: &mut Diags) -> bool {
    let Some(address) = backend.get("address").and_then(Value::as_str).map(str::to_string) else { return false };
    let Some(t) = address_target(&address, &at(bp, "address"), clusters, d) else { return false };
    let Some(host) = t.host else {
        d.error(&at(bp, "address"), "takes no #stage variable#: bind the plugin per stage instead");
        return false;
    };
    backend.remove("address");
    backend.insert(s("cluster"), s(&t.cluster));
    backend.insert(s("host"), s(&host));
    if !t.prefix.is_empty() {
        match backend.get("path").and_then(Value::as_str).map(str::to_string) {
            Some(p) => {
                backend.insert(s("path"), s(&format!("{}{p}", t.prefix)));
            }
            None => {
                d.warn(&at(bp, "address"), format!("its path {} is not used: without a path of its own, the API's backend path is sent", t.prefix))
            }
        }
    }
    d.note(bp, format!("the address {address} becomes the cluster {}", t.cluster));
    true
}

/// The bindings of one plugin, from a DescribePluginApis answer.
fn bind(top: &mut Mapping, plugin: &str, file: &str, answer: &str, d: &mut Diags) {
    let doc = match value::parse(answer) {
        Ok(v) => v,
        Err(e) => {
            d.error(file, format!("the DescribePluginApis answer is {e}"));
            return;
        }
    };
    let Some(items) = list(&doc, "ApiSummarys", "ApiPluginSummary") else {
        d.error(file, "not a DescribePluginApis answer: no ApiSummarys.ApiPluginSummary list");
        return;
    };
    let default_stages = vec![s("RELEASE")];
    let Some(apis) = top.get_mut("apis").and_then(Value::as_sequence_mut) else { return };
    // Per API (index): the stages to bind in (`None`: every stage the API is published in).
    let mut per_api: Vec<(usize, Option<Vec<String>>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{file}: ApiSummarys.ApiPluginSummary[{i}]");
        let Some(api_name) = text(item, "ApiName") else {
            d.error(&path, "needs ApiName");
            continue;
        };
        let Some(index) = apis.iter().position(|a| a.get("name").and_then(Value::as_str) == Some(api_name.as_str())) else {
            d.warn(&path, format!("no imported API is named {api_name}: the binding of {plugin} is not imported"));
            continue;
        };
        let published: Vec<String> = apis
            .get(index)
            .and_then(|a| a.get("stages"))
            .and_then(Value::as_sequence)
            .unwrap_or(&default_stages)
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let stage = text(item, "StageName");
        if let Some(st) = &stage {
            if !published.contains(st) {
                d.warn(&at(&path, "StageName"), format!("API {api_name} is not published in {st} here: that binding of {plugin} is not imported"));
                continue;
            }
        }
        match (per_api.iter_mut().find(|(k, _)| *k == index), stage) {
            (Some((_, Some(list))), Some(st)) if !list.contains(&st) => list.push(st),
            (Some((_, stages)), None) => *stages = None,
            (Some(_), _) => {}
            (None, st) => per_api.push((index, st.map(|x| vec![x]))),
        }
    }
    for (index, stages) in per_api {
        let Some(api) = apis.get_mut(index).and_then(Value::as_mapping_mut) else { continue };
        let list = api.entry(s("plugins")).or_insert_with(|| Value::Sequence(Vec::new()));
        let Some(list) = list.as_sequence_mut() else { continue };
        list.retain(|b| b.get("plugin").and_then(Value::as_str) != Some(plugin));
        let mut m = Mapping::new();
        m.insert(s("plugin"), s(plugin));
        if let Some(st) = stages {
            m.insert(s("stages"), Value::Sequence(st.iter().map(|x| s(x)).collect()));
        }
        list.push(Value::Mapping(m));
    }
}
