//! Double-submit CSRF protection for the forms of the web view: a random
//! value in an HttpOnly, SameSite=Strict cookie scoped to the form's target,
//! and the same value in a hidden field. Another site can make a browser POST
//! but can neither read nor set that cookie.

use axum::http::{HeaderMap, HeaderValue};
use rand::RngCore;

const COOKIE: &str = "pd_csrf";

/// A fresh value and its `Set-Cookie` header for forms posting under `path`.
pub(crate) fn issue(path: &str, secure: bool) -> (String, Option<HeaderValue>) {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let value = hex::encode(bytes);
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}");
    (value, HeaderValue::from_str(&cookie).ok())
}

/// True when the request's cookie and the form's value agree (constant time).
pub(crate) fn check(headers: &HeaderMap, form_value: &str) -> bool {
    let Some(cookie) = super::cookie(headers, COOKIE) else {
        return false;
    };
    !form_value.is_empty()
        && cookie.len() == form_value.len()
        && cookie
            .bytes()
            .zip(form_value.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
