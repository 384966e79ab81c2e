// Stripe's published library on both sides of Marquee's webhook signatures.
//   node webhook-headers.mjs sign SECRET          reads a payload on stdin, prints a Stripe-Signature
//                                                 header made by stripe.webhooks.generateTestHeaderString
//   node webhook-headers.mjs verify SECRET HEADER reads a payload on stdin, exits 0 when
//                                                 stripe.webhooks.constructEvent accepts it
import Stripe from "stripe";

const [mode, secret, header] = process.argv.slice(2);
const stripe = new Stripe("sk_test_compat");
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const payload = Buffer.concat(chunks).toString("utf8");

if (mode === "sign") {
  process.stdout.write(stripe.webhooks.generateTestHeaderString({ payload, secret }));
} else if (mode === "verify") {
  try {
    const event = stripe.webhooks.constructEvent(payload, header, secret);
    process.stdout.write(`verified ${event.id}`);
  } catch (e) {
    process.stderr.write(`rejected: ${e.message}`);
    process.exit(1);
  }
} else {
  process.stderr.write("usage: node webhook-headers.mjs sign SECRET | verify SECRET HEADER");
  process.exit(2);
}
