//! The edits of `cagate apps` on a document's JSON text: add an app, grant or revoke it on APIs and
//! stages, rotate its key pair, remove it with its grants. A configuration holds grants in each API's
//! `authorizations`; a registry document in its top-level `authorizations` (with `api`). Each edit
//! re-reads the text it made, so spans are never stale.

use super::jsontext::{self, Node};
use crate::import::value::{map, s};
use serde_yaml::Value;

/// Which shape the document has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Config,
    Registry,
}

/// What a grant or revoke applies to.
pub(crate) enum Apis {
    Named(Vec<String>),
    All,
}

/// An API of the configuration (or of the static configuration a registry document extends).
#[derive(Debug, Clone)]
pub(crate) struct ApiInfo {
    pub(crate) name: String,
    pub(crate) stages: Vec<String>,
    pub(crate) anonymous: bool,
}

const RELEASE: &str = "RELEASE";

fn root(text: &str) -> Result<Node, String> {
    let r = jsontext::parse(text)?;
    match r.kind {
        jsontext::Kind::Object(_) => Ok(r),
        _ => Err("the document is not a JSON object".into()),
    }
}

/// The index of app `id` in `apps`.
pub(crate) fn app_index(text: &str, id: &str) -> Result<Option<usize>, String> {
    let r = root(text)?;
    Ok(r.get("apps").map(|a| a.items()).unwrap_or_default().iter().position(|a| a.get("appId").and_then(|v| v.id(text)).as_deref() == Some(id)))
}

/// The app's `appId` as written in the first of `texts` defining it (a number stays a number in the
/// grants).
fn app_id_value(texts: &[&str], id: &str) -> Value {
    let written = texts.iter().find_map(|text| {
        root(text).ok().and_then(|r| {
            r.get("apps")?.items().iter().find_map(|a| a.get("appId").filter(|v| v.id(text).as_deref() == Some(id)).map(|v| v.text(text).to_string()))
        })
    });
    match written.as_deref().map(|w| (w.starts_with('"'), w.parse::<u64>())) {
        Some((false, Ok(n))) => Value::Number(n.into()),
        _ => s(id),
    }
}

/// The APIs of a configuration.
pub(crate) fn apis(text: &str) -> Result<Vec<ApiInfo>, String> {
    let r = root(text)?;
    Ok(r.get("apis")
        .map(|a| a.items())
        .unwrap_or_default()
        .iter()
        .map(|a| ApiInfo {
            name: a.get("name").and_then(|n| n.string(text)).unwrap_or_default(),
            stages: a.get("stages").map_or_else(|| vec![RELEASE.to_string()], |st| st.items().iter().filter_map(|x| x.string(text)).collect()),
            anonymous: a.get("authType").and_then(|t| t.string(text)).as_deref() == Some("ANONYMOUS"),
        })
        .collect())
}

/// `apps[]` with `app` added (an appId already there is an error).
pub(crate) fn add(text: &str, app: &Value) -> Result<String, String> {
    let id = app.get("appId").and_then(crate::import::value::scalar_text).unwrap_or_default();
    if app_index(text, &id)?.is_some() {
        return Err(format!("app {id} already exists"));
    }
    let r = root(text)?;
    Ok(match r.get("apps") {
        Some(list) => jsontext::append(text, list, app),
        None => jsontext::add_member(text, &r, "apps", &Value::Sequence(vec![app.clone()])),
    })
}

/// The position of API `api` among a configuration's APIs.
fn api_position(text: &str, api: &str) -> Result<Option<usize>, String> {
    let r = root(text)?;
    Ok(r.get("apis").and_then(|a| a.items().iter().position(|x| x.get("name").and_then(|n| n.string(text)).as_deref() == Some(api))))
}

/// A grant: API, stage, authValidTime, and its index in its list.
type GrantAt = (String, String, Option<String>, usize);

/// The grants of `id` as (API, stage, authValidTime, index in its list), for a configuration API `api_index` or the registry.
fn grants_of(text: &str, form: Form, api_index: Option<usize>, id: &str) -> Result<Vec<GrantAt>, String> {
    let r = root(text)?;
    let (list, api_name) = match (form, api_index) {
        (Form::Config, Some(i)) => {
            let api = r.get("apis").and_then(|a| a.items().get(i)).ok_or("no such API")?;
            (api.get("authorizations"), api.get("name").and_then(|n| n.string(text)).unwrap_or_default())
        }
        _ => (r.get("authorizations"), String::new()),
    };
    Ok(list
        .map(|l| l.items())
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|(_, g)| g.get("appId").and_then(|v| v.id(text)).as_deref() == Some(id))
        .map(|(k, g)| {
            let api = if form == Form::Registry { g.get("api").and_then(|a| a.string(text)).unwrap_or_default() } else { api_name.clone() };
            let stage = g.get("stage").and_then(|x| x.string(text)).unwrap_or_else(|| RELEASE.to_string());
            (api, stage, g.get("authValidTime").and_then(|x| x.string(text)), k)
        })
        .collect())
}

/// The node of the grants list (for a configuration, of API `i`), if there is one.
fn list_node(r: &Node, form: Form, i: usize) -> Option<&Node> {
    match form {
        Form::Config => r.get("apis")?.items().get(i)?.get("authorizations"),
        Form::Registry => r.get("authorizations"),
    }
}

/// Grants app `id` on `targets` (API name and its position among the configuration's APIs, stage).
/// An existing grant of the same API and stage is replaced when its end differs. Returns the text and
/// how many grants changed.
/// `base`: the static configuration a registry document extends, where its app may be defined.
pub(crate) fn grant(
    text: &str,
    form: Form,
    id: &str,
    targets: &[(String, String)],
    until: Option<&str>,
    base: Option<&str>,
) -> Result<(String, usize), String> {
    let app = app_id_value(&[text, base.unwrap_or_default()], id);
    let mut text = text.to_string();
    let mut changed = 0;
    for (api, stage) in targets {
        let api_index = match form {
            Form::Config => Some(api_position(&text, api)?.ok_or_else(|| format!("no API named {api}"))?),
            Form::Registry => None,
        };
        let existing = grants_of(&text, form, api_index, id)?.into_iter().find(|(a, st, _, _)| a == api && st == stage);
        if let Some((_, _, end, k)) = &existing {
            if end.as_deref() == until {
                continue;
            }
            let r = root(&text)?;
            let list = list_node(&r, form, api_index.unwrap_or(0)).ok_or("grants list vanished")?;
            text = jsontext::remove_item(&text, list, *k);
        }
        let mut entry = vec![("appId", app.clone())];
        if form == Form::Registry {
            entry.push(("api", s(api)));
        }
        entry.push(("stage", s(stage)));
        if let Some(t) = until {
            entry.push(("authValidTime", s(t)));
        }
        let entry = to_map(entry);
        let r = root(&text)?;
        text = match (list_node(&r, form, api_index.unwrap_or(0)), form) {
            (Some(list), _) => jsontext::append(&text, list, &entry),
            (None, Form::Config) => {
                let api_node = r.get("apis").and_then(|a| a.items().get(api_index.unwrap_or(0))).ok_or("no such API")?;
                jsontext::add_member(&text, api_node, "authorizations", &Value::Sequence(vec![entry]))
            }
            (None, Form::Registry) => jsontext::add_member(&text, &r, "authorizations", &Value::Sequence(vec![entry])),
        };
        changed += 1;
    }
    Ok((text, changed))
}

fn to_map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = serde_yaml::Mapping::new();
    for (k, v) in pairs {
        m.insert(s(k), v);
    }
    Value::Mapping(m)
}

/// Removes the grants of app `id` on the APIs `apis` (`None`: every API) in `stages` (empty: every
/// stage). Returns the text and how many grants were removed.
pub(crate) fn revoke(text: &str, form: Form, id: &str, apis: Option<&[String]>, stages: &[String]) -> Result<(String, usize), String> {
    let mut text = text.to_string();
    let mut removed = 0;
    let api_count = match form {
        Form::Config => root(&text)?.get("apis").map_or(0, |a| a.items().len()),
        Form::Registry => 1,
    };
    for i in 0..api_count {
        loop {
            let hit = grants_of(&text, form, Some(i), id)?
                .into_iter()
                .find(|(api, stage, _, _)| apis.is_none_or(|l| l.contains(api)) && (stages.is_empty() || stages.contains(stage)));
            let Some((_, _, _, k)) = hit else { break };
            let r = root(&text)?;
            let list = list_node(&r, form, i).ok_or("grants list vanished")?;
            text = jsontext::remove_item(&text, list, k);
            removed += 1;
        }
    }
    Ok((text, removed))
}

/// Removes app `id` and every grant of it.
pub(crate) fn remove(text: &str, form: Form, id: &str) -> Result<(String, usize), String> {
    if app_index(text, id)?.is_none() {
        return Err(format!("no app {id} in this document"));
    }
    let (text, grants) = revoke(text, form, id, None, &[])?;
    let i = app_index(&text, id)?.ok_or("app vanished")?;
    let r = root(&text)?;
    let apps = r.get("apps").ok_or("no apps")?;
    Ok((jsontext::remove_item(&text, apps, i), grants))
}

/// The outcome of a rotation, for the user (printed once).
pub(crate) struct Rotated {
    pub(crate) text: String,
    pub(crate) old_key: String,
    pub(crate) new_key: String,
    pub(crate) new_secret: String,
    pub(crate) pruned: usize,
}

/// A new own key pair for app `id`; the old pair moves to `keys[]` with `validUntil`, so clients
/// using it keep working until then. Pairs of `keys[]` whose `validUntil` has passed are dropped.
/// The app at index `i` of `apps`.
fn app_at(text: &str, i: usize) -> Result<Node, String> {
    let mut r = root(text)?;
    match r.kind {
        jsontext::Kind::Object(ref mut m) => {
            let apps = m.iter_mut().find(|x| x.key == "apps").ok_or("no apps")?;
            match std::mem::replace(&mut apps.value.kind, jsontext::Kind::Scalar) {
                jsontext::Kind::Array(mut items) if i < items.len() => Ok(items.swap_remove(i)),
                _ => Err("no such app".into()),
            }
        }
        _ => Err("not an object".into()),
    }
}

/// Adds `code` to the AppCodes of app `id`.
pub(crate) fn add_app_code(text: &str, id: &str, code: &str) -> Result<String, String> {
    let i = app_index(text, id)?.ok_or_else(|| format!("no app {id} in this document"))?;
    let a = app_at(text, i)?;
    Ok(match a.get("appCodes") {
        Some(codes) => jsontext::append(text, codes, &s(code)),
        None => jsontext::add_member(text, &a, "appCodes", &Value::Sequence(vec![s(code)])),
    })
}

/// Removes `code` from the AppCodes of app `id` (compared as written, whole).
pub(crate) fn remove_app_code(text: &str, id: &str, code: &str) -> Result<String, String> {
    let i = app_index(text, id)?.ok_or_else(|| format!("no app {id} in this document"))?;
    let a = app_at(text, i)?;
    let codes = a.get("appCodes").ok_or_else(|| format!("app {id} has no AppCode"))?;
    let at = codes.items().iter().position(|c| c.string(text).as_deref() == Some(code)).ok_or_else(|| format!("app {id} has no such AppCode"))?;
    Ok(jsontext::remove_item(text, codes, at))
}

pub(crate) fn rotate(text: &str, id: &str, valid_until: &str, new_key: Option<String>, new_secret: String, now_s: i64) -> Result<Rotated, String> {
    let i = app_index(text, id)?.ok_or_else(|| format!("no app {id} in this document"))?;
    let app_node = |t: &str| app_at(t, i);
    let a = app_node(text)?;
    let old_key = a.get("appKey").and_then(|k| k.string(text)).ok_or_else(|| format!("app {id} has no appKey"))?;
    let Some(old_secret) = a.get("appSecret").and_then(|k| k.string(text)) else {
        return Err(format!(
            "app {id}'s appSecret is not written in this file (it comes from an environment variable of the Wasm VM): set the new secret there; to rotate without a failed request, add the new pair under the app's `keys` first"
        ));
    };
    let new_key = new_key.unwrap_or_else(|| old_key.clone());
    let mut t = text.to_string();
    let key_node = app_node(&t)?.get("appKey").map(|n| (n.start, n.end)).ok_or("no appKey")?;
    t = jsontext::replace(&t, &Node { start: key_node.0, end: key_node.1, kind: jsontext::Kind::Scalar }, &s(&new_key));
    let secret_node = app_node(&t)?.get("appSecret").map(|n| (n.start, n.end)).ok_or("no appSecret")?;
    t = jsontext::replace(&t, &Node { start: secret_node.0, end: secret_node.1, kind: jsontext::Kind::Scalar }, &s(&new_secret));
    let mut pruned = 0;
    loop {
        let a = app_node(&t)?;
        let Some(keys) = a.get("keys") else { break };
        let lapsed = keys.items().iter().position(|k| {
            k.get("validUntil").and_then(|v| v.string(&t)).and_then(|v| super::when::parse_rfc3339(&v)).is_some_and(|end| end <= now_s)
        });
        let Some(k) = lapsed else { break };
        t = jsontext::remove_item(&t, keys, k);
        pruned += 1;
    }
    let entry = map([("appKey", s(&old_key)), ("appSecret", s(&old_secret)), ("validUntil", s(valid_until))]);
    let a = app_node(&t)?;
    t = match a.get("keys") {
        Some(keys) => jsontext::append(&t, keys, &entry),
        None => jsontext::add_member(&t, &a, "keys", &Value::Sequence(vec![entry])),
    };
    Ok(Rotated { text: t, old_key, new_key, new_secret, pruned })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DOC: &str = r#"{
  "apps": [
    { "appId": 10001, "appKey": "k1", "appSecret": "s1" }
  ],
  "apis": [
    { "name": "a", "method": "GET", "path": "/a", "stages": ["RELEASE", "TEST"],
      "authorizations": [ { "appId": 10001, "stage": "RELEASE" } ] },
    { "name": "b", "method": "GET", "path": "/b" }
  ]
}"#;

    #[test]
    fn an_app_code_is_added_then_removed() {
        let t = add_app_code(DOC, "10001", "C1").unwrap();
        assert!(t.contains(r#""appCodes": ["C1"]"#) || t.contains(r#""appCodes": [ "C1" ]"#), "{t}");
        let t = add_app_code(&t, "10001", "C2").unwrap();
        let t = remove_app_code(&t, "10001", "C1").unwrap();
        assert!(!t.contains("\"C1\"") && t.contains("\"C2\""), "{t}");
        assert!(remove_app_code(&t, "10001", "C1").unwrap_err().contains("no such AppCode"));
        assert!(add_app_code(&t, "10002", "C3").unwrap_err().contains("no app 10002"));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&t).unwrap()["apps"][0]["appCodes"], serde_json::json!(["C2"]));
    }

    #[test]
    fn grant_revoke_remove_in_a_configuration() {
        let (t, n) = grant(
            DOC,
            Form::Config,
            "10001",
            &[("a".into(), "TEST".into()), ("b".into(), "RELEASE".into()), ("a".into(), "RELEASE".into())],
            None,
            None,
        )
        .unwrap();
        assert_eq!(n, 2);
        assert!(t.contains(r#"[ { "appId": 10001, "stage": "RELEASE" }, { "appId": 10001, "stage": "TEST" } ]"#), "{t}");
        assert!(t.contains(r#""path": "/b", "authorizations": [ { "appId": 10001, "stage": "RELEASE" } ] }"#), "{t}");
        let (t2, n) = grant(&t, Form::Config, "10001", &[("a".into(), "TEST".into())], Some("2030-01-01T00:00:00Z"), None).unwrap();
        assert_eq!(n, 1);
        assert!(t2.contains(r#"{ "appId": 10001, "stage": "TEST", "authValidTime": "2030-01-01T00:00:00Z" }"#), "{t2}");
        let (t3, n) = revoke(&t, Form::Config, "10001", Some(&["a".to_string()]), &[]).unwrap();
        assert_eq!(n, 2);
        assert!(t3.contains(r#""authorizations": [] },"#), "{t3}");
        let (t4, n) = remove(&t, Form::Config, "10001").unwrap();
        assert_eq!(n, 3);
        assert!(t4.contains("\"apps\": []"), "{t4}");
        assert!(!t4.contains("10001"), "{t4}");
        assert!(grant(DOC, Form::Config, "10001", &[("zz".into(), "RELEASE".into())], None, None).is_err());
    }

    #[test]
    fn registry_grants_name_the_api() {
        let reg = r#"{ "apps": [ { "appId": "x", "appKey": "k", "appSecret": "s" } ] }"#;
        let (t, _) = grant(reg, Form::Registry, "x", &[("orders".into(), "RELEASE".into())], None, None).unwrap();
        assert!(t.contains(r#""authorizations": [ { "appId": "x", "api": "orders", "stage": "RELEASE" } ]"#), "{t}");
        let (t, n) = revoke(&t, Form::Registry, "x", None, &["RELEASE".to_string()]).unwrap();
        assert_eq!(n, 1);
        assert!(t.contains(r#""authorizations": []"#), "{t}");
    }

    #[test]
    fn rotation_keeps_the_old_pair_until_its_end() {
        let r = rotate(DOC, "10001", "2030-01-01T00:00:00Z", Some("k2".into()), "s2".into(), 0).unwrap();
        assert!(r.text.contains(r#"{ "appId": 10001, "appKey": "k2", "appSecret": "s2", "keys": [ { "appKey": "k1", "appSecret": "s1", "validUntil": "2030-01-01T00:00:00Z" } ] }"#), "{}", r.text);
        let again =
            rotate(&r.text, "10001", "2031-01-01T00:00:00Z", None, "s3".into(), super::super::when::parse_rfc3339("2030-06-01T00:00:00Z").unwrap())
                .unwrap();
        assert_eq!(again.pruned, 1);
        assert!(again.text.contains(r#""appKey": "k2", "appSecret": "s3""#), "{}", again.text);
        assert!(!again.text.contains("k1"), "{}", again.text);
        let env = r#"{"apps": [{"appId": 1, "appKey": "k", "appSecret": {"env": "S"}}]}"#;
        assert!(rotate(env, "1", "2030-01-01T00:00:00Z", None, "x".into(), 0).err().unwrap().contains("environment variable"));
    }
}
