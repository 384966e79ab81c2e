//! Ticket emails through lettre: `.eml` files under `[mail] dir` (the demo), or SMTP.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use marquee_platform::Settings;
use serde_json::Value;

pub enum Mailer {
    File(AsyncFileTransport<Tokio1Executor>),
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

/// `smtp://[user:pass@]host[:port]`: a plain SMTP connection (a local relay or sink; this
/// build has no TLS for SMTP).
fn smtp(url: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let rest = url
        .strip_prefix("smtp://")
        .ok_or_else(|| anyhow::anyhow!("[mail] smtp_url must start with smtp://"))?;
    let (auth, host_port) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let host_port = host_port.trim_end_matches('/');
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>()?),
        None => (host_port, 25),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(std::time::Duration::from_secs(10)));
    if let Some((user, pass)) = auth.and_then(|a| a.split_once(':')) {
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            user.to_owned(),
            pass.to_owned(),
        ));
    }
    Ok(builder.build())
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let m = &settings.mail;
        Ok(match m.transport.as_str() {
            "smtp" => Self::Smtp(smtp(m.smtp_url.expose())?),
            _ => {
                std::fs::create_dir_all(&m.dir)?;
                Self::File(AsyncFileTransport::new(&m.dir))
            }
        })
    }

    /// The ticket email for a `BookingConfirmed` message: the code as text and as a QR image.
    pub fn ticket_email(from: &str, message: &Value) -> Result<Message, MailError> {
        let to = message["email"]
            .as_str()
            .ok_or(MailError::Incomplete("email"))?;
        let code = message["ticket_code"]
            .as_str()
            .ok_or(MailError::Incomplete("ticket_code"))?;
        let seats: Vec<&str> = message["seats"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let id = message["message_id"].as_str().unwrap_or_default();
        let total = message["total_cents"].as_i64().unwrap_or(0);
        let currency = message["currency"]
            .as_str()
            .unwrap_or_default()
            .to_uppercase();
        let text = format!(
            "Your booking {booking} is confirmed.\n\nSeats: {seats}\nPaid: {whole}.{cents:02} {currency}\nTicket code: {code}\n\nShow the attached QR code at the door.\n",
            booking = message["booking_id"].as_str().unwrap_or_default(),
            seats = seats.join(", "),
            whole = total / 100,
            cents = total % 100,
        );
        let qr = qrcode::QrCode::new(code.as_bytes())
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
            Self::File(t) => t
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
            Self::Smtp(t) => t
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }
}
