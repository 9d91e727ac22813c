//! What a handler gets of a request: its path parameters, query, headers, the caller's
//! claims, and a body read within the size limit and parsed with the field at fault named.

use std::net::SocketAddr;
use std::pin::Pin;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use warp::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;
use crate::auth::Claims;

/// A request body as it arrives.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, warp::Error>> + Send>>;

/// A request, routed and authenticated.
pub struct Request {
    /// Values of the route's `{…}` segments, in order.
    pub params: Vec<String>,
    pub query: String,
    pub headers: HeaderMap,
    pub remote: Option<SocketAddr>,
    /// The caller, for routes that want a token.
    pub claims: Option<Claims>,
    /// In a mutex only so that a `&Request` may be held across an await (it is read
    /// through `&mut self`, never locked).
    pub body: std::sync::Mutex<BodyStream>,
    /// Largest body accepted.
    pub max_body: u64,
}

impl Request {
    /// Path parameter `i` of the route.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// The body as `T`: JSON, within the size limit. A field that fails is named.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let json_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if json_type != Some(true) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = self.bytes().await?;
        if bytes.is_empty() {
            return Err(ApiError::invalid("", "a JSON body is required"));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::invalid("", format!("the body is not JSON: {e}")))?;
        if let Some(field) = array_for_object(&value, "") {
            // serde reads a struct from an array of its fields in order; the API's objects
            // are objects, and `[1, 2]` for `budget` is a mistake to name, not to guess at.
            return Err(ApiError::invalid(field, "expected an object, got an array"));
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            ApiError::invalid(field, e.inner().to_string())
        })
    }

    /// The whole body, refused past the limit (whatever `Content-Length` claims).
    async fn bytes(&mut self) -> Result<Bytes, ApiError> {
        let too_large = |max: u64| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {max} bytes"),
            )
        };
        let declared = self
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body) {
            return Err(too_large(self.max_body));
        }
        let max_body = self.max_body;
        let stream = self.body.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut body = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let mut chunk =
                chunk.map_err(|e| ApiError::invalid("", format!("cannot read the body: {e}")))?;
            if (body.len() + chunk.remaining()) as u64 > max_body {
                return Err(too_large(max_body));
            }
            while chunk.has_remaining() {
                let part = chunk.chunk();
                body.extend_from_slice(part);
                let n = part.len();
                chunk.advance(n);
            }
        }
        Ok(body.freeze())
    }

    /// The query string as `T`; unknown parameters and bad values are named.
    pub fn query<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        Self::query_of(&self.query)
    }

    /// `query` as `T`; unknown parameters and bad values are named.
    pub fn query_of<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded(query));
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            ApiError::invalid(field, format!("query: {}", e.inner()))
        })
    }

    /// The caller's username ("" for public routes).
    pub fn user(&self) -> &str {
        self.claims.as_ref().map_or("", |c| c.sub.as_str())
    }
}

/// Where the request's JSON has an array in a place the API only takes objects: the
/// known object-valued fields of its bodies.
fn array_for_object(value: &serde_json::Value, path: &str) -> Option<String> {
    const OBJECT_FIELDS: &[&str] = &["budget", "env"];
    let object = value.as_object()?;
    for (key, field) in object {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if OBJECT_FIELDS.contains(&key.as_str()) && field.is_array() {
            return Some(here);
        }
        if key == "context"
            && let Some(items) = field.as_array()
            && let Some(i) = items.iter().position(serde_json::Value::is_array)
        {
            return Some(format!("{here}[{i}]"));
        }
    }
    None
}

fn form_urlencoded(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// Most items a page may hold.
pub const MAX_LIMIT: u64 = 200;
/// Items in a page when the request does not say.
pub const DEFAULT_LIMIT: u64 = 50;

/// `?limit=&cursor=` of a list endpoint.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The limit, checked.
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT} (got {n})"),
            )),
        }
    }

    /// The cursor of a list read by offset (the store's lists).
    pub fn offset(&self) -> Result<u64, ApiError> {
        match self.cursor()? {
            None => Ok(0),
            Some(c) => c.parse().map_err(|_| not_a_cursor()),
        }
    }

    /// The cursor, if any; an empty one is no cursor this API gives.
    fn cursor(&self) -> Result<Option<&str>, ApiError> {
        match self.cursor.as_deref() {
            Some("") => Err(not_a_cursor()),
            cursor => Ok(cursor),
        }
    }

    /// One page of `items` (sorted by `key`): those after the cursor's key.
    pub fn page_by_key<T: Serialize>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> &str,
    ) -> Result<Page<T>, ApiError> {
        let limit = usize::try_from(self.limit()?).unwrap_or(usize::MAX);
        let mut after: Vec<T> = match self.cursor()? {
            Some(cursor) => items
                .into_iter()
                .filter(|item| key(item) > cursor)
                .collect(),
            None => items,
        };
        let more = after.len() > limit;
        after.truncate(limit);
        let next_cursor = more
            .then(|| after.last().map(|item| key(item).to_string()))
            .flatten();
        Ok(Page {
            items: after,
            next_cursor,
        })
    }

    /// One page read by offset: `items` is what the store gave for `limit + 1` rows.
    pub fn page_by_offset<T: Serialize>(&self, mut items: Vec<T>) -> Result<Page<T>, ApiError> {
        let (offset, limit) = (self.offset()?, self.limit()?);
        let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = items.len() > limit_usize;
        items.truncate(limit_usize);
        Ok(Page {
            items,
            next_cursor: more.then(|| (offset + limit).to_string()),
        })
    }
}

fn not_a_cursor() -> ApiError {
    ApiError::invalid("cursor", "not a cursor this list gave (use next_cursor)")
}

/// A page of a list.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
