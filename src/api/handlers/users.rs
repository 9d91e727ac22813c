//! Login, the caller, and users.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};
use warp::http::{HeaderValue, StatusCode};

use super::{Answer, json, ok};
use crate::api::ApiContext;
use crate::api::error::ApiError;
use crate::api::request::{PageQuery, Request};
use crate::auth::{LoginError, Role};

/// Body of `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

#[derive(Debug, Serialize)]
struct LoggedIn {
    access_token: String,
    token_type: &'static str,
    /// Seconds from now.
    expires_in: u64,
    role: Role,
}

/// `POST /api/v1/auth/login`
pub async fn login(ctx: &ApiContext, mut req: Request) -> Answer {
    let body: Login = req.json().await?;
    check_len("username", &body.username, 1, 64)?;
    check_len("password", &body.password, 1, 1024)?;
    let client = req
        .remote
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    match ctx
        .auth()
        .login(client, &body.username, &body.password)
        .await
    {
        Ok((token, role)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            ok(&LoggedIn {
                access_token: token.token,
                token_type: "Bearer",
                expires_in: token.expires_at.saturating_sub(now),
                role,
            })
        }
        Err(LoginError::RateLimited { retry_after }) => {
            let secs = retry_after.as_secs().max(1);
            let mut response =
                ApiError::from(LoginError::RateLimited { retry_after }).into_response();
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
            Ok(response)
        }
        Err(e) => {
            tracing::info!(username = %body.username, client = %client, "login refused: {e}");
            Err(e.into())
        }
    }
}

#[derive(Debug, Serialize)]
struct Me<'a> {
    username: &'a str,
    role: Role,
    /// Unix milliseconds.
    expires_at: u64,
}

/// `GET /api/v1/auth/me`
pub fn me(req: &Request) -> Answer {
    let claims = req
        .claims
        .as_ref()
        .ok_or_else(|| ApiError::internal("an authenticated route without claims"))?;
    ok(&Me {
        username: &claims.sub,
        role: claims.role,
        expires_at: claims.exp.saturating_mul(1000),
    })
}

/// `GET /api/v1/users`
pub async fn list(ctx: &ApiContext, req: &Request) -> Answer {
    let page: PageQuery = req.query()?;
    let users = ctx.auth().users(page.offset()?, page.limit()? + 1).await?;
    ok(&page.page_by_offset(users)?)
}

/// Body of `POST /api/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    role: Role,
}

/// `POST /api/v1/users`
pub async fn create(ctx: &ApiContext, mut req: Request) -> Answer {
    let body: NewUser = req.json().await?;
    check_identifier("username", &body.username, 64)?;
    check_len("password", &body.password, 8, 1024)?;
    let user = ctx
        .auth()
        .create_user(&body.username, &body.password, body.role)
        .await?;
    tracing::info!(username = %user.username, role = %user.role, by = req.user(), "user created");
    Ok(json(StatusCode::CREATED, &user))
}

/// `value` has between `min` and `max` characters.
pub fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if (min..=max).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("must have between {min} and {max} characters (got {n})"),
        ))
    }
}

/// `value` is 1 to `max` letters, digits, `-` and `_`.
pub fn check_identifier(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let valid = (1..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{value:?}: use 1-{max} letters, digits, '-' and '_'"),
        ))
    }
}
