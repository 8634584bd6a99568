// A loopback webhook receiver for tests and the demo (issue #24): it checks every delivery
// with the Standard Webhooks reference library (npm `standardwebhooks`, pinned in
// package.json), independently of our Rust signer, and records what it saw.
//
//   node webhook-receiver.mjs [--port N] [--print] [--stdin-lifeline]
//
// Listens on 127.0.0.1 (port 0, the default, picks a free one); the FIRST stdout line is
// exactly {"listening":<port>}. Options:
//   --print           also print each recorded delivery as one JSON line on stdout;
//   --stdin-lifeline  exit when stdin reaches end-of-file (the parent that spawned it with
//                     a pipe died or dropped it), so no receiver outlives its test.
//
// Endpoints:
//   PUT  /control/endpoints/<name>   {"secrets":["whsec_..."], "status":200, "delay_ms":0}
//        configures (or reconfigures at any time) the endpoint <name>; a field left out keeps
//        its previous value (defaults: [], 200, 0). Optional "headers": {"location": "..."}
//        adds headers to its answers (e.g. a redirect the sender must not follow). Answers
//        the endpoint's configuration.
//   POST /hooks/<name>               a delivery. Unconfigured name: 404, nothing recorded.
//        The raw body (at most 1 MiB, else 413) is verified separately with EACH configured
//        secret (`new Webhook(secret).verify(body, {webhook-id, webhook-timestamp,
//        webhook-signature})`), then recorded as
//          {endpoint, webhook_id, webhook_timestamp, type, data, valid_with:[secret
//           indexes that verified], valid, status, received_at_ms, errors:[per secret: null
//           or the library's message]}
//        (type/data from the JSON body, null when it is not JSON). The record is made BEFORE
//        the endpoint's delay_ms wait (a hang that ends early if the client disconnects);
//        then it answers the configured status.
//   GET  /control/deliveries[?endpoint=<name>]   the records, oldest first (all endpoints if
//        no name is given).
//   GET  /control/endpoints          the configuration of every endpoint.
//
// Never crashes on bad input: bad JSON or missing headers give a record with valid:false.
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const MAX_BODY = 1024 * 1024;
const NAME = /^[A-Za-z0-9._~-]{1,200}$/;

function parseArgs(argv) {
  const opts = { port: 0, print: false, lifeline: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") {
      opts.port = Number(argv[++i]);
    } else if (a.startsWith("--port=")) {
      opts.port = Number(a.slice("--port=".length));
    } else if (a === "--print") {
      opts.print = true;
    } else if (a === "--stdin-lifeline") {
      opts.lifeline = true;
    } else {
      console.error(`webhook-receiver: unknown argument ${a}`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    console.error("webhook-receiver: --port needs an integer 0..65535");
    process.exit(2);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
/** name -> {secrets: string[], status: number, delay_ms: number} */
const endpoints = new Map();
/** every recorded delivery, oldest first */
const deliveries = [];

// A reader that went away must not kill the receiver (EPIPE on a --print line).
process.stdout.on("error", () => {});

function send(res, status, value, extraHeaders = {}) {
  if (res.writableEnded || res.destroyed) return;
  if (status === 204 || status === 304) {
    res.writeHead(status, extraHeaders);
    res.end();
    return;
  }
  const body = JSON.stringify(value);
  res.writeHead(status, {
    ...extraHeaders,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** Reads the body up to `limit` bytes; resolves {body} or {tooLarge: true}. */
function readBody(req, limit) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    let done = false;
    const finish = (v) => {
      if (!done) {
        done = true;
        resolve(v);
      }
    };
    req.on("data", (chunk) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        finish({ tooLarge: true });
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => finish({ body: Buffer.concat(chunks) }));
    req.on("error", () => finish({ aborted: true }));
    req.on("close", () => finish({ aborted: true }));
  });
}

function header(req, name) {
  const v = req.headers[name];
  return typeof v === "string" ? v : null;
}

function configure(name, input, old) {
  const cfg = old ? { ...old } : { secrets: [], status: 200, delay_ms: 0, headers: {} };
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new Error("body must be a JSON object");
  }
  if ("secrets" in input) {
    if (!Array.isArray(input.secrets) || !input.secrets.every((s) => typeof s === "string")) {
      throw new Error("secrets must be an array of strings");
    }
    cfg.secrets = [...input.secrets];
  }
  if ("status" in input) {
    if (!Number.isInteger(input.status) || input.status < 200 || input.status > 599) {
      throw new Error("status must be an integer 200..599");
    }
    cfg.status = input.status;
  }
  if ("delay_ms" in input) {
    if (!Number.isInteger(input.delay_ms) || input.delay_ms < 0 || input.delay_ms > 3_600_000) {
      throw new Error("delay_ms must be an integer 0..3600000");
    }
    cfg.delay_ms = input.delay_ms;
  }
  if ("headers" in input) {
    const h = input.headers;
    if (h === null || typeof h !== "object" || Array.isArray(h) ||
        !Object.entries(h).every(([k, v]) => /^[A-Za-z0-9-]+$/.test(k) && typeof v === "string")) {
      throw new Error("headers must be an object of header name -> string");
    }
    cfg.headers = { ...h };
  }
  return cfg;
}

function record(rec) {
  deliveries.push(rec);
  if (opts.print) process.stdout.write(`${JSON.stringify(rec)}\n`);
}

async function delivery(req, res, name) {
  const cfg = endpoints.get(name);
  if (!cfg) {
    // Drain whatever was sent, answer 404, record nothing.
    req.resume();
    send(res, 404, { error: `endpoint ${name} is not configured` });
    return;
  }
  const received_at_ms = Date.now();
  // This delivery's answer, even if the endpoint is re-PUT meanwhile.
  const { secrets, status, delay_ms, headers: answerHeaders } = cfg;
  const webhook_id = header(req, "webhook-id");
  const webhook_timestamp = header(req, "webhook-timestamp");
  const webhook_signature = header(req, "webhook-signature");
  const got = await readBody(req, MAX_BODY);
  if (got.aborted) return; // the client went away mid-body: nothing to answer
  if (got.tooLarge) {
    record({
      endpoint: name, webhook_id, webhook_timestamp, type: null, data: null,
      valid_with: [], valid: false, status: 413, received_at_ms,
      errors: secrets.map(() => "body larger than 1 MiB"),
    });
    send(res, 413, { error: "body larger than 1 MiB" });
    req.destroy();
    return;
  }
  const body = got.body;
  const headers = {};
  if (webhook_id !== null) headers["webhook-id"] = webhook_id;
  if (webhook_timestamp !== null) headers["webhook-timestamp"] = webhook_timestamp;
  if (webhook_signature !== null) headers["webhook-signature"] = webhook_signature;
  const valid_with = [];
  const errors = [];
  for (const [i, secret] of secrets.entries()) {
    try {
      // The exact bytes received (a string would be re-encoded as UTF-8); jsonParse off so
      // that only the signature decides (a signed non-JSON body still verifies).
      new Webhook(secret).verify(body, headers, { jsonParse: false });
      valid_with.push(i);
      errors.push(null);
    } catch (e) {
      errors.push(String(e?.message ?? e));
    }
  }
  let type = null;
  let data = null;
  try {
    const parsed = JSON.parse(body.toString("utf8"));
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
      type = typeof parsed.type === "string" ? parsed.type : null;
      data = parsed.data === undefined ? null : parsed.data;
    }
  } catch {
    // not JSON: type and data stay null
  }
  record({
    endpoint: name, webhook_id, webhook_timestamp, type, data,
    valid_with, valid: valid_with.length > 0, status, received_at_ms, errors,
  });
  if (delay_ms > 0) {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, delay_ms);
      res.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  send(res, status, { received: true, status }, answerHeaders);
}

async function control(req, res, url) {
  const path = url.pathname;
  if (req.method === "GET" && path === "/control/deliveries") {
    const name = url.searchParams.get("endpoint");
    req.resume();
    send(res, 200, name === null ? deliveries : deliveries.filter((d) => d.endpoint === name));
    return;
  }
  if (req.method === "GET" && path === "/control/endpoints") {
    req.resume();
    send(res, 200, Object.fromEntries(endpoints));
    return;
  }
  const m = /^\/control\/endpoints\/([^/]+)$/.exec(path);
  if (m && req.method === "PUT") {
    const name = decodeURIComponent(m[1]);
    if (!NAME.test(name)) {
      req.resume();
      send(res, 400, { error: "endpoint names are [A-Za-z0-9._~-]{1,200}" });
      return;
    }
    const got = await readBody(req, MAX_BODY);
    if (got.aborted) return;
    if (got.tooLarge) {
      send(res, 413, { error: "body larger than 1 MiB" });
      req.destroy();
      return;
    }
    let cfg;
    try {
      cfg = configure(name, JSON.parse(got.body.toString("utf8")), endpoints.get(name));
    } catch (e) {
      send(res, 400, { error: String(e?.message ?? e) });
      return;
    }
    endpoints.set(name, cfg);
    send(res, 200, cfg);
    return;
  }
  req.resume();
  send(res, 404, { error: "no such control route" });
}

async function handle(req, res) {
  let url;
  try {
    url = new URL(req.url ?? "/", "http://127.0.0.1");
  } catch {
    req.resume();
    send(res, 400, { error: "bad request target" });
    return;
  }
  const hook = /^\/hooks\/([^/]+)$/.exec(url.pathname);
  if (hook) {
    let name;
    try {
      name = decodeURIComponent(hook[1]);
    } catch {
      name = hook[1];
    }
    if (req.method !== "POST") {
      req.resume();
      res.setHeader("allow", "POST");
      send(res, 405, { error: "deliveries are POST" });
      return;
    }
    await delivery(req, res, name);
    return;
  }
  if (url.pathname.startsWith("/control/")) {
    await control(req, res, url);
    return;
  }
  req.resume();
  send(res, 404, { error: "not found" });
}

const server = createServer((req, res) => {
  handle(req, res).catch((e) => {
    console.error(`webhook-receiver: ${e?.stack ?? e}`);
    send(res, 500, { error: "receiver error" });
  });
});
server.on("clientError", (_err, socket) => {
  if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
  else socket.destroy();
});
server.on("error", (e) => {
  console.error(`webhook-receiver: ${e.message}`);
  process.exit(1);
});
server.listen(opts.port, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`);
});

if (opts.lifeline) {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
