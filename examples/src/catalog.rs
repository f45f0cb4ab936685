//! The seed catalog. The inventory starts with these items, and the orders
//! service prices line items from the same table (it does not call the
//! inventory service).

use crate::pb::flashsale::v1::{Item, ItemStatus, Money};

pub const CURRENCY: &str = "USD";

/// Seed timestamp of every item's `updated_at`: 2024-11-29T00:00:00Z.
pub const SEED_UPDATED_AT_SECONDS: i64 = 1_732_838_400;

/// Items with at most this many units available are LOW_STOCK.
pub const LOW_STOCK_THRESHOLD: i32 = 2;

pub struct SeedItem {
    pub sku: &'static str,
    pub name: &'static str,
    pub units: i64,
    pub nanos: i32,
    pub available: i32,
    pub tags: &'static [&'static str],
    pub attributes: &'static [(&'static str, &'static str)],
}

pub const SEED: &[SeedItem] = &[
    SeedItem {
        sku: "sku-1001",
        name: "Noise-cancelling headphones",
        units: 199,
        nanos: 990_000_000,
        available: 3,
        tags: &["audio", "sale"],
        attributes: &[("brand", "Acme"), ("color", "black")],
    },
    SeedItem {
        sku: "sku-1002",
        name: "Wireless earbuds",
        units: 79,
        nanos: 500_000_000,
        available: 25,
        tags: &["audio"],
        attributes: &[("brand", "Acme"), ("color", "white")],
    },
    SeedItem {
        sku: "sku-2001",
        name: "Trail running shoes",
        units: 129,
        nanos: 0,
        available: 2,
        tags: &["shoes", "sale"],
        attributes: &[("size", "42"), ("color", "orange")],
    },
    SeedItem {
        sku: "sku-2002",
        name: "Limited-edition sneakers",
        units: 249,
        nanos: 0,
        available: 0,
        tags: &["shoes", "limited"],
        attributes: &[("size", "43"), ("edition", "2024")],
    },
    SeedItem {
        sku: "sku-3001",
        name: "Mechanical keyboard",
        units: 89,
        nanos: 0,
        available: 12,
        tags: &["computer", "sale"],
        attributes: &[("layout", "US"), ("switches", "brown")],
    },
    SeedItem {
        sku: "sku-3002",
        name: "4K monitor",
        units: 329,
        nanos: 990_000_000,
        available: 7,
        tags: &["computer"],
        attributes: &[("size", "27\""), ("panel", "IPS")],
    },
];

pub fn money(units: i64, nanos: i32) -> Money {
    Money { currency_code: CURRENCY.to_string(), units, nanos }
}

/// The unit price of `sku`, if it is in the catalog.
pub fn price_of(sku: &str) -> Option<Money> {
    SEED.iter().find(|s| s.sku == sku).map(|s| money(s.units, s.nanos))
}

/// The status an item with `available` units has.
pub fn status_for(available: i32) -> ItemStatus {
    if available <= 0 {
        ItemStatus::SoldOut
    } else if available <= LOW_STOCK_THRESHOLD {
        ItemStatus::LowStock
    } else {
        ItemStatus::InStock
    }
}

/// The seed items, sorted by sku.
pub fn seed_items() -> Vec<Item> {
    let mut items: Vec<Item> = SEED
        .iter()
        .map(|s| Item {
            sku: s.sku.to_string(),
            name: s.name.to_string(),
            price: Some(money(s.units, s.nanos)),
            available: s.available,
            reserved: 0,
            status: status_for(s.available) as i32,
            tags: s.tags.iter().map(|t| t.to_string()).collect(),
            updated_at: Some(prost_types::Timestamp { seconds: SEED_UPDATED_AT_SECONDS, nanos: 0 }),
            attributes: s.attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        })
        .collect();
    items.sort_by(|a, b| a.sku.cmp(&b.sku));
    items
}

/// Money as a count of nanos (exact for every realistic amount).
pub fn to_nanos(m: &Money) -> i128 {
    i128::from(m.units) * 1_000_000_000 + i128::from(m.nanos)
}

/// The inverse of [`to_nanos`]; units and nanos get the same sign.
pub fn from_nanos(currency: &str, n: i128) -> Money {
    Money {
        currency_code: currency.to_string(),
        units: i64::try_from(n / 1_000_000_000).unwrap_or(i64::MAX),
        nanos: i32::try_from(n % 1_000_000_000).unwrap_or(0),
    }
}
