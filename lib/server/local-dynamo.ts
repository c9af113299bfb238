import { once } from "node:events";
import type { AddressInfo } from "node:net";
import dynalite from "dynalite";

export interface LocalDynamo {
  endpoint: string;
  close(): Promise<void>;
}

/** An in-memory DynamoDB (dynalite) on 127.0.0.1, for `npm start` and tests. */
export async function startLocalDynamo(port = 0): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server.listen(port, "127.0.0.1");
  await Promise.race([
    once(server, "listening"),
    once(server, "error").then(([error]) => {
      throw new Error(`cannot start the local DynamoDB on 127.0.0.1:${port}: ${(error as Error).message}`);
    }),
  ]);
  const address = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: async () => {
      server.closeAllConnections?.();
      server.close();
      await once(server, "close");
    },
  };
}
