//! `cagate import`: an Aliyun Swagger 2.0 export (JSON or YAML, with the `x-aliyun-apigateway-*`
//! extensions) as a cagate configuration, checked by the filter's own compiler, and optionally a
//! runnable Envoy bootstrap. Every problem names its path in the Swagger document; what Aliyun does
//! and cagate will not is a warning; nothing is written when there is an error.

mod backend;
mod diag;
mod envoy;
mod merge;
mod params;
mod plugins;
mod swagger;
pub(crate) mod value;

use backend::Clusters;
use diag::Diags;
use merge::StageVar;
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct ImportArgs {
    /// The Aliyun Swagger 2.0 document (JSON or YAML)
    swagger: PathBuf,
    /// Write the cagate configuration (JSON) here; default: standard output
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Also write a runnable Envoy bootstrap (YAML): listener, route, one cluster per backend, cagate
    #[arg(long, value_name = "FILE")]
    envoy: Option<PathBuf>,
    /// A stage variable: the backend address http://#NAME# (or VPC access #NAME#) uses VALUE in STAGE.
    /// VALUE is an Envoy cluster name, or an http(s)://host:port URL (its cluster is made). Repeatable
    #[arg(long = "stage-var", value_name = "STAGE:NAME=VALUE")]
    stage_vars: Vec<StageVar>,
    /// Publish the imported APIs in this stage (repeatable). Default: RELEASE and the stages of
    /// --stage-var; with --merge, an existing API keeps its stages
    #[arg(long = "stage", value_name = "STAGE")]
    stages: Vec<String>,
    /// An existing cagate configuration: its apps, plugins, signature settings and other fields are
    /// kept, its APIs replaced (an API of the same name keeps its authorizations, plugin bindings,
    /// stages and appCodeAuth)
    #[arg(long, value_name = "FILE")]
    merge: Option<PathBuf>,
    /// With --envoy: the listener address
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:10000")]
    listen: envoy::SocketAddr,
    /// With --envoy: the admin address
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9901")]
    admin: envoy::SocketAddr,
    /// With --envoy: the path of cagate.wasm as Envoy will see it (default: the module built beside
    /// this cagate, as an absolute path)
    #[arg(long, value_name = "PATH")]
    wasm: Option<String>,
    /// Aliyun's plugin definitions: a DescribePlugins answer as the Aliyun CLI prints it
    /// (`aliyun cloudapi DescribePlugins`), JSON or YAML. Repeatable
    #[arg(long = "plugins", value_name = "FILE")]
    plugins: Vec<PathBuf>,
    /// The APIs one plugin is bound to: a DescribePluginApis answer for it (`aliyun cloudapi
    /// DescribePluginApis --PluginId ID`); PLUGIN is its PluginId or PluginName. Repeatable
    #[arg(long = "plugin-apis", value_name = "PLUGIN=FILE")]
    plugin_apis: Vec<plugins::PluginApis>,
}

/// What to import with (the arguments, files already read).
pub(crate) struct Settings<'a> {
    pub(crate) stage_vars: &'a [StageVar],
    pub(crate) stages: &'a [String],
    /// The existing configuration: file name and text.
    pub(crate) merge: Option<(&'a str, &'a str)>,
    pub(crate) envoy: Option<(&'a envoy::SocketAddr, &'a envoy::SocketAddr, &'a str)>,
    /// `--plugins` answers and `--plugin-apis` answers (with their texts).
    pub(crate) plugins: &'a [plugins::Definitions<'a>],
    pub(crate) plugin_apis: &'a [(plugins::PluginApis, String)],
}

#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) config: String,
    pub(crate) envoy: Option<String>,
    pub(crate) clusters: Clusters,
    pub(crate) apis: usize,
    pub(crate) skipped: usize,
    /// The stages the APIs are published in.
    pub(crate) stages: Vec<String>,
}

pub(crate) fn run(a: ImportArgs) -> Result<ExitCode, String> {
    let read = |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let swagger = read(&a.swagger)?;
    let merge_text = a.merge.as_ref().map(read).transpose()?;
    let merge_name = a.merge.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let plugin_texts: Vec<(String, String)> = a.plugins.iter().map(|p| Ok((p.display().to_string(), read(p)?))).collect::<Result<_, String>>()?;
    let definitions: Vec<plugins::Definitions<'_>> = plugin_texts.iter().map(|(file, text)| plugins::Definitions { file, text }).collect();
    let plugin_apis: Vec<(plugins::PluginApis, String)> =
        a.plugin_apis.iter().map(|b| Ok((b.clone(), read(&PathBuf::from(&b.file))?))).collect::<Result<_, String>>()?;
    let wasm = match (&a.wasm, &a.envoy) {
        (Some(w), _) => w.clone(),
        (None, Some(_)) => built_module()?,
        (None, None) => String::new(),
    };
    let settings = Settings {
        stage_vars: &a.stage_vars,
        stages: &a.stages,
        merge: merge_text.as_deref().map(|t| (merge_name.as_str(), t)),
        envoy: a.envoy.as_ref().map(|_| (&a.listen, &a.admin, wasm.as_str())),
        plugins: &definitions,
        plugin_apis: &plugin_apis,
    };
    let mut d = Diags::default();
    let out = import(&swagger, &settings, &mut d);
    d.print();
    let Some(out) = out else {
        // With --merge an error may be the merged file's: the diagnostics' paths say which.
        let into = a.merge.as_ref().map(|m| format!(" into {}", m.display())).unwrap_or_default();
        eprintln!("cagate import: {} error(s) importing {}{into}; nothing written", d.errors.len(), a.swagger.display());
        return Ok(ExitCode::from(1));
    };
    match &a.output {
        Some(p) => std::fs::write(p, format!("{}\n", out.config)).map_err(|e| format!("{}: {e}", p.display()))?,
        None => println!("{}", out.config),
    }
    if let (Some(p), Some(text)) = (&a.envoy, &out.envoy) {
        std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    summary(&out, &d, &a);
    Ok(ExitCode::SUCCESS)
}

fn summary(out: &Output, d: &Diags, a: &ImportArgs) {
    let skipped = if out.skipped > 0 { format!(", {} operation(s) not imported", out.skipped) } else { String::new() };
    let to = a.output.as_ref().map_or_else(|| "standard output".to_string(), |p| p.display().to_string());
    eprintln!("cagate import: {} API(s){skipped}, {} warning(s); configuration written to {to}", out.apis, d.warnings.len());
    if let Some(p) = &a.envoy {
        eprintln!("Envoy configuration written to {}", p.display());
    }
    if !out.clusters.is_empty() {
        eprintln!("Envoy clusters the backends need:");
        for (name, c) in &out.clusters {
            let kind = if c.ip { "STATIC" } else { "STRICT_DNS" };
            eprintln!("  {name}  {kind} {}:{}{}  ({})", c.host, c.port, if c.tls { " TLS" } else { "" }, c.source);
        }
    }
    eprint!("{}", next_steps(a, &out.stages));
}

/// What to do after an import: apps and grants (in the stages published), a trial in report-only
/// mode, a check.
fn next_steps(a: &ImportArgs, stages: &[String]) -> String {
    let file = a.envoy.as_ref().or(a.output.as_ref()).map_or_else(|| "cagate.json".to_string(), |p| p.display().to_string());
    let grant_stages: String =
        if stages.iter().all(|s| s == "RELEASE") { String::new() } else { stages.iter().map(|s| format!(" --stage {s}")).collect() };
    format!(
        "Next steps:
  1. An app (random credentials, printed once):   cagate apps add {file} --name my-app
  2. Authorize it on the imported APIs:             cagate apps grant {file} <appId> --all{grant_stages}
     (or carry over your Aliyun apps: add them to \"apps\" with their AppKey and AppSecret)
  3. Try it without refusing anyone: set \"reportOnly\": true in the configuration (or on one API);
     refusals are then logged and counted while requests go on. Remove it to enforce.
  4. Check before deploying:                        cagate check {file}
"
    )
}

/// The import itself, on texts: `None` when there is an error (all of them are in `d`).
pub(crate) fn import(swagger: &str, settings: &Settings<'_>, d: &mut Diags) -> Option<Output> {
    let doc = match value::parse(swagger) {
        Ok(v) => v,
        Err(e) => {
            d.error("", format!("the Swagger document is {e}"));
            return None;
        }
    };
    let mut stages: Vec<String> = settings.stages.to_vec();
    if stages.is_empty() {
        stages.push("RELEASE".to_string());
        for v in settings.stage_vars {
            if !stages.contains(&v.stage) {
                stages.push(v.stage.clone());
            }
        }
    }
    let mut imported = swagger::convert(&doc, &stages, d);
    if !d.errors.is_empty() {
        return None;
    }
    let existing = match settings.merge {
        Some((file, text)) => Some((file, merge_source(file, text, d)?)),
        None => None,
    };
    let existing_ref = existing.as_ref().map(|(file, doc)| merge::Existing { file, doc });
    let mut merged = merge::build(existing_ref, &mut imported, settings.stage_vars, !settings.stages.is_empty(), d);
    plugins::add(&mut merged, settings.plugins, settings.plugin_apis, &mut imported.clusters, d);
    merge::check_stage_variables(&merged, &imported.origins, d);
    unused_stage_vars(&merged, settings.stage_vars, d);
    if !d.errors.is_empty() {
        return None;
    }
    let config = match value::to_json(&merged) {
        Ok(j) => j,
        Err(e) => {
            d.error("", e);
            return None;
        }
    };
    if !compiles(&config, &imported.origins, d) {
        return None;
    }
    let envoy = match settings.envoy {
        Some((listen, admin, wasm)) => Some(envoy_config(&merged, &config, &imported.clusters, (listen, admin, wasm), d)?),
        None => None,
    };
    let stages = merge::published_stages(&merged);
    Some(Output { config, envoy, clusters: imported.clusters, apis: imported.apis.len(), skipped: imported.skipped, stages })
}

/// A `--stage-var` no backend cluster or host refers to is most likely a mistake.
fn unused_stage_vars(doc: &Value, vars: &[StageVar], d: &mut Diags) {
    let templates: Vec<&str> = doc
        .get("apis")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("backend"))
        .flat_map(|b| ["cluster", "host"].into_iter().filter_map(move |k| b.get(k).and_then(Value::as_str)))
        .collect();
    for v in vars {
        if !templates.iter().any(|c| c.contains(&format!("#{}#", v.name))) {
            d.warn(&format!("--stage-var {}:{}", v.stage, v.name), format!("no backend address uses #{}#", v.name));
        }
    }
}

/// The filter's own compiler on the result: its problems are errors (with the operation they come
/// from), its warnings warnings.
fn compiles(config: &str, origins: &[String], d: &mut Diags) -> bool {
    match cagate_core::compile(config.as_bytes()) {
        Ok(g) => {
            for w in &g.warnings {
                d.warn("cagate check", w);
            }
            true
        }
        Err(problems) => {
            for p in problems {
                let index = p.path.strip_prefix("apis[").and_then(|r| r.split(']').next()).and_then(|i| i.parse::<usize>().ok());
                let from = index.and_then(|i| origins.get(i)).map(|o| format!(" (from {o})")).unwrap_or_default();
                d.error("cagate check", format!("{p}{from}"));
            }
            false
        }
    }
}

/// The module `make build` puts beside this binary (`target/release/cagate` and
/// `target/wasm32-wasip1/release/cagate.wasm`), absolute so Envoy finds it from any directory.
fn built_module() -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("--wasm: {e}"))?;
    let module = exe.parent().and_then(Path::parent).map(|target| target.join("wasm32-wasip1/release/cagate.wasm"));
    match module.and_then(|m| m.canonicalize().ok()) {
        Some(m) => Ok(m.display().to_string()),
        None => Err("--envoy needs --wasm PATH (the path Envoy loads cagate.wasm from): no module was built beside this cagate".into()),
    }
}

type EnvoyAddrs<'a> = (&'a envoy::SocketAddr, &'a envoy::SocketAddr, &'a str);

/// The configuration `--merge` names: a cagate document, or the one an Envoy bootstrap, EnvoyFilter or
/// Istio WasmPlugin embeds (where `cagate apps` edits apps and grants).
fn merge_source(file: &str, text: &str, d: &mut Diags) -> Option<Value> {
    let parsed = value::parse(text);
    if let Ok(v) = &parsed {
        if !v.as_mapping().is_some_and(|m| m.contains_key("static_resources") || m.contains_key("apiVersion")) {
            return Some(v.clone());
        }
    }
    // An Envoy or Istio file, of one YAML document or several (`---`): the configuration it embeds.
    let unreadable = |parsed: &Result<Value, String>, otherwise: String| match parsed {
        Err(e) => format!("the configuration to merge with is {e}"),
        Ok(_) => otherwise,
    };
    let found = match crate::apps::container::locate(text) {
        Ok(found) => found,
        Err(e) => {
            d.error(file, unreadable(&parsed, e));
            return None;
        }
    };
    match found.as_slice() {
        [one] => match value::parse(&one.json) {
            Ok(v) => Some(v),
            Err(e) => {
                d.error(file, format!("{}: the configuration to merge with is {e}", one.label));
                None
            }
        },
        [] => {
            d.error(file, unreadable(&parsed, "an Envoy or Istio configuration with no cagate configuration in it".into()));
            None
        }
        many => {
            let labels: Vec<&str> = many.iter().map(|f| f.label.as_str()).collect();
            d.error(file, format!("holds {} cagate configurations ({}): merge with one of them, saved as JSON", many.len(), labels.join(", ")));
            None
        }
    }
}

fn envoy_config(merged: &Value, config: &str, clusters: &Clusters, (listen, admin, wasm): EnvoyAddrs<'_>, d: &mut Diags) -> Option<String> {
    let used = cagate_core::compile(config.as_bytes()).map(|g| g.clusters_used()).unwrap_or_default();
    for u in used.iter().filter(|u| !clusters.contains_key(&u.cluster)) {
        d.warn("--envoy", format!("the cluster {} ({}) is not in the Envoy configuration: add it", u.cluster, u.by));
    }
    let max_body = merged.get("maxBodyBytes").and_then(Value::as_u64).unwrap_or(0);
    let options = envoy::Options { listen, admin, wasm, buffer_limit: max_body.max(16 * 1024 * 1024) };
    match envoy::bootstrap(config, clusters, &options) {
        Ok(y) => Some(y),
        Err(e) => {
            d.error("--envoy", e);
            None
        }
    }
}

#[cfg(test)]
mod tests;
