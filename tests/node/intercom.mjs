// Intercom's official Node SDK (`intercom-client`, pinned in package.json) against a Trailmark server:
// only `baseUrl` differs from talking to https://api.intercom.io.
//
//   node intercom.mjs BASE_URL ACCESS_TOKEN      (or TRAILMARK_URL / TRAILMARK_TOKEN in the environment)
//
// Prints one JSON object on stdout: what each SDK call returned (tests/test_node_sdks.py asserts on it).
// Exits 1 after printing {"failed": step, "error": …} when a call throws unexpectedly.
import { IntercomClient, IntercomError, Intercom } from "intercom-client";

const baseUrl = process.argv[2] ?? process.env.TRAILMARK_URL;
const token = process.argv[3] ?? process.env.TRAILMARK_TOKEN;
if (!baseUrl || !token) {
  console.error("usage: node intercom.mjs BASE_URL ACCESS_TOKEN");
  process.exit(2);
}

// maxRetries: 0 so a wrong status shows up at once instead of after the SDK's backoff.
const client = new IntercomClient({ token, baseUrl, maxRetries: 0, timeoutInSeconds: 20 });
const out = { sdk: "intercom-client" };
let step = "start";

function errorJson(err) {
  if (err instanceof IntercomError) {
    return { class: err.constructor.name, statusCode: err.statusCode, body: err.body };
  }
  return { class: err?.constructor?.name, message: String(err?.stack ?? err) };
}

/** The SDK call's parsed body and status (withRawResponse keeps the HTTP answer for asserting on it). */
async function call(name, promise) {
  step = name;
  const { data, rawResponse } = await promise.withRawResponse();
  return { status: rawResponse.status, data: data ?? null };
}

/** An SDK call that must fail: its error class, status and error-list body. */
async function failing(name, promise) {
  step = name;
  try {
    await promise;
  } catch (err) {
    return errorJson(err);
  }
  throw new Error(`${name}: expected an error, the call succeeded`);
}

try {
  const now = Math.floor(Date.now() / 1000);
  const ext = "node-" + now;

  out.user = await call("contacts.create(user)", client.contacts.create({
    external_id: ext, email: `frodo.${now}@example.com`, name: "Frodo",
    custom_attributes: { plan: "pro", seats: 3 },
  }));
  out.lead = await call("contacts.create(lead)", client.contacts.create({ role: "lead", email: `lead.${now}@shire.example` }));
  const user = out.user.data;
  const lead = out.lead.data;

  // Every kind of metadata Intercom documents: string, number, date, link, rich link, monetary amount.
  out.metadata = {
    invite_code: "ADDAFRIEND", load: 3.67, contact_date: 1392036272,
    article: "https://example.org/ab1de.html",
    link: { url: "https://example.org/ab1de.html", value: "the dude abides" },
    price: { amount: 34999, currency: "eur" },
  };
  out.create_user_event = await call("events.create(user_id)", client.events.create({
    event_name: "invited-friend", created_at: now - 60, user_id: ext, metadata: out.metadata,
  }));
  out.create_lead_event = await call("events.create(id)", client.events.create({
    event_name: "asked-question", created_at: now - 30, id: lead.id, metadata: { topic: "pricing" },
  }));
  out.summaries = await call("events.summaries", client.events.summaries({
    user_id: ext, event_summaries: { event_name: "placed-order", count: 3, first: now - 86400 * 200, last: now - 86400 * 100 },
  }));

  out.list = await call("events.list", client.events.list({ type: "user", user_id: ext, per_page: 5 }));
  out.summary = await call("events.list(summary)", client.events.list({ type: "user", user_id: ext, summary: true }));
  // The newer "data events" client: `filter` is an object, which this SDK serialises as JSON in the query.
  out.data_events = await call("unstable.dataEvents.lisDataEvents",
    client.unstable.dataEvents.lisDataEvents({ filter: { user_id: ext }, type: "user" }));
  out.lead_events = await call("events.list(lead)",
    client.events.list({ type: "user", intercom_user_id: lead.id }));

  out.merged = await call("contacts.mergeLeadInUser", client.contacts.mergeLeadInUser({ from: lead.id, into: user.id }));
  out.after_merge = await call("events.list(after merge)",
    client.events.list({ type: "user", intercom_user_id: user.id, per_page: 10 }));
  out.lead_gone = await failing("contacts.find(merged lead)", client.contacts.find({ contact_id: lead.id }));
  out.found = await call("contacts.showContactByExternalId", client.contacts.showContactByExternalId({ external_id: ext }));

  out.unknown_user = await failing("events.create(unknown user)",
    client.events.create({ event_name: "x", created_at: now, user_id: "nobody-" + now }));
  const stranger = new IntercomClient({ token: "not-a-token", baseUrl, maxRetries: 0 });
  out.unauthorized = await failing("contacts.list(bad token)", stranger.contacts.list());
  out.unauthorized.isUnauthorizedError = null;
  try {
    await stranger.events.list({ type: "user", user_id: ext });
  } catch (err) {
    out.unauthorized.isUnauthorizedError = err instanceof Intercom.UnauthorizedError;
  }
} catch (err) {
  console.log(JSON.stringify({ ...out, failed: step, error: errorJson(err) }));
  process.exit(1);
}
console.log(JSON.stringify(out));
