//! `flashsale.v1.Orders`: in-memory orders priced from the seed catalog.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tonic::{Request, Response, Status};

use crate::catalog;
use crate::errors;
use crate::pb::flashsale::v1::orders_server::Orders;
use crate::pb::flashsale::v1::*;
use crate::record::{record, Recorder};

pub const DEFAULT_PAGE_SIZE: i32 = 50;
pub const MAX_PAGE_SIZE: i32 = 1000;

const METHOD_PREFIX: &str = "/flashsale.v1.Orders/";

fn method(name: &str) -> String {
    format!("{METHOD_PREFIX}{name}")
}

#[derive(Debug, Default)]
struct State {
    orders: BTreeMap<String, Order>,
    next_order: u64,
}

#[derive(Clone, Default)]
pub struct OrdersService {
    state: Arc<Mutex<State>>,
    recorder: Option<Arc<Recorder>>,
}

impl OrdersService {
    pub fn new(recorder: Option<Arc<Recorder>>) -> Self {
        OrdersService { state: Arc::default(), recorder }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn not_found(order_id: &str) -> Status {
    Status::not_found(format!("order {order_id} not found"))
}

/// Validates line items, fills in unit prices and returns them with the total.
fn price_items(items: &[LineItem]) -> Result<(Vec<LineItem>, Money), Status> {
    let mut violations = Vec::new();
    if items.is_empty() {
        violations.push(("items".to_string(), "an order needs at least one item".to_string()));
    }
    let mut priced = Vec::with_capacity(items.len());
    let mut total: i128 = 0;
    for (n, item) in items.iter().enumerate() {
        if item.quantity <= 0 {
            violations.push((format!("items[{n}].quantity"), format!("must be greater than 0, got {}", item.quantity)));
        }
        match catalog::price_of(&item.sku) {
            Some(price) => {
                total += catalog::to_nanos(&price) * i128::from(item.quantity);
                priced.push(LineItem { sku: item.sku.clone(), quantity: item.quantity, unit_price: Some(price) });
            }
            None => violations.push((format!("items[{n}].sku"), format!("unknown sku {:?}", item.sku))),
        }
    }
    if !violations.is_empty() {
        return Err(errors::bad_request("invalid order items", violations));
    }
    Ok((priced, catalog::from_nanos(catalog::CURRENCY, total)))
}

fn check_status(status: i32) -> Result<(), Status> {
    OrderStatus::try_from(status).map(|_| ()).map_err(|_| {
        errors::bad_request(
            "invalid order status",
            vec![("order.status".into(), format!("unknown OrderStatus value {status}"))],
        )
    })
}

/// `shippingAddress` → `shipping_address` (mask paths may arrive in either form).
fn snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn mask_error(path: &str, description: String) -> Status {
    errors::bad_request(
        format!("invalid update_mask path {path:?}: {description}"),
        vec![("update_mask".into(), description)],
    )
}

/// Applies the fields of `patch` named by `paths` to `order`.
fn apply_mask(order: &mut Order, patch: &Order, paths: &[String]) -> Result<(), Status> {
    for raw in paths {
        let path = snake_case(raw);
        match path.as_str() {
            "items" => {
                let (items, total) = price_items(&patch.items)?;
                order.items = items;
                order.total = Some(total);
            }
            "status" => {
                check_status(patch.status)?;
                order.status = patch.status;
            }
            "note" => order.note = patch.note.clone(),
            "shipping_address" => order.shipping_address = patch.shipping_address.clone(),
            p if p.starts_with("shipping_address.") => {
                let from = patch.shipping_address.clone().unwrap_or_default();
                let to = order.shipping_address.get_or_insert_with(Address::default);
                match &p["shipping_address.".len()..] {
                    "line1" => to.line1 = from.line1,
                    "city" => to.city = from.city,
                    "postal_code" => to.postal_code = from.postal_code,
                    "country_code" => to.country_code = from.country_code,
                    _ => return Err(mask_error(raw, "unknown field".into())),
                }
            }
            "order_id" | "customer_id" | "total" | "created_at" | "version" => {
                return Err(mask_error(raw, "field cannot be updated".into()))
            }
            _ => return Err(mask_error(raw, "unknown field".into())),
        }
    }
    Ok(())
}

/// Without a mask, the fields set in the patch (AIP-134's implied mask).
fn implied_mask(patch: &Order) -> Vec<String> {
    let mut paths = Vec::new();
    if !patch.items.is_empty() {
        paths.push("items".to_string());
    }
    if patch.status != 0 {
        paths.push("status".to_string());
    }
    if patch.shipping_address.is_some() {
        paths.push("shipping_address".to_string());
    }
    if !patch.note.is_empty() {
        paths.push("note".to_string());
    }
    paths
}

#[tonic::async_trait]
impl Orders for OrdersService {
    async fn create_order(&self, request: Request<CreateOrderRequest>) -> Result<Response<Order>, Status> {
        record(&self.recorder, &method("CreateOrder"), request.get_ref(), request.metadata());
        let req = request.into_inner();
        if req.customer_id.is_empty() {
            return Err(errors::bad_request(
                "customer_id is required",
                vec![("customer_id".into(), "must not be empty".into())],
            ));
        }
        let (items, total) = price_items(&req.items)?;
        let status = if req.reservation_id.is_empty() { OrderStatus::Pending } else { OrderStatus::Confirmed };
        let mut state = self.lock();
        state.next_order += 1;
        let order = Order {
            order_id: format!("ord-{:06}", state.next_order),
            customer_id: req.customer_id,
            items,
            total: Some(total),
            status: status as i32,
            shipping_address: req.shipping_address,
            note: req.note,
            created_at: Some(SystemTime::now().into()),
            version: 1,
        };
        state.orders.insert(order.order_id.clone(), order.clone());
        // REST clients find the new resource in `location` (json2grpc passes initial metadata on
        // as response headers).
        let location = format!("/v1/orders/{}", order.order_id);
        let mut response = Response::new(order);
        if let Ok(value) = location.parse() {
            response.metadata_mut().insert("location", value);
        }
        Ok(response)
    }

    async fn get_order(&self, request: Request<GetOrderRequest>) -> Result<Response<Order>, Status> {
        record(&self.recorder, &method("GetOrder"), request.get_ref(), request.metadata());
        let id = &request.get_ref().order_id;
        let state = self.lock();
        let order = state.orders.get(id).cloned().ok_or_else(|| not_found(id))?;
        Ok(Response::new(order))
    }

    async fn update_order(&self, request: Request<UpdateOrderRequest>) -> Result<Response<Order>, Status> {
        record(&self.recorder, &method("UpdateOrder"), request.get_ref(), request.metadata());
        let req = request.into_inner();
        let patch = req
            .order
            .ok_or_else(|| errors::bad_request("order is required", vec![("order".into(), "must be set".into())]))?;
        let paths = match req.update_mask {
            Some(mask) if !mask.paths.is_empty() => mask.paths,
            _ => implied_mask(&patch),
        };
        let mut state = self.lock();
        let current = state.orders.get(&patch.order_id).ok_or_else(|| not_found(&patch.order_id))?;
        let mut updated = current.clone();
        apply_mask(&mut updated, &patch, &paths)?;
        updated.version += 1;
        state.orders.insert(updated.order_id.clone(), updated.clone());
        Ok(Response::new(updated))
    }

    async fn delete_order(&self, request: Request<DeleteOrderRequest>) -> Result<Response<()>, Status> {
        record(&self.recorder, &method("DeleteOrder"), request.get_ref(), request.metadata());
        let id = &request.get_ref().order_id;
        match self.lock().orders.remove(id) {
            Some(_) => Ok(Response::new(())),
            None => Err(not_found(id)),
        }
    }

    async fn list_orders(&self, request: Request<ListOrdersRequest>) -> Result<Response<ListOrdersResponse>, Status> {
        record(&self.recorder, &method("ListOrders"), request.get_ref(), request.metadata());
        let req = request.into_inner();
        let size = match req.page_size {
            n if n < 0 => {
                return Err(errors::bad_request(
                    "page_size must not be negative",
                    vec![("page_size".into(), format!("must be >= 0, got {n}"))],
                ))
            }
            0 => DEFAULT_PAGE_SIZE as usize,
            n => n.min(MAX_PAGE_SIZE) as usize,
        };
        let state = self.lock();
        let mut matching = state
            .orders
            .values()
            .filter(|o| o.customer_id == req.customer_id)
            .filter(|o| req.page_token.is_empty() || o.order_id > req.page_token);
        let orders: Vec<Order> = matching.by_ref().take(size).cloned().collect();
        let next_page_token = match (matching.next(), orders.last()) {
            (Some(_), Some(last)) => last.order_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(ListOrdersResponse { orders, next_page_token }))
    }
}
