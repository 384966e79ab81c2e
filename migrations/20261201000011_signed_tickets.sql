-- Signed tickets (issue 15): the QR code carries a payload signed with a ticket key (an
-- EdDSA token of type `marquee-ticket`: code, show, seats), kept beside the code so the page,
-- the API and the email show the same one. Tickets issued before carry none (their QR code is
-- the bare code, still valid when scanned). Announcements carry it as `ticket_qr`.
ALTER TABLE tickets ADD COLUMN qr_payload text;
