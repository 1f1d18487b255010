//! Paying invoices through the web view and the (fake) Stripe (issue 4):
//! the pay form starts a hosted checkout; only a verified webhook, whose
//! object is fetched again from the API, moves money — partial then full
//! payment, a bank debit processing then failing, store credit before the
//! card, several invoices at once from the statement. Bad signatures, old
//! timestamps and replayed events change no balance.

mod common;
#[path = "support/fake_stripe.rs"]
mod fake_stripe;

use common::*;
use fake_stripe::{FakeStripe, PayWith, WEBHOOK_SECRET};
use postdesk::db::{invoices, outbox, payments};
use postdesk::domain::EmailAddress;
use postdesk::links::{link_for, LinkPurpose};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

struct Shop {
    fake: FakeStripe,
    s: ServedApp,
    http: reqwest::Client,
    invoice: String,
    second: String,
}

/// Alice (billing, primary) of Customer; two sent invoices of 794.33 EUR and
/// 119.00 EUR; the web view on a real port, the fake Stripe's webhooks aimed
/// at it.
async fn shop() -> Shop {
    let fake = FakeStripe::start().await;
    let s = ServedApp::start(&fake.config_toml()).await;
    fake.set_webhook_target(format!("{}/webhooks/stripe", s.base_url));
    let t = &s.t;
    let json = format!(
        r#"{{"clients":[{{"name":"Customer {tag}","domains":["customer.test"],"contacts":[
    {{"name":"Alice","email":"{alice}","types":["primary","billing"]}}]}}],
 "invoices":[{{"number":"INV-{tag}-1","client":"Customer {tag}","currency":"EUR","issue_date":"2026-11-01",
    "due_date":"2099-11-15","lines":[
      {{"description":"Managed workplace","quantity":"12","unit_price":"45.00","tax_rate":"19"}},
      {{"description":"On-site hours","quantity":"1.5","unit_price":"85","tax_rate":"19"}}]}},
  {{"number":"INV-{tag}-2","client":"Customer {tag}","currency":"EUR","issue_date":"2026-11-02",
    "due_date":"2099-12-01","lines":[{{"description":"Backup","quantity":"1","unit_price":"100","tax_rate":"19"}}]}}]}}"#,
        tag = t.tag,
        alice = t.addr("alice", "customer.test"),
    );
    let data = postdesk::import::parse(&json, "shop.json").unwrap();
    postdesk::import::import(&s.app.db, &data, "shop.json", 0)
        .await
        .unwrap();
    Shop {
        invoice: format!("INV-{}-1", t.tag),
        second: format!("INV-{}-2", t.tag),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        fake,
        s,
    }
}

/// A browser's cookies for one page: the link's and the form's.
struct Visit {
    cookies: Vec<String>,
    csrf: String,
    html: String,
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect()
}

impl Shop {
    async fn balance(&self, number: &str) -> (i64, i64, String) {
        let mut conn = self.s.app.db.conn().await.unwrap();
        let i = invoices::invoice_by_number(&mut conn, number)
            .await
            .unwrap()
            .unwrap();
        (i.total_minor, i.paid_minor, i.status)
    }

    async fn kinds(&self, kind: &str) -> usize {
        let mut conn = self.s.app.db.conn().await.unwrap();
        outbox::list(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.kind == kind)
            .count()
    }

    /// Opens Alice's link to `purpose` and the page it leads to.
    async fn visit(&self, purpose: LinkPurpose, number: Option<&str>) -> Visit {
        let alice = EmailAddress::parse(&self.s.t.addr("alice", "customer.test")).unwrap();
        let link = link_for(
            &self.s.app.db,
            &self.s.app.config,
            purpose,
            number,
            &alice,
            chrono::Utc::now().timestamp(),
        )
        .await
        .unwrap();
        let opened = self.http.get(&link).send().await.unwrap();
        assert_eq!(opened.status(), StatusCode::SEE_OTHER);
        let mut cookies = set_cookies(&opened);
        let path = opened.headers()[LOCATION].to_str().unwrap().to_string();
        let page = self
            .http
            .get(format!("{}{path}", self.s.base_url))
            .header(COOKIE, cookies.join("; "))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        cookies.extend(set_cookies(&page));
        let html = page.text().await.unwrap();
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .unwrap_or_default();
        Visit {
            cookies,
            csrf,
            html,
        }
    }

    /// Posts `form` (the CSRF value added) as the visitor; returns the status,
    /// the Location and the body.
    async fn post(
        &self,
        visit: &Visit,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, String) {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("csrf", &visit.csrf));
        let response = self
            .http
            .post(format!("{}{path}", self.s.base_url))
            .header(COOKIE, visit.cookies.join("; "))
            .form(&fields)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string());
        (status, location, response.text().await.unwrap())
    }

    /// Pays `amount` of `number` on its page up to the provider's checkout;
    /// returns the session id.
    async fn start_paying(&self, number: &str, amount: &str) -> String {
        let visit = self.visit(LinkPurpose::Invoice, Some(number)).await;
        assert!(visit.html.contains("Pay now"), "{}", visit.html);
        let (status, location, body) = self
            .post(
                &visit,
                &format!("/invoice/{number}/pay"),
                &[("amount", amount)],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        let location = location.unwrap();
        assert!(
            location.starts_with(&format!("{}/pay/", self.fake.api_base)),
            "to the hosted checkout: {location}"
        );
        location.rsplit('/').next().unwrap().to_string()
    }
}

#[tokio::test]
async fn a_partial_then_a_full_card_payment_settle_the_invoice_with_receipts() {
    let shop = shop().await;
    assert_eq!(
        shop.balance(&shop.invoice).await,
        (79_433, 0, "sent".into())
    );
    let session = shop.start_paying(&shop.invoice, "300.00").await;
    // Nothing counts before the provider says so.
    assert_eq!(shop.balance(&shop.invoice).await.1, 0);
    let done = shop
        .fake
        .complete_session(&session, None, PayWith::Card)
        .await
        .unwrap();
    assert!(done
        .redirect
        .contains(&format!("/invoice/{}?paid=1", shop.invoice)));
    assert!(shop.fake.deliveries().iter().all(|d| d.status == Some(200)));
    assert_eq!(
        shop.balance(&shop.invoice).await,
        (79_433, 30_000, "partial".into())
    );
    assert_eq!(shop.kinds("payment-received").await, 1);

    let session = shop.start_paying(&shop.invoice, "494.33").await;
    shop.fake
        .complete_session(&session, None, PayWith::Card)
        .await
        .unwrap();
    assert_eq!(
        shop.balance(&shop.invoice).await,
        (79_433, 79_433, "paid".into())
    );
    assert_eq!(shop.kinds("payment-received").await, 2);
    let page = shop.visit(LinkPurpose::Invoice, Some(&shop.invoice)).await;
    assert!(page.html.contains(">Paid<"), "{}", page.html);
    assert!(!page.html.contains("Pay now"), "nothing left to pay");
    // The checkout asked exactly for what the client typed.
    let amounts: Vec<String> = shop
        .fake
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/checkout/sessions")
        .filter_map(|r| {
            r.param("line_items[0][price_data][unit_amount]")
                .map(String::from)
        })
        .collect();
    assert_eq!(amounts, vec!["30000", "49433"]);
}

#[tokio::test]
async fn a_webhook_payment_appends_one_audit_entry_with_no_address() {
    let shop = shop().await;
    let session = shop.start_paying(&shop.invoice, "794.33").await;
    shop.fake
        .complete_session(&session, None, PayWith::Card)
        .await
        .unwrap();
    let mut conn = shop.s.app.db.conn().await.unwrap();
    let rows = postdesk::db::audit::list(&mut conn, &Default::default())
        .await
        .unwrap();
    let paid: Vec<_> = rows.iter().filter(|r| r.kind == "payment").collect();
    assert_eq!(paid.len(), 1, "{rows:?}");
    let row = paid[0];
    assert_eq!(row.action, "payment.succeeded");
    assert_eq!(row.actor_kind, "stripe");
    assert_eq!(row.outcome, "ok");
    assert!(row.resource.as_deref().unwrap().starts_with("payment:"));
    let detail = row.detail.as_ref().unwrap();
    assert_eq!(detail["amount_minor"], 79_433);
    assert_eq!(detail["currency"], "EUR");
    // The pay click is a form post of its own.
    assert!(rows
        .iter()
        .any(|r| r.kind == "form_post" && r.action == "invoice.pay" && r.outcome == "ok"));
    for r in &rows {
        let text = serde_json::to_string(r).unwrap();
        assert!(!text.contains('@'), "{text}");
        assert!(!text.contains(WEBHOOK_SECRET), "{text}");
    }
}

#[tokio::test]
async fn an_amount_over_the_balance_or_without_the_form_token_is_refused() {
    let shop = shop().await;
    let visit = shop.visit(LinkPurpose::Invoice, Some(&shop.invoice)).await;
    let path = format!("/invoice/{}/pay", shop.invoice);
    for bad in ["794.34", "0", "-5", "12.345", "lots"] {
        let (status, _, body) = shop.post(&visit, &path, &[("amount", bad)]).await;
        assert_eq!(status, StatusCode::OK, "{bad}: the page again, with why");
        assert!(body.contains("class=\"panel notice\""), "{bad}: {body}");
    }
    let forged = Visit {
        cookies: visit.cookies.clone(),
        csrf: "0".repeat(32),
        html: String::new(),
    };
    let (status, _, _) = shop.post(&forged, &path, &[("amount", "10.00")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        shop.fake
            .requests()
            .iter()
            .all(|r| r.path != "/v1/checkout/sessions"),
        "no checkout was started"
    );
    let mut conn = shop.s.app.db.conn().await.unwrap();
    assert!(payments::client_payments(&mut conn, 1_000_000, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_bank_debit_is_processing_until_it_fails_and_the_client_is_told() {
    let shop = shop().await;
    let session = shop.start_paying(&shop.invoice, "794.33").await;
    shop.fake
        .complete_session(&session, None, PayWith::SepaDebit)
        .await
        .unwrap();
    assert_eq!(
        shop.balance(&shop.invoice).await,
        (79_433, 0, "processing".into())
    );
    let page = shop.visit(LinkPurpose::Invoice, Some(&shop.invoice)).await;
    assert!(
        page.html.contains("on its way from your bank"),
        "{}",
        page.html
    );
    assert!(
        !page.html.contains("Pay now"),
        "the money in flight is not asked for twice"
    );
    assert_eq!(shop.kinds("payment-received").await, 0);

    shop.fake.settle_async(&session, false).await;
    assert_eq!(
        shop.balance(&shop.invoice).await,
        (79_433, 0, "sent".into())
    );
    assert_eq!(shop.kinds("payment-failed").await, 1);
    let page = shop.visit(LinkPurpose::Invoice, Some(&shop.invoice)).await;
    assert!(page.html.contains("Pay now"), "payable again");

    // Another debit that settles.
    let session = shop.start_paying(&shop.invoice, "794.33").await;
    shop.fake
        .complete_session(&session, None, PayWith::SepaDebit)
        .await
        .unwrap();
    shop.fake.settle_async(&session, true).await;
    assert_eq!(
        shop.balance(&shop.invoice).await,
        (79_433, 79_433, "paid".into())
    );
    assert_eq!(shop.kinds("payment-received").await, 1);
}

#[tokio::test]
async fn bad_signatures_old_timestamps_and_replays_change_no_balance() {
    let shop = shop().await;
    let session = shop.start_paying(&shop.invoice, "100.00").await;
    // Completed with no webhook target: the events are kept, not delivered.
    shop.fake.set_webhook_target(String::new());
    let done = shop
        .fake
        .complete_session(&session, None, PayWith::Card)
        .await
        .unwrap();
    let event = shop
        .fake
        .events()
        .into_iter()
        .find(|e| Some(e["id"].as_str().unwrap()) == done.event_ids.first().map(String::as_str))
        .unwrap();
    let url = format!("{}/webhooks/stripe", shop.s.base_url);
    let send = |body: Vec<u8>, header: String| {
        let http = shop.http.clone();
        let url = url.clone();
        async move {
            http.post(url)
                .header("Stripe-Signature", header)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let now = chrono::Utc::now().timestamp();
    let (body, _) = FakeStripe::signed_webhook(&event, "whsec_not_ours", now);
    let (_, wrong) = FakeStripe::signed_webhook(&event, "whsec_not_ours", now);
    assert_eq!(send(body, wrong).await, StatusCode::BAD_REQUEST);
    let (body, old) = FakeStripe::signed_webhook(&event, WEBHOOK_SECRET, now - 301);
    assert_eq!(send(body, old).await, StatusCode::BAD_REQUEST);
    // Every byte of the body altered under a good signature.
    let (body, header) = FakeStripe::signed_webhook(&event, WEBHOOK_SECRET, now);
    for i in (0..body.len()).step_by(7) {
        let mut altered = body.clone();
        altered[i] ^= 0x01;
        assert_eq!(
            send(altered, header.clone()).await,
            StatusCode::BAD_REQUEST,
            "byte {i}"
        );
    }
    assert_eq!(shop.balance(&shop.invoice).await.1, 0, "nothing counted");

    assert_eq!(send(body.clone(), header.clone()).await, StatusCode::OK);
    assert_eq!(shop.balance(&shop.invoice).await.1, 10_000);
    for _ in 0..3 {
        assert_eq!(send(body.clone(), header.clone()).await, StatusCode::OK);
    }
    assert_eq!(
        shop.balance(&shop.invoice).await.1,
        10_000,
        "a replay counts once"
    );
    assert_eq!(shop.kinds("payment-received").await, 1);
}

#[tokio::test]
async fn store_credit_is_used_before_the_card_and_the_statement_pays_several_invoices() {
    let shop = shop().await;
    // 800.00 by transfer for 794.33: 5.67 of credit.
    postdesk::billing::record_manual_payment(
        &shop.s.app,
        &postdesk::billing::ManualPayment {
            invoice_number: &shop.invoice,
            amount_minor: 80_000,
            method: "bank-transfer",
            reference: None,
        },
    )
    .await
    .unwrap();
    let third = format!("INV-{}-3", shop.s.t.tag);
    let json = format!(
        r#"{{"invoices":[{{"number":"{third}","client":"Customer {tag}","currency":"EUR","issue_date":"2026-11-03",
        "due_date":"2099-12-02","lines":[{{"description":"Licence","quantity":"1","unit_price":"50"}}]}}]}}"#,
        tag = shop.s.t.tag
    );
    let data = postdesk::import::parse(&json, "more.json").unwrap();
    postdesk::import::import(&shop.s.app.db, &data, "more.json", 0)
        .await
        .unwrap();

    let visit = shop.visit(LinkPurpose::Statement, None).await;
    assert!(
        visit.html.contains("5.67 EUR"),
        "the credit is shown: {}",
        visit.html
    );
    let second_field = format!("amount:{}", shop.second);
    let third_field = format!("amount:{third}");
    let (status, location, body) = shop
        .post(
            &visit,
            "/statement/pay",
            &[
                (second_field.as_str(), "119.00"),
                (third_field.as_str(), "50.00"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let session = location.unwrap().rsplit('/').next().unwrap().to_string();
    // 169.00 asked, 5.67 paid from credit, 163.33 to the card.
    let asked = shop.fake.session(&session).unwrap()["amount_total"]
        .as_i64()
        .unwrap();
    assert_eq!(asked, 16_333);
    let mut conn = shop.s.app.db.conn().await.unwrap();
    let client = postdesk::db::contacts::find_client_by_name(
        &mut conn,
        &format!("Customer {}", shop.s.t.tag),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        payments::store_credit(&mut conn, client, "EUR")
            .await
            .unwrap(),
        0
    );
    drop(conn);
    shop.fake
        .complete_session(&session, None, PayWith::Card)
        .await
        .unwrap();
    assert_eq!(
        shop.balance(&shop.second).await,
        (11_900, 11_900, "paid".into())
    );
    assert_eq!(shop.balance(&third).await, (5_000, 5_000, "paid".into()));
    let after = shop.visit(LinkPurpose::Statement, None).await;
    assert!(after.html.contains("No invoice is open"), "{}", after.html);
    assert!(
        !after.html.contains("Store credit"),
        "the credit is used up"
    );

    // A number that is not one of the client's open invoices is refused.
    let (status, _, body) = shop
        .post(&visit, "/statement/pay", &[("amount:INV-OTHER-1", "10.00")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("cannot be paid here"), "{body}");
}

#[tokio::test]
async fn a_saved_card_serves_auto_pay_until_removed_and_is_then_never_charged() {
    let shop = shop().await;
    let json = format!(
        r#"{{"recurring_invoices":[{{"client":"Customer {tag}","scope":"Managed workplace","currency":"EUR",
        "quantity":"12","unit_price":"45.00","tax_rate":"19","frequency":"monthly","next_bill_date":"2099-01-31"}}]}}"#,
        tag = shop.s.t.tag
    );
    let data = postdesk::import::parse(&json, "r.json").unwrap();
    postdesk::import::import(&shop.s.app.db, &data, "r.json", 0)
        .await
        .unwrap();
    let mut conn = shop.s.app.db.conn().await.unwrap();
    let client = postdesk::db::contacts::find_client_by_name(
        &mut conn,
        &format!("Customer {}", shop.s.t.tag),
    )
    .await
    .unwrap()
    .unwrap();
    drop(conn);

    let visit = shop.visit(LinkPurpose::PaymentMethods, None).await;
    assert!(
        visit.html.contains("No payment method is saved"),
        "{}",
        visit.html
    );
    let (status, location, body) = shop.post(&visit, "/payment-methods/add", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let session = location.unwrap().rsplit('/').next().unwrap().to_string();
    assert_eq!(shop.fake.session(&session).unwrap()["mode"], "setup");
    shop.fake
        .complete_session(&session, None, PayWith::Card)
        .await
        .unwrap();
    let mut conn = shop.s.app.db.conn().await.unwrap();
    let saved = postdesk::db::payment_methods::client_methods(&mut conn, client)
        .await
        .unwrap();
    assert_eq!(saved.len(), 1, "saved by the setup webhook");
    assert_eq!(saved[0].last4.as_deref(), Some("4242"));
    let plans = postdesk::db::recurring::client_recurring(&mut conn, client)
        .await
        .unwrap();
    drop(conn);
    let visit = shop.visit(LinkPurpose::PaymentMethods, None).await;
    assert!(visit.html.contains("Visa •••• 4242"), "{}", visit.html);

    let method = saved[0].id.to_string();
    let plan = plans[0].id.to_string();
    let (status, _, body) = shop
        .post(
            &visit,
            "/payment-methods/auto-pay",
            &[("recurring", &plan), ("method", &method)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let mut conn = shop.s.app.db.conn().await.unwrap();
    let plans = postdesk::db::recurring::client_recurring(&mut conn, client)
        .await
        .unwrap();
    assert!(plans[0].auto_pay);
    assert_eq!(plans[0].payment_method_id, Some(saved[0].id));
    drop(conn);

    let (status, _, body) = shop
        .post(&visit, &format!("/payment-methods/{method}/remove"), &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(shop.fake.detached(), vec![saved[0].provider_method.clone()]);
    let mut conn = shop.s.app.db.conn().await.unwrap();
    assert!(
        postdesk::db::payment_methods::client_methods(&mut conn, client)
            .await
            .unwrap()
            .is_empty()
    );
    let plans = postdesk::db::recurring::client_recurring(&mut conn, client)
        .await
        .unwrap();
    assert!(!plans[0].auto_pay, "auto-pay no longer uses it");
    assert_eq!(plans[0].payment_method_id, None);
    drop(conn);
    // It cannot be chosen again, and nothing ever charged it.
    let (status, _, body) = shop
        .post(
            &visit,
            "/payment-methods/auto-pay",
            &[("recurring", &plan), ("method", &method)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("nothing was changed"), "{body}");
    assert!(shop.fake.charges().is_empty());

    // Each post is in the audit log once: the two changes with their
    // transactions, the refused choice by the page's layer.
    let rows = audit_rows(&shop.s.app, |r| {
        r.kind == "form_post" && r.action.starts_with("payment_methods.")
    })
    .await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.resource.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("payment_methods.add", Some("payment_methods".to_string())),
            (
                "payment_methods.auto_pay",
                Some(format!("recurring:{plan}"))
            ),
            (
                "payment_methods.remove",
                Some(format!("payment_method:{method}"))
            ),
            (
                "payment_methods.auto_pay",
                Some("payment_methods".to_string())
            ),
        ],
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_id_was_never_recorded_is_found_by_its_payment_id() {
    let shop = shop().await;
    let session = shop.start_paying(&shop.invoice, "100.00").await;
    // The process died after Stripe created the session and before the
    // session id was written: the payment row has no reference.
    {
        let mut conn = shop.s.app.db.conn().await.unwrap();
        let n = sqlx::query(
            "UPDATE payments SET provider_reference = NULL WHERE provider_reference = $1",
        )
        .bind(&session)
        .execute(&mut *conn)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(n, 1);
    }
    shop.fake
        .complete_session(&session, None, PayWith::Card)
        .await
        .unwrap();
    assert!(shop.fake.deliveries().iter().all(|d| d.status == Some(200)));
    assert_eq!(
        shop.balance(&shop.invoice).await,
        (79_433, 10_000, "partial".into()),
        "the money counted once"
    );
    assert_eq!(shop.kinds("payment-received").await, 1);
    let mut conn = shop.s.app.db.conn().await.unwrap();
    let payment = payments::payment_by_reference(&mut conn, "stripe", &session)
        .await
        .unwrap()
        .expect("the session id is recorded now");
    assert_eq!(payment.amount_minor, 10_000);
}
