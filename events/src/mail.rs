//! Ticket emails through lettre: `.eml` files under `[mail] dir` (the demo), or SMTP.

use lettre::message::header::ContentType;
use std::path::{Path, PathBuf};

use anyhow::Context;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use marquee_platform::Settings;
use serde_json::Value;

pub enum Mailer {
    /// `.eml` files in a directory, each appearing whole (see `Mailer::file`).
    File {
        staging: AsyncFileTransport<Tokio1Executor>,
        staging_dir: PathBuf,
        dir: PathBuf,
    },
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the message is missing {0}")]
    Incomplete(&'static str),
    #[error("building the email: {0}")]
    Build(String),
    #[error("sending the email: {0}")]
    Send(String),
}

/// The SMTP transport for `smtp_url`, in lettre's connection-URL form (credentials
/// percent-encoded):
/// - `smtps://user:pass@host[:465]`: SMTP over TLS (what providers recommend);
/// - `smtp://user:pass@host[:587]?tls=required`: STARTTLS, refusing a server without it;
/// - `smtp://host[:25]`: no TLS, for a relay on the same host or network only.
///
/// Servers are verified against the web's roots (webpki-roots), plus the PEM certificates in
/// `ca_file` when given (a relay with a private CA). Errors never repeat the URL: it carries
/// the credentials.
fn smtp(url: &str, ca_file: Option<&Path>) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| anyhow::anyhow!("[mail] smtp_url is not an SMTP URL: {e}"))?
        .timeout(Some(std::time::Duration::from_secs(10)));
    let Some(ca_file) = ca_file else {
        return Ok(builder.build());
    };
    let pem = std::fs::read(ca_file)
        .with_context(|| format!("[mail] reading smtp_ca_file {}", ca_file.display()))?;
    let ca = Certificate::from_pem(&pem)
        .map_err(|e| anyhow::anyhow!("[mail] smtp_ca_file {}: {e}", ca_file.display()))?;
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("[mail] smtp_url: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("[mail] smtp_url has no host"))?;
    let params = TlsParameters::builder(host.to_owned())
        .add_root_certificate(ca)
        .build_rustls()
        .map_err(|e| anyhow::anyhow!("[mail] TLS settings: {e}"))?;
    let tls = match (parsed.scheme(), tls_query(&parsed).as_deref()) {
        ("smtps", _) => Tls::Wrapper(params),
        ("smtp", Some("required")) => Tls::Required(params),
        ("smtp", Some("opportunistic")) => Tls::Opportunistic(params),
        _ => anyhow::bail!("[mail] smtp_ca_file is set but smtp_url asks for no TLS"),
    };
    Ok(builder.tls(tls).build())
}

fn tls_query(url: &url::Url) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned())
}

/// Who ticket emails come from and where their ticket link points (`[mail]` settings).
#[derive(Debug, Clone)]
pub struct Letterhead {
    pub from: String,
    /// The public address of the gateway, whose `/t/{reservation_id}` is the ticket page.
    pub ticket_base_url: String,
    /// The keys that open the sealed email (`email_enc`) each message carries.
    pub pii: Option<marquee_platform::pii::Pii>,
}

/// A plain-text email to `to` from the letterhead's sender, its id from the message's.
fn plain(
    head: &Letterhead,
    to: &str,
    subject: &str,
    message: &Value,
    text: String,
) -> Result<Message, MailError> {
    let id = message["message_id"].as_str().unwrap_or_default();
    let address = |a: &str| {
        a.parse()
            .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))
    };
    Message::builder()
        .from(address(&head.from)?)
        .to(address(to)?)
        .subject(subject)
        .message_id(Some(format!("<{id}@marquee>")))
        .singlepart(SinglePart::plain(text))
        .map_err(|e| MailError::Build(e.to_string()))
}

/// The fan's address, opened from the message's sealed `email_enc`: the one place an email is
/// opened, to send that fan this email (DESIGN.md 9). A message from before emails were
/// sealed carries it as `email`.
fn recipient(head: &Letterhead, message: &Value) -> Result<String, MailError> {
    match (&head.pii, message.get("email_enc").filter(|v| !v.is_null())) {
        (Some(pii), Some(sealed)) => {
            let sealed: marquee_platform::pii::Sealed = serde_json::from_value(sealed.clone())
                .map_err(|_| MailError::Incomplete("email_enc"))?;
            pii.open(&sealed)
                .map_err(|e| MailError::Build(e.to_string()))
        }
        _ => message["email"]
            .as_str()
            .map(str::to_owned)
            .ok_or(MailError::Incomplete("email")),
    }
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let m = &settings.mail;
        Ok(match m.transport.as_str() {
            "smtp" => Self::smtp(
                m.smtp_url.expose(),
                Some(m.smtp_ca_file.as_path()).filter(|p| !p.as_os_str().is_empty()),
            )?,
            _ => Self::file(&m.dir)?,
        })
    }

    /// `.eml` files in `dir`, by lettre's file transport, each appearing whole: lettre writes
    /// a message in place under its final name, so a reader (a person watching `var/mail/`, a
    /// test) could open it half written. It writes into `dir/.partial/` instead; the message
    /// reaches the disk and is then renamed into `dir`, which is atomic within a filesystem.
    pub fn file(dir: &Path) -> anyhow::Result<Self> {
        let staging_dir = dir.join(".partial");
        std::fs::create_dir_all(&staging_dir)
            .with_context(|| format!("[mail] creating {}", staging_dir.display()))?;
        Ok(Self::File {
            staging: AsyncFileTransport::new(&staging_dir),
            staging_dir,
            dir: dir.to_path_buf(),
        })
    }

    /// Sending through the SMTP server at `url` (see `smtp`).
    pub fn smtp(url: &str, ca_file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self::Smtp(smtp(url, ca_file)?))
    }

    /// The refund notice for a `BookingRefunded` message: why, and how much goes back.
    pub fn refund_email(head: &Letterhead, message: &Value) -> Result<Message, MailError> {
        let to = recipient(head, message)?;
        let booking = message["booking_id"].as_str().unwrap_or_default();
        let total = message["total_cents"].as_i64().unwrap_or(0);
        let currency = message["currency"]
            .as_str()
            .unwrap_or_default()
            .to_uppercase();
        let why = match message["reason"].as_str() {
            Some("show_cancelled") => {
                "The show was cancelled, and every ticket for it refunded. We are sorry."
            }
            Some("operator") => "The organiser refunded your booking.",
            _ => "Your payment arrived after your seats' hold had ended, so it goes back to you.",
        };
        let text = format!(
            "{why}\n\nBooking {booking}: {}.{:02} {currency} is on its way back to your card; banks take a few days to show it. Any ticket for it is no longer valid.\n",
            total / 100,
            total % 100,
        );
        plain(
            head,
            &to,
            "Your Marquee booking was refunded",
            message,
            text,
        )
    }

    /// The find-my-booking email for a `BookingsLookup` message: a link to the ticket page of
    /// each of the fan's confirmed bookings.
    pub fn lookup_email(head: &Letterhead, message: &Value) -> Result<Message, MailError> {
        let to = recipient(head, message)?;
        let ids: Vec<&str> = message["booking_ids"]
            .as_array()
            .map(|ids| ids.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if ids.is_empty() {
            return Err(MailError::Incomplete("booking_ids"));
        }
        let base = head.ticket_base_url.trim_end_matches('/');
        let links: Vec<String> = ids.iter().map(|id| format!("  {base}/t/{id}")).collect();
        let text = format!(
            "You asked for your Marquee bookings. Each link opens a ticket page with its QR code:\n\n{}\n\nIf you did not ask, you can ignore this email: the links are only sent to you.\n",
            links.join("\n")
        );
        plain(head, &to, "Your Marquee bookings", message, text)
    }

    /// The ticket email for a `BookingConfirmed` message: each seat with its category and
    /// price, the total, the code as text and as a QR image, and the link to the ticket page.
    pub fn ticket_email(head: &Letterhead, message: &Value) -> Result<Message, MailError> {
        let from = head.from.as_str();
        let opened = recipient(head, message)?;
        let to = opened.as_str();
        let code = message["ticket_code"]
            .as_str()
            .ok_or(MailError::Incomplete("ticket_code"))?;
        let seats: Vec<&str> = message["seats"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let id = message["message_id"].as_str().unwrap_or_default();
        let booking = message["booking_id"].as_str().unwrap_or_default();
        let total = message["total_cents"].as_i64().unwrap_or(0);
        let currency = message["currency"]
            .as_str()
            .unwrap_or_default()
            .to_uppercase();
        let money = |cents: i64| format!("{}.{:02} {currency}", cents / 100, cents % 100);
        // One line a seat where the message lists them (`seat_details`), else the ids.
        let lines: Vec<String> = match message["seat_details"].as_array() {
            Some(details) if !details.is_empty() => details
                .iter()
                .map(|d| {
                    format!(
                        "  Row {} seat {}  {}  {}",
                        d["row"].as_str().unwrap_or("?"),
                        d["number"].as_i64().unwrap_or(0),
                        d["category"].as_str().unwrap_or(""),
                        money(d["price_cents"].as_i64().unwrap_or(0)),
                    )
                })
                .collect(),
            _ => seats.iter().map(|s| format!("  {s}")).collect(),
        };
        let link = format!("{}/t/{booking}", head.ticket_base_url.trim_end_matches('/'));
        let text = format!(
            "Your booking {booking} is confirmed.\n\nSeats:\n{lines}\nTotal paid: {total}\nTicket code: {code}\n\nYour ticket, any time: {link}\nShow the attached QR code at the door.\n",
            lines = lines.join("\n"),
            total = money(total),
        );
        // The QR code carries the ticket's signed payload (booking-core's `tickets`), or the
        // bare code for a ticket issued before payloads were signed.
        let qr_text = message["ticket_qr"].as_str().unwrap_or(code);
        let qr = qrcode::QrCode::new(qr_text.as_bytes())
            .map_err(|e| MailError::Build(e.to_string()))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .build();
        Message::builder()
            .from(
                from.parse()
                    .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?,
            )
            .to(to
                .parse()
                .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?)
            .subject(format!("Your tickets: {}", seats.join(", ")))
            .message_id(Some(format!("<{id}@marquee>")))
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(text))
                    .singlepart(Attachment::new("ticket-qr.svg".into()).body(
                        qr,
                        ContentType::parse("image/svg+xml").expect("valid content type"),
                    )),
            )
            .map_err(|e| MailError::Build(e.to_string()))
    }

    pub async fn send(&self, email: Message) -> Result<(), MailError> {
        match self {
            Self::File {
                staging,
                staging_dir,
                dir,
            } => {
                let id = staging
                    .send(email)
                    .await
                    .map_err(|e| MailError::Send(format!("writing to {}: {e}", dir.display())))?;
                publish_whole(staging_dir, dir, &format!("{id}.eml"))
                    .await
                    .map_err(|e| MailError::Send(format!("writing to {}: {e}", dir.display())))
            }
            Self::Smtp(t) => t
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }
}

/// Moves the written message `name` from `staging_dir` into `dir` once it is on disk.
async fn publish_whole(staging_dir: &Path, dir: &Path, name: &str) -> std::io::Result<()> {
    let staged = staging_dir.join(name);
    tokio::fs::File::open(&staged).await?.sync_all().await?;
    tokio::fs::rename(&staged, dir.join(name)).await
}
