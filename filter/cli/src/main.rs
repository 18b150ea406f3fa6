//! `cagate`: the client side of the gateway, built on the same core as the filter, so the two can
//! never disagree about a StringToSign.

mod apps;
mod check;
mod import;
mod request;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cagate",
    version,
    about = "Sign requests for cagate / Alibaba Cloud API Gateway, debug signatures, check configurations, import Aliyun Swagger, manage apps and grants"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a request: print the headers to add, a ready curl command, or send it.
    #[command(after_help = "Examples:
  cagate sign --key test-app-key-1 --secret test-app-secret-1-0123456789abcdef http://127.0.0.1:10000/orders/42
  CA_APP_KEY=k CA_APP_SECRET=s cagate sign --curl -X POST -H 'Content-Type: application/json' -d '{\"a\":1}' http://127.0.0.1:10000/orders
  cagate sign --send --key k --secret s -H 'X-Ca-Stage: TEST' 'http://127.0.0.1:10000/orders/7?expand=items'")]
    Sign(request::SignArgs),
    /// Print the StringToSign of a request, as lines and in the `#` form of X-Ca-Error-Message; given
    /// the server's message, show the first difference.
    #[command(
        name = "string-to-sign",
        after_help = "Examples:
  cagate string-to-sign -H 'Accept: application/json' -H 'X-Ca-Key: k' -H 'X-Ca-Signature-Headers: x-ca-key' http://h/orders/7
  cagate string-to-sign -H 'X-Ca-Key: k' -H 'X-Ca-Signature-Headers: x-ca-key' http://h/orders/7 \\
      --server 'Invalid Signature, Server StringToSign:`GET#####x-ca-key:k#/orders/8`'"
    )]
    StringToSign(request::StsArgs),
    /// Validate a configuration: the JSON document, an Envoy YAML/JSON embedding it in the Wasm filter,
    /// or an Istio WasmPlugin. Prints every problem with its path; exits 1 when invalid. Never prints secrets.
    #[command(after_help = "Examples:
  cagate check cagate.json
  cagate check envoy/envoy.yaml
  cagate check envoy/istio/wasmplugin.yaml
  cagate check registry.json --config cagate.json")]
    Check {
        /// The file to check
        config: std::path::PathBuf,
        /// With an app registry document: the static configuration it extends, which it is checked against
        #[arg(long = "config", value_name = "FILE")]
        base: Option<std::path::PathBuf>,
    },
    /// Import an Aliyun API Gateway Swagger 2.0 export (x-aliyun-apigateway-* extensions) as a cagate
    /// configuration: one API per operation, backends as Envoy clusters; optionally a runnable Envoy
    /// configuration. Problems name their path in the document; exits 1 on an error, writing nothing.
    #[command(after_help = "Examples:
  cagate import orders.yaml -o cagate.json
  cagate import orders.yaml -o cagate.json --envoy envoy.yaml --listen 0.0.0.0:10000
  cagate import orders.yaml --stage-var RELEASE:orders=orders-prod --stage-var TEST:orders=http://orders-test:8080
  cagate import orders.json --merge cagate.json -o cagate.json    # keeps apps, plugins and grants
  cagate import orders.yaml --plugins plugins.json --plugin-apis order-limits=limits-apis.json -o cagate.json
    # plugins.json: aliyun cloudapi DescribePlugins; limits-apis.json: aliyun cloudapi DescribePluginApis")]
    Import(import::ImportArgs),
    /// Apps: make one (`new`), or manage them in a configuration file (a JSON document, an Envoy or
    /// Istio YAML embedding it, or an app registry document): add, grant, revoke, rotate, remove, list.
    /// Writing commands show a diff (secrets masked), check the result like `cagate check`, and write
    /// only then; `--dry-run` writes nothing.
    #[command(after_help = "Examples:
  cagate apps new
  cagate apps add envoy/envoy.yaml --name billing --app-id 20001 > billing.json
  cagate apps grant envoy/envoy.yaml 20001 --api orders --stage RELEASE --stage TEST
  cagate apps rotate envoy/envoy.yaml 20001 --old-valid-for 24h
  cagate apps list envoy/envoy.yaml")]
    Apps(apps::AppsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sign(a) => request::sign(a),
        Command::StringToSign(a) => request::string_to_sign(a),
        Command::Check { config, base } => check::run(&config, base.as_deref()),
        Command::Import(a) => import::run(a),
        Command::Apps(a) => apps::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cagate: {e}");
            ExitCode::from(2)
        }
    }
}
