//! `/v1/orders`: create and read the caller's orders.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use service_kit::problem::{AppJson, AppPath, Problem};
use service_kit::{ProtectedResponses, ServiceError as ApiError};
use shared_auth::UserScoped;
use shared_auth::extract::bearer_token_in;
use shared_auth::time::unix_now_i64;
use sqlx::{AnyPool, Row as _};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

shared_auth::scope!(
    /// Read your own orders.
    pub OrdersRead = "orders:read"
);
shared_auth::scope!(
    /// Place orders.
    pub OrdersWrite = "orders:write"
);

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_order, list_orders)).routes(routes!(get_order))
}

/// A new order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewOrder {
    /// What is ordered: 1-200 characters, no control, bidirectional or zero-width characters (see
    /// `service_kit::text`); surrounding spaces are removed.
    #[schema(
        example = "coffee beans",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u200b-\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff]*[^\\s\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u200b-\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff][^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u200b-\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff]*$"
    )]
    pub item: String,
    /// How many: 1-1000.
    #[schema(example = 2, minimum = 1, maximum = 1000)]
    #[serde(deserialize_with = "whole_number")]
    pub quantity: i64,
}

/// JSON has one number type, and JSON Schema's `integer` (what the document promises) includes
/// `2.0`: a whole number is accepted in any spelling; `2.5`, or anything beyond exact `f64`
/// integers, is not.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::de::Error as _;
    /// Largest integer every `f64` below it represents exactly (2^53).
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(value) = number.as_i64() {
        return Ok(value);
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && value.abs() < EXACT => Ok(value as i64),
        _ => Err(D::Error::custom(format!("invalid number {number}, expected a whole number"))),
    }
}

/// A stored order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Order {
    /// Order id.
    pub id: String,
    /// The customer (`sub`).
    pub user_id: String,
    /// What was ordered.
    pub item: String,
    /// How many.
    pub quantity: i64,
    /// The customer's display name from users-service; null if it was unreachable.
    pub customer_name: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// An order line's item: 1 to 200 characters, no control characters.
struct Item(String);

impl TryFrom<&str> for Item {
    type Error = ApiError;
    fn try_from(value: &str) -> Result<Self, ApiError> {
        let trimmed = value.trim();
        if !(1..=200).contains(&trimmed.chars().count()) || service_kit::text::has_forbidden_in_label(trimmed)
        {
            return Err(ApiError::InvalidInput(
                "item must be 1-200 characters without control, bidirectional or zero-width characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

/// A quantity from 1 to 1000.
struct Quantity(i64);

impl TryFrom<i64> for Quantity {
    type Error = ApiError;
    fn try_from(value: i64) -> Result<Self, ApiError> {
        if (1..=1000).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ApiError::InvalidInput("quantity must be between 1 and 1000"))
        }
    }
}

fn order_from_row(row: &sqlx::any::AnyRow) -> Result<Order, sqlx::Error> {
    Ok(Order {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        item: row.try_get("item")?,
        quantity: row.try_get("quantity")?,
        customer_name: row.try_get("customer_name")?,
        created_at: row.try_get("created_at")?,
    })
}

// Store functions: spans at debug; the pool stays out of the span, only ids go in. Path ids
// are recorded with `?` so that a crafted id (a percent-encoded newline) cannot forge a log line.

#[tracing::instrument(level = "debug", name = "find_order", skip_all, fields(order_id = ?id))]
async fn find(pool: &AnyPool, id: &str) -> Result<Option<Order>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM orders WHERE id = $1").bind(id).fetch_optional(pool).await?;
    row.as_ref().map(order_from_row).transpose()
}

#[tracing::instrument(level = "debug", name = "insert_order", skip_all,
    fields(order_id = %order.id, user_id = %order.user_id))]
async fn insert(pool: &AnyPool, order: &Order) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders (id, user_id, item, quantity, customer_name, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&order.id)
    .bind(&order.user_id)
    .bind(&order.item)
    .bind(order.quantity)
    .bind(&order.customer_name)
    .bind(order.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", name = "list_orders_of", skip_all, fields(user_id = %user_id))]
async fn list_for(pool: &AnyPool, user_id: &str) -> Result<Vec<Order>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT * FROM orders WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 500")
            .bind(user_id)
            .fetch_all(pool)
            .await?;
    rows.iter().map(order_from_row).collect()
}

// Handlers: spans at info, which the log format prints only as the context of events inside
// them (no line of their own). `skip_all` keeps the state (and with it the client secret), the
// token's claims and the request body out; the ids are added as fields.

/// Places an order for the caller. The customer's display name is looked up in users-service
/// on the customer's behalf, with the caller's token exchanged for one meant for users-service
/// (RFC 8693); if that fails the order is still created.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", security(("bearer" = ["orders:write"])),
    request_body = NewOrder,
    responses(
        (status = 201, description = "Order created", body = Order),
        (status = 413, description = "Body too large", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid item or quantity", body = Problem),
        ProtectedResponses))]
#[tracing::instrument(skip_all, fields(user_id = %user.sub, client_id = %user.client_id))]
async fn create_order(
    State(state): State<AppState>,
    user: UserScoped<OrdersWrite>,
    headers: HeaderMap,
    AppJson(order): AppJson<NewOrder>,
) -> Result<(StatusCode, AppJson<Order>), ApiError> {
    let item = Item::try_from(order.item.as_str())?;
    let quantity = Quantity::try_from(order.quantity)?;
    // The token the extractor just verified, to be exchanged for the call to users-service.
    let customer_name = match bearer_token_in(&headers) {
        Ok(Some(token)) => state.users.display_name(token, &user.sub).await,
        _ => None,
    };
    let order = Order {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.sub.clone(),
        item: item.0,
        quantity: quantity.0,
        customer_name,
        created_at: unix_now_i64(),
    };
    insert(&state.pool, &order).await?;
    Ok((StatusCode::CREATED, AppJson(order)))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/v1/orders", tag = "orders", security(("bearer" = ["orders:read"])),
    responses(
        (status = 200, description = "The caller's orders", body = Vec<Order>),
        ProtectedResponses))]
#[tracing::instrument(skip_all, fields(user_id = %user.sub, client_id = %user.client_id))]
async fn list_orders(
    State(state): State<AppState>,
    user: UserScoped<OrdersRead>,
) -> Result<AppJson<Vec<Order>>, ApiError> {
    Ok(AppJson(list_for(&state.pool, &user.sub).await?))
}

/// One order: the caller's own, or any for role `admin`. Someone else's order is a 404, so
/// order ids cannot be probed.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", security(("bearer" = ["orders:read"])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 404, description = "No such order, or not the caller's", body = Problem),
        ProtectedResponses))]
#[tracing::instrument(skip_all, fields(user_id = %user.sub, client_id = %user.client_id, order_id = ?id))]
async fn get_order(
    State(state): State<AppState>,
    user: UserScoped<OrdersRead>,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<Order>, ApiError> {
    let order = find(&state.pool, &id).await?.ok_or(ApiError::NotFound)?;
    if order.user_id != user.sub && !user.has_role("admin") {
        return Err(ApiError::NotFound);
    }
    Ok(AppJson(order))
}
