//! The admin JSON API (issue 4): bearer token, JSON errors, clients and
//! contacts, invoices (create, send, void, manual payments with receipts,
//! store credit from an overpayment, the undeliverable flag) and tickets
//! (open for a contact, reply, note, status) through the same path as a
//! technician's mail.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use common::*;
use postdesk::app::App;
use postdesk::db::{inbound, outbox, payments};
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "test-admin-token-0123456789abcdef0123";

struct Api {
    t: TestEnv,
    app: App,
    router: Router,
}

impl Api {
    async fn new() -> Api {
        let t = TestEnv::new().await;
        let app = t.app("").await;
        Api {
            router: postdesk::web::router(app.clone()),
            t,
            app,
        }
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{path}: not JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call_with(Method::GET, path, None, Some(TOKEN)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call_with(Method::POST, path, Some(body), Some(TOKEN))
            .await
    }

    fn alice(&self) -> String {
        self.t.addr("alice", "customer.test")
    }

    /// A client with Alice as primary and billing contact; returns its id.
    async fn customer(&self) -> i64 {
        let (status, client) = self
            .post(
                "/api/v1/clients",
                json!({
                    "name": format!("Customer {}", self.t.tag),
                    "domains": ["customer.test"],
                    "contacts": [{"name": "Alice", "email": self.alice(), "types": ["primary", "billing"]}],
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{client}");
        client["id"].as_i64().unwrap()
    }

    async fn draft_invoice(&self, number: &str) {
        let (status, body) = self
            .post(
                "/api/v1/invoices",
                json!({
                    "number": number,
                    "client": format!("Customer {}", self.t.tag),
                    "currency": "EUR",
                    "issue_date": "2026-11-01",
                    "due_date": "2099-11-15",
                    "lines": [
                        {"description": "Managed workplace", "quantity": "10", "unit_price": "45.00", "tax_rate": "19"},
                        {"description": "On-site hours", "quantity": "2", "unit_price": "85"}
                    ],
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["summary"]["status"], "draft");
    }

    async fn outbox(&self) -> Vec<outbox::OutboxEntry> {
        let mut conn = self.app.db.conn().await.unwrap();
        outbox::list(&mut conn).await.unwrap()
    }

    async fn mails_of_kind(&self, kind: &str) -> Vec<outbox::OutboxEntry> {
        self.outbox()
            .await
            .into_iter()
            .filter(|m| m.kind == kind)
            .collect()
    }
}

#[tokio::test]
async fn the_api_wants_its_bearer_token_and_answers_errors_in_json() {
    let api = Api::new().await;
    let (status, body) = api
        .call_with(Method::GET, "/api/v1/clients", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    let wrong = format!("{}x", &TOKEN[..TOKEN.len() - 1]);
    let (status, _) = api
        .call_with(Method::GET, "/api/v1/clients", None, Some(&wrong))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = api.get("/api/v1/clients").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.as_array().is_some());
    let (status, body) = api.get("/api/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    // A malformed body names the field.
    let (status, body) = api.post("/api/v1/invoices", json!({"number": "X-1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("client"), "{body}");
}

#[tokio::test]
async fn clients_and_contacts_are_created_and_shown() {
    let api = Api::new().await;
    let id = api.customer().await;
    let bob = api.t.addr("bob", "customer.test");
    let (status, contact) = api
        .post(
            "/api/v1/contacts",
            json!({"client_id": id, "email": bob, "name": "Bob", "types": ["technical"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{contact}");
    assert_eq!(contact["types"]["technical"], true);
    let (status, client) = api.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let emails: Vec<&str> = client["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec![api.alice().as_str(), bob.as_str()]);
    let (status, _) = api
        .post(
            "/api/v1/contacts",
            json!({"client_id": id + 1000, "email": bob}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api
        .post(
            "/api/v1/contacts",
            json!({"client_id": id, "email": "not an address"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn an_invoice_is_created_sent_paid_in_parts_and_overpaid_into_credit() {
    let api = Api::new().await;
    let client = api.customer().await;
    let number = format!("INV-{}-1", api.t.tag);
    api.draft_invoice(&number).await;
    // 10 × 45.00 × 1.19 + 2 × 85.00 = 535.50 + 170.00 = 705.50
    let (_, shown) = api.get(&format!("/api/v1/invoices/{number}")).await;
    assert_eq!(shown["invoice"]["summary"]["total_minor"], 70550);
    assert_eq!(shown["balance_minor"], 70550);
    let (status, _) = api
        .post(
            "/api/v1/invoices",
            json!({"number": number, "client": format!("Customer {}", api.t.tag), "currency": "EUR",
                   "issue_date": "2026-11-01", "due_date": "2099-11-15",
                   "lines": [{"description": "x", "quantity": "1", "unit_price": "1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A draft takes no payment.
    let (status, body) = api
        .post(
            &format!("/api/v1/invoices/{number}/payments"),
            json!({"amount": "10.00", "method": "bank-transfer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, sent) = api
        .post(&format!("/api/v1/invoices/{number}/send"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["mailed"], 1);
    assert_eq!(sent["undeliverable"], false);
    let issued = api.mails_of_kind("invoice-issued").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].recipients, vec![api.alice()]);
    assert!(issued[0].subject.contains(&number), "{}", issued[0].subject);
    let raw = {
        let mut conn = api.app.db.conn().await.unwrap();
        outbox::raw_of(&mut conn, issued[0].id)
            .await
            .unwrap()
            .unwrap()
    };
    assert!(
        String::from_utf8_lossy(&raw).contains("http://127.0.0.1:8080/l/"),
        "the mail carries the signed link"
    );

    let pay = |amount: &str| json!({"amount": amount, "method": "bank-transfer", "reference": "BANK-REF-1"});
    let (status, body) = api
        .post(
            &format!("/api/v1/invoices/{number}/payments"),
            pay("300.00"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["invoice"]["status"], "partial");
    assert_eq!(body["invoice"]["paid_minor"], 30000);
    let (status, body) = api
        .post(&format!("/api/v1/invoices/{number}/payments"), pay("-1"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // 405.50 is due; 420.00 arrives: 14.50 becomes store credit.
    let (status, body) = api
        .post(
            &format!("/api/v1/invoices/{number}/payments"),
            pay("420.00"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["invoice"]["status"], "paid");
    assert_eq!(body["invoice"]["paid_minor"], 70550);
    let mut conn = api.app.db.conn().await.unwrap();
    assert_eq!(
        payments::store_credit(&mut conn, client, "EUR")
            .await
            .unwrap(),
        1450
    );
    drop(conn);
    let receipts = api.mails_of_kind("payment-received").await;
    assert_eq!(receipts.len(), 2, "one receipt per payment");
    let (_, shown) = api.get(&format!("/api/v1/invoices/{number}")).await;
    let applied: Vec<i64> = shown["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount_minor"].as_i64().unwrap())
        .collect();
    assert_eq!(applied, vec![30000, 40550]);
    assert_eq!(shown["balance_minor"], 0);

    // Paid: it cannot be voided, sent or paid again.
    let (status, _) = api
        .post(&format!("/api/v1/invoices/{number}/void"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api
        .post(&format!("/api/v1/invoices/{number}/send"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // An unpaid draft can be voided.
    let other = format!("INV-{}-2", api.t.tag);
    api.draft_invoice(&other).await;
    let (status, body) = api
        .post(&format!("/api/v1/invoices/{other}/void"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (status, _) = api
        .post(&format!("/api/v1/invoices/{other}/send"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api.post("/api/v1/invoices/NOPE-1/send", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_quote_is_created_as_a_draft_and_sent_with_its_link() {
    let api = Api::new().await;
    api.customer().await;
    let number = format!("Q-{}-1", api.t.tag);
    let (status, quote) = api
        .post(
            "/api/v1/quotes",
            json!({"number": number, "client": format!("Customer {}", api.t.tag), "currency": "EUR",
                   "issue_date": "2026-11-01", "expiry_date": "2099-12-31", "status": "draft",
                   "lines": [{"description": "New firewall", "quantity": "1", "unit_price": "1200", "tax_rate": "19"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{quote}");
    assert_eq!(quote["status"], "draft");
    assert_eq!(quote["total_minor"], 142800);
    let (status, sent) = api
        .post(&format!("/api/v1/quotes/{number}/send"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["mailed"], 1);
    let (_, quote) = api.get(&format!("/api/v1/quotes/{number}")).await;
    assert_eq!(quote["status"], "sent");
    let mails = api.mails_of_kind("quote-sent").await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].recipients, vec![api.alice()]);
    assert!(
        mails[0].subject.contains("1,428.00 EUR"),
        "{}",
        mails[0].subject
    );
    let (status, _) = api.post("/api/v1/quotes/Q-NONE/send", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_invoice_whose_billing_address_bounced_is_flagged_and_staff_are_told() {
    let api = Api::new().await;
    api.customer().await;
    let number = format!("INV-{}-1", api.t.tag);
    api.draft_invoice(&number).await;
    {
        let mut conn = api.app.db.conn().await.unwrap();
        inbound::suppress(&mut conn, &api.alice(), "hard bounce", 0)
            .await
            .unwrap();
    }
    let (status, sent) = api
        .post(&format!("/api/v1/invoices/{number}/send"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["mailed"], 0);
    assert_eq!(sent["undeliverable"], true);
    let (_, shown) = api.get(&format!("/api/v1/invoices/{number}")).await;
    assert_eq!(shown["undeliverable"], true);
    assert!(api.mails_of_kind("invoice-issued").await.is_empty());
    let notices = api.mails_of_kind("invoice-undeliverable").await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].recipients, vec![api.t.staff.clone()]);
}

#[tokio::test]
async fn tickets_are_opened_answered_and_closed_as_a_technician_would_by_mail() {
    let api = Api::new().await;
    api.customer().await;
    let (status, body) = api
        .post(
            "/api/v1/tickets",
            json!({"staff": "Tess Tech", "requester": api.alice(), "subject": "Printer on floor 2",
                   "text": "We will replace the toner tomorrow.", "priority": "high"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let number = body["ticket"].as_str().unwrap().to_string();
    let (status, ticket) = api.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket["priority"], "high", "{ticket}");
    assert_eq!(ticket["requester"], api.alice());

    let (status, body) = api
        .post(
            &format!("/api/v1/tickets/{number}/replies"),
            json!({"staff": api.t.staff, "text": "The toner is replaced."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recorded_as"], "staff-reply");
    let replies = api.mails_of_kind("public-reply").await;
    assert!(
        replies
            .iter()
            .any(|m| m.recipients.contains(&api.alice())
                && m.ticket.as_deref() == Some(number.as_str())),
        "the reply is mailed to the requester: {replies:?}"
    );

    let before = api.outbox().await.len();
    let (status, body) = api
        .post(
            &format!("/api/v1/tickets/{number}/replies"),
            json!({"staff": "Tess Tech", "text": "Customer prefers mornings.", "internal": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recorded_as"], "note");
    assert_eq!(
        api.outbox().await.len(),
        before,
        "an internal note mails nobody"
    );

    let (status, body) = api
        .post(
            &format!("/api/v1/tickets/{number}/status"),
            json!({"staff": "Tess Tech", "status": "closed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, ticket) = api.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(ticket["status"], "closed");

    // A text that would read as a command is refused, not sent.
    let (status, body) = api
        .post(
            &format!("/api/v1/tickets/{number}/replies"),
            json!({"staff": "Tess Tech", "text": "#frobnicate now"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = api
        .post(
            &format!("/api/v1/tickets/{number}/status"),
            json!({"staff": "nobody@else.test", "status": "open"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.get("/api/v1/tickets/T-999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = api.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["number"] == number.as_str()));
}

/// docs/openapi.json and the router agree: every documented operation is
/// routed (not "no such endpoint", not 405), and a path the document does
/// not have is not.
#[tokio::test]
async fn the_openapi_document_describes_the_routes_that_exist() {
    let api = Api::new().await;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
        .expect("docs/openapi.json");
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "{}", paths.len());
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", "1").replace("{number}", "X-1");
        for (method, _) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = (method == Method::POST).then(|| json!({}));
            let (status, answer) = api
                .call_with(
                    method.clone(),
                    &format!("/api/v1{concrete}"),
                    body,
                    Some(TOKEN),
                )
                .await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(answer["error"], "no such endpoint", "{method} {path}");
            operations += 1;
        }
    }
    assert!(operations >= 16, "{operations}");
    let (status, answer) = api.get("/api/v1/payments").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no such endpoint"))
    );
}
