//! The notification service: every delivery (email, SMS, voice) is rendered once, recorded in
//! the environment's outbox, and sent: email with a real SMTP conversation when SMTP is
//! configured, SMS and voice through the environment's custom phone delivery provider when it
//! has one (HTTP, 5-second timeout, one retry). The outbox is Lanyard's own extension, so
//! tests and developers can read codes; it is kept only in development mode (`--dev`).

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::json;

use crate::engine::phone;
use crate::error::ApiResult;
use crate::resources::{outbox, phone_delivery};
use crate::state::App;
use crate::store::Doc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
    Voice,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "EMAIL",
            Channel::Sms => "SMS",
            Channel::Voice => "VOICE",
        }
    }
}

pub struct Message<'a> {
    pub env_id: &'a str,
    pub channel: Channel,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub user_id: Option<&'a str>,
    /// The email sender of the template content; else the server's `--smtp-from`.
    pub from: Option<&'a str>,
}

const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Records the message in the outbox and delivers it; a delivery failure is recorded on the
/// outbox entry (status `FAILED` with the error), never lost and never fatal to the caller.
pub async fn deliver(app: &App, m: &Message<'_>) -> ApiResult<Doc> {
    let (status, error) = match m.channel {
        Channel::Email => match &app.settings.smtp_url {
            Some(url) => {
                let from = m.from.unwrap_or(&app.settings.smtp_from);
                outcome(m, send_email(url, from, m).await)
            }
            None => ("RECORDED", None),
        },
        Channel::Sms | Channel::Voice => {
            match phone_delivery::request_for(app, m.env_id, m.channel.name()).await? {
                Some((request, auth)) => outcome(m, phone::send(app, &request, &auth, m).await),
                None => ("RECORDED", None),
            }
        }
    };
    record(app, outbox_doc(m, status, error)).await
}

/// Stores the outbox entry, when the server keeps an outbox (`--dev`); otherwise the entry
/// only tells the caller how the delivery went.
async fn record(app: &App, doc: Doc) -> ApiResult<Doc> {
    if !app.settings.outbox {
        return Ok(doc);
    }
    let mut tx = app.store.begin().await?;
    tx.insert(&doc, &[]).await?;
    tx.commit().await?;
    Ok(doc)
}

/// Like [`deliver`] for email, but the SMTP conversation happens after the caller has
/// answered: the outbox entry is `PENDING` until it is `SENT` or `FAILED`. Used where the
/// response time must not tell whether a message went out (password recovery).
pub async fn deliver_detached(app: &App, m: &Message<'_>) -> ApiResult<Doc> {
    let Some(url) = app
        .settings
        .smtp_url
        .clone()
        .filter(|_| m.channel == Channel::Email)
    else {
        return deliver(app, m).await;
    };
    let doc = record(app, outbox_doc(m, "PENDING", None)).await?;
    let store = app.store.clone();
    let keep = app.settings.outbox;
    let from = m.from.unwrap_or(&app.settings.smtp_from).to_string();
    let (env_id, to, subject, body) = (
        m.env_id.to_string(),
        m.to.to_string(),
        m.subject.to_string(),
        m.body.to_string(),
    );
    let user_id = m.user_id.map(str::to_string);
    let mut pending = doc.clone();
    tokio::spawn(async move {
        let m = Message {
            env_id: &env_id,
            channel: Channel::Email,
            to: &to,
            subject: &subject,
            body: &body,
            user_id: user_id.as_deref(),
            from: None,
        };
        let (status, error) = outcome(&m, send_email(&url, &from, &m).await);
        if !keep {
            return;
        }
        pending.data["status"] = json!(status);
        if let Some(e) = error {
            pending.data["error"] = json!(e);
        }
        let saved = async {
            let mut tx = store.begin().await?;
            tx.update_data(&mut pending).await?;
            tx.commit().await
        };
        if let Err(e) = saved.await {
            tracing::warn!(environment_id = %env_id, error = %e, "recording a delivery failed");
        }
    });
    Ok(doc)
}

fn outbox_doc(m: &Message<'_>, status: &str, error: Option<String>) -> Doc {
    let mut data = json!({
        "deliveryMethod": m.channel.name(),
        "to": m.to,
        "subject": m.subject,
        "body": m.body,
        "status": status,
    });
    if let Some(u) = m.user_id {
        data["user"] = json!({ "id": u });
    }
    if let Some(e) = error {
        data["error"] = json!(e);
    }
    Doc::new(
        outbox::KIND,
        // Time-ordered ids (monotonic within the process): messages created in the same
        // millisecond still list newest first.
        &uuid::Uuid::now_v7().to_string(),
        m.env_id,
        "",
        data,
    )
}

fn outcome(m: &Message<'_>, r: Result<(), String>) -> (&'static str, Option<String>) {
    match r {
        Ok(()) => ("SENT", None),
        Err(e) => {
            tracing::warn!(environment_id = %m.env_id, channel = m.channel.name(), error = %e, "delivery failed");
            ("FAILED", Some(e))
        }
    }
}

async fn send_email(url: &str, from: &str, m: &Message<'_>) -> Result<(), String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("invalid From address: {e}"))?;
    let to: Mailbox =
        m.to.parse()
            .map_err(|e| format!("invalid recipient: {e}"))?;
    let email = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(m.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(m.body.to_string())
        .map_err(|e| format!("building the message: {e}"))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| format!("invalid SMTP URL: {e}"))?
        .timeout(Some(SMTP_TIMEOUT))
        .build();
    match tokio::time::timeout(SMTP_TIMEOUT, transport.send(email)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("SMTP: {e}")),
        Err(_) => Err("SMTP: timed out".into()),
    }
}
