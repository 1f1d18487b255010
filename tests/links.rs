//! Signed links for contacts (issue 4): invoices imported from JSON, links
//! made only for documents the contact may see, carrying the contact's
//! generation and the configured expiry; `postdesk link` prints one.

mod common;

use std::process::Command;

use common::*;
use postdesk::app::App;
use postdesk::db::invoices;
use postdesk::domain::EmailAddress;
use postdesk::links::{link_for, verify, IssueError, LinkPurpose};

const NOW_SECS: i64 = 1_795_000_000;

/// Alice (primary) and Carol (standard) at Customer; Olga at Other Corp;
/// one invoice each.
fn billing_json(t: &TestEnv) -> String {
    format!(
        r#"{{"clients":[
  {{"name":"Customer {tag}","domains":["customer.test"],"contacts":[
    {{"name":"Alice","email":"{alice}","types":["primary","billing"]}},
    {{"name":"Carol","email":"{carol}","types":["standard"]}}]}},
  {{"name":"Other {tag}","domains":["other-{tag}.test"],"contacts":[
    {{"name":"Olga","email":"olga@other-{tag}.test","types":["billing"]}}]}}],
 "invoices":[
  {{"number":"INV-{tag}-1","client":"Customer {tag}","currency":"EUR","issue_date":"2026-11-01",
    "due_date":"2026-11-15","terms":"Net 14","lines":[
      {{"description":"Managed workplace","quantity":"12","unit_price":"45.00","tax_rate":"19"}},
      {{"description":"On-site hours","quantity":1.5,"unit_price":"85","tax_rate":19}}]}},
  {{"number":"INV-{tag}-2","client":"Other {tag}","currency":"JPY","issue_date":"2026-11-01",
    "due_date":"2026-12-01","lines":[{{"description":"Backup","quantity":"1","unit_price":"5000"}}]}}]}}"#,
        tag = t.tag,
        alice = t.addr("alice", "customer.test"),
        carol = t.addr("carol", "customer.test"),
    )
}

async fn setup() -> (TestEnv, App) {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    let data = postdesk::import::parse(&billing_json(&t), "billing.json").unwrap();
    let summary = postdesk::import::import(&app.db, &data, "billing.json", 0)
        .await
        .unwrap();
    assert_eq!((summary.invoices, summary.invoices_kept), (2, 0));
    (t, app)
}

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

#[tokio::test]
async fn imported_invoices_carry_exact_totals_and_import_twice_changes_nothing() {
    let (t, app) = setup().await;
    let mut conn = app.db.conn().await.unwrap();
    let inv = invoices::invoice_by_number(&mut conn, &format!("INV-{}-1", t.tag))
        .await
        .unwrap()
        .unwrap();
    // 12 × 45.00 = 540.00 (+102.60 tax); 1.5 × 85 = 127.50 (+24.225 → 24.23)
    assert_eq!(inv.total_minor, 54_000 + 10_260 + 12_750 + 2_423);
    assert_eq!(
        (inv.status.as_str(), inv.currency.as_str()),
        ("sent", "EUR")
    );
    assert_eq!(inv.due_date, "2026-11-15");
    let yen = invoices::invoice_by_number(&mut conn, &format!("INV-{}-2", t.tag))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(yen.total_minor, 5_000, "JPY has no minor unit");
    drop(conn);

    let data = postdesk::import::parse(&billing_json(&t), "billing.json").unwrap();
    let again = postdesk::import::import(&app.db, &data, "billing.json", 1)
        .await
        .unwrap();
    assert_eq!((again.invoices, again.invoices_kept), (0, 2));

    // A bad amount names the file and the exact place, and writes nothing.
    let bad = billing_json(&t)
        .replace("\"unit_price\":\"45.00\"", "\"unit_price\":\"45.001\"")
        .replace(&format!("INV-{}-1", t.tag), "INV-NEW-1");
    let data = postdesk::import::parse(&bad, "bad.json").unwrap();
    let err = postdesk::import::import(&app.db, &data, "bad.json", 2)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("bad.json: invoices[0].lines[0].unit_price:"),
        "{err}"
    );
    let mut conn = app.db.conn().await.unwrap();
    assert!(invoices::invoice_by_number(&mut conn, "INV-NEW-1")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn recurring_invoices_import_once_and_bad_ones_name_their_field() {
    let (t, app) = setup().await;
    let json = format!(
        r#"{{"recurring_invoices":[
  {{"client":"Customer {tag}","scope":"Managed workplace, 12 seats","currency":"EUR",
    "quantity":"12","unit_price":"45.00","tax_rate":"19","frequency":"monthly",
    "next_bill_date":"2027-01-31","auto_pay":true}},
  {{"client":"Customer {tag}","scope":"Domain example.test","currency":"EUR",
    "description":"Domain renewal","quantity":1,"unit_price":"12","frequency":"Yearly",
    "next_bill_date":"2027-03-01","payment_terms_days":30}}]}}"#,
        tag = t.tag
    );
    let data = postdesk::import::parse(&json, "recurring.json").unwrap();
    let summary = postdesk::import::import(&app.db, &data, "recurring.json", 5)
        .await
        .unwrap();
    assert_eq!(
        (summary.recurring_invoices, summary.recurring_invoices_kept),
        (2, 0)
    );
    let again = postdesk::import::import(&app.db, &data, "recurring.json", 6)
        .await
        .unwrap();
    assert_eq!(
        (again.recurring_invoices, again.recurring_invoices_kept),
        (0, 2)
    );
    let mut conn = app.db.conn().await.unwrap();
    let client =
        postdesk::db::contacts::find_client_by_name(&mut conn, &format!("Customer {}", t.tag))
            .await
            .unwrap()
            .unwrap();
    let rows = postdesk::db::recurring::client_recurring(&mut conn, client)
        .await
        .unwrap();
    let seen: Vec<(&str, &str, &str, i64, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.scope.as_str(),
                r.frequency.as_str(),
                r.next_bill_date.as_str(),
                r.unit_price_minor,
                r.auto_pay,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "Managed workplace, 12 seats",
                "monthly",
                "2027-01-31",
                4500,
                true
            ),
            ("Domain example.test", "yearly", "2027-03-01", 1200, false),
        ]
    );
    assert_eq!(rows[1].description, "Domain renewal");
    drop(conn);
    for (broken, path) in [
        (
            "\"frequency\":\"monthly\"",
            "recurring_invoices[0].frequency",
        ),
        (
            "\"next_bill_date\":\"2027-01-31\"",
            "recurring_invoices[0].next_bill_date",
        ),
        (
            "\"unit_price\":\"45.00\"",
            "recurring_invoices[0].unit_price",
        ),
    ] {
        let bad_value = match path.rsplit('.').next().unwrap() {
            "frequency" => "\"frequency\":\"weekly\"",
            "next_bill_date" => "\"next_bill_date\":\"2027-02-30\"",
            _ => "\"unit_price\":\"45.001\"",
        };
        let data = postdesk::import::parse(&json.replace(broken, bad_value), "r.json").unwrap();
        let err = postdesk::import::import(&app.db, &data, "r.json", 7)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&format!("r.json: {path}:")), "{err}");
    }
}

#[tokio::test]
async fn a_link_is_made_only_for_what_the_contact_may_see() {
    let (t, app) = setup().await;
    let alice = addr(&t.addr("alice", "customer.test"));
    let olga = addr(&format!("olga@other-{}.test", t.tag));
    let inv1 = format!("INV-{}-1", t.tag);
    let inv2 = format!("INV-{}-2", t.tag);

    let url = link_for(
        &app.db,
        &app.config,
        LinkPurpose::Invoice,
        Some(&inv1),
        &alice,
        NOW_SECS,
    )
    .await
    .unwrap();
    let token = url
        .strip_prefix("http://127.0.0.1:8080/l/")
        .unwrap_or_else(|| panic!("{url}"));
    let claims = verify(&app.config.link_keys, token, NOW_SECS).unwrap();
    assert_eq!(claims.purpose, LinkPurpose::Invoice);
    assert_eq!(claims.resource, inv1);
    assert_eq!(claims.generation, 0);
    assert_eq!(claims.expires_at, NOW_SECS + 45 * 86_400);

    // Another client's invoice, an unknown number, a missing number.
    let err = |r: Result<String, IssueError>| r.unwrap_err().to_string();
    assert_eq!(
        err(link_for(
            &app.db,
            &app.config,
            LinkPurpose::Invoice,
            Some(&inv2),
            &alice,
            NOW_SECS
        )
        .await),
        format!("invoice {inv2} is not this contact's to see")
    );
    assert!(link_for(
        &app.db,
        &app.config,
        LinkPurpose::Invoice,
        Some(&inv2),
        &olga,
        NOW_SECS
    )
    .await
    .is_ok());
    assert_eq!(
        err(link_for(
            &app.db,
            &app.config,
            LinkPurpose::Invoice,
            Some("INV-0"),
            &alice,
            NOW_SECS
        )
        .await),
        "no invoice has number INV-0"
    );
    assert_eq!(
        err(link_for(
            &app.db,
            &app.config,
            LinkPurpose::Invoice,
            None,
            &alice,
            NOW_SECS
        )
        .await),
        "invoice links need a number"
    );
    assert_eq!(
        err(link_for(
            &app.db,
            &app.config,
            LinkPurpose::Statement,
            None,
            &addr("nobody@customer.test"),
            NOW_SECS
        )
        .await),
        "no contact has that address"
    );
    assert!(link_for(
        &app.db,
        &app.config,
        LinkPurpose::Statement,
        None,
        &alice,
        NOW_SECS
    )
    .await
    .is_ok());
}

#[tokio::test]
async fn ticket_links_follow_who_asked_and_who_sees_the_clients_tickets() {
    let (t, app) = setup().await;
    let carol = t.addr("carol", "customer.test");
    let raw = simple_mail(
        &carol,
        &t.support,
        "Printer jam",
        &format!("pj-{}@customer.test", t.tag),
        "The printer jams.",
    );
    ingest(&app, &raw).await;
    let alice = addr(&t.addr("alice", "customer.test"));
    let dave = t.addr("dave", "customer.test");
    // Dave: a Standard contact of the same client who did not ask.
    let raw = simple_mail(
        &dave,
        &t.support,
        "Other thing",
        &format!("ot-{}@customer.test", t.tag),
        "Hello.",
    );
    ingest(&app, &raw).await;

    let link = |who: EmailAddress| {
        let app = app.clone();
        async move {
            link_for(
                &app.db,
                &app.config,
                LinkPurpose::Ticket,
                Some("T-1001"),
                &who,
                NOW_SECS,
            )
            .await
        }
    };
    assert!(link(addr(&carol)).await.is_ok(), "the requester");
    assert!(link(alice).await.is_ok(), "a primary contact sees all");
    assert_eq!(
        link(addr(&dave)).await.unwrap_err().to_string(),
        "ticket T-1001 is not this contact's to see"
    );
}

#[tokio::test]
async fn postdesk_link_prints_a_link_and_names_what_is_wrong() {
    let (t, _app) = setup().await;
    let config = t.config_file("");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("POSTDESK_LOG", "warn")
            .output()
            .unwrap()
    };
    let alice = t.addr("alice", "customer.test");
    let inv1 = format!("INV-{}-1", t.tag);
    let out = run(&["link", "invoice", &inv1, "--contact", &alice]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap();
    let token = url.trim().rsplit('/').next().unwrap();
    let keys = t.config("").link_keys;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(
        verify(&keys, token, now).unwrap().resource,
        inv1,
        "a link that opens today"
    );

    let out = run(&["link", "receipt", "--contact", &alice]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown link kind `receipt`"), "{stderr}");
    let out = run(&["link", "statement", "1", "--contact", &alice]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("statement links take no number"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
