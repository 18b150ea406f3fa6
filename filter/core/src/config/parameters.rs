//! API parameter definitions (`apis[].parameters`): required parameters, types, lengths, enums and
//! patterns, checked per request (`I400MH`, `I400MP`, `I400IP`).

use crate::schema::validator::{join, Validator};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamLocation {
    Header,
    Query,
    Form,
    Path,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Int,
    Long,
    Float,
    Double,
    Boolean,
}

#[derive(Debug, Clone)]
pub struct ApiParameter {
    pub name: String,
    pub location: ParamLocation,
    pub kind: Kind,
    pub required: bool,
    pub max_length: Option<usize>,
    pub enum_values: Vec<String>,
    pub pattern: Option<regex_lite::Regex>,
    /// Parameter mapping: the name and location at the backend (`None`: as received).
    pub backend_name: Option<String>,
    pub backend_location: Option<ParamLocation>,
    /// What the backend receives when the client sends none (mapping modes).
    pub default: Option<String>,
}

pub(crate) fn parse(c: &mut Validator, list: &[Value], path: &str, path_params: &[&str]) -> Vec<ApiParameter> {
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(o) = c.object(
            v,
            &p,
            &[
                "name",
                "location",
                "type",
                "required",
                "maxLength",
                "enumValues",
                "regularExpression",
                "description",
                "defaultValue",
                "backendName",
                "backendLocation",
            ],
        ) else {
            continue;
        };
        // Checked first: a missing name or location does not hide them.
        let kinds = [
            ("STRING", Kind::String),
            ("INT", Kind::Int),
            ("LONG", Kind::Long),
            ("FLOAT", Kind::Float),
            ("DOUBLE", Kind::Double),
            ("BOOLEAN", Kind::Boolean),
        ];
        let kind = c.choice(o, &p, "type", "type", false, &kinds).unwrap_or(Kind::String);
        let required = c.boolean(o, &p, "required", false);
        let max_length = o.get("maxLength").map(|_| c.integer(o, &p, "maxLength", 0, 0, 1 << 20) as usize);
        let enum_values = c.strings(o, &p, "enumValues").unwrap_or_default().into_iter().map(str::to_string).collect();
        let pattern = c.string(o, &p, "regularExpression", false).and_then(|r| match regex_lite::Regex::new(r) {
            Ok(re) => Some(re),
            Err(e) => {
                c.err(&join(&p, "regularExpression"), format!("not a valid regular expression: {e}"));
                None
            }
        });
        // Aliyun's exports write defaults as text, numbers or booleans; an empty one is none.
        let default = match o.get("defaultValue") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(d.clone()).filter(|d| !d.is_empty()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
            Some(_) => {
                c.err(&join(&p, "defaultValue"), "must be a string, a number or a boolean");
                None
            }
        };
        if default.as_deref().is_some_and(|d| d.chars().any(char::is_control)) {
            c.err(&join(&p, "defaultValue"), "holds a control character");
        }
        let name = c.string(o, &p, "name", true);
        let location = param_location(c, o, &p, "location", true);
        let (Some(name), Some(location)) = (name, location) else { continue };
        let backend_location = param_location(c, o, &p, "backendLocation", false);
        let backend_name = c.string(o, &p, "backendName", false).map(|n| {
            if backend_location.unwrap_or(location) == ParamLocation::Header {
                n.to_ascii_lowercase()
            } else {
                n.to_string()
            }
        });
        if let (Some(n), ParamLocation::Header) = (&backend_name, backend_location.unwrap_or(location)) {
            c.header_name(&join(&p, "backendName"), n);
        }
        if backend_location.is_some_and(|b| b != location && (b == ParamLocation::Path || location == ParamLocation::Path)) {
            c.err(&join(&p, "backendLocation"), "a PATH parameter stays a PATH parameter");
        }
        // The body reaches the backend as the client sent it: nothing is moved into it or renamed in it.
        if backend_location.unwrap_or(location) == ParamLocation::Form
            && (location != ParamLocation::Form || backend_name.as_deref().is_some_and(|n| n != name))
        {
            let key = if location == ParamLocation::Form { "backendName" } else { "backendLocation" };
            c.err(
                &join(&p, key),
                "the body is forwarded as sent: no parameter is moved into it or renamed in it (a FORM parameter maps to QUERY or HEADER)",
            );
        }
        if location == ParamLocation::Path && !path_params.contains(&name) {
            c.err(&join(&p, "name"), format!("no [{name}] segment in the API path"));
        }
        out.push(ApiParameter {
            name: name.to_string(),
            location,
            kind,
            required,
            max_length,
            enum_values,
            pattern,
            backend_name,
            backend_location,
            default,
        });
    }
    out
}

fn param_location(c: &mut Validator, o: &serde_json::Map<String, Value>, p: &str, key: &str, required: bool) -> Option<ParamLocation> {
    let locations =
        [("HEADER", ParamLocation::Header), ("QUERY", ParamLocation::Query), ("FORM", ParamLocation::Form), ("PATH", ParamLocation::Path)];
    c.choice(o, p, key, "location", required, &locations)
}

/// Why a present value is invalid, if it is.
pub(crate) fn invalid_reason(def: &ApiParameter, value: &str) -> Option<String> {
    let ok_type = match def.kind {
        Kind::String => true,
        Kind::Int => value.parse::<i32>().is_ok(),
        Kind::Long => value.parse::<i64>().is_ok(),
        Kind::Float => value.parse::<f32>().is_ok_and(f32::is_finite),
        Kind::Double => value.parse::<f64>().is_ok_and(f64::is_finite),
        Kind::Boolean => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
    };
    if !ok_type {
        let name = match def.kind {
            Kind::String => "STRING",
            Kind::Int => "INT",
            Kind::Long => "LONG",
            Kind::Float => "FLOAT",
            Kind::Double => "DOUBLE",
            Kind::Boolean => "BOOLEAN",
        };
        return Some(format!("is not a valid {name}"));
    }
    if def.max_length.is_some_and(|m| value.chars().count() > m) {
        return Some(format!("is longer than {}", def.max_length.unwrap_or_default()));
    }
    if !def.enum_values.is_empty() && !def.enum_values.iter().any(|e| e == value) {
        return Some(format!("is not one of {}", def.enum_values.join(", ")));
    }
    if def.pattern.as_ref().is_some_and(|re| !re.is_match(value)) {
        return Some("does not match the expected pattern".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(v: Value) -> ApiParameter {
        let mut c = Validator::default();
        let out = parse(&mut c, &[v], "p", &["id"]);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        out.into_iter().next().unwrap()
    }

    #[test]
    fn per_type() {
        let cases = [
            ("INT", "12", true),
            ("INT", "3000000000", false),
            ("LONG", "3000000000", true),
            ("LONG", "1.5", false),
            ("FLOAT", "1.5", true),
            ("DOUBLE", "-2e10", true),
            ("DOUBLE", "NaN", false),
            ("BOOLEAN", "TRUE", true),
            ("BOOLEAN", "yes", false),
            ("STRING", "anything", true),
        ];
        for (t, v, ok) in cases {
            let d = def(serde_json::json!({ "name": "x", "location": "QUERY", "type": t }));
            assert_eq!(invalid_reason(&d, v).is_none(), ok, "{t} {v}");
        }
        let d = def(serde_json::json!({ "name": "x", "location": "QUERY", "type": "INT" }));
        assert_eq!(invalid_reason(&d, "x").unwrap(), "is not a valid INT");
    }

    #[test]
    fn length_enum_pattern() {
        let d = def(serde_json::json!({ "name": "x", "location": "HEADER", "maxLength": 3, "enumValues": ["abc", "de", "toolong"] }));
        assert_eq!(invalid_reason(&d, "toolong").unwrap(), "is longer than 3");
        assert_eq!(invalid_reason(&d, "xy").unwrap(), "is not one of abc, de, toolong");
        assert!(invalid_reason(&d, "de").is_none());
        let d = def(serde_json::json!({ "name": "email", "location": "FORM", "regularExpression": "^[^@]+@[^@]+$" }));
        assert!(invalid_reason(&d, "a@b").is_none());
        assert_eq!(invalid_reason(&d, "ab").unwrap(), "does not match the expected pattern");
    }

    #[test]
    fn config_errors() {
        let mut c = Validator::default();
        parse(
            &mut c,
            &[
                serde_json::json!({ "name": "nope", "location": "PATH" }),
                serde_json::json!({ "name": "r", "location": "QUERY", "regularExpression": "([" }),
                serde_json::json!({ "name": "t", "location": "COOKIE" }),
            ],
            "apis[0].parameters",
            &["id"],
        );
        let all: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        assert!(all[0].contains("apis[0].parameters[0].name: no [nope] segment"));
        assert!(all[1].contains("apis[0].parameters[1].regularExpression: not a valid regular expression"));
        assert!(all[2].contains("unknown location COOKIE"));
    }
}
