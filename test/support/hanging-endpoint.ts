import { once } from "node:events";
import net from "node:net";

/**
 * A TCP endpoint on 127.0.0.1 that accepts connections and never answers (it reads and discards
 * what it is sent), the way a DynamoDB behind a broken network path or a stuck proxy looks to a
 * client. `relayTo(url)` makes it answer: later connections are relayed to the real service (e.g.
 * dynalite). Connections accepted while hanging stay hung, as half-dead sockets do.
 */
export interface HangingEndpoint {
  endpoint: string;
  /** Connections accepted so far. */
  readonly connections: number;
  relayTo(url: string): void;
  close(): Promise<void>;
}

export async function startHangingEndpoint(): Promise<HangingEndpoint> {
  let target: URL | undefined;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const server = net.createServer((socket) => {
    connections++;
    track(socket);
    if (!target) {
      socket.resume(); // read and discard: the client's request is "sent", no answer ever comes
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    track(upstream);
    socket.pipe(upstream).pipe(socket);
    upstream.on("close", () => socket.destroy());
    socket.on("close", () => upstream.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    relayTo(url) {
      target = new URL(url);
    },
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, "close");
    },
  };
}
