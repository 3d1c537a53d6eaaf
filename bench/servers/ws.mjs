/**
 * The ceiling of the fan-out scenario: a raw `ws` server speaking just
 * enough Engine.IO/Socket.IO for the same load generator (open packet,
 * CONNECT with a JWT verified like the others), keeping a Set of sockets per
 * company and writing one pre-encoded frame to each socket of a company per
 * broadcast. No rooms, no acks, no heartbeats: nothing a real-time layer
 * could do less.
 */
import { randomBytes } from "node:crypto";
import jwt from "jsonwebtoken";
import { Sender, WebSocket, WebSocketServer } from "ws";
import { serveCommands } from "../lib/commands.mjs";
import { BENCH_KEY } from "../lib/tokens.mjs";
import { listen, memoryReport, pace, projectUpdate } from "./common.mjs";

const companies = new Map();
let wss;

function openPacket() {
  const sid = randomBytes(15).toString("base64url");
  return `0${JSON.stringify({ sid, upgrades: [], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1e6 })}`;
}

function onSocket(ws) {
  let companyId = null;
  ws.send(openPacket());
  ws.on("message", (data) => {
    const packet = data.toString();
    if (companyId !== null || !packet.startsWith("40")) return;
    try {
      const auth = JSON.parse(packet.slice(2) || "{}");
      const claims = jwt.verify(auth.token, BENCH_KEY, { algorithms: ["HS256"] });
      companyId = claims.companyId;
    } catch {
      ws.send(`44${JSON.stringify({ message: "unauthorized" })}`);
      return;
    }
    let members = companies.get(companyId);
    if (!members) companies.set(companyId, (members = new Set()));
    members.add(ws);
    ws.send(`40${JSON.stringify({ sid: randomBytes(15).toString("base64url") })}`);
  });
  ws.on("close", () => companies.get(companyId)?.delete(ws));
}

serveCommands({
  async start() {
    const { server, port } = await listen();
    wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, skipUTF8Validation: true });
    server.on("upgrade", (request, socket, head) => {
      if (!request.url.startsWith("/socket.io/")) return socket.destroy();
      wss.handleUpgrade(request, socket, head, onSocket);
    });
    return { port, pid: process.pid };
  },

  broadcast: ({ companies: ids, rate, durationMs }) =>
    pace({
      rate,
      durationMs,
      send: (seq, t) => {
        const companyId = ids[seq % ids.length];
        const packet = `42${JSON.stringify(["project:updated", projectUpdate(t, seq, companyId)])}`;
        const frame = Sender.frame(Buffer.from(packet), { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false });
        for (const ws of companies.get(companyId) ?? []) {
          if (ws.readyState === WebSocket.OPEN) ws._sender.sendFrame(frame);
        }
      },
    }),

  memory: async () => ({ ...(await memoryReport()), sockets: wss.clients.size }),
});
