// Verifies webhook deliveries with the Standard Webhooks reference library (npm
// `standardwebhooks`, pinned in package.json), independently of our Rust signer.
//
//   node verify-webhook.mjs cases.json
//
// cases.json: [{"secret": "whsec_...", "id": "msg_...", "timestamp": "1733380000",
//               "signature": "v1,... v1,...", "body": "<exact body>", "expect": true|false}, ...]
// Prints one line per case and exits 0 only if every verdict matches its `expect`.
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
let wrong = 0;
for (const [i, c] of cases.entries()) {
  let accepted;
  let why = "";
  try {
    new Webhook(c.secret).verify(c.body, {
      "webhook-id": c.id,
      "webhook-timestamp": c.timestamp,
      "webhook-signature": c.signature,
    });
    accepted = true;
  } catch (e) {
    accepted = false;
    why = ` (${e.message})`;
  }
  const ok = accepted === c.expect;
  if (!ok) wrong += 1;
  console.log(`${ok ? "ok" : "WRONG"} case ${i}: ${accepted ? "accepted" : "refused"}${why}`);
}
console.log(`${cases.length - wrong} of ${cases.length} as expected`);
process.exit(wrong === 0 ? 0 : 1);
