import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import pg from "pg";
import { BACKENDS, call, login, openSocket, startErpOn, type LoggedIn, type RunningErp } from "./helpers.js";

/** Sends `expense:submit` as `@truss/client`'s outbox does: the payload, then `{ mutationId }`, then the ack. */
function submit(socket: Socket, data: unknown, mutationId?: string): Promise<any> {
  const args: unknown[] = mutationId === undefined ? [data] : [data, { mutationId }];
  return socket.timeout(5000).emitWithAck("expense:submit", ...args);
}

/**
 * The `expense:submit` event, the door the dashboard's outbox uses: the same
 * checks as `POST /api/expenses`, and one expense per mutation id however
 * often the write is sent.
 */
describe.each(BACKENDS)("expense:submit over the socket, on %s", (backend) => {
  let erp: RunningErp;
  let ben: LoggedIn;
  let sam: LoggedIn;
  let alice: LoggedIn;
  const sockets: Socket[] = [];
  let benSocket: Socket;
  let samSocket: Socket;

  beforeAll(async () => {
    erp = await startErpOn(backend);
    [alice, ben, sam] = await Promise.all([login(erp.url, "alice@northwind.test"), login(erp.url, "ben@northwind.test"), login(erp.url, "sam@northwind.test")]);
    const devices = await Promise.all([openSocket(erp.url, ben.token, "ben-phone"), openSocket(erp.url, sam.token, "sam-phone")]);
    [benSocket, samSocket] = devices.map((device) => device.socket) as [Socket, Socket];
    sockets.push(benSocket, samSocket);
  });

  afterAll(async () => {
    for (const socket of sockets) socket.disconnect();
    await erp?.close();
  });

  /** The expense rows with this description, read from the database itself. */
  const rowsWith = async (description: string) => {
    if (!erp.databaseUrl) return erp.db!.prepare("SELECT id, mutation_id AS mutationId FROM expenses WHERE description = ? ORDER BY id").all(description);
    const client = new pg.Client({ connectionString: erp.databaseUrl });
    await client.connect();
    try {
      return (await client.query(`SELECT id, mutation_id AS "mutationId" FROM expenses WHERE description = $1 ORDER BY id`, [description])).rows;
    } finally {
      await client.end();
    }
  };

  test("a resend with the same mutation id answers with the first expense and adds no row; managers are notified once", async () => {
    const data = { projectId: "p-riverside", description: "  Generator fuel  ", amount: 240 };
    const first = await submit(benSocket, data, "a1b2c3");
    expect(first.ok).toBe(true);
    expect(first.result).toMatchObject({ projectId: "p-riverside", submittedBy: "u-ben", description: "Generator fuel", amount: 240, status: "pending" });
    const again = await submit(benSocket, data, "a1b2c3");
    expect(again).toEqual(first);
    expect(await rowsWith("Generator fuel")).toEqual([{ id: first.result.id, mutationId: "a1b2c3" }]);

    const { body: listed } = await call(erp.url, alice.token, "GET", "/api/expenses");
    expect(listed.filter((expense: { description: string }) => expense.description === "Generator fuel")).toHaveLength(1);

    // A later submission as a fence: Alice's inbox replays in order, so once its notification is in, a second one about the fuel would be too.
    await submit(benSocket, { projectId: "p-riverside", description: "Fence: wheelbarrow", amount: 80 }, "d4e5f6");
    const aliceDevice = await openSocket(erp.url, alice.token, "alice-laptop");
    sockets.push(aliceDevice.socket);
    await aliceDevice.log.waitFor("inbox:message", (message) => message.event === "notification:new" && message.data.body.includes("Fence: wheelbarrow"));
    const aboutFuel = aliceDevice.log.of("inbox:message").filter((message) => message.event === "notification:new" && message.data.body.includes("Generator fuel"));
    expect(aboutFuel).toHaveLength(1);
  });

  test("sends of one mutation id racing each other make one expense, and every send answers with it", async () => {
    const data = { projectId: "p-riverside", description: "Crane hire (raced)", amount: 1_200 };
    const answers = await Promise.all(Array.from({ length: 6 }, () => submit(benSocket, data, "race-1")));
    const ids = new Set(answers.map((answer) => answer.result?.id));
    expect(answers.every((answer) => answer.ok)).toBe(true);
    expect(ids.size).toBe(1);
    expect(await rowsWith("Crane hire (raced)")).toEqual([{ id: [...ids][0], mutationId: "race-1" }]);
  });

    test("another mutation id is another expense; without one, every send is new (the REST route's behaviour)", async () => {
    const data = { projectId: "p-riverside", description: "Site toilets", amount: 90 };
    const one = await submit(benSocket, data, "m-one");
    const two = await submit(benSocket, data, "m-two");
    const three = await submit(benSocket, data);
    expect(new Set([one.result.id, two.result.id, three.result.id]).size).toBe(3);
    expect(await rowsWith("Site toilets")).toHaveLength(3);
  });

  test("the policy and the catalog apply as over REST: Sam may not submit on Harbor Bridge, and a bad amount is refused", async () => {
    const refused = await submit(samSocket, { projectId: "p-harbor", description: "Formwork ties", amount: 50 }, "s-1");
    expect(refused).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
    const invalid = await submit(benSocket, { projectId: "p-riverside", description: "Nothing", amount: -5 }, "b-9");
    expect(invalid).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
    const unknown = await submit(benSocket, { projectId: "p-nowhere", description: "Ghost", amount: 5 }, "b-10");
    expect(unknown).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
    expect(await rowsWith("Formwork ties")).toEqual([]);
    // Sam on his own project goes through.
    const own = await submit(samSocket, { projectId: "p-riverside", description: "Formwork ties", amount: 50 }, "s-1");
    expect(own).toMatchObject({ ok: true, result: { submittedBy: "u-sam" } });
  });
});
