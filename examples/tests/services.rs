//! Starts the flash-sale services on an ephemeral port and calls them with
//! the generated tonic clients.

use std::path::PathBuf;
use std::sync::Arc;

use flashsale::errors::{decode_details, find_detail};
use flashsale::pb::flashsale::v1::inventory_client::InventoryClient;
use flashsale::pb::flashsale::v1::orders_client::OrdersClient;
use flashsale::pb::flashsale::v1::*;
use flashsale::pb::google::rpc;
use flashsale::record::Recorder;
use flashsale::Which;
use tonic::transport::Channel;
use tonic::Code;

async fn start(recorder: Option<Arc<Recorder>>) -> Channel {
    let addr = flashsale::spawn_local(Which::All, recorder).await.expect("bind");
    Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect")
}

fn temp_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("flashsale-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test]
async fn reserve_succeeds_and_updates_stock() {
    let mut inv = InventoryClient::new(start(None).await);
    let r = inv
        .reserve(ReserveRequest { sku: "sku-1001".into(), quantity: 2, customer_id: "alice".into() })
        .await
        .expect("reserve")
        .into_inner();
    assert_eq!(r.sku, "sku-1001");
    assert_eq!(r.quantity, 2);
    assert!(r.reservation_id.starts_with("res-"));
    assert!(r.expires_at.is_some());

    let item = inv.get_item(GetItemRequest { sku: "sku-1001".into() }).await.expect("get").into_inner();
    assert_eq!(item.available, 1);
    assert_eq!(item.reserved, 2);
    assert_eq!(item.status(), ItemStatus::LowStock);
}

#[tokio::test]
async fn reserve_errors_carry_details() {
    let mut inv = InventoryClient::new(start(None).await);

    let err = inv
        .reserve(ReserveRequest { sku: "sku-2002".into(), quantity: 1, customer_id: "bob".into() })
        .await
        .expect_err("sold out");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "out of stock");
    let details = decode_details(&err).expect("grpc-status-details-bin");
    assert_eq!(details.code, Code::FailedPrecondition as i32);
    assert_eq!(details.message, "out of stock");
    let pf: rpc::PreconditionFailure =
        find_detail(&details, "google.rpc.PreconditionFailure").expect("PreconditionFailure");
    assert_eq!(pf.violations.len(), 1);
    assert_eq!(pf.violations[0].r#type, "STOCK");
    assert_eq!(pf.violations[0].subject, "sku-2002");
    assert_eq!(pf.violations[0].description, "requested 1, available 0");
    let info: rpc::ErrorInfo = find_detail(&details, "google.rpc.ErrorInfo").expect("ErrorInfo");
    assert_eq!(info.reason, "OUT_OF_STOCK");
    assert_eq!(info.domain, "flashsale.example");
    assert_eq!(info.metadata.get("sku").map(String::as_str), Some("sku-2002"));
    assert_eq!(info.metadata.get("available").map(String::as_str), Some("0"));

    let err = inv
        .reserve(ReserveRequest { sku: "sku-1002".into(), quantity: 0, customer_id: "bob".into() })
        .await
        .expect_err("bad quantity");
    assert_eq!(err.code(), Code::InvalidArgument);
    let details = decode_details(&err).expect("details");
    let br: rpc::BadRequest = find_detail(&details, "google.rpc.BadRequest").expect("BadRequest");
    assert_eq!(br.field_violations[0].field, "quantity");

    let err = inv
        .reserve(ReserveRequest { sku: "sku-x".into(), quantity: 1, customer_id: "bob".into() })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "item sku-x not found");
}

#[tokio::test]
async fn watch_streams_then_fails_on_unknown_sku() {
    let mut inv = InventoryClient::new(start(None).await);

    let mut stream = inv
        .watch(WatchRequest {
            skus: vec!["sku-1001".into(), "sku-3001".into()],
            limit: 3,
            interval_ms: 1,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let mut got = Vec::new();
    while let Some(change) = stream.message().await.expect("message") {
        got.push((change.sku, change.available));
    }
    assert_eq!(got, vec![("sku-1001".into(), 3), ("sku-3001".into(), 12), ("sku-1001".into(), 3)]);

    // Default limit 5, then NOT_FOUND mid-stream.
    let mut stream = inv
        .watch(WatchRequest { skus: vec!["sku-1002".into(), "sku-nope".into()], ..Default::default() })
        .await
        .expect("watch")
        .into_inner();
    let mut count = 0;
    let err = loop {
        match stream.message().await {
            Ok(Some(change)) => {
                assert_eq!(change.sku, "sku-1002");
                count += 1;
            }
            Ok(None) => panic!("stream ended without an error"),
            Err(status) => break status,
        }
    };
    assert_eq!(count, 5);
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "item sku-nope not found");
}

#[tokio::test]
async fn watch_interval_padding_and_long_streams() {
    let mut inv = InventoryClient::new(start(None).await);

    // interval_ms spaces the changes; payload_bytes pads each of them.
    let started = std::time::Instant::now();
    let mut stream = inv
        .watch(WatchRequest { skus: vec!["sku-1001".into()], limit: 3, interval_ms: 100, payload_bytes: 10 })
        .await
        .expect("watch")
        .into_inner();
    let mut arrivals = Vec::new();
    while let Some(change) = stream.message().await.expect("change") {
        assert_eq!(change.padding, "x".repeat(10));
        arrivals.push(started.elapsed());
    }
    assert_eq!(arrivals.len(), 3);
    assert!(arrivals[0] < std::time::Duration::from_millis(100), "{arrivals:?}");
    assert!(arrivals[2] >= std::time::Duration::from_millis(200), "{arrivals:?}");

    // payload_bytes is capped at 1 MiB; negative is INVALID_ARGUMENT.
    let mut stream = inv
        .watch(WatchRequest { limit: 1, payload_bytes: 3 << 20, ..Default::default() })
        .await
        .expect("watch")
        .into_inner();
    let change = stream.message().await.expect("change").expect("one change");
    assert_eq!(change.padding.len(), flashsale::inventory::WATCH_MAX_PAYLOAD_BYTES as usize);
    let err =
        inv.watch(WatchRequest { payload_bytes: -1, ..Default::default() }).await.expect_err("negative payload_bytes");
    assert_eq!(err.code(), Code::InvalidArgument);

    // The longest stream (limit is capped at 100000) is produced as it is read.
    let mut stream =
        inv.watch(WatchRequest { limit: 200_000, ..Default::default() }).await.expect("watch").into_inner();
    let mut count = 0;
    while stream.message().await.expect("change").is_some() {
        count += 1;
    }
    assert_eq!(count, flashsale::inventory::WATCH_MAX_LIMIT);
}

#[tokio::test]
async fn streaming_bulk_and_check() {
    let mut inv = InventoryClient::new(start(None).await);
    let reqs = vec![
        ReserveRequest { sku: "sku-3001".into(), quantity: 1, customer_id: "c".into() },
        ReserveRequest { sku: "sku-2002".into(), quantity: 1, customer_id: "c".into() },
        ReserveRequest { sku: "sku-3002".into(), quantity: 2, customer_id: "c".into() },
    ];
    let resp = inv.bulk_reserve(tokio_stream::iter(reqs)).await.expect("bulk").into_inner();
    assert_eq!(resp.reservations.len(), 2);
    assert_eq!(resp.failed, 1);

    let reqs = vec![CheckStockRequest { sku: "sku-3001".into() }, CheckStockRequest { sku: "sku-3002".into() }];
    let mut stream = inv.check_stock(tokio_stream::iter(reqs)).await.expect("check").into_inner();
    let mut got = Vec::new();
    while let Some(level) = stream.message().await.expect("level") {
        got.push((level.sku, level.available));
    }
    assert_eq!(got, vec![("sku-3001".into(), 11), ("sku-3002".into(), 5)]);
}

#[tokio::test]
async fn list_and_export() {
    let mut inv = InventoryClient::new(start(None).await);
    let page =
        inv.list_items(ListItemsRequest { page_size: 4, ..Default::default() }).await.expect("list").into_inner();
    let skus: Vec<_> = page.items.iter().map(|i| i.sku.as_str()).collect();
    assert_eq!(skus, ["sku-1001", "sku-1002", "sku-2001", "sku-2002"]);
    assert_eq!(page.next_page_token, "sku-2002");
    let page = inv
        .list_items(ListItemsRequest { page_size: 4, page_token: page.next_page_token, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.next_page_token, "");

    let sale = inv
        .list_items(ListItemsRequest { tags: vec!["sale".into()], min_available: 3, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    let skus: Vec<_> = sale.items.iter().map(|i| i.sku.as_str()).collect();
    assert_eq!(skus, ["sku-1001", "sku-3001"]);

    let body = inv.export(ExportRequest { status: ItemStatus::SoldOut as i32 }).await.expect("export").into_inner();
    assert_eq!(body.content_type, "text/csv");
    assert_eq!(
        String::from_utf8(body.data).expect("utf8"),
        "sku,name,available,price_units,currency\nsku-2002,Limited-edition sneakers,0,249,USD\n"
    );
}

#[tokio::test]
async fn orders_lifecycle() {
    let mut orders = OrdersClient::new(start(None).await);
    let order = orders
        .create_order(CreateOrderRequest {
            customer_id: "alice".into(),
            items: vec![
                LineItem { sku: "sku-1001".into(), quantity: 2, unit_price: None },
                LineItem { sku: "sku-1002".into(), quantity: 1, unit_price: None },
            ],
            note: "leave at the door".into(),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(order.version, 1);
    assert_eq!(order.status(), OrderStatus::Pending);
    let total = order.total.clone().expect("total");
    // 2 × 199.99 + 79.50 = 479.48
    assert_eq!((total.units, total.nanos), (479, 480_000_000));

    let updated = orders
        .update_order(UpdateOrderRequest {
            order: Some(Order {
                order_id: order.order_id.clone(),
                note: "ring twice".into(),
                status: OrderStatus::Cancelled as i32, // not in the mask: ignored
                shipping_address: Some(Address { city: "Lyon".into(), ..Default::default() }),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["note".into(), "shipping_address".into()] }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.note, "ring twice");
    assert_eq!(updated.status(), OrderStatus::Pending);
    assert_eq!(updated.shipping_address.expect("address").city, "Lyon");

    let err = orders
        .update_order(UpdateOrderRequest {
            order: Some(Order { order_id: order.order_id.clone(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["colour".into()] }),
        })
        .await
        .expect_err("bad mask");
    assert_eq!(err.code(), Code::InvalidArgument);

    let err = orders
        .create_order(CreateOrderRequest { customer_id: "alice".into(), ..Default::default() })
        .await
        .expect_err("no items");
    assert_eq!(err.code(), Code::InvalidArgument);
    let br: rpc::BadRequest =
        find_detail(&decode_details(&err).expect("details"), "google.rpc.BadRequest").expect("br");
    assert_eq!(br.field_violations[0].field, "items");

    let list = orders
        .list_orders(ListOrdersRequest { customer_id: "alice".into(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.orders.len(), 1);

    orders.delete_order(DeleteOrderRequest { order_id: order.order_id.clone() }).await.expect("delete");
    let err = orders.get_order(GetOrderRequest { order_id: order.order_id.clone() }).await.expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
    let err = orders.delete_order(DeleteOrderRequest { order_id: order.order_id }).await.expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn records_requests_as_json_lines() {
    let path = temp_path("record.jsonl");
    let recorder = Arc::new(Recorder::open(&path).expect("open"));
    let mut inv = InventoryClient::new(start(Some(recorder)).await);
    let mut req = tonic::Request::new(GetItemRequest { sku: "sku-1001".into() });
    req.metadata_mut().insert("x-demo", "yes".parse().expect("value"));
    inv.get_item(req).await.expect("get");
    inv.check_stock(tokio_stream::iter(vec![
        CheckStockRequest { sku: "sku-1001".into() },
        CheckStockRequest { sku: "sku-1002".into() },
    ]))
    .await
    .expect("check")
    .into_inner()
    .message()
    .await
    .expect("first");

    // Wait for both streamed messages to be recorded.
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
            .collect();
        if lines.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["method"], "/flashsale.v1.Inventory/GetItem");
    assert_eq!(lines[0]["message"], serde_json::json!({"sku": "sku-1001"}));
    assert_eq!(lines[0]["metadata"]["x-demo"], "yes");
    assert_eq!(lines[1]["method"], "/flashsale.v1.Inventory/CheckStock");
    assert_eq!(lines[2]["message"]["sku"], "sku-1002");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn health_reports_serving() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let mut health = HealthClient::new(start(None).await);
    for service in ["", "flashsale.v1.Inventory", "flashsale.v1.Orders"] {
        let resp = health.check(HealthCheckRequest { service: service.into() }).await.expect("check").into_inner();
        assert_eq!(resp.status, 1, "{service:?} SERVING");
    }
}

#[test]
fn descriptor_set_keeps_http_annotations() {
    let pool = prost_reflect::DescriptorPool::decode(flashsale::FILE_DESCRIPTOR_SET).expect("pool");
    let ext = pool.get_extension_by_name("google.api.http").expect("google.api.http");
    let method = pool
        .get_service_by_name("flashsale.v1.Orders")
        .expect("Orders")
        .methods()
        .find(|m| m.name() == "UpdateOrder")
        .expect("UpdateOrder");
    let options = method.options();
    let rule = options.get_extension(&ext);
    let rule = rule.as_message().expect("HttpRule");
    let patch = rule.get_field_by_name("patch").expect("patch");
    assert_eq!(patch.as_str(), Some("/v1/orders/{order.order_id}"));
    assert_eq!(rule.get_field_by_name("body").expect("body").as_str(), Some("order"));
}

/// Calls an already running `flashsale --service all` binary when
/// FLASHSALE_SMOKE_ADDR (e.g. 127.0.0.1:50151) is set; skipped otherwise.
#[tokio::test]
async fn smoke_external_server() {
    let Ok(addr) = std::env::var("FLASHSALE_SMOKE_ADDR") else {
        eprintln!("FLASHSALE_SMOKE_ADDR not set: skipping");
        return;
    };
    let channel = Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect");
    let mut inv = InventoryClient::new(channel.clone());
    let mut req =
        tonic::Request::new(ReserveRequest { sku: "sku-1002".into(), quantity: 1, customer_id: "smoke".into() });
    req.metadata_mut().insert("x-smoke", "1".parse().expect("value"));
    let r = inv.reserve(req).await.expect("reserve").into_inner();
    assert_eq!(r.sku, "sku-1002");
    let err = inv
        .reserve(ReserveRequest { sku: "sku-2002".into(), quantity: 5, customer_id: "smoke".into() })
        .await
        .expect_err("sold out");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(decode_details(&err).is_some());
    let mut stream = inv
        .watch(WatchRequest { skus: vec!["sku-1001".into()], limit: 2, interval_ms: 10, ..Default::default() })
        .await
        .expect("watch")
        .into_inner();
    let mut n = 0;
    while stream.message().await.expect("change").is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
    let mut orders = OrdersClient::new(channel);
    let order = orders
        .create_order(CreateOrderRequest {
            customer_id: "smoke".into(),
            items: vec![LineItem { sku: "sku-1002".into(), quantity: 1, unit_price: None }],
            reservation_id: r.reservation_id,
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(order.status(), OrderStatus::Confirmed);
}
