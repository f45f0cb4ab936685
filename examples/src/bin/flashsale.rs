//! `flashsale`: runs the flash-sale example gRPC services.
//!
//! ```text
//! flashsale [--service inventory|orders|all] [--listen 127.0.0.1:50051] [--record FILE]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use flashsale::record::Recorder;
use flashsale::Which;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ServiceArg {
    Inventory,
    Orders,
    All,
}

/// Flash-sale example gRPC services (HTTP/2 plaintext) with grpc.health.v1.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Which service(s) to serve.
    #[arg(long, value_enum, default_value = "all", env = "FLASHSALE_SERVICE")]
    service: ServiceArg,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:50051", env = "FLASHSALE_LISTEN")]
    listen: String,
    /// Append one JSON line per received request message to this file.
    #[arg(long, env = "FLASHSALE_RECORD")]
    record: Option<PathBuf>,
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let which = match args.service {
        ServiceArg::Inventory => Which::Inventory,
        ServiceArg::Orders => Which::Orders,
        ServiceArg::All => Which::All,
    };
    let recorder = match &args.record {
        Some(path) => match Recorder::open(path) {
            Ok(r) => Some(Arc::new(r)),
            Err(err) => {
                eprintln!("flashsale: cannot open record file {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(err) => {
            eprintln!("flashsale: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| args.listen.clone());
    println!("flashsale listening on {addr} ({})", which.service_names().join(", "));
    match flashsale::serve(listener, which, recorder, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("flashsale: {err}");
            ExitCode::FAILURE
        }
    }
}
