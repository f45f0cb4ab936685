//! Flash-sale example gRPC services used by the json2grpc demo and the
//! end-to-end tests: `flashsale.v1.Inventory` and `flashsale.v1.Orders`, plus
//! the standard `grpc.health.v1.Health` service.
//!
//! The services keep their state in memory, seeded with a handful of items
//! (see [`catalog`]). With a [`record::Recorder`] every received request
//! message is appended as one JSON line to a file, so tests that go through
//! Envoy can check exactly what reached the backend.

pub mod catalog;
pub mod errors;
pub mod inventory;
pub mod orders;
pub mod record;
pub mod reflection_file;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;

/// Generated prost messages and tonic clients/servers.
pub mod pb {
    pub mod flashsale {
        pub mod v1 {
            tonic::include_proto!("flashsale.v1");
        }
    }
    pub mod google {
        pub mod api {
            tonic::include_proto!("google.api");
        }
        pub mod rpc {
            tonic::include_proto!("google.rpc");
        }
    }
}

/// Serialized `google.protobuf.FileDescriptorSet` of the flash-sale protos and
/// all their imports, google.api.http annotations included (what
/// `protoc --include_imports --descriptor_set_out` would write).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flashsale_descriptor.pb"));

/// Full gRPC service names.
pub const INVENTORY_SERVICE: &str = "flashsale.v1.Inventory";
pub const ORDERS_SERVICE: &str = "flashsale.v1.Orders";

/// Which of the example services a server hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Inventory,
    Orders,
    All,
}

impl Which {
    pub fn inventory(self) -> bool {
        matches!(self, Which::Inventory | Which::All)
    }
    pub fn orders(self) -> bool {
        matches!(self, Which::Orders | Which::All)
    }
    /// The gRPC service names hosted (besides health).
    pub fn service_names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.inventory() {
            names.push(INVENTORY_SERVICE);
        }
        if self.orders() {
            names.push(ORDERS_SERVICE);
        }
        names
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves the chosen services (and health) on `listener` until `shutdown`
/// completes. HTTP/2 plaintext (h2c with prior knowledge), as gRPC clients
/// and Envoy's upstream clusters speak it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    which: Which,
    recorder: Option<Arc<record::Recorder>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), BoxError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_service_status("", ServingStatus::Serving).await;
    for name in which.service_names() {
        health_reporter.set_service_status(name, ServingStatus::Serving).await;
    }

    let inventory = which.inventory().then(|| {
        pb::flashsale::v1::inventory_server::InventoryServer::new(inventory::InventoryService::new(recorder.clone()))
    });
    let orders = which
        .orders()
        .then(|| pb::flashsale::v1::orders_server::OrdersServer::new(orders::OrdersService::new(recorder.clone())));

    // Server reflection (v1 and v1alpha) of the flash-sale API, google.api.http annotations
    // included: json2grpc can take the API from here instead of a descriptor in its config.
    // Only the services this process serves are listed.
    let reflection_builder = || {
        which.service_names().iter().fold(
            tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET),
            |b, name| b.with_service_name(*name),
        )
    };
    let reflection = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;

    Server::builder()
        // Behind json2grpc's default mode, every JSON body the filter refuses resets a stream
        // Envoy already opened (README, Limitations); h2's rapid-reset guard (20 pending resets)
        // would then GOAWAY the sidecar's connection, failing valid calls in flight on it.
        // The only client here is the local Envoy, so allow far more.
        .http2_max_pending_accept_reset_streams(Some(4096))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_optional_service(inventory)
        .add_optional_service(orders)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}

/// Starts a server on an ephemeral loopback port in a background task (for
/// tests). Returns the bound address; the server runs until the runtime ends.
pub async fn spawn_local(which: Which, recorder: Option<Arc<record::Recorder>>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) = serve(listener, which, recorder, std::future::pending()).await {
            eprintln!("flashsale: server error: {err}");
        }
    });
    Ok(addr)
}
