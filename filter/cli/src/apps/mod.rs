//! `cagate apps`: make apps, and manage them in a configuration file (the JSON document, an Envoy or
//! Istio YAML embedding it, or an app registry document): add, grant, revoke, rotate, add or remove
//! an AppCode, remove, list.
//! Every writing command shows a diff (secrets masked) and checks the result with the filter's own
//! compiler before anything is written; `--dry-run` stops after the diff. New secrets come from the
//! operating system's random source and are printed once, on standard output, after the write.

pub(crate) mod container;
mod diff;
mod edit;
mod jsontext;
mod new;
mod when;
mod yaml_emit;

use container::Found;
use edit::{Apis, Form};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct AppsArgs {
    #[command(subcommand)]
    command: AppsCommand,
}

/// The file a command works on.
#[derive(clap::Args)]
struct Target {
    /// The configuration: a cagate JSON document, an Envoy bootstrap or EnvoyFilter (YAML or JSON)
    /// with the Wasm filter's configuration, an Istio WasmPlugin, or an app registry document
    file: PathBuf,
    /// Which configuration when the file holds several (1 is the first)
    #[arg(long, value_name = "N")]
    doc: Option<usize>,
    /// Treat the file as an app registry document (the default for a JSON document with a top-level
    /// `authorizations` or `version`)
    #[arg(long)]
    registry: bool,
    /// With a registry document: the static configuration it extends, so API names, stages and
    /// static apps are checked (and `--all` knows the APIs)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct Writing {
    /// Show the diff and check the result; write nothing
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("which").args(["apis", "all"]).required(true)))]
struct Grants {
    /// The API (repeatable)
    #[arg(long = "api", value_name = "NAME")]
    apis: Vec<String>,
    /// Every API (for a grant: every API that is not ANONYMOUS and is published in the stage)
    #[arg(long)]
    all: bool,
    /// The stage (repeatable). Grant: default RELEASE; revoke: default every stage
    #[arg(long = "stage", value_name = "STAGE")]
    stages: Vec<String>,
}

#[derive(clap::Subcommand)]
enum AppsCommand {
    /// Print a new app: appId, name, appKey (24 characters), appSecret (32 characters, 190 bits),
    /// one AppCode (32 upper-case hex digits), all from the operating system's random source.
    #[command(after_help = "Examples:
  cagate apps new
  cagate apps new --name billing --app-id 20001")]
    New {
        /// The app's name (default: app-<appId>)
        #[arg(long)]
        name: Option<String>,
        /// The app's id (default: a random 8-digit number)
        #[arg(long = "app-id")]
        app_id: Option<String>,
    },
    /// Add a new app with random credentials to the file; the app (with its secret) is printed once
    /// on standard output after the file is written.
    #[command(after_help = "Examples:
  cagate apps add cagate.json --name billing
  cagate apps add envoy/envoy.yaml --name billing --app-id 20001 --dry-run
  cagate apps add registry.json --name partner > partner-credentials.json")]
    Add {
        #[command(flatten)]
        target: Target,
        /// The app's name (default: app-<appId>)
        #[arg(long)]
        name: Option<String>,
        /// The app's id (default: a random 8-digit number)
        #[arg(long = "app-id")]
        app_id: Option<String>,
        /// Do not make an AppCode
        #[arg(long)]
        no_app_code: bool,
        #[command(flatten)]
        writing: Writing,
    },
    /// Authorize an app on APIs in stages (`authorizations`), optionally until a time.
    #[command(after_help = "Examples:
  cagate apps grant cagate.json 20001 --api orders
  cagate apps grant envoy/envoy.yaml 20001 --all --stage RELEASE --stage TEST --until 30d
  cagate apps grant registry.json 20001 --api orders --config cagate.json")]
    Grant {
        #[command(flatten)]
        target: Target,
        /// The app's appId
        app: String,
        #[command(flatten)]
        grants: Grants,
        /// When the grant ends (authValidTime): an RFC 3339 time, or a span from now (24h, 30d)
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        #[command(flatten)]
        writing: Writing,
    },
    /// Remove an app's grants on APIs (in the stages given, else in every stage).
    #[command(after_help = "Examples:
  cagate apps revoke cagate.json 20001 --api orders
  cagate apps revoke envoy/istio/wasmplugin.yaml 20001 --all --stage TEST")]
    Revoke {
        #[command(flatten)]
        target: Target,
        /// The app's appId
        app: String,
        #[command(flatten)]
        grants: Grants,
        #[command(flatten)]
        writing: Writing,
    },
    /// Give an app a new key pair; the old pair keeps working until --old-valid-for has passed (it
    /// moves to the app's `keys` with a `validUntil`). Pairs whose time has passed are dropped.
    #[command(after_help = "Examples:
  cagate apps rotate cagate.json 20001
  cagate apps rotate envoy/envoy.yaml 20001 --old-valid-for 2h --keep-key
  cagate apps rotate registry.json 20001 --old-valid-for 2027-01-01T00:00:00Z")]
    Rotate {
        #[command(flatten)]
        target: Target,
        /// The app's appId
        app: String,
        /// How long the old pair keeps working: a span (24h, 7d) or an RFC 3339 time
        #[arg(long, value_name = "SPAN|TIME", default_value = "24h")]
        old_valid_for: String,
        /// Keep the appKey, change only the secret
        #[arg(long)]
        keep_key: bool,
        #[command(flatten)]
        writing: Writing,
    },
    /// Give an app a new AppCode (32 upper-case hex digits), printed once on standard output after the
    /// file is written. Its other AppCodes keep working until removed (`remove-appcode`).
    #[command(after_help = "Examples:
  cagate apps add-appcode cagate.json 20001
  cagate apps add-appcode envoy/envoy.yaml 20001 --dry-run")]
    AddAppcode {
        #[command(flatten)]
        target: Target,
        /// The app's appId
        app: String,
        #[command(flatten)]
        writing: Writing,
    },
    /// Remove one AppCode of an app (a leaked one, or the old one once clients use the new): requests
    /// with it get A400AC from then on.
    #[command(after_help = "Examples:
  cagate apps remove-appcode cagate.json 20001 0F3A…")]
    RemoveAppcode {
        #[command(flatten)]
        target: Target,
        /// The app's appId
        app: String,
        /// The AppCode to remove, as written
        code: String,
        #[command(flatten)]
        writing: Writing,
    },
    /// Remove an app and all its grants.
    #[command(after_help = "Examples:
  cagate apps remove cagate.json 20001
  cagate apps remove envoy/envoy.yaml 20001 --dry-run")]
    Remove {
        #[command(flatten)]
        target: Target,
        /// The app's appId
        app: String,
        #[command(flatten)]
        writing: Writing,
    },
    /// List the apps and their grants (never a secret or an AppCode).
    #[command(after_help = "Examples:
  cagate apps list cagate.json
  cagate apps list envoy/envoy.yaml --json")]
    List {
        #[command(flatten)]
        target: Target,
        /// As JSON
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(a: AppsArgs) -> Result<ExitCode, String> {
    match a.command {
        AppsCommand::New { name, app_id } => {
            let app = new::new_app(name.as_deref(), app_id.as_deref())?;
            println!("{}", crate::import::value::to_json(&app)?);
            Ok(ExitCode::SUCCESS)
        }
        AppsCommand::Add { target, name, app_id, no_app_code, writing } => {
            let l = Loaded::read(&target)?;
            let mut app = new::new_app(name.as_deref(), app_id.as_deref())?;
            if no_app_code {
                if let serde_yaml::Value::Mapping(m) = &mut app {
                    m.remove("appCodes");
                }
            }
            let text = edit::add(&l.found.json, &app)?;
            let shown = serde_json::to_string(&app).unwrap_or_default();
            if l.commit(&text, &secrets_in(&shown), writing.dry_run)? && !writing.dry_run {
                println!("{}", crate::import::value::to_json(&app)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        AppsCommand::Grant { target, app, grants, until, writing } => {
            let l = Loaded::read(&target)?;
            l.known_app(&app)?;
            let until = until.as_deref().map(when::instant).transpose()?;
            if let Some(t) = until.as_deref().filter(|t| when::parse_rfc3339(t).is_some_and(|at| at <= when::now_s())) {
                eprintln!("warning: --until {t} has passed: the grant is expired from the start (A403EP)");
            }
            let targets = l.grant_targets(&grants)?;
            let (text, n) = edit::grant(&l.found.json, l.form, &app, &targets, until.as_deref(), l.base.as_deref())?;
            eprintln!("{n} grant(s) added or changed for app {app}");
            l.commit(&text, &[], writing.dry_run)?;
            Ok(ExitCode::SUCCESS)
        }
        AppsCommand::Revoke { target, app, grants, writing } => {
            let l = Loaded::read(&target)?;
            l.known_app(&app)?;
            let apis = match grants_selection(&grants) {
                Apis::All => None,
                Apis::Named(n) => Some(n),
            };
            let (text, n) = edit::revoke(&l.found.json, l.form, &app, apis.as_deref(), &grants.stages)?;
            eprintln!("{n} grant(s) removed for app {app}");
            l.commit(&text, &[], writing.dry_run)?;
            Ok(ExitCode::SUCCESS)
        }
        AppsCommand::AddAppcode { target, app, writing } => {
            let l = Loaded::read(&target)?;
            l.known_app(&app)?;
            let code = new::random_text(b"0123456789ABCDEF", 32)?;
            let text = edit::add_app_code(&l.found.json, &app, &code)?;
            if l.commit(&text, std::slice::from_ref(&code), writing.dry_run)? && !writing.dry_run {
                println!("{}", serde_json::to_string_pretty(&json!({"appId": app, "appCode": code})).unwrap_or_default());
            }
            Ok(ExitCode::SUCCESS)
        }
        AppsCommand::RemoveAppcode { target, app, code, writing } => {
            let l = Loaded::read(&target)?;
            l.known_app(&app)?;
            let text = edit::remove_app_code(&l.found.json, &app, code.trim())?;
            l.commit(&text, std::slice::from_ref(&code), writing.dry_run)?;
            Ok(ExitCode::SUCCESS)
        }
        AppsCommand::Rotate { target, app, old_valid_for, keep_key, writing } => {
            let l = Loaded::read(&target)?;
            let until = when::instant(&old_valid_for)?;
            let key = if keep_key { None } else { Some(new::random_text(new::BASE62, 24)?) };
            let r = edit::rotate(&l.found.json, &app, &until, key, new::random_text(new::BASE62, 32)?, when::now_s())?;
            if r.pruned > 0 {
                eprintln!("{} key pair(s) whose validUntil has passed dropped", r.pruned);
            }
            if l.commit(&r.text, std::slice::from_ref(&r.new_secret), writing.dry_run)? && !writing.dry_run {
                let out =
                    json!({"appId": app, "appKey": r.new_key, "appSecret": r.new_secret, "previousAppKey": r.old_key, "previousValidUntil": until});
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            }
            Ok(ExitCode::SUCCESS)
        }
        AppsCommand::Remove { target, app, writing } => {
            let l = Loaded::read(&target)?;
            let (text, n) = edit::remove(&l.found.json, l.form, &app)?;
            eprintln!("app {app} removed with {n} grant(s)");
            l.commit(&text, &[], writing.dry_run)?;
            Ok(ExitCode::SUCCESS)
        }
        AppsCommand::List { target, json } => {
            let l = Loaded::read(&target)?;
            let apps = listing(&l.found.json, l.form)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&apps).unwrap_or_default());
            } else {
                print_listing(&apps);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn grants_selection(g: &Grants) -> Apis {
    if g.all {
        Apis::All
    } else {
        Apis::Named(g.apis.clone())
    }
}

/// A file read, its document chosen and its shape known.
struct Loaded {
    path: PathBuf,
    text: String,
    found: Found,
    index: usize,
    form: Form,
    /// A registry document's static configuration (`--config`), as JSON text.
    base: Option<String>,
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The one document of a file to work on.
fn choose(path: &Path, text: &str, doc: Option<usize>) -> Result<(usize, Found), String> {
    let mut found = container::locate(text).map_err(|e| format!("{}: {e}", path.display()))?;
    if found.is_empty() {
        return Err(format!(
            "{}: no cagate configuration found (a JSON document, an Envoy Wasm filter configuration, or an Istio WasmPlugin)",
            path.display()
        ));
    }
    let i = match (doc, found.len()) {
        (None, 1) => 0,
        (None, _) => {
            let at: Vec<String> = found.iter().enumerate().map(|(i, f)| format!("--doc {} ({})", i + 1, f.label)).collect();
            return Err(format!("{} holds {} configurations; choose one: {}", path.display(), found.len(), at.join(", ")));
        }
        (Some(n), len) if n >= 1 && n <= len => n - 1,
        (Some(n), len) => return Err(format!("--doc {n}: {} holds {len} configuration(s)", path.display())),
    };
    Ok((i, found.swap_remove(i)))
}

impl Loaded {
    fn read(t: &Target) -> Result<Loaded, String> {
        let text = read(&t.file)?;
        let (index, found) = choose(&t.file, &text, t.doc)?;
        let top: Json = serde_json::from_str(&found.json).map_err(|e| format!("{}: the configuration is not valid JSON: {e}", t.file.display()))?;
        let looks_registry = top.get("authorizations").is_some() || top.get("version").is_some();
        let form = if t.registry || looks_registry { Form::Registry } else { Form::Config };
        if t.config.is_some() && form == Form::Config {
            return Err("--config is for a registry document (add --registry if this file is one)".into());
        }
        let base = match &t.config {
            Some(p) => Some(choose(p, &read(p)?, None)?.1.json),
            None => None,
        };
        Ok(Loaded { path: t.file.clone(), text, found, index, form, base })
    }

    /// The APIs grants can name: the configuration's, or for a registry those of `--config`.
    fn apis(&self) -> Result<Option<Vec<edit::ApiInfo>>, String> {
        match (self.form, &self.base) {
            (Form::Config, _) => edit::apis(&self.found.json).map(Some),
            (Form::Registry, Some(b)) => edit::apis(b).map(Some),
            (Form::Registry, None) => Ok(None),
        }
    }

    fn known_app(&self, id: &str) -> Result<(), String> {
        if edit::app_index(&self.found.json, id)?.is_some() || self.base.as_deref().map(|b| edit::app_index(b, id)).transpose()?.flatten().is_some() {
            return Ok(());
        }
        if self.form == Form::Registry && self.base.is_none() {
            return Err(format!("no app {id} in {} (for an app of the static configuration, give it with --config)", self.path.display()));
        }
        Err(format!("no app {id} in {}", self.path.display()))
    }

    /// (API, stage) pairs a grant covers.
    fn grant_targets(&self, g: &Grants) -> Result<Vec<(String, String)>, String> {
        let stages = if g.stages.is_empty() { vec!["RELEASE".to_string()] } else { g.stages.clone() };
        let known = self.apis()?;
        let mut out = Vec::new();
        match (grants_selection(g), known) {
            (Apis::All, None) => return Err("--all on a registry document needs the static configuration: --config FILE".into()),
            (Apis::All, Some(apis)) => {
                for a in apis.iter().filter(|a| !a.anonymous) {
                    for st in stages.iter().filter(|st| a.stages.contains(st)) {
                        out.push((a.name.clone(), st.clone()));
                    }
                }
                if out.is_empty() {
                    return Err(format!("no API that needs credentials is published in {}", stages.join(", ")));
                }
            }
            (Apis::Named(names), known) => {
                for n in names {
                    if let Some(apis) = &known {
                        let Some(a) = apis.iter().find(|a| a.name == n) else {
                            let all: Vec<&str> = apis.iter().map(|a| a.name.as_str()).collect();
                            return Err(format!("no API named {n} (APIs: {})", all.join(", ")));
                        };
                        if let Some(st) = stages.iter().find(|st| !a.stages.contains(st)) {
                            return Err(format!("API {n} is not published in stage {st} (its stages: {})", a.stages.join(", ")));
                        }
                    }
                    out.extend(stages.iter().map(|st| (n.clone(), st.clone())));
                }
            }
        }
        Ok(out)
    }

    /// Puts the edited document back, checks the file as `cagate check` reads it, shows the diff and
    /// (unless a dry run) writes. False when there was nothing to change.
    fn commit(&self, json: &str, new_secrets: &[String], dry_run: bool) -> Result<bool, String> {
        let name = self.path.display().to_string();
        let new_text = container::put_back(&self.text, &self.found, json)?;
        if new_text == self.text {
            eprintln!("{name}: nothing to change");
            return Ok(false);
        }
        // Read back as from scratch: the file must hold the edited document where it held the old one.
        let (_, again) =
            choose(&self.path, &new_text, Some(self.index + 1)).map_err(|e| format!("the edited file would not read back ({e}); nothing written"))?;
        let (want, got): (Json, Json) =
            (serde_json::from_str(json).map_err(|e| e.to_string())?, serde_json::from_str(&again.json).map_err(|e| e.to_string())?);
        if want != got {
            return Err("the edited file would not read back as the edited configuration; nothing written".into());
        }
        let summary = self
            .validate(&again.json)
            .map_err(|problems| format!("the edited configuration would be invalid; nothing written:\n  {}", problems.join("\n  ")))?;
        let mut secrets = new_secrets.to_vec();
        secrets.extend(secrets_in(&self.found.json));
        secrets.extend(secrets_in(json));
        eprint!("{}", diff::unified(&name, &self.text, &new_text, &secrets));
        if self.found.comments && matches!(self.found.holder, container::Holder::Mapping { .. }) {
            eprintln!("note: the comments inside pluginConfig are not kept (the block is rewritten); comments around it are");
        }
        if dry_run {
            eprintln!("{name}: {summary}; dry run, nothing written");
            return Ok(true);
        }
        write(&self.path, &new_text)?;
        eprintln!("{name}: {summary}; written");
        Ok(true)
    }

    /// The filter's compiler on the document (a registry document merged into its configuration).
    fn validate(&self, json: &str) -> Result<String, Vec<String>> {
        let show = |p: Vec<cagate_core::Problem>| p.into_iter().map(|p| p.to_string()).collect::<Vec<_>>();
        match self.form {
            Form::Config => {
                let g = cagate_core::compile_with_env(json.as_bytes(), &vm_env).map_err(show)?;
                Ok(format!("valid ({} apps, {} apis)", g.app_count(), g.apis.len()))
            }
            Form::Registry => {
                let (base, note) = match &self.base {
                    Some(b) => (b.clone(), ""),
                    None => (stand_in_base(json), " (API names, stages and static apps not checked: give --config)"),
                };
                let g = cagate_core::compile_with_env(base.as_bytes(), &vm_env).map_err(|p| {
                    let mut v = vec!["the static configuration (--config) is invalid:".to_string()];
                    v.extend(show(p));
                    v
                })?;
                let merged = g.with_registry(json.as_bytes()).map_err(show)?;
                Ok(format!("valid registry document ({} apps with the static ones){note}", merged.app_count()))
            }
        }
    }
}

/// Secrets given as `{"env": NAME}` are the Wasm VM's environment, not this shell's: a variable not
/// set here stands in, so the rest of the configuration is still checked.
fn vm_env(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| Some("unset-in-this-shell".to_string()))
}

/// Without the static configuration, a registry document is checked against one that has every API
/// its grants name, published in every stage they name.
pub(crate) fn stand_in_base(registry: &str) -> String {
    let doc: Json = serde_json::from_str(registry).unwrap_or_default();
    let grants = doc.get("authorizations").and_then(Json::as_array).cloned().unwrap_or_default();
    let mut stages: Vec<String> = ["RELEASE", "PRE", "TEST"].map(String::from).to_vec();
    let mut apis: Vec<String> = Vec::new();
    for g in &grants {
        if let Some(st) = g.get("stage").and_then(Json::as_str) {
            if !stages.iter().any(|s| s == st) {
                stages.push(st.to_string());
            }
        }
        if let Some(a) = g.get("api").and_then(Json::as_str) {
            if !apis.iter().any(|x| x == a) {
                apis.push(a.to_string());
            }
        }
    }
    // Apps the grants name that the document does not define are the static configuration's.
    let id = |v: Option<&Json>| v.map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string));
    let defined: Vec<String> = doc.get("apps").and_then(Json::as_array).into_iter().flatten().filter_map(|a| id(a.get("appId"))).collect();
    let mut statics: Vec<String> = grants.iter().filter_map(|g| id(g.get("appId"))).filter(|a| !defined.contains(a)).collect();
    statics.sort();
    statics.dedup();
    let apps: Vec<Json> = statics.iter().map(|a| json!({"appId": a, "appKey": format!("stand-in-{a}"), "appSecret": "stand-in"})).collect();
    let apis: Vec<Json> =
        apis.iter().enumerate().map(|(i, a)| json!({"name": a, "method": "ANY", "path": format!("/stand-in/{i}"), "stages": stages})).collect();
    json!({"stages": stages, "apps": apps, "apis": apis}).to_string()
}

/// The secrets of a document, to mask in the diff: app secrets, AppCodes, and any string under a key
/// that names a secret, a password or a private key.
fn secrets_in(json: &str) -> Vec<String> {
    fn walk(v: &Json, secret: bool, out: &mut Vec<String>) {
        match v {
            Json::String(s) if secret => out.push(s.clone()),
            Json::Object(m) => {
                for (k, x) in m {
                    let l = k.to_ascii_lowercase();
                    walk(x, secret || l.contains("secret") || l.contains("password") || l == "appcodes" || l.contains("privatekey"), out);
                }
            }
            Json::Array(a) => a.iter().for_each(|x| walk(x, secret, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<Json>(json) {
        walk(&v, false, &mut out);
    }
    out
}

/// Writes through a temporary file in the same directory, renamed over the file (through a
/// symbolic link to its target), with the file's permissions: a configuration holding secrets stays
/// as private as it was, and a reader never sees half a file.
fn write(path: &Path, text: &str) -> Result<(), String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let perms = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", path.display()))?.permissions();
    let file_name = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = real.with_file_name(format!(".{file_name}.cagate-{}", std::process::id()));
    let done = std::fs::write(&tmp, text).and_then(|()| std::fs::set_permissions(&tmp, perms)).and_then(|()| std::fs::rename(&tmp, &real));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    Ok(())
}

/// Apps with their key pairs (no secrets), AppCode counts and grants.
fn listing(text: &str, form: Form) -> Result<Vec<Json>, String> {
    let doc: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let id_of = |v: Option<&Json>| match v {
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let arr = |v: Option<&Json>| v.and_then(Json::as_array).cloned().unwrap_or_default();
    let mut grants: Vec<(String, Json)> = Vec::new();
    match form {
        Form::Config => {
            for api in arr(doc.get("apis")) {
                for g in arr(api.get("authorizations")) {
                    grants.push((id_of(g.get("appId")), grant_json(api.get("name"), &g)));
                }
            }
        }
        Form::Registry => {
            for g in arr(doc.get("authorizations")) {
                grants.push((id_of(g.get("appId")), grant_json(g.get("api"), &g)));
            }
        }
    }
    let mut out = Vec::new();
    let mut listed = Vec::new();
    for app in arr(doc.get("apps")) {
        let id = id_of(app.get("appId"));
        let keys: Vec<Json> = arr(app.get("keys")).iter().map(|k| json!({"appKey": k.get("appKey"), "validUntil": k.get("validUntil")})).collect();
        out.push(json!({
            "appId": id,
            "name": app.get("name").cloned().unwrap_or_else(|| Json::String(id.clone())),
            "appKey": app.get("appKey"),
            "keys": keys,
            "appCodes": arr(app.get("appCodes")).len(),
            "grants": grants.iter().filter(|(a, _)| *a == id).map(|(_, g)| g.clone()).collect::<Vec<_>>(),
        }));
        listed.push(id);
    }
    // Grants of apps defined elsewhere (a registry granting a static app).
    let mut others: Vec<&String> = grants.iter().map(|(a, _)| a).filter(|a| !listed.contains(a)).collect();
    others.dedup();
    for id in others {
        out.push(json!({"appId": id, "defined": "elsewhere", "grants": grants.iter().filter(|(a, _)| a == id).map(|(_, g)| g.clone()).collect::<Vec<_>>()}));
    }
    Ok(out)
}

fn grant_json(api: Option<&Json>, g: &Json) -> Json {
    json!({"api": api, "stage": g.get("stage").and_then(Json::as_str).unwrap_or("RELEASE"), "authValidTime": g.get("authValidTime")})
}

fn print_listing(apps: &[Json]) {
    if apps.is_empty() {
        println!("no apps");
    }
    for a in apps {
        let s = |k: &str| a.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
        if a.get("defined").is_some() {
            println!("{} (defined in the static configuration)", s("appId"));
        } else {
            let codes = a.get("appCodes").and_then(Json::as_u64).unwrap_or(0);
            println!("{}  {}  appKey {}  {codes} AppCode(s)", s("appId"), s("name"), s("appKey"));
        }
        for k in a.get("keys").and_then(Json::as_array).into_iter().flatten() {
            println!("    also appKey {} until {}", k["appKey"].as_str().unwrap_or_default(), k["validUntil"].as_str().unwrap_or("(no end)"));
        }
        let grants: Vec<String> = a
            .get("grants")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(|g| {
                let until = g["authValidTime"].as_str().map(|t| format!(" until {t}")).unwrap_or_default();
                format!("{} {}{until}", g["api"].as_str().unwrap_or("?"), g["stage"].as_str().unwrap_or("RELEASE"))
            })
            .collect();
        println!("    grants: {}", if grants.is_empty() { "none".to_string() } else { grants.join(", ") });
    }
}
