import { once } from "node:events";
import { createConnection, createServer, type AddressInfo, type Socket } from "node:net";

/** A TCP proxy on 127.0.0.1 between clients and one server, for simulating bad networks. */
export interface TcpProxy {
  /** The port clients connect to. */
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** How many bytes went from the server towards clients (including what a stall holds back). */
  readonly bytesFromServer: number;
  /** Destroys every open connection, as a dropped network would; new ones still pass. */
  cut(): void;
  /**
   * Stops reading from the server on every open connection, as a client that
   * stopped reading would: the server's writes pile up in its own buffers.
   * Client-to-server traffic still flows.
   */
  stallDownstream(): void;
  /**
   * Keeps reading from the server on every open and new connection but throws
   * what it sends away, as a network that loses replies would: the server
   * acts on every request and the client hears nothing back. Client-to-server
   * traffic still flows. A connection that lost bytes is out of step with its
   * client (a Redis client would match later replies to earlier commands), so
   * {@link cut} it before {@link resumeDownstream}.
   */
  dropDownstream(): void;
  /**
   * {@link dropDownstream} from the moment a client sends bytes that contain
   * `marker` (in one read): the server gets that request and acts on it, and
   * its reply, like everything after it, is lost. For losing the reply to one
   * command of several (a Redis script that carries a known id) while the
   * ones before it are answered.
   */
  dropDownstreamAfter(marker: string): void;
  /** How many bytes from the server {@link dropDownstream} threw away. */
  readonly bytesDropped: number;
  /** Reads from the server again and forwards what it sends: ends a stall or a drop. */
  resumeDownstream(): void;
  /** Holds new connections unanswered (accepted, never forwarded) until {@link release}. */
  hold(): void;
  /** Forwards held and new connections again. */
  release(): void;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/**
 * Starts a TCP proxy on a free loopback port that forwards to
 * `127.0.0.1:targetPort`. Faults are applied for real, on sockets: cut
 * connections, a stalled reader, lost replies, held handshakes.
 */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<{ client: Socket; server: Socket }>();
  const held: Socket[] = [];
  let holding = false;
  let stalled = false;
  let dropping = false;
  let dropMarker: Buffer | null = null;
  let bytesFromServer = 0;
  let bytesDropped = 0;

  const forward = (client: Socket) => {
    const server = createConnection({ host: "127.0.0.1", port: targetPort });
    const pair = { client, server };
    pairs.add(pair);
    server.on("data", (chunk: Buffer) => {
      bytesFromServer += chunk.length;
      if (dropping) {
        bytesDropped += chunk.length;
        return;
      }
      if (!client.write(chunk)) server.pause();
    });
    client.on("drain", () => {
      if (!stalled) server.resume();
    });
    client.pipe(server);
    client.on("data", (chunk: Buffer) => {
      if (dropMarker && chunk.includes(dropMarker)) {
        dropMarker = null;
        dropping = true;
      }
    });
    if (stalled) server.pause();
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on("close", end).on("error", end);
    server.on("close", end).on("error", end);
  };

  const listener = createServer((client) => {
    if (holding) held.push(client);
    else forward(client);
  });
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  const { port } = listener.address() as AddressInfo;

  const proxy: TcpProxy = {
    port,
    url: `http://127.0.0.1:${port}`,
    get bytesFromServer() {
      return bytesFromServer;
    },
    get bytesDropped() {
      return bytesDropped;
    },
    cut() {
      for (const { client, server } of pairs) {
        client.destroy();
        server.destroy();
      }
      pairs.clear();
    },
    stallDownstream() {
      stalled = true;
      for (const { server } of pairs) server.pause();
    },
    dropDownstream() {
      dropping = true;
      stalled = false;
      for (const { server } of pairs) server.resume();
    },
    dropDownstreamAfter(marker) {
      dropMarker = Buffer.from(marker);
    },
    resumeDownstream() {
      stalled = false;
      dropping = false;
      dropMarker = null;
      for (const { server } of pairs) server.resume();
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const client of held.splice(0)) forward(client);
    },
    async close() {
      proxy.cut();
      for (const client of held.splice(0)) client.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
  return proxy;
}
