// Segment's official Node library (`@segment/analytics-node`, pinned in package.json) against a Trailmark
// server: only `host` differs from sending to https://api.segment.io (the path stays /v1/batch).
//
//   node segment.mjs HOST WRITE_KEY RUN_ID      (or TRAILMARK_URL / TRAILMARK_WRITE_KEY / TRAILMARK_RUN_ID)
//
// RUN_ID makes the ids unique: userId "seg-user-RUN_ID", anonymousId "seg-device-RUN_ID".
// Prints one JSON object on stdout: each call's delivery outcome (its callback's error, if any), every
// HTTP answer the library got (status and the server's JSON body, observed through `httpClient`, a plain
// fetch wrapper), and the 'error' events the library emitted. tests/test_node_sdks.py asserts on it.
import { Analytics } from "@segment/analytics-node";

const host = process.argv[2] ?? process.env.TRAILMARK_URL;
const writeKey = process.argv[3] ?? process.env.TRAILMARK_WRITE_KEY;
const runId = process.argv[4] ?? process.env.TRAILMARK_RUN_ID ?? String(Date.now());
if (!host || !writeKey) {
  console.error("usage: node segment.mjs HOST WRITE_KEY [RUN_ID]");
  process.exit(2);
}
const userId = `seg-user-${runId}`;
const anonymousId = `seg-device-${runId}`;

function client(key, answers, errors) {
  const analytics = new Analytics({
    writeKey: key,
    host,
    path: "/v1/batch", // the default, spelled out
    flushAt: 2,
    flushInterval: 500,
    maxRetries: 0, // a refused batch fails at once (a 4xx is never retried anyway)
    httpRequestTimeout: 10000,
    // The library's own request, passed to fetch unchanged; only the answer is recorded.
    httpClient: async (url, init) => {
      const response = await fetch(url, init);
      const text = await response.clone().text();
      let body = text;
      try { body = JSON.parse(text); } catch { /* not JSON: keep the text */ }
      answers.push({ url, status: response.status, body, sent: JSON.parse(init.body) });
      return response;
    },
  });
  analytics.on("error", (err) => errors.push({ code: err.code, reason: String(err.reason?.message ?? err.reason) }));
  return analytics;
}

/** Call `method` and resolve when its delivery settled: null when delivered, else the failure's message. */
function delivered(analytics, method, params) {
  return new Promise((resolve) => {
    analytics[method](params, (err) => resolve(err ? String(err.message ?? err) : null));
  });
}

const out = { sdk: "@segment/analytics-node", userId, anonymousId, answers: [], errors: [] };
try {
  const analytics = client(writeKey, out.answers, out.errors);

  // Batch 1 (flushAt 2): an anonymous page view, then identify links the device to the user.
  out.first = await Promise.all([
    delivered(analytics, "page", { anonymousId, name: "Pricing",
      properties: { url: "https://shop.example/pricing", title: "Pricing", path: "/pricing" } }),
    delivered(analytics, "identify", { userId, anonymousId,
      traits: { email: `${userId}@example.com`, name: "Sam Gamgee", plan: "pro", seats: 2 } }),
  ]);

  // Batch 2: a track with supported and unsupported properties, and one more from the (now known) device,
  // then closeAndFlush() as a short-lived script does.
  out.properties = {
    order_id: "A-17", revenue: 49.9, currency: "EUR", coupon_url: "https://shop.example/c/SAVE",
    gift: true, // a boolean: not a metadata type
    tags: ["hobbit", "garden"], // a list: metadata is flat
    shipping: { city: "Hobbiton" }, // a nested object that is neither a rich link nor a monetary amount
  };
  const second = [
    delivered(analytics, "track", { userId, event: "Order Completed", properties: out.properties }),
    delivered(analytics, "track", { anonymousId, event: "Opened Receipt", properties: { order_id: "A-17" } }),
  ];
  await analytics.closeAndFlush({ timeout: 15000 });
  out.second = await Promise.all(second);

  // A wrong write key: the batch is refused (401) and the library reports a failed delivery.
  const badAnswers = [];
  const stranger = client("wk_not-the-key", badAnswers, out.errors);
  const refused = delivered(stranger, "track", { userId, event: "Sneaky" });
  await stranger.closeAndFlush({ timeout: 15000 });
  out.refused = { delivery: await refused, answers: badAnswers.map(({ status, body }) => ({ status, body })) };
} catch (err) {
  console.log(JSON.stringify({ ...out, failed: String(err?.stack ?? err) }));
  process.exit(1);
}
console.log(JSON.stringify(out));
