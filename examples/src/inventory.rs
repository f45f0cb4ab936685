//! `flashsale.v1.Inventory`: in-memory stock with reservations.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::catalog;
use crate::errors;
use crate::pb::flashsale::v1::inventory_server::Inventory;
use crate::pb::flashsale::v1::*;
use crate::pb::google::api::HttpBody;
use crate::pb::google::rpc;
use crate::record::{record, Recorder};

/// How long a reservation holds stock.
pub const RESERVATION_TTL: Duration = Duration::from_secs(10 * 60);
/// Watch: changes emitted when `limit` is 0, and the most ever emitted.
pub const WATCH_DEFAULT_LIMIT: i32 = 5;
pub const WATCH_MAX_LIMIT: i32 = 100_000;
/// Watch: the largest accepted `interval_ms`.
pub const WATCH_MAX_INTERVAL_MS: i32 = 60_000;
/// Watch: `payload_bytes` above this are capped to it (1 MiB).
pub const WATCH_MAX_PAYLOAD_BYTES: i32 = 1 << 20;
/// Watch: changes produced ahead of the client (the stream is never built whole).
const WATCH_QUEUE: usize = 16;
/// ListItems: page size when `page_size` is 0, and the largest accepted.
pub const DEFAULT_PAGE_SIZE: i32 = 50;
pub const MAX_PAGE_SIZE: i32 = 1000;

const METHOD_PREFIX: &str = "/flashsale.v1.Inventory/";

fn method(name: &str) -> String {
    format!("{METHOD_PREFIX}{name}")
}

#[derive(Debug)]
struct State {
    items: BTreeMap<String, Item>,
    next_reservation: u64,
}

impl State {
    fn item(&self, sku: &str) -> Result<&Item, Status> {
        if sku.is_empty() {
            return Err(errors::bad_request("sku is required", vec![("sku".into(), "must not be empty".into())]));
        }
        self.items.get(sku).ok_or_else(|| Status::not_found(format!("item {sku} not found")))
    }

    fn reserve(&mut self, req: &ReserveRequest) -> Result<Reservation, Status> {
        let available = self.item(&req.sku)?.available;
        if req.quantity <= 0 {
            return Err(errors::bad_request(
                "quantity must be positive",
                vec![("quantity".into(), format!("must be greater than 0, got {}", req.quantity))],
            ));
        }
        if req.quantity > available {
            return Err(out_of_stock(&req.sku, req.quantity, available));
        }
        let now = SystemTime::now();
        let item = self.items.get_mut(&req.sku).ok_or_else(|| Status::internal("item vanished"))?;
        item.available -= req.quantity;
        item.reserved += req.quantity;
        item.status = catalog::status_for(item.available) as i32;
        item.updated_at = Some(now.into());
        self.next_reservation += 1;
        Ok(Reservation {
            reservation_id: format!("res-{:06}", self.next_reservation),
            sku: req.sku.clone(),
            quantity: req.quantity,
            expires_at: Some((now + RESERVATION_TTL).into()),
        })
    }
}

/// FAILED_PRECONDITION "out of stock" with PreconditionFailure and ErrorInfo.
fn out_of_stock(sku: &str, requested: i32, available: i32) -> Status {
    let failure = rpc::PreconditionFailure {
        violations: vec![rpc::precondition_failure::Violation {
            r#type: "STOCK".into(),
            subject: sku.into(),
            description: format!("requested {requested}, available {available}"),
        }],
    };
    let info = rpc::ErrorInfo {
        reason: "OUT_OF_STOCK".into(),
        domain: "flashsale.example".into(),
        metadata: HashMap::from([
            ("sku".to_string(), sku.to_string()),
            ("available".to_string(), available.to_string()),
        ]),
    };
    errors::with_details(
        Code::FailedPrecondition,
        "out of stock",
        vec![errors::any("google.rpc.PreconditionFailure", &failure), errors::any("google.rpc.ErrorInfo", &info)],
    )
}

#[derive(Clone)]
pub struct InventoryService {
    state: Arc<Mutex<State>>,
    recorder: Option<Arc<Recorder>>,
}

impl InventoryService {
    /// A service holding the seed catalog.
    pub fn new(recorder: Option<Arc<Recorder>>) -> Self {
        let items = catalog::seed_items().into_iter().map(|i| (i.sku.clone(), i)).collect();
        InventoryService { state: Arc::new(Mutex::new(State { items, next_reservation: 0 })), recorder }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn page_size(requested: i32) -> Result<usize, Status> {
    match requested {
        n if n < 0 => Err(errors::bad_request(
            "page_size must not be negative",
            vec![("page_size".into(), format!("must be >= 0, got {n}"))],
        )),
        0 => Ok(DEFAULT_PAGE_SIZE as usize),
        n => Ok(n.min(MAX_PAGE_SIZE) as usize),
    }
}

#[tonic::async_trait]
impl Inventory for InventoryService {
    async fn get_item(&self, request: Request<GetItemRequest>) -> Result<Response<Item>, Status> {
        record(&self.recorder, &method("GetItem"), request.get_ref(), request.metadata());
        let state = self.lock();
        Ok(Response::new(state.item(&request.get_ref().sku)?.clone()))
    }

    async fn list_items(&self, request: Request<ListItemsRequest>) -> Result<Response<ListItemsResponse>, Status> {
        record(&self.recorder, &method("ListItems"), request.get_ref(), request.metadata());
        let req = request.into_inner();
        let size = page_size(req.page_size)?;
        let state = self.lock();
        let mut matching = state
            .items
            .values()
            .filter(|i| req.page_token.is_empty() || i.sku > req.page_token)
            .filter(|i| i.available >= req.min_available)
            .filter(|i| req.tags.iter().all(|t| i.tags.contains(t)))
            .filter(|i| req.status == 0 || i.status == req.status);
        let items: Vec<Item> = matching.by_ref().take(size).cloned().collect();
        let next_page_token = match (matching.next(), items.last()) {
            (Some(_), Some(last)) => last.sku.clone(),
            _ => String::new(),
        };
        Ok(Response::new(ListItemsResponse { items, next_page_token }))
    }

    async fn reserve(&self, request: Request<ReserveRequest>) -> Result<Response<Reservation>, Status> {
        record(&self.recorder, &method("Reserve"), request.get_ref(), request.metadata());
        let reservation = self.lock().reserve(request.get_ref())?;
        Ok(Response::new(reservation))
    }

    type WatchStream = ReceiverStream<Result<StockChange, Status>>;

    async fn watch(&self, request: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        record(&self.recorder, &method("Watch"), request.get_ref(), request.metadata());
        let req = request.into_inner();
        let limit = match req.limit {
            n if n < 0 => {
                return Err(errors::bad_request(
                    "limit must not be negative",
                    vec![("limit".into(), format!("must be >= 0, got {n}"))],
                ))
            }
            0 => WATCH_DEFAULT_LIMIT,
            n => n.min(WATCH_MAX_LIMIT),
        };
        if !(0..=WATCH_MAX_INTERVAL_MS).contains(&req.interval_ms) {
            return Err(errors::bad_request(
                "interval_ms out of range",
                vec![(
                    "interval_ms".into(),
                    format!("must be between 0 and {WATCH_MAX_INTERVAL_MS}, got {}", req.interval_ms),
                )],
            ));
        }
        let interval = Duration::from_millis(req.interval_ms as u64);
        if req.payload_bytes < 0 {
            return Err(errors::bad_request(
                "payload_bytes must not be negative",
                vec![("payload_bytes".into(), format!("must be >= 0, got {}", req.payload_bytes))],
            ));
        }
        let padding = "x".repeat(req.payload_bytes.min(WATCH_MAX_PAYLOAD_BYTES) as usize);

        let (known, unknown): (Vec<String>, Vec<String>) = {
            let state = self.lock();
            let skus = if req.skus.is_empty() { state.items.keys().cloned().collect() } else { req.skus };
            skus.into_iter().partition(|s| state.items.contains_key(s))
        };
        if known.is_empty() {
            let sku = unknown.first().cloned().unwrap_or_default();
            return Err(Status::not_found(format!("item {sku} not found")));
        }

        // Each change is made when the queue has room: a long stream is never held whole.
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        let state = self.state.clone();
        tokio::spawn(async move {
            for n in 0..limit as usize {
                if n > 0 && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                let sku = &known[n % known.len()];
                let available = {
                    let state = state.lock().unwrap_or_else(|p| p.into_inner());
                    state.items.get(sku).map(|i| i.available).unwrap_or(0)
                };
                let change = StockChange {
                    sku: sku.clone(),
                    available,
                    at: Some(SystemTime::now().into()),
                    padding: padding.clone(),
                };
                if tx.send(Ok(change)).await.is_err() {
                    return; // client went away
                }
            }
            if let Some(sku) = unknown.first() {
                let _ = tx.send(Err(Status::not_found(format!("item {sku} not found")))).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn bulk_reserve(
        &self,
        request: Request<Streaming<ReserveRequest>>,
    ) -> Result<Response<BulkReserveResponse>, Status> {
        let metadata = request.metadata().clone();
        let mut stream = request.into_inner();
        let mut response = BulkReserveResponse::default();
        while let Some(req) = stream.message().await? {
            record(&self.recorder, &method("BulkReserve"), &req, &metadata);
            match self.lock().reserve(&req) {
                Ok(r) => response.reservations.push(r),
                Err(_) => response.failed += 1,
            }
        }
        Ok(Response::new(response))
    }

    type CheckStockStream = ReceiverStream<Result<StockLevel, Status>>;

    async fn check_stock(
        &self,
        request: Request<Streaming<CheckStockRequest>>,
    ) -> Result<Response<Self::CheckStockStream>, Status> {
        let metadata = request.metadata().clone();
        let mut stream = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let req = match stream.message().await {
                    Ok(Some(req)) => req,
                    Ok(None) => return,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                record(&this.recorder, &method("CheckStock"), &req, &metadata);
                let answer =
                    this.lock().item(&req.sku).map(|i| StockLevel { sku: i.sku.clone(), available: i.available });
                let failed = answer.is_err();
                if tx.send(answer).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn export(&self, request: Request<ExportRequest>) -> Result<Response<HttpBody>, Status> {
        record(&self.recorder, &method("Export"), request.get_ref(), request.metadata());
        let status = request.get_ref().status;
        let state = self.lock();
        let mut csv = String::from("sku,name,available,price_units,currency\n");
        for item in state.items.values().filter(|i| status == 0 || i.status == status) {
            let price = item.price.clone().unwrap_or_default();
            csv.push_str(&format!(
                "{},{},{},{},{}\n",
                csv_field(&item.sku),
                csv_field(&item.name),
                item.available,
                price.units,
                csv_field(&price.currency_code),
            ));
        }
        Ok(Response::new(HttpBody { content_type: "text/csv".into(), data: csv.into_bytes(), extensions: Vec::new() }))
    }
}
