/**
 * Scenario: bytes on the wire per `document:updated` for a 100 KiB site
 * report with one field changed, the delta against the whole document, in
 * one run on one Truss server (its own process, in-memory stores, no
 * `authorize` policy).
 *
 * Three connections of one company: a writer, a watcher (`document:watch`)
 * and a bystander that does not watch. Without a policy the engine sends a
 * commit to the whole company, so both hear every update of the writer: the
 * watcher as a delta (`baseVersion`, `delta`), the bystander as the whole
 * document, which is what every socket got before deltas. Comparing the two
 * in the same run needs no switch in the engine: the baseline is today's
 * form, sent by the same server for the same commits.
 *
 * Bytes are those of the WebSocket frames that carried `document:updated`
 * (the Engine.IO and Socket.IO framing in the payload, plus the frame
 * header; TCP/IP headers not counted), as received.
 */
import { WireClient, socketUrl } from "../load/wire-client.mjs";
import { signToken } from "../lib/tokens.mjs";

const COMPANY = "c-deltas";
const DOCUMENT = { type: "site-report", id: "riverside-0612" };
/** Ten sections of 10 KiB: the 100 KiB document. Each is written in its own update (a request is capped at 64 KiB). */
const SECTIONS = 10;
const SECTION = "Level 3 slab pour postponed; crane inspection due at 14:00. ".repeat(171).slice(0, 10 * 1024);

function plan(quick) {
  return { updates: quick ? 20 : 200 };
}

/** Size of a server-to-client WebSocket text frame (unmasked) with this payload. */
function frameBytes(payloadBytes) {
  return payloadBytes + (payloadBytes < 126 ? 2 : payloadBytes < 65_536 ? 4 : 10);
}

async function connect(port, userId) {
  const client = new WireClient({
    url: socketUrl(port),
    auth: { token: signToken({ userId, companyId: COMPANY }), deviceId: `${userId}-device` },
  });
  await client.connect();
  const heard = { updates: 0, bytes: 0, forms: { delta: 0, whole: 0 } };
  client.ws.on("message", (data) => {
    const text = data.toString();
    if (!text.startsWith('42["document:updated"')) return;
    heard.updates += 1;
    heard.bytes += frameBytes(data.length);
    heard.forms[text.includes('"delta":') ? "delta" : "whole"] += 1;
  });
  return { client, heard };
}

async function ok(promise, what) {
  const answer = await promise;
  if (!answer?.ok) throw new Error(`${what}: ${JSON.stringify(answer?.error ?? answer)}`);
  return answer;
}

async function until(check, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export default {
  name: "deltas",
  title: "document:updated for a 100 KiB document with one field changed: delta vs whole document",
  async run(ctx) {
    const { updates } = plan(ctx.quick);
    const server = await ctx.server("truss", { features: ["documents"] }, { name: "truss-deltas" });
    const writer = await connect(server.port, "writer");
    const watcher = await connect(server.port, "watcher");
    const bystander = await connect(server.port, "bystander");
    try {
      let version = 0;
      for (let section = 0; section < SECTIONS; section++) {
        const answer = await ok(writer.client.request("document:update", { ...DOCUMENT, baseVersion: version, changes: { [`section${section}`]: SECTION } }), "seed");
        version = answer.document.version;
      }
      const watched = await ok(watcher.client.request("document:watch", DOCUMENT), "watch");
      const documentBytes = Buffer.byteLength(JSON.stringify(watched.document.data));
      await until(() => bystander.heard.updates >= SECTIONS - 1, "the seed's updates");
      for (const { heard } of [watcher, bystander]) Object.assign(heard, { updates: 0, bytes: 0, forms: { delta: 0, whole: 0 } });

      ctx.step("deltas", `${updates} one-field updates of a ${Math.round(documentBytes / 1024)} KiB document`);
      for (let index = 0; index < updates; index++) {
        const answer = await ok(writer.client.request("document:update", { ...DOCUMENT, baseVersion: version, changes: { status: `inspected ${index}` } }), "update");
        version = answer.document.version;
      }
      await until(() => watcher.heard.updates >= updates && bystander.heard.updates >= updates, "every update at both");

      const perUpdate = (heard) => Math.round(heard.bytes / heard.updates);
      const delta = perUpdate(watcher.heard);
      const whole = perUpdate(bystander.heard);
      if (watcher.heard.forms.whole > 0 || bystander.heard.forms.delta > 0) {
        throw new Error(`unexpected forms: watcher ${JSON.stringify(watcher.heard.forms)}, bystander ${JSON.stringify(bystander.heard.forms)}`);
      }
      const saved = 1 - delta / whole;
      ctx.step("deltas", `${delta} B per update as a delta, ${whole} B as the whole document: ${(saved * 100).toFixed(2)} % fewer`);
      return {
        rows: [
          {
            metric: "bytes per document:updated, 100 KiB document, one field changed (baseline: the whole document, same server and run)",
            unit: "B",
            better: "lower",
            truss: delta,
            baseline: whole,
            target: { max: 0.05 },
          },
        ],
        details: { updates, documentBytes, deltaBytesPerUpdate: delta, wholeBytesPerUpdate: whole, savedFraction: Math.round(saved * 10_000) / 10_000 },
      };
    } finally {
      await Promise.all([writer, watcher, bystander].map(({ client }) => client.close()));
      await ctx.stopAll();
    }
  },
};
