import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, login, BACKENDS, openSocket, startErpOn, type Device, type LoggedIn, type RunningErp } from "./helpers.js";

/**
 * A manager removes a user: every device of theirs is disconnected with
 * `ACCESS_REVOKED`, and their still-unexpired token is refused from then on,
 * by the API and by the socket handshake alike.
 */
describe.each(BACKENDS)("removing a user from the company, on %s", (backend) => {
  let erp: RunningErp;
  let alice: LoggedIn;
  let ben: LoggedIn;
  let chloe: LoggedIn;

  beforeAll(async () => {
    erp = await startErpOn(backend);
    [alice, ben, chloe] = (await Promise.all(["alice", "ben", "chloe"].map((name) => login(erp.url, `${name}@northwind.test`)))) as [LoggedIn, LoggedIn, LoggedIn];
  });
  afterAll(() => erp?.close());

  /** Resolves with the reason once the server has closed the socket. */
  const closedByServer = (device: Device) =>
    new Promise<string>((resolve) => {
      if (!device.socket.connected) resolve("already closed");
      device.socket.once("disconnect", (reason) => resolve(reason));
    });

  test("only a manager may remove someone, never themselves, and only someone of their company", async () => {
    expect((await call(erp.url, ben.token, "DELETE", "/api/users/u-chloe")).body.error).toEqual({ code: "FORBIDDEN", message: "Only managers may remove users from the company." });
    expect((await call(erp.url, alice.token, "DELETE", "/api/users/u-alice")).body.error.code).toBe("CANNOT_REMOVE_SELF");
    expect((await call(erp.url, alice.token, "DELETE", "/api/users/u-hana")).status).toBe(404);
    expect((await call(erp.url, alice.token, "DELETE", "/api/users/u-nobody")).status).toBe(404);
  });

  test("Chloe's laptop and phone are both disconnected with ACCESS_REVOKED, and her token opens nothing afterwards", async () => {
    const laptop = await openSocket(erp.url, chloe.token, "chloe-laptop");
    const phone = await openSocket(erp.url, chloe.token, "chloe-phone");
    await expect.poll(() => erp.realtime.isOnline("northwind", "u-chloe")).toBe(true);
    const closed = [closedByServer(laptop), closedByServer(phone)];

    const removed = await call(erp.url, alice.token, "DELETE", "/api/users/u-chloe");
    expect(removed).toEqual({ status: 200, body: { id: "u-chloe", name: "Chloe Park", disconnectedSockets: 2, allNodesAnswered: true } });
    expect(await Promise.all(closed)).toEqual(["io server disconnect", "io server disconnect"]);
    for (const device of [laptop, phone]) {
      expect(device.log.of("error")).toEqual([{ code: "ACCESS_REVOKED", message: "Alice Moreno removed you from Northwind Construction." }]);
    }
    await expect.poll(() => erp.realtime.isOnline("northwind", "u-chloe")).toBe(false);

    // The token has hours left, but the member check refuses it at both doors.
    const api = await call(erp.url, chloe.token, "GET", "/api/projects");
    expect(api.status).toBe(401);
    expect(api.body.error.code).toBe("ACCESS_REVOKED");
    await expect(openSocket(erp.url, chloe.token, "chloe-laptop")).rejects.toMatchObject({ data: { code: "ACCESS_REVOKED" } });
    // She cannot log in again, and is gone from the directory; her expense stays.
    expect((await call(erp.url, null, "POST", "/api/login", { email: "chloe@northwind.test", password: "truss-demo" })).status).toBe(401);
    expect((await call(erp.url, alice.token, "GET", "/api/users")).body.map((user: { id: string }) => user.id)).not.toContain("u-chloe");
    expect((await call(erp.url, alice.token, "GET", "/api/expenses")).body.map((expense: { submittedBy: string }) => expense.submittedBy)).toContain("u-chloe");
    // Removing her twice finds no one.
    expect((await call(erp.url, alice.token, "DELETE", "/api/users/u-chloe")).status).toBe(404);
  });
});
