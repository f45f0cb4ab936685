//! `json2grpc-tool`: a pure-Rust stand-in for
//! `protoc --include_imports --descriptor_set_out`, plus a generator for the
//! transcoder configuration (Envoy GrpcJsonTranscoder proto3-JSON form).
//!
//! ```text
//! json2grpc-tool descriptor -I proto -o flashsale.pb flashsale/v1/inventory.proto flashsale/v1/orders.proto
//! json2grpc-tool config --descriptor flashsale.pb --service flashsale.v1.Inventory \
//!     --set print_options='{"always_print_primitive_fields":true}'
//! json2grpc-tool openapi --descriptor flashsale.pb --service flashsale.v1.Inventory > openapi.json
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use clap::{Parser, Subcommand};
use json2grpc::core::schema::descriptors::{http_rule, load_schema};
use json2grpc::core::transcoder::Transcoder;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(version, about = "Descriptor sets and transcoder configs for json2grpc")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compile .proto files into a FileDescriptorSet with all imports
    /// (like `protoc --include_imports --descriptor_set_out`), keeping
    /// custom options such as google.api.http.
    Descriptor {
        /// Directory to search for imports (repeatable; default ".").
        #[arg(short = 'I', long = "proto_path", value_name = "DIR")]
        include: Vec<PathBuf>,
        /// Where to write the descriptor set.
        #[arg(short = 'o', long = "descriptor_set_out", value_name = "OUT.pb")]
        output: PathBuf,
        /// The .proto files, relative to an include directory or paths inside one.
        #[arg(value_name = "FILE.proto", required = true)]
        files: Vec<PathBuf>,
        /// Keep the comments (source_code_info, as protoc's --include_source_info): the OpenAPI
        /// document's descriptions. Makes the set larger.
        #[arg(long = "include_source_info")]
        source_info: bool,
    },
    /// Print the transcoder config JSON (proto_descriptor_bin + services) to
    /// paste into an Envoy/Istio WasmPlugin pluginConfig. The descriptor set is
    /// checked by the filter's own loader (proto2, proto3, edition 2023).
    Config(ApiArgs),
    /// Print the OpenAPI 3.1 document of the API the filter serves with this config (the one
    /// it serves at json2grpc.openapi.path): same options as `config`.
    Openapi(ApiArgs),
}

/// The API a plugin config describes: `config` prints the config, `openapi` its document.
#[derive(clap::Args, Debug)]
struct ApiArgs {
    /// A descriptor set written by `descriptor` (or protoc, buf).
    #[arg(long, value_name = "FILE.pb")]
    descriptor: PathBuf,
    /// Fully-qualified service to transcode (repeatable; default: every
    /// service outside the google.* packages).
    #[arg(long, value_name = "pkg.Service")]
    service: Vec<String>,
    /// Extra top-level key with a JSON value, e.g.
    /// --set auto_mapping=true --set print_options='{"add_whitespace":true}'.
    /// A dotted key (print_options.add_whitespace=true) sets a nested field.
    #[arg(long = "set", value_name = "KEY=JSON")]
    set: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Descriptor { include, output, files, source_info } => {
            descriptor(include, &output, &files, source_info)
        }
        Command::Config(api) => config(&api.descriptor, api.service, &api.set),
        Command::Openapi(api) => openapi(&api.descriptor, api.service, &api.set),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("json2grpc-tool: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn descriptor(mut include: Vec<PathBuf>, output: &PathBuf, files: &[PathBuf], source_info: bool) -> Result<(), String> {
    if include.is_empty() {
        include.push(PathBuf::from("."));
    }
    for dir in &include {
        if !dir.is_dir() {
            return Err(format!("include directory {} does not exist", dir.display()));
        }
    }
    let mut compiler = protox::Compiler::new(&include).map_err(|e| e.to_string())?;
    compiler.include_imports(true).include_source_info(source_info);
    for file in files {
        compiler.open_file(file).map_err(|e| describe_protox_error(&e))?;
    }
    let bytes = compiler.encode_file_descriptor_set();
    std::fs::write(output, &bytes).map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    eprintln!("wrote {} ({} bytes, {} files)", output.display(), bytes.len(), compiler.files().count());
    Ok(())
}

/// protox's message prefixed with `file:line:column` when it knows them.
fn describe_protox_error(err: &protox::Error) -> String {
    use miette::Diagnostic;
    let message = err.to_string();
    let location = err
        .labels()
        .and_then(|mut labels| labels.next())
        .and_then(|label| {
            let source = err.source_code()?;
            let span = source.read_span(label.inner(), 0, 0).ok()?;
            let name = span.name().map(str::to_string).or_else(|| err.file().map(str::to_string))?;
            Some(format!("{name}:{}:{}", span.line() + 1, span.column() + 1))
        })
        .or_else(|| err.file().map(str::to_string));
    match location {
        Some(loc) if !message.contains(&loc) => format!("{loc}: {message}"),
        _ => message,
    }
}

fn config(descriptor: &PathBuf, services: Vec<String>, set: &[String]) -> Result<(), String> {
    println!("{}", String::from_utf8_lossy(&plugin_config(descriptor, services, set)?));
    Ok(())
}

/// The OpenAPI document of the plugin config `config` would print, from the filter's own
/// generator.
fn openapi(descriptor: &PathBuf, services: Vec<String>, set: &[String]) -> Result<(), String> {
    let config = plugin_config(descriptor, services, set)?;
    let transcoder = Transcoder::from_json(&config).map_err(|e| e.to_string())?;
    let document = json2grpc::core::openapi::generate(&transcoder);
    println!("{}", serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?);
    Ok(())
}

/// The plugin config (pretty JSON): the descriptor set, the services, the `--set` options.
fn plugin_config(descriptor: &PathBuf, services: Vec<String>, set: &[String]) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(descriptor).map_err(|e| format!("cannot read {}: {e}", descriptor.display()))?;
    // The filter's own loader: what the filter accepts (editions files included, which
    // prost-reflect cannot read).
    let schema = load_schema(&bytes).map_err(|e| {
        format!(
            "{} is not a valid FileDescriptorSet (was it built with --include_imports?): {}",
            descriptor.display(),
            e.message
        )
    })?;

    let services = if services.is_empty() {
        let all: Vec<String> = schema
            .services
            .iter()
            .filter(|s| !s.full_name.starts_with("google."))
            .map(|s| s.full_name.to_string())
            .collect();
        if all.is_empty() {
            return Err(format!("{} defines no services", descriptor.display()));
        }
        eprintln!("services: {}", all.join(", "));
        all
    } else {
        services
    };

    // google/api/annotations.proto declares the google.api.http extension of MethodOptions.
    let http = schema
        .message_by_name("google.protobuf.MethodOptions")
        .is_some_and(|m| m.field_by_json_name("[google.api.http]").is_some());
    if !http {
        eprintln!("warning: the descriptor set lacks google/api/annotations.proto: no method has an HTTP route");
    }
    for name in &services {
        let service = schema.service(name).ok_or_else(|| {
            let known: Vec<String> = schema.services.iter().map(|s| s.full_name.to_string()).collect();
            format!(
                "service {name} is not in {} (it has: {})",
                descriptor.display(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )
        })?;
        if http {
            for method in &service.methods {
                match http_rule(method) {
                    Ok(Some(_)) => {}
                    Ok(None) => eprintln!("warning: {}.{} has no google.api.http annotation", name, method.name),
                    Err(e) => return Err(format!("{}.{}: {e}", name, method.name)),
                }
            }
        }
    }

    let mut entries: Vec<(String, Value)> = vec![
        ("proto_descriptor_bin".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes))),
        ("services".into(), Value::Array(services.into_iter().map(Value::String).collect())),
    ];
    for item in set {
        let (key, raw) = item.split_once('=').ok_or_else(|| format!("--set {item}: expected KEY=JSON"))?;
        let value: Value = serde_json::from_str(raw).map_err(|e| {
            format!("--set {key}: value {raw:?} is not valid JSON ({e}); quote strings, e.g. '\"text\"'")
        })?;
        set_key(&mut entries, key, value)?;
    }

    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::pretty(&mut out);
    let mut map = ser.serialize_map(Some(entries.len())).map_err(|e| e.to_string())?;
    for (k, v) in &entries {
        map.serialize_entry(k, v).map_err(|e| e.to_string())?;
    }
    map.end().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Sets `key` (dots for nested objects) in the ordered top-level entries.
fn set_key(entries: &mut Vec<(String, Value)>, key: &str, value: Value) -> Result<(), String> {
    let mut parts = key.split('.');
    let top = parts.next().filter(|k| !k.is_empty()).ok_or("--set: empty key")?;
    let rest: Vec<&str> = parts.collect();
    let slot = match entries.iter().position(|(k, _)| k == top) {
        Some(i) => &mut entries[i].1,
        None => {
            entries.push((top.to_string(), Value::Null));
            let last = entries.len() - 1;
            &mut entries[last].1
        }
    };
    let mut slot = slot;
    for part in rest {
        if part.is_empty() {
            return Err(format!("--set {key}: empty path segment"));
        }
        if !slot.is_object() {
            *slot = Value::Object(Default::default());
        }
        slot = slot.as_object_mut().ok_or("--set: not an object")?.entry(part.to_string()).or_insert(Value::Null);
    }
    *slot = value;
    Ok(())
}
