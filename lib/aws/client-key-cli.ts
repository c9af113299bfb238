import { randomBytes } from "node:crypto";
import { PutSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { parseCliArgs } from "../cli-args.ts";
import { hashClientKey, parseClientKeySecret } from "../gateway/auth.ts";
import { secretsManagerReader } from "./secrets.ts";

const CLIENT_KEY_USAGE = `usage: npm run client-key -- <command> [--secret NAME] [--region REGION]

commands:
  new            make a caller key, add its SHA-256 to the secret, print the key (shown once)
  hash <key>     print a key's SHA-256 (what the secret stores)
  revoke <hash>  remove a hash (or a unique prefix of one) from the secret
  count          how many keys the secret holds

The secret is the stack's ClientKeysSecretName output (default: LlmGateway/client-keys).
`;

export interface ClientKeyIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  client?: SecretsManagerClient;
}

/** The `npm run client-key` command. Returns the exit code. */
export async function runClientKeyCli(argv: string[], io: ClientKeyIo): Promise<number> {
  let parsed: ReturnType<typeof parseCliArgs>;
  try {
    parsed = parseCliArgs(argv, ["secret", "region"]);
  } catch (error) {
    io.err(`${(error as Error).message}\n${CLIENT_KEY_USAGE}`);
    return 2;
  }
  const { options, args } = parsed;
  const [command, value] = args;
  if (command === "hash" && value) {
    io.out(`${hashClientKey(value)}\n`);
    return 0;
  }
  if (!command || !["new", "revoke", "count"].includes(command) || (command === "revoke" && !value)) {
    io.err(CLIENT_KEY_USAGE);
    return 2;
  }
  const secretId = options.secret ?? io.env.CLIENT_KEYS_SECRET ?? "LlmGateway/client-keys";
  const region = options.region ?? io.env.AWS_REGION;
  const client = io.client ?? new SecretsManagerClient(region ? { region } : {});
  try {
    const hashes = parseClientKeySecret(await secretsManagerReader(client)(secretId));
    const save = (list: string[]) =>
      client.send(
        new PutSecretValueCommand({ SecretId: secretId, SecretString: JSON.stringify({ sha256: list }) }),
      );
    if (command === "count") {
      io.out(`${hashes.length} key(s) in ${secretId}\n`);
    } else if (command === "new") {
      const key = `sk-gw-${randomBytes(24).toString("base64url")}`;
      await save([...hashes, hashClientKey(key)]);
      io.out(`${key}\n`);
      io.err(`added to ${secretId}; the gateway accepts it within the secret cache TTL (5 min by default)\n`);
    } else {
      const matches = hashes.filter((h) => h.startsWith((value as string).toLowerCase()));
      if (matches.length !== 1) {
        io.err(`${matches.length} hashes match ${value}; give a longer prefix\n`);
        return 2;
      }
      await save(hashes.filter((h) => h !== matches[0]));
      io.out(`revoked ${matches[0]}\n`);
    }
    return 0;
  } catch (error) {
    io.err(`client-key: ${(error as Error).name}: ${(error as Error).message} (secret ${secretId})\n`);
    return 1;
  } finally {
    if (!io.client) client.destroy();
  }
}
