//! The scheduler (issue 5) with a controllable clock, on the backend under
//! test: every due action exactly once however often the planner runs, a
//! dead worker's claim taken over after its lease, downtime caught up with
//! only the latest dunning stage, client days in their own time zone across
//! DST and month ends, auto-pay success and declines with retries against
//! the fake Stripe, a live TLS probe, and who gets which mail — delivered
//! through the real Postfix into the real Dovecot.

mod common;
#[path = "support/fake_stripe.rs"]
mod fake_stripe;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use fake_stripe::{FakeStripe, PayWith};
use postdesk::app::App;
use postdesk::clock::{Clock, ManualClock, SharedClock};
use postdesk::db::job_runs::{self, JobRun, NewRun, RunStatus};
use postdesk::db::outbox::{self, OutboxEntry};
use postdesk::db::{expiring, inbound, invoices, payment_methods, recurring};
use postdesk::schedule::{run_pass, JobKind, PassReport, Worker, LEASE};
use tokio_util::sync::CancellationToken;

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .timestamp_millis()
}

/// One test's installation, its clock pinned.
struct World {
    t: TestEnv,
    app: App,
    clock: ManualClock,
    worker: Worker,
}

async fn world(extra: &str) -> World {
    let t = TestEnv::new().await;
    let clock = ManualClock::new(ms("2026-12-01T00:00:00Z"));
    let shared: SharedClock = Arc::new(clock.clone());
    let app = App::open(t.config(extra), shared).await.unwrap();
    World {
        t,
        app,
        clock,
        worker: Worker::new(),
    }
}

impl World {
    fn client(&self) -> String {
        format!("Customer {}", self.t.tag)
    }

    fn addr(&self, name: &str) -> String {
        self.t.addr(name, "customer.test")
    }

    async fn import(&self, json: &str) {
        let data = postdesk::import::parse(json, "test.json").unwrap();
        postdesk::import::import(&self.app.db, &data, "test.json", self.clock.now_millis())
            .await
            .unwrap();
    }

    /// The client with Alice (billing + primary) and, if given, its zone.
    async fn import_client(&self, timezone: Option<&str>) {
        let tz = timezone
            .map(|z| format!(r#","timezone":"{z}""#))
            .unwrap_or_default();
        self.import(&format!(
            r#"{{"clients":[{{"name":"{client}"{tz},"domains":["customer.test"],"contacts":[
                {{"name":"Alice","email":"{alice}","types":["billing","primary"]}}]}}]}}"#,
            client = self.client(),
            alice = self.addr("alice"),
        ))
        .await;
    }

    /// A sent invoice of 119.00 EUR due on `due`; returns its number.
    async fn import_invoice(&self, n: u32, due: &str) -> String {
        let number = format!("INV-{}-{n}", self.t.tag);
        self.import(&format!(
            r#"{{"invoices":[{{"number":"{number}","client":"{client}","currency":"EUR",
                "issue_date":"2026-10-01","due_date":"{due}","status":"sent",
                "lines":[{{"description":"Backup","quantity":"1","unit_price":"100","tax_rate":"19"}}]}}]}}"#,
            client = self.client(),
        ))
        .await;
        number
    }

    async fn pass(&self, kind: JobKind, at: &str) -> PassReport {
        self.pass_ms(kind, ms(at)).await
    }

    async fn pass_ms(&self, kind: JobKind, at: i64) -> PassReport {
        self.clock.set(at);
        run_pass(
            &self.app,
            &self.worker,
            kind,
            at,
            false,
            &CancellationToken::new(),
        )
        .await
        .unwrap()
    }

    async fn outbox(&self, kind: &str) -> Vec<OutboxEntry> {
        let mut conn = self.app.db.conn().await.unwrap();
        outbox::list(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.kind == kind)
            .collect()
    }

    async fn runs(&self, kind: &str) -> Vec<JobRun> {
        let mut conn = self.app.db.conn().await.unwrap();
        let mut runs = job_runs::recent(&mut conn, Some(kind), 10_000)
            .await
            .unwrap();
        runs.reverse();
        runs
    }

    async fn invoice(&self, number: &str) -> invoices::InvoiceSummary {
        let mut conn = self.app.db.conn().await.unwrap();
        invoices::invoice_by_number(&mut conn, number)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no invoice {number}"))
    }

    async fn client_id(&self) -> i64 {
        let mut conn = self.app.db.conn().await.unwrap();
        postdesk::db::contacts::find_client_by_name(&mut conn, &self.client())
            .await
            .unwrap()
            .unwrap()
    }

    /// Invoice numbers of the client, oldest issue date first, with their
    /// issue and due dates.
    async fn generated_invoices(&self) -> Vec<(String, String, String)> {
        let mut conn = self.app.db.conn().await.unwrap();
        let client = self.client_id().await;
        let mut out = Vec::new();
        for i in invoices::list_invoices(&mut conn, Some(client))
            .await
            .unwrap()
        {
            let d = invoices::invoice_detail(&mut conn, &i.number)
                .await
                .unwrap()
                .unwrap();
            out.push((i.number, d.issue_date, i.due_date));
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }
}

fn stages(runs: &[JobRun]) -> Vec<(&str, RunStatus)> {
    runs.iter().map(|r| (r.stage.as_str(), r.status)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_planner_passes_send_each_dunning_stage_once() {
    let w = world("").await;
    w.import_client(None).await;
    let number = w.import_invoice(1, "2026-12-15").await;
    for day in [
        "2026-12-12",
        "2026-12-15",
        "2026-12-22",
        "2026-12-29",
        "2027-01-14",
    ] {
        for round in 0..100 {
            let report = w.pass(JobKind::Dunning, &format!("{day}T10:00:00Z")).await;
            if round > 0 {
                assert_eq!(report.planned, 0, "{day}: pass {round} planned again");
                assert!(report.runs.is_empty(), "{day}: pass {round} ran again");
            }
        }
    }
    let reminders = w.outbox("invoice-reminder").await;
    assert_eq!(reminders.len(), 5, "one reminder per stage");
    assert!(reminders.iter().all(|m| m.recipients == [w.addr("alice")]));
    assert_eq!(
        stages(&w.runs("dunning").await),
        [
            ("-3", RunStatus::Done),
            ("0", RunStatus::Done),
            ("+7", RunStatus::Done),
            ("+14", RunStatus::Done),
            ("+30", RunStatus::Done),
        ]
    );
    assert!(
        reminders[0].subject.contains("due in 3 days"),
        "{}",
        reminders[0].subject
    );
    assert!(
        reminders[1].subject.contains("due today"),
        "{}",
        reminders[1].subject
    );
    assert!(
        reminders[2].subject.starts_with("Overdue"),
        "{}",
        reminders[2].subject
    );
    assert_eq!(w.invoice(&number).await.status, "overdue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downtime_is_caught_up_with_only_the_latest_stage_and_every_missed_bill() {
    let w = world("").await;
    w.import_client(None).await;
    w.import_invoice(1, "2026-12-15").await;
    w.pass(JobKind::Dunning, "2026-12-12T10:00:00Z").await;
    // Down from the 13th to the 30th: stages 0 and +7 were missed.
    let report = w.pass(JobKind::Dunning, "2026-12-30T10:00:00Z").await;
    assert_eq!(report.planned, 1);
    assert_eq!(
        stages(&w.runs("dunning").await),
        [("-3", RunStatus::Done), ("+14", RunStatus::Done)]
    );
    assert_eq!(w.outbox("invoice-reminder").await.len(), 2);

    // A monthly bill from the 30th, three bill dates behind: each is owed.
    w.import(&format!(
        r#"{{"recurring_invoices":[{{"client":"{}","scope":"Managed workplace","currency":"EUR",
            "quantity":"12","unit_price":"45.00","tax_rate":"19","frequency":"monthly",
            "next_bill_date":"2026-09-30","payment_terms_days":14}}]}}"#,
        w.client()
    ))
    .await;
    let report = w.pass(JobKind::Recurring, "2026-12-05T06:00:00Z").await;
    assert_eq!(report.runs.len(), 3, "{report:#?}");
    let bills: Vec<(String, String)> = w
        .generated_invoices()
        .await
        .into_iter()
        .filter(|(n, _, _)| n["INV-".len()..].bytes().all(|b| b.is_ascii_digit()))
        .map(|(_, issue, due)| (issue, due))
        .collect();
    assert_eq!(
        bills,
        [
            ("2026-09-30".to_string(), "2026-10-14".to_string()),
            ("2026-10-30".to_string(), "2026-11-13".to_string()),
            ("2026-11-30".to_string(), "2026-12-14".to_string()),
        ]
    );
    let mut conn = w.app.db.conn().await.unwrap();
    let defs = recurring::client_recurring(&mut conn, w.client_id().await)
        .await
        .unwrap();
    assert_eq!(defs[0].next_bill_date, "2026-12-30");
    assert_eq!(w.outbox("invoice-issued").await.len(), 3);
    // And again: nothing more.
    let again = w.pass(JobKind::Recurring, "2026-12-05T07:00:00Z").await;
    assert!(again.runs.is_empty());
    assert_eq!(w.generated_invoices().await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_is_rechecked_when_it_goes_and_a_manual_one_counts_as_its_stage() {
    let w = world("").await;
    w.import_client(None).await;
    let paid = w.import_invoice(1, "2026-12-15").await;
    let disputed = w.import_invoice(2, "2026-12-15").await;
    let voided = w.import_invoice(3, "2026-12-15").await;
    let manual = w.import_invoice(4, "2026-12-15").await;
    let client_id = w.client_id().await;
    // Planned (as by a pass that ran before the changes below)...
    {
        let mut conn = w.app.db.conn().await.unwrap();
        let mut planned = Vec::new();
        for number in [&paid, &disputed, &voided] {
            let id = invoices::invoice_by_number(&mut conn, number)
                .await
                .unwrap()
                .unwrap()
                .id;
            planned.push(NewRun {
                kind: "dunning",
                target: format!("invoice:{id}"),
                stage: "0".into(),
                client_id: Some(client_id),
                due_at: ms("2026-12-15T08:00:00Z"),
            });
        }
        let n = job_runs::plan_runs(&mut conn, &planned, ms("2026-12-15T08:00:00Z"))
            .await
            .unwrap();
        assert_eq!(n, 3);
    }
    // ... then paid, disputed and voided before the worker got to them.
    w.clock.set(ms("2026-12-15T08:30:00Z"));
    postdesk::billing::record_manual_payment(
        &w.app,
        &postdesk::billing::ManualPayment {
            invoice_number: &paid,
            amount_minor: 11_900,
            method: "bank-transfer",
            reference: None,
        },
    )
    .await
    .unwrap();
    {
        let mut tx = w.app.db.begin().await.unwrap();
        let d = invoices::invoice_by_number(&mut tx, &disputed)
            .await
            .unwrap()
            .unwrap();
        invoices::set_disputed(&mut tx, d.id, true, 0)
            .await
            .unwrap();
        let v = invoices::invoice_by_number(&mut tx, &voided)
            .await
            .unwrap()
            .unwrap();
        assert!(invoices::void_invoice(&mut tx, v.id, 0).await.unwrap());
        tx.commit().await.unwrap();
    }
    // Staff send invoice 4's reminder by hand on the due date.
    let sent = postdesk::schedule::dunning::send_now(&w.app, &manual)
        .await
        .unwrap();
    assert_eq!(sent.stage, "0");
    assert_eq!(sent.mails[0].to, [w.addr("alice")]);

    let report = w.pass(JobKind::Dunning, "2026-12-15T09:00:00Z").await;
    let why = |about: &str| {
        report
            .runs
            .iter()
            .find(|r| r.about == format!("invoice {about}"))
            .map(|r| (r.status, r.why.clone()))
    };
    assert_eq!(
        why(&paid),
        Some((RunStatus::Skipped, "the invoice is paid".to_string()))
    );
    assert_eq!(
        why(&disputed),
        Some((RunStatus::Skipped, "the invoice is disputed".to_string()))
    );
    assert_eq!(
        why(&voided),
        Some((RunStatus::Skipped, "the invoice is cancelled".to_string()))
    );
    assert_eq!(why(&manual), None, "stage 0 of the manual one was sent");
    assert_eq!(w.outbox("invoice-reminder").await.len(), 1);
    // Its next stage still comes.
    w.pass(JobKind::Dunning, "2026-12-22T09:00:00Z").await;
    assert_eq!(w.outbox("invoice-reminder").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_mid_run_leaves_it_to_the_next_after_its_lease() {
    let w = world("").await;
    w.import_client(None).await;
    w.import_invoice(1, "2026-12-15").await;
    let at = ms("2026-12-15T09:00:00Z");

    // Worker A plans and claims, writes its mails in a transaction, and dies
    // before the commit.
    let dead = Worker::new();
    {
        let mut tx = w.app.db.begin().await.unwrap();
        let runs = postdesk::schedule::dunning::plan(&w.app, &mut tx, at)
            .await
            .unwrap();
        job_runs::plan_runs(&mut tx, &runs, at).await.unwrap();
        tx.commit().await.unwrap();
    }
    let claimed = {
        let mut conn = w.app.db.conn().await.unwrap();
        job_runs::claim_next(
            &mut conn,
            w.app.db.backend(),
            "dunning",
            &dead.owner,
            at,
            at + LEASE.as_millis() as i64,
        )
        .await
        .unwrap()
        .unwrap()
    };
    {
        let mut tx = w.app.db.begin().await.unwrap();
        postdesk::schedule::dunning::execute(&w.app, &mut tx, &claimed, at)
            .await
            .unwrap();
        drop(tx); // killed: rolled back
    }
    assert!(w.outbox("invoice-reminder").await.is_empty());

    // Worker B within A's lease: nothing to take.
    let report = w.pass_ms(JobKind::Dunning, at + 60_000).await;
    assert!(report.runs.is_empty());
    assert!(w.outbox("invoice-reminder").await.is_empty());
    // After the lease: B does it, once.
    let after = at + LEASE.as_millis() as i64 + 1_000;
    let report = w.pass_ms(JobKind::Dunning, after).await;
    assert_eq!(report.runs.len(), 1);
    assert_eq!(w.outbox("invoice-reminder").await.len(), 1);
    // A wakes up and tries to finish: its claim is gone.
    let mut conn = w.app.db.conn().await.unwrap();
    let late = job_runs::finish(
        &mut conn,
        claimed.id,
        &dead.owner,
        RunStatus::Done,
        "",
        after,
    )
    .await
    .unwrap();
    assert!(!late);
    for _ in 0..5 {
        w.pass_ms(JobKind::Dunning, after + 120_000).await;
    }
    assert_eq!(w.outbox("invoice-reminder").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_are_the_clients_across_dst_and_month_ends() {
    let w = world("[schedules.dunning]\nstages = [0]\n").await;
    w.import_client(Some("America/New_York")).await;
    let number = w.import_invoice(1, "2026-11-01").await;
    // 03:30 UTC on 1 November is still 31 October (23:30 EDT) in New York.
    let early = w.pass(JobKind::Dunning, "2026-11-01T03:30:00Z").await;
    assert!(early.runs.is_empty(), "{early:#?}");
    // 04:30 UTC is 00:30 on the due date there (DST ends at 06:00 UTC).
    let on_time = w.pass(JobKind::Dunning, "2026-11-01T04:30:00Z").await;
    assert_eq!(on_time.runs.len(), 1, "{on_time:#?}");
    assert_eq!(on_time.runs[0].about, format!("invoice {number}"));
    // The day after the change: 04:30 UTC is 23:30 EST on the 1st, not yet
    // a day overdue; nothing more either way.
    let next = w.pass(JobKind::Dunning, "2026-11-02T04:30:00Z").await;
    assert!(next.runs.is_empty());

    // Auckland is ahead: its 31 January begins at 11:00 UTC on the 30th.
    let nz = world("").await;
    nz.import_client(Some("Pacific/Auckland")).await;
    nz.import(&format!(
        r#"{{"recurring_invoices":[{{"client":"{}","scope":"Backup","currency":"NZD",
            "quantity":"1","unit_price":"80","frequency":"monthly",
            "next_bill_date":"2027-01-31","payment_terms_days":7}}]}}"#,
        nz.client()
    ))
    .await;
    let before = nz.pass(JobKind::Recurring, "2027-01-30T10:30:00Z").await;
    assert!(before.runs.is_empty());
    let first = nz.pass(JobKind::Recurring, "2027-01-30T11:30:00Z").await;
    assert_eq!(first.runs.len(), 1, "{first:#?}");
    // February has 28 days; March brings the 31st back.
    let second = nz.pass(JobKind::Recurring, "2027-02-27T11:30:00Z").await;
    assert_eq!(second.runs.len(), 1, "{second:#?}");
    let dates: Vec<(String, String)> = nz
        .generated_invoices()
        .await
        .into_iter()
        .map(|(_, issue, due)| (issue, due))
        .collect();
    assert_eq!(
        dates,
        [
            ("2027-01-31".to_string(), "2027-02-07".to_string()),
            ("2027-02-28".to_string(), "2027-03-07".to_string()),
        ]
    );
    let mut conn = nz.app.db.conn().await.unwrap();
    let defs = recurring::client_recurring(&mut conn, nz.client_id().await)
        .await
        .unwrap();
    assert_eq!(defs[0].next_bill_date, "2027-03-31");
}

/// Saves `method` of the fake for the client and switches auto-pay of
/// recurring definition `scope` on with it.
async fn autopay_with(w: &World, fake: &FakeStripe, customer: &str, scope: &str, method: PayWith) {
    let provider = w.app.payments.clone().unwrap();
    let pm_id = fake.attach_method(customer, method);
    let pm = provider.fetch_payment_method(&pm_id).await.unwrap();
    let client_id = w.client_id().await;
    let mut tx = w.app.db.begin().await.unwrap();
    payment_methods::set_provider_customer(&mut tx, client_id, provider.name(), customer, 0)
        .await
        .unwrap();
    let id = payment_methods::save_method(
        &mut tx,
        &payment_methods::NewMethod {
            client_id,
            provider: provider.name(),
            provider_customer: customer,
            provider_method: &pm.id,
            kind: "card",
            brand: pm.brand.as_deref(),
            last4: pm.last4.as_deref(),
            exp_month: pm.exp_month.map(i64::from),
            exp_year: pm.exp_year.map(i64::from),
            consent_at: 0,
        },
        0,
    )
    .await
    .unwrap();
    let def = recurring::client_recurring(&mut tx, client_id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.scope == scope)
        .unwrap();
    assert!(
        payment_methods::set_auto_pay(&mut tx, def.id, client_id, Some(id), 0)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_pay_charges_once_and_retries_a_declined_card_on_schedule() {
    let fake = FakeStripe::start().await;
    let w = world(&fake.config_toml()).await;
    w.import_client(None).await;
    w.import(&format!(
        r#"{{"recurring_invoices":[
            {{"client":"{c}","scope":"Good card","currency":"EUR","quantity":"1","unit_price":"100",
              "tax_rate":"19","frequency":"monthly","next_bill_date":"2026-12-01"}},
            {{"client":"{c}","scope":"Bad card","currency":"EUR","quantity":"2","unit_price":"50",
              "frequency":"monthly","next_bill_date":"2026-12-01"}}]}}"#,
        c = w.client()
    ))
    .await;
    let provider = w.app.payments.clone().unwrap();
    let customer = provider
        .create_customer(&postdesk::payments::NewCustomer {
            client_ref: w.client_id().await.to_string(),
            name: w.client(),
            email: None,
            idempotency_key: format!("customer-{}", w.t.tag),
        })
        .await
        .unwrap();
    autopay_with(&w, &fake, &customer, "Good card", PayWith::Card).await;
    autopay_with(&w, &fake, &customer, "Bad card", PayWith::CardThatDeclines).await;

    let billed = w.pass(JobKind::Recurring, "2026-12-01T06:00:00Z").await;
    assert_eq!(billed.runs.len(), 2);
    assert!(billed
        .runs
        .iter()
        .all(|r| r.why.contains("auto-pay charge planned")));
    let invoice_of = |scope: &str| {
        let scope = scope.to_string();
        let w = &w;
        async move {
            let mut conn = w.app.db.conn().await.unwrap();
            let client = w.client_id().await;
            for i in invoices::list_invoices(&mut conn, Some(client))
                .await
                .unwrap()
            {
                let d = invoices::invoice_detail(&mut conn, &i.number)
                    .await
                    .unwrap()
                    .unwrap();
                if d.lines[0].description == scope {
                    return i.number;
                }
            }
            panic!("no invoice for {scope}")
        }
    };
    let good = invoice_of("Good card").await;
    let bad = invoice_of("Bad card").await;

    // A dry run says what would be charged and charges nothing.
    let preview = run_pass(
        &w.app,
        &w.worker,
        JobKind::Autopay,
        ms("2026-12-01T06:30:00Z"),
        true,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(preview.runs.len(), 2, "{preview:#?}");
    let mut previews: Vec<&str> = preview.runs.iter().map(|r| r.why.as_str()).collect();
    previews.sort();
    assert_eq!(
        previews,
        [
            "would charge 100.00 EUR to the visa card ending 0341",
            "would charge 119.00 EUR to the visa card ending 4242",
        ]
    );
    assert!(fake.charges().is_empty());

    let first = w.pass(JobKind::Autopay, "2026-12-01T06:30:00Z").await;
    assert_eq!(first.runs.len(), 2, "{first:#?}");
    assert_eq!(w.invoice(&good).await.status, "paid");
    assert_ne!(w.invoice(&bad).await.status, "paid");
    assert_eq!(w.outbox("payment-received").await.len(), 1);
    assert_eq!(w.outbox("payment-failed").await.len(), 1);

    // Nothing before the retry day; then attempts 2 and 3, and no 4th.
    assert!(w
        .pass(JobKind::Autopay, "2026-12-03T06:30:00Z")
        .await
        .runs
        .is_empty());
    assert_eq!(
        w.pass(JobKind::Autopay, "2026-12-04T06:31:00Z")
            .await
            .runs
            .len(),
        1
    );
    assert_eq!(
        w.pass(JobKind::Autopay, "2026-12-07T06:32:00Z")
            .await
            .runs
            .len(),
        1
    );
    assert!(w
        .pass(JobKind::Autopay, "2026-12-30T06:30:00Z")
        .await
        .runs
        .is_empty());

    let charges = fake.charges();
    let keys = |prefix: &str| {
        let mut k: Vec<String> = charges
            .iter()
            .filter_map(|c| c.idempotency_key.clone())
            .filter(|k| k.starts_with(prefix))
            .collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&format!("autopay-{good}-")),
        [format!("autopay-{good}-1")]
    );
    assert_eq!(
        keys(&format!("autopay-{bad}-")),
        [1, 2, 3].map(|n| format!("autopay-{bad}-{n}"))
    );
    assert!(charges.iter().all(|c| c.off_session));
    assert_eq!(
        charges.iter().filter(|c| c.status == "succeeded").count(),
        1
    );
    assert_eq!(w.outbox("payment-failed").await.len(), 3);
    let runs = w.runs("autopay").await;
    assert_eq!(runs.len(), 4);
    assert!(runs
        .last()
        .unwrap()
        .note
        .as_deref()
        .unwrap()
        .contains("no attempts left"));
    assert_eq!(w.invoice(&bad).await.paid_minor, 0);
}

/// A TLS server on loopback presenting a self-signed certificate for
/// `localhost` that ends on `not_after`.
async fn tls_server(not_after: (i32, u8, u8)) -> u16 {
    use tokio_rustls::rustls;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2026, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "Probe Test CA");
    params.distinguished_name = dn;
    let cert = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_alerts_list_a_clients_things_in_one_mail_probe_certificates_and_rearm_on_renewal() {
    let w = world("").await;
    // Bob is the technical contact.
    w.import(&format!(
        r#"{{"clients":[{{"name":"{client}","domains":["customer.test"],"contacts":[
            {{"name":"Alice","email":"{alice}","types":["billing"]}},
            {{"name":"Bob","email":"{bob}","types":["technical"]}}]}}]}}"#,
        client = w.client(),
        alice = w.addr("alice"),
        bob = w.addr("bob"),
    ))
    .await;
    let live = tls_server((2027, 1, 10)).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    w.import(&format!(
        r#"{{"domains":[{{"client":"{c}","name":"customer.test","expires_on":"2027-01-20"}}],
            "contracts":[{{"client":"{c}","name":"Microsoft 365","expires_on":"2027-01-05"}}],
            "assets":[{{"client":"{c}","name":"NAS SN-1234","expires_on":"2027-03-01"}}],
            "certificates":[
              {{"client":"{c}","name":"localhost","expires_on":"2099-01-01","probe":true,"port":{live}}}]}}"#,
        c = w.client()
    ))
    .await;
    // A second client whose certificate cannot be reached.
    w.import(&format!(
        r#"{{"clients":[{{"name":"Other {tag}"}}],
            "certificates":[{{"client":"Other {tag}","name":"localhost","expires_on":"2027-06-01","probe":true,"port":{closed}}}]}}"#,
        tag = w.t.tag
    ))
    .await;

    let report = w.pass(JobKind::Expiry, "2026-12-31T08:00:00Z").await;
    // The probe read the live certificate: 10 days left on the 31st.
    let client_id = w.client_id().await;
    let mut conn = w.app.db.conn().await.unwrap();
    let items = expiring::expiring_between(&mut conn, "2000-01-01", "2100-01-01")
        .await
        .unwrap();
    let cert = items
        .iter()
        .find(|i| i.kind == "certificate" && i.client_id == client_id)
        .unwrap();
    assert_eq!(cert.expires_on, "2027-01-10");
    assert_eq!(cert.issuer.as_deref(), Some("CN=Probe Test CA"));
    let failed = items
        .iter()
        .find(|i| i.kind == "certificate" && i.client_id != client_id)
        .unwrap();
    assert!(failed.probe_error.is_some(), "{failed:?}");
    assert_eq!(
        failed.expires_on, "2027-06-01",
        "a failed probe keeps the date"
    );

    // Domain (20 days: stage 30), contract (5 days: stage 7), certificate
    // (10 days: stage 14); the asset's 60 days are not due. One mail.
    let mut done: Vec<(String, String)> = report
        .runs
        .iter()
        .map(|r| (r.about.clone(), r.stage.clone()))
        .collect();
    done.sort();
    assert_eq!(
        done,
        [
            ("certificate localhost".to_string(), "14d".to_string()),
            ("contract Microsoft 365".to_string(), "7d".to_string()),
            ("domain customer.test".to_string(), "30d".to_string()),
        ]
    );
    let alerts = w.outbox("expiry-alert").await;
    assert_eq!(alerts.len(), 1, "one mail per client per run");
    assert_eq!(alerts[0].recipients, [w.addr("bob")]);
    assert!(
        alerts[0].subject.contains("3 items"),
        "{}",
        alerts[0].subject
    );

    // Nothing new the next day; the renewed domain arms again.
    assert!(w
        .pass(JobKind::Expiry, "2027-01-01T08:00:00Z")
        .await
        .runs
        .is_empty());
    w.import(&format!(
        r#"{{"domains":[{{"client":"{c}","name":"customer.test","expires_on":"2028-01-20"}}]}}"#,
        c = w.client()
    ))
    .await;
    let renewed = w.pass(JobKind::Expiry, "2027-12-21T08:00:00Z").await;
    assert_eq!(
        renewed
            .runs
            .iter()
            .map(|r| (r.about.as_str(), r.stage.as_str()))
            .collect::<Vec<_>>(),
        [("domain customer.test", "30d")]
    );
    assert_eq!(w.outbox("expiry-alert").await.len(), 2);
}

/// Who gets which scheduled mail, delivered into the real mailboxes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mail_reaches_exactly_the_contacts_it_is_for() {
    let w = world("").await;
    let people = [
        ("standard", "[]"),
        ("billing", r#"["billing"]"#),
        ("technical", r#"["technical"]"#),
        ("primary", r#"["primary"]"#),
        ("billtech", r#"["billing","technical"]"#),
        ("bounced", r#"["billing","technical"]"#),
        ("optout", r#"["billing","technical","primary"]"#),
    ];
    let contacts: Vec<String> = people
        .iter()
        .map(|(name, types)| {
            // One person wants no optional mail (statements, reports).
            let optional = if *name == "optout" {
                r#","optional_mail":false"#
            } else {
                ""
            };
            format!(
                r#"{{"name":"{name}","email":"{}","types":{types}{optional}}}"#,
                w.addr(name)
            )
        })
        .collect();
    w.import(&format!(
        r#"{{"clients":[{{"name":"{client}","domains":["customer.test"],"contacts":[{}]}}],
            "recurring_invoices":[{{"client":"{client}","scope":"Managed","currency":"EUR",
              "quantity":"1","unit_price":"10","frequency":"monthly","next_bill_date":"2027-02-01"}}],
            "domains":[{{"client":"{client}","name":"customer.test","expires_on":"2027-01-30"}}]}}"#,
        contacts.join(","),
        client = w.client(),
    ))
    .await;
    let overdue = w.import_invoice(1, "2027-01-08").await;
    // Something for January's service report: an invoice issued (and paid).
    w.import(&format!(
        r#"{{"invoices":[{{"number":"INV-{tag}-jan","client":"{client}","currency":"EUR",
            "issue_date":"2027-01-05","due_date":"2027-01-19","status":"paid",
            "lines":[{{"description":"Setup","quantity":"1","unit_price":"50"}}]}}]}}"#,
        tag = w.t.tag,
        client = w.client(),
    ))
    .await;
    // A hard bounce put one address on the suppression list.
    {
        let mut conn = w.app.db.conn().await.unwrap();
        inbound::suppress(&mut conn, &w.addr("bounced"), "hard bounce", 0)
            .await
            .unwrap();
    }
    // A card on auto-pay that ends before the next bill.
    {
        let client_id = w.client_id().await;
        let mut tx = w.app.db.begin().await.unwrap();
        let id = payment_methods::save_method(
            &mut tx,
            &payment_methods::NewMethod {
                client_id,
                provider: "stripe",
                provider_customer: "cus_grid",
                provider_method: &format!("pm_grid_{}", w.t.tag),
                kind: "card",
                brand: Some("visa"),
                last4: Some("4242"),
                exp_month: Some(1),
                exp_year: Some(2027),
                consent_at: 0,
            },
            0,
        )
        .await
        .unwrap();
        let def = recurring::client_recurring(&mut tx, client_id)
            .await
            .unwrap()[0]
            .id;
        assert!(
            payment_methods::set_auto_pay(&mut tx, def, client_id, Some(id), 0)
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
    }

    let at = "2027-01-15T09:00:00Z";
    w.pass(JobKind::Dunning, at).await;
    w.pass(JobKind::Expiry, at).await;
    w.pass(JobKind::Recurring, "2027-02-01T09:00:00Z").await;
    w.pass(JobKind::Statement, "2027-02-01T09:00:00Z").await;
    w.pass(JobKind::Report, "2027-02-01T09:00:00Z").await;

    let people = |names: &[&str]| -> Vec<String> { names.iter().map(|n| w.addr(n)).collect() };
    let billing_people = people(&["billing", "primary", "billtech", "optout"]);
    let technical_people = people(&["technical", "primary", "billtech", "optout"]);
    let statement_people = people(&["billing", "primary", "billtech"]);
    let report_people = people(&["primary"]);
    let expected = [
        ("invoice-reminder", &billing_people),
        ("invoice-issued", &billing_people),
        ("card-expiring", &billing_people),
        ("expiry-alert", &technical_people),
        ("monthly-statement", &statement_people),
        ("service-report", &report_people),
    ];
    for (kind, people) in expected {
        let mut got: Vec<String> = w
            .outbox(kind)
            .await
            .into_iter()
            .flat_map(|m| m.recipients)
            .collect();
        got.sort();
        let mut want = people.clone();
        want.sort();
        assert_eq!(got, want, "{kind}");
    }

    // Send everything and read it where it landed.
    let mut state = w.app.sender.new_state().unwrap();
    let sent = w
        .app
        .sender
        .round(&mut state, &CancellationToken::new())
        .await
        .unwrap();
    state.close().await;
    assert_eq!(sent, 4 + 4 + 4 + 4 + 3 + 1);
    let subjects_of = |name: &'static str| {
        let w = &w;
        async move {
            let user = w.addr(name);
            read_folder(&w.t.mail, &user, "INBOX")
                .await
                .iter()
                .map(|raw| header(raw, "Subject").unwrap_or_default())
                .collect::<Vec<String>>()
        }
    };
    let expect_count = [
        ("standard", 0),
        ("billing", 4),
        ("technical", 1),
        ("primary", 6),
        ("billtech", 5),
        ("bounced", 0),
        ("optout", 4),
    ];
    for (name, count) in expect_count {
        let subjects = if count == 0 {
            // Give a stray mail time to arrive before saying none did.
            tokio::time::sleep(Duration::from_millis(500)).await;
            subjects_of(name).await
        } else {
            wait_for(
                &format!("{count} mails for {name}"),
                Duration::from_secs(20),
                || async {
                    let s = subjects_of(name).await;
                    (s.len() >= count).then_some(s)
                },
            )
            .await
        };
        assert_eq!(subjects.len(), count, "{name}: {subjects:?}");
        // Notices, not replies: out-of-office scripts stay quiet (RFC 3834).
        for raw in read_folder(&w.t.mail, &w.addr(name), "INBOX").await {
            assert_eq!(
                header(&raw, "Auto-Submitted").as_deref(),
                Some("auto-generated")
            );
        }
        if name == "primary" {
            assert!(
                subjects.iter().any(|s| s.contains(&overdue)),
                "{subjects:?}"
            );
            assert!(
                subjects.iter().any(|s| s.contains("saved card")),
                "{subjects:?}"
            );
            assert!(
                subjects.iter().any(|s| s.contains("customer.test")),
                "{subjects:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_who_would_get_what_and_writes_nothing() {
    let w = world("").await;
    w.import_client(None).await;
    let number = w.import_invoice(1, "2026-12-15").await;
    let report = run_pass(
        &w.app,
        &w.worker,
        JobKind::Dunning,
        ms("2026-12-22T09:00:00Z"),
        true,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.runs.len(), 1);
    let run = &report.runs[0];
    assert_eq!(run.about, format!("invoice {number}"));
    assert_eq!(run.stage, "+7");
    assert_eq!(run.why, format!("stage +7: {number} is 7 days overdue"));
    assert_eq!(run.mails[0].kind, "invoice-reminder");
    assert_eq!(run.mails[0].to, [w.addr("alice")]);
    assert!(w.outbox("invoice-reminder").await.is_empty());
    assert!(w.runs("dunning").await.is_empty());
    assert_eq!(w.invoice(&number).await.status, "sent");
}

/// Opens a ticket from Alice at the world's current time; returns (id, number).
async fn open_ticket(w: &World, subject: &str) -> (i64, String) {
    let raw = simple_mail(
        &w.addr("alice"),
        &w.t.support,
        subject,
        &format!("{}-{}@customer.test", subject.replace(' ', "-"), w.t.tag),
        "The printer is on fire.",
    );
    let number = match ingest(&w.app, &raw).await {
        postdesk::mail::ingest::Outcome::TicketCreated { ticket, .. } => ticket,
        other => panic!("expected a ticket, got {other:?}"),
    };
    let mut conn = w.app.db.conn().await.unwrap();
    let id = postdesk::db::conversation::ticket_by_number(&mut conn, &number)
        .await
        .unwrap()
        .unwrap()
        .id;
    (id, number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sla_watch_counts_working_time_and_alerts_once_per_stage() {
    let w = world("[company]\ntimezone = \"Europe/Berlin\"\nholidays = [\"2026-12-07\"]\n").await;
    w.import_client(None).await;
    // Friday 4 December, 16:45 in Berlin; Monday the 7th is a holiday.
    w.clock.set(ms("2026-12-04T15:45:00Z"));
    let (id, number) = open_ticket(&w, "Printer down").await;
    let (answered_id, _) = open_ticket(&w, "Mail slow").await;
    {
        let mut conn = w.app.db.conn().await.unwrap();
        let watched = postdesk::db::ticket_watch::watched(&mut conn, id)
            .await
            .unwrap()
            .unwrap();
        // Medium: 2 working hours = 15 min on Friday + 105 min from Tuesday 09:00.
        assert_eq!(
            watched.first_response_due_at,
            Some(ms("2026-12-08T10:45:00+01:00"))
        );
        postdesk::db::conversation::staff_responded(
            &mut conn,
            answered_id,
            ms("2026-12-04T16:00:00Z"),
        )
        .await
        .unwrap();
    }
    // Monday (a holiday) and Tuesday morning: nothing yet.
    for at in ["2026-12-07T12:00:00Z", "2026-12-08T09:29:00Z"] {
        assert!(w.pass(JobKind::Sla, at).await.runs.is_empty(), "{at}");
    }
    for _ in 0..20 {
        w.pass(JobKind::Sla, "2026-12-08T09:31:00Z").await;
    }
    for _ in 0..20 {
        w.pass(JobKind::Sla, "2026-12-08T09:46:00Z").await;
    }
    let alerts = w.outbox("sla-alert").await;
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    assert!(alerts.iter().all(|a| a.recipients == [w.t.staff.clone()]));
    assert!(
        alerts[0].subject.contains("due in 14 min"),
        "{}",
        alerts[0].subject
    );
    assert!(
        alerts[1].subject.contains("overdue"),
        "{}",
        alerts[1].subject
    );
    assert!(alerts
        .iter()
        .all(|a| a.ticket.as_deref() == Some(number.as_str())));
    assert_eq!(
        stages(&w.runs("sla").await),
        [("due-soon", RunStatus::Done), ("breached", RunStatus::Done)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_waiting_on_the_client_is_reminded_then_closed() {
    let w = world("").await;
    w.import_client(None).await;
    let t0 = ms("2026-12-01T10:00:00Z");
    w.clock.set(t0);
    let (waits, number) = open_ticket(&w, "Need your password policy").await;
    let (answered, _) = open_ticket(&w, "Need your VPN list").await;
    {
        let mut conn = w.app.db.conn().await.unwrap();
        use postdesk::domain::TicketStatus;
        for id in [waits, answered] {
            postdesk::db::conversation::set_status(
                &mut conn,
                id,
                TicketStatus::WaitingOnClient,
                t0,
            )
            .await
            .unwrap();
        }
        // Setting it again later does not restart the wait.
        postdesk::db::conversation::set_status(
            &mut conn,
            waits,
            TicketStatus::WaitingOnClient,
            t0 + 3_600_000,
        )
        .await
        .unwrap();
        // The client answered the other one on day 2.
        postdesk::db::conversation::set_status(
            &mut conn,
            answered,
            TicketStatus::Open,
            t0 + 86_400_000,
        )
        .await
        .unwrap();
    }
    let day = |n: i64| t0 + n * 86_400_000;
    assert!(w.pass_ms(JobKind::Waiting, day(2)).await.runs.is_empty());
    let reminded = w.pass_ms(JobKind::Waiting, day(3)).await;
    assert_eq!(reminded.runs.len(), 1, "{reminded:#?}");
    assert!(w.pass_ms(JobKind::Waiting, day(5)).await.runs.is_empty());
    let closed = w.pass_ms(JobKind::Waiting, day(7)).await;
    assert_eq!(closed.runs.len(), 1, "{closed:#?}");
    assert!(w.pass_ms(JobKind::Waiting, day(9)).await.runs.is_empty());

    let reminders = w.outbox("waiting-reminder").await;
    let closings = w.outbox("auto-closed").await;
    assert_eq!(reminders.len(), 1);
    assert_eq!(closings.len(), 1);
    assert_eq!(reminders[0].recipients, [w.addr("alice")]);
    assert_eq!(reminders[0].ticket.as_deref(), Some(number.as_str()));
    let mut conn = w.app.db.conn().await.unwrap();
    for (id, want) in [(waits, "closed"), (answered, "open")] {
        let watched = postdesk::db::ticket_watch::watched(&mut conn, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(watched.status, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_mail_past_its_retention_is_deleted_and_the_ticket_stays() {
    let w = world("[schedules.purge]\nraw_mail_days = 30\n").await;
    w.import_client(None).await;
    w.clock.set(ms("2026-10-01T10:00:00Z"));
    let raw = simple_mail(
        &w.addr("alice"),
        &w.t.support,
        "Old question",
        &format!("old-{}@customer.test", w.t.tag),
        "Still there?",
    );
    let number = match ingest(&w.app, &raw).await {
        postdesk::mail::ingest::Outcome::TicketCreated { ticket, .. } => ticket,
        other => panic!("{other:?}"),
    };
    w.clock.set(ms("2026-10-25T10:00:00Z"));
    let recent = simple_mail(
        &w.addr("alice"),
        &w.t.support,
        "New question",
        &format!("new-{}@customer.test", w.t.tag),
        "Hello again",
    );
    ingest(&w.app, &recent).await;
    let old_sha = postdesk::storage::sha256_hex(&raw);
    let new_sha = postdesk::storage::sha256_hex(&recent);
    let store = &w.app.ingestor.store;
    use postdesk::storage::BlobKind;
    assert!(store.get(BlobKind::RawMail, &old_sha).is_ok());

    let at = ms("2026-11-05T03:30:00Z");
    let preview = run_pass(
        &w.app,
        &w.worker,
        JobKind::Purge,
        at,
        true,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(
        preview.runs[0]
            .why
            .starts_with("would delete 1 raw messages"),
        "{preview:#?}"
    );
    assert!(
        store.get(BlobKind::RawMail, &old_sha).is_ok(),
        "a dry run deletes nothing"
    );

    let done = w.pass_ms(JobKind::Purge, at).await;
    assert!(
        done.runs[0].why.starts_with("deleted 1 raw messages"),
        "{done:#?}"
    );
    assert!(store.get(BlobKind::RawMail, &old_sha).is_err());
    assert!(store.get(BlobKind::RawMail, &new_sha).is_ok());
    assert!(w
        .pass_ms(JobKind::Purge, at + 3_600_000)
        .await
        .runs
        .is_empty());
    // The ticket and its text are kept.
    let mut conn = w.app.db.conn().await.unwrap();
    let number =
        postdesk::domain::TicketNumber::parse(&w.app.config.tickets.prefix, &number).unwrap();
    let ticket = postdesk::db::tickets::show_ticket(&mut conn, &number)
        .await
        .unwrap()
        .unwrap();
    assert!(ticket.messages[0].text.contains("Still there?"));
}

/// A staff note with `#time` on ticket `id` (through ingest, as a
/// technician's mail to the ticket's reply address would come).
async fn book_time(w: &World, id: i64, time: &str) {
    let ticket = {
        let mut conn = w.app.db.conn().await.unwrap();
        postdesk::db::conversation::ticket_by_id(&mut conn, id)
            .await
            .unwrap()
            .unwrap()
    };
    let to =
        w.t.support
            .replace('@', &format!("+{}@", ticket.reply_token));
    let raw = format!(
        "From: Tess Tech <{staff}>\r\nTo: {to}\r\nSubject: Re: [#{number}] {subject}\r\n\
Message-ID: <time-{tag}-{n}@msp.test>\r\n\r\n#note\r\n#time {time}\r\n\r\nWorked on it.\r\n",
        staff = w.t.staff,
        number = ticket.number,
        subject = ticket.subject,
        tag = w.t.tag,
        n = random_tag(),
    );
    match ingest(&w.app, raw.as_bytes()).await {
        postdesk::mail::ingest::Outcome::Added { .. } => {}
        other => panic!("the #time note was not applied: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepaid_hours_are_drawn_down_and_what_is_left_over_is_billed() {
    let w = world("[hours]\nbill_unbilled_time = true\nhourly_rate = \"90.00\"\n").await;
    w.import(&format!(
        r#"{{"clients":[{{"name":"{client}","domains":["customer.test"],"contacts":[
            {{"name":"Alice","email":"{alice}","types":["billing","primary"]}},
            {{"name":"Bob","email":"{bob}","types":["technical"]}}]}}],
          "hour_blocks":[{{"client":"{client}","name":"Q4 2026","hours":"10","starts_on":"2026-11-01"}}],
          "recurring_invoices":[{{"client":"{client}","scope":"Managed","currency":"EUR","quantity":"1",
            "unit_price":"100","tax_rate":"19","frequency":"monthly","next_bill_date":"2026-12-31"}}]}}"#,
        client = w.client(),
        alice = w.addr("alice"),
        bob = w.addr("bob"),
    ))
    .await;
    w.clock.set(ms("2026-12-02T10:00:00Z"));
    let (id, _) = open_ticket(&w, "Server migration").await;
    book_time(&w, id, "7h").await;
    assert!(w.outbox("hours-used").await.is_empty(), "70 %: nothing yet");
    book_time(&w, id, "1h30").await;
    let told = w.outbox("hours-used").await;
    assert_eq!(told.len(), 1, "85 %: the 80 % mail");
    assert_eq!(told[0].recipients, [w.addr("alice")]);
    assert!(told[0].subject.contains("80 %"), "{}", told[0].subject);
    // 2 h more: the block is used up (1.5 h of it), 0.5 h is left over.
    book_time(&w, id, "2h").await;
    book_time(&w, id, "1h").await;
    let told = w.outbox("hours-used").await;
    assert_eq!(told.len(), 2);
    assert!(told[1].subject.contains("used up"), "{}", told[1].subject);

    // The month's bill takes the 1.5 h nobody prepaid, once.
    w.pass(JobKind::Recurring, "2026-12-31T08:00:00Z").await;
    let bills = w.generated_invoices().await;
    assert_eq!(bills.len(), 1);
    let mut conn = w.app.db.conn().await.unwrap();
    let detail = invoices::invoice_detail(&mut conn, &bills[0].0)
        .await
        .unwrap()
        .unwrap();
    let lines: Vec<(&str, i64, i64)> = detail
        .lines
        .iter()
        .map(|l| (l.description.as_str(), l.quantity_milli, l.net_minor))
        .collect();
    assert_eq!(
        lines,
        [
            ("Managed", 1000, 10_000),
            (
                "Support time not covered by prepaid hours (1.5 h)",
                1500,
                13_500
            ),
        ]
    );
    // 100 + 135 net, 19 % on both.
    assert_eq!(detail.summary.total_minor, 27_965);
    drop(conn);
    w.pass(JobKind::Recurring, "2027-01-31T08:00:00Z").await;
    let mut conn = w.app.db.conn().await.unwrap();
    let second = invoices::invoice_detail(&mut conn, &w.generated_invoices().await[1].0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.lines.len(), 1, "the time was billed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_statement_and_service_report_go_once_to_who_wants_them() {
    let w = world("").await;
    w.import(&format!(
        r#"{{"clients":[
            {{"name":"{client}","domains":["customer.test"],"contacts":[
              {{"name":"Alice","email":"{alice}","types":["billing","primary"]}},
              {{"name":"Carol","email":"{carol}","types":["billing"],"optional_mail":false}},
              {{"name":"Dave","email":"{dave}","types":["primary"]}}]}},
            {{"name":"Quiet {tag}","statement_mail":false,"service_report":false,"contacts":[
              {{"email":"{erin}","types":["billing","primary"]}}]}},
            {{"name":"Idle {tag}","contacts":[{{"email":"{frank}","types":["billing","primary"]}}]}}],
          "invoices":[{{"number":"INV-{tag}-1","client":"{client}","currency":"EUR","issue_date":"2026-11-02",
              "due_date":"2026-11-16","lines":[{{"description":"Backup","quantity":"1","unit_price":"100"}}]}},
            {{"number":"INV-{tag}-2","client":"Quiet {tag}","currency":"EUR","issue_date":"2026-11-02",
              "due_date":"2026-11-16","lines":[{{"description":"Backup","quantity":"1","unit_price":"100"}}]}}]}}"#,
        client = w.client(),
        tag = w.t.tag,
        alice = w.addr("alice"),
        carol = w.addr("carol"),
        dave = w.addr("dave"),
        erin = w.addr("erin"),
        frank = w.addr("frank"),
    ))
    .await;
    // November: three tickets; one answered in time, one late, one closed.
    w.clock.set(ms("2026-11-10T09:00:00Z"));
    let (fast, _) = open_ticket(&w, "Printer jam").await;
    let (slow, _) = open_ticket(&w, "=cmd|' /C calc'!A0").await;
    let (_open, _) = open_ticket(&w, "New laptop").await;
    {
        let mut conn = w.app.db.conn().await.unwrap();
        use postdesk::db::conversation;
        conversation::staff_responded(&mut conn, fast, ms("2026-11-10T09:20:00Z"))
            .await
            .unwrap();
        conversation::staff_responded(&mut conn, slow, ms("2026-11-11T15:00:00Z"))
            .await
            .unwrap();
        conversation::set_status(
            &mut conn,
            fast,
            postdesk::domain::TicketStatus::Closed,
            ms("2026-11-12T10:00:00Z"),
        )
        .await
        .unwrap();
    }

    for _ in 0..3 {
        w.pass(JobKind::Statement, "2026-12-01T07:30:00Z").await;
        w.pass(JobKind::Report, "2026-12-01T07:30:00Z").await;
    }
    let statements = w.outbox("monthly-statement").await;
    let mut to: Vec<String> = statements
        .iter()
        .flat_map(|m| m.recipients.clone())
        .collect();
    to.sort();
    let mut want = vec![w.addr("alice"), w.addr("dave")];
    want.sort();
    assert_eq!(
        to, want,
        "billing and primary, not who opted out, nothing for the quiet client"
    );
    assert!(statements[0].subject.contains("November 2026"));
    let reports = w.outbox("service-report").await;
    let mut to: Vec<String> = reports.iter().flat_map(|m| m.recipients.clone()).collect();
    to.sort();
    let mut want = vec![w.addr("alice"), w.addr("dave")];
    want.sort();
    assert_eq!(to, want);
    // The idle client: nothing open, nothing happened — no mail.
    assert_eq!(
        stages(&w.runs("report").await),
        [
            ("2026-11", RunStatus::Done),
            ("2026-11", RunStatus::Skipped)
        ]
    );
    assert_eq!(
        w.runs("statement").await[1].note.as_deref(),
        Some("nothing is open")
    );

    // The CSV rides along, one row per ticket, formulas defused.
    let raw = {
        let mut conn = w.app.db.conn().await.unwrap();
        outbox::raw_of(&mut conn, reports[0].id)
            .await
            .unwrap()
            .unwrap()
    };
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let csv = message
        .attachments()
        .find(|a| mail_parser::MimeHeaders::attachment_name(*a) == Some("tickets-2026-11.csv"))
        .expect("the CSV attachment");
    let text = String::from_utf8(csv.contents().to_vec()).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows[0].starts_with("number,subject,status"));
    assert!(text.contains("Printer jam,closed"), "{text}");
    assert!(text.contains(",'=cmd|' /C calc'!A0,open,"), "{text}");
    let body = message.body_text(0).unwrap();
    assert!(body.contains("Tickets opened: 3"), "{body}");
    assert!(body.contains("Tickets closed: 1"), "{body}");
    // In time, late, and never answered (past its target): 1 of 3.
    assert!(body.contains("33 % of 3"), "{body}");

    // Later in the month nothing more; a month-old cron time is not caught up.
    assert!(w
        .pass(JobKind::Statement, "2026-12-20T07:30:00Z")
        .await
        .runs
        .is_empty());
    assert_eq!(w.outbox("monthly-statement").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monthly_mail_is_caught_up_after_downtime_but_not_on_a_first_start() {
    for (previous, caught_up) in [
        // Down from 28 November to 3 December: the 1st is caught up.
        (Some("2026-11-28T10:00:00Z"), true),
        // Installed on 2 December: November is nobody's question.
        (None, false),
    ] {
        let w = world("").await;
        w.import_client(None).await;
        w.import_invoice(1, "2026-11-20").await;
        {
            let mut conn = w.app.db.conn().await.unwrap();
            match previous {
                Some(at) => job_runs::record_pass(&mut conn, "statement", ms(at)).await,
                None => {
                    job_runs::first_start(&mut conn, "statement", ms("2026-12-02T09:00:00Z")).await
                }
            }
            .unwrap();
        }
        let report = w.pass(JobKind::Statement, "2026-12-03T09:00:00Z").await;
        assert_eq!(
            report.runs.len(),
            usize::from(caught_up),
            "{previous:?}: {report:#?}"
        );
        // Either way the next month comes on time.
        let next = w.pass(JobKind::Statement, "2027-01-01T07:00:00Z").await;
        assert_eq!(next.runs.len(), 1, "{previous:?}: {next:#?}");
        assert_eq!(next.runs[0].stage, "2026-12");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_whose_answer_was_lost_is_retried_under_its_key_and_a_debit_settles_by_webhook() {
    let fake = FakeStripe::start().await;
    let w = world(&fake.config_toml()).await;
    // The webhook endpoint of this app, on a real port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    tokio::spawn(postdesk::web::serve(
        w.app.clone(),
        listener,
        cancel.clone(),
    ));
    fake.set_webhook_target(webhook);

    w.import_client(None).await;
    w.import(&format!(
        r#"{{"recurring_invoices":[
            {{"client":"{c}","scope":"Card","currency":"EUR","quantity":"1","unit_price":"50",
              "frequency":"monthly","next_bill_date":"2026-12-01"}},
            {{"client":"{c}","scope":"Debit","currency":"EUR","quantity":"1","unit_price":"100",
              "frequency":"monthly","next_bill_date":"2026-12-02"}}]}}"#,
        c = w.client()
    ))
    .await;
    let provider = w.app.payments.clone().unwrap();
    let customer = provider
        .create_customer(&postdesk::payments::NewCustomer {
            client_ref: w.client_id().await.to_string(),
            name: w.client(),
            email: None,
            idempotency_key: format!("customer-{}", w.t.tag),
        })
        .await
        .unwrap();
    autopay_with(&w, &fake, &customer, "Card", PayWith::Card).await;
    autopay_with(&w, &fake, &customer, "Debit", PayWith::SepaDebit).await;

    // 1 December: the card is charged, but the answer never arrives.
    let day1 = ms("2026-12-01T06:00:00Z");
    fake.set_now(day1 / 1000);
    w.pass_ms(JobKind::Recurring, day1).await;
    let card = w.generated_invoices().await[0].0.clone();
    fake.lose_next_answer();
    let lost = w.pass_ms(JobKind::Autopay, day1 + 60_000).await;
    assert!(lost.runs.is_empty() && lost.deferred == 1, "{lost:#?}");
    assert_eq!(fake.charges().len(), 1, "Stripe did charge");
    assert_ne!(w.invoice(&card).await.status, "paid");
    // Not before its retry time; then the same key brings the same charge.
    assert_eq!(
        w.pass_ms(JobKind::Autopay, day1 + 5 * 60_000)
            .await
            .runs
            .len(),
        0
    );
    let retried = w.pass_ms(JobKind::Autopay, day1 + 20 * 60_000).await;
    assert_eq!(retried.runs.len(), 1, "{retried:#?}");
    assert_eq!(fake.charges().len(), 1, "no second charge");
    assert_eq!(w.invoice(&card).await.status, "paid");
    assert_eq!(w.outbox("payment-received").await.len(), 1);

    // 2 December: the debit is processing until its webhook says it settled.
    let day2 = ms("2026-12-02T06:00:00Z");
    fake.set_now(day2 / 1000);
    w.pass_ms(JobKind::Recurring, day2).await;
    let debit = w.generated_invoices().await[1].0.clone();
    w.pass_ms(JobKind::Autopay, day2 + 60_000).await;
    assert_eq!(w.invoice(&debit).await.status, "processing");
    let pi = fake
        .charges()
        .into_iter()
        .find(|c| c.amount == 10_000)
        .unwrap()
        .payment_intent;
    let day5 = day2 + 3 * 86_400_000;
    w.clock.set(day5);
    fake.set_now(day5 / 1000);
    fake.settle_payment_intent(&pi, true).await;
    wait_for("the debit to settle", Duration::from_secs(10), || async {
        (w.invoice(&debit).await.status == "paid").then_some(())
    })
    .await;
    assert_eq!(w.outbox("payment-received").await.len(), 2);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issued_invoice_carries_its_pdf_when_the_operator_wants_it() {
    let w = world("[payments]\nattach_invoice_pdf = true\n").await;
    w.import_client(None).await;
    w.import(&format!(
        r#"{{"recurring_invoices":[{{"client":"{}","scope":"Managed workplace","currency":"EUR",
            "quantity":"12","unit_price":"45.00","tax_rate":"19","frequency":"monthly",
            "next_bill_date":"2026-12-01"}}]}}"#,
        w.client()
    ))
    .await;
    w.pass(JobKind::Recurring, "2026-12-01T06:00:00Z").await;
    let mail = &w.outbox("invoice-issued").await[0];
    let raw = {
        let mut conn = w.app.db.conn().await.unwrap();
        outbox::raw_of(&mut conn, mail.id).await.unwrap().unwrap()
    };
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert!(message.body_text(0).unwrap().contains("attached as a PDF"));
    let number = w.generated_invoices().await[0].0.clone();
    let pdf = message
        .attachments()
        .find(|a| {
            mail_parser::MimeHeaders::attachment_name(*a) == Some(&format!("invoice-{number}.pdf"))
        })
        .expect("the PDF attachment");
    assert!(pdf.contents().starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoice.pdf");
    std::fs::write(&path, pdf.contents()).unwrap();
    let text = std::process::Command::new("pdftotext")
        .args([path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils, installed by tests/harness/install-deps.sh)");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&number), "{text}");
    assert!(text.contains("Managed workplace"), "{text}");
}
