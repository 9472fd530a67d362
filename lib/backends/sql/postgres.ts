import type pg from "pg";
import { ConnectionError, InvalidConfigError } from "../../errors.js";
import { redact, scrub, urlPassword } from "../redis/url.js";
import { type Query, type Row, type SqlClient, TABLE_NAME } from "./client.js";
import { pgError } from "./errors.js";
import { loadPeer } from "./peer.js";

type Pg = typeof pg;

export const DEFAULT_TABLE = "kvws";
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export interface PostgresTarget {
  /** What pg connects with: the URL without the parameters this library reads. */
  connectionString: string;
  table: string;
}

/** `postgres://user[:pw]@host:port/db[?table=name]`; `table` defaults to "kvws". */
export function parsePostgresUrl(url: string): PostgresTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new InvalidConfigError("url", `invalid PostgreSQL URL ${redact(url)}`, { cause: error });
  }
  const table = parsed.searchParams.get("table") ?? DEFAULT_TABLE;
  if (!TABLE_NAME.test(table)) {
    throw new InvalidConfigError(
      "url",
      `invalid table ${JSON.stringify(table)} in ${redact(url)}: use [a-z_][a-z0-9_]*, at most 48 characters`,
    );
  }
  parsed.searchParams.delete("table");
  return { connectionString: parsed.href, table };
}

/**
 * A pg Pool of this storage's own (never module-wide), closed by close(). Connecting is bounded
 * by connectTimeoutMs and every statement by commandTimeoutMs; errors carry this library's types.
 */
export async function openPostgresClient(
  url: string,
  options: { connectTimeoutMs?: number; commandTimeoutMs?: number } = {},
): Promise<SqlClient> {
  const { Pool } = await loadPeer<Pg>("pg", "postgres://", () => import("pg") as never);
  const { connectionString } = parsePostgresUrl(url);
  const where = redact(url);
  const secrets = [urlPassword(url)];
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const fail = (error: unknown) => scrubbed(pgError(error, where), secrets);
  const pool = new Pool({
    connectionString,
    connectionTimeoutMillis: connectTimeoutMs,
    query_timeout: options.commandTimeoutMs ?? 2 * connectTimeoutMs,
    max: 10,
  });
  // An idle client losing its server emits here; without a listener that would end the process.
  pool.on("error", () => {});

  const statement = preparedNames();
  const query: Query = async (text, params = []) => {
    try {
      return (await pool.query(statement(text, params))).rows as Row[];
    } catch (error) {
      throw fail(error);
    }
  };
  try {
    await query("SELECT 1");
  } catch (error) {
    await pool.end().catch(() => {});
    if (error instanceof ConnectionError) {
      throw new ConnectionError(
        `PostgreSQL at ${where} is unreachable within ${connectTimeoutMs} ms: ${error.message}`,
        {
          cause: error.cause,
        },
      );
    }
    throw error;
  }

  let closed: Promise<void> | undefined;
  return {
    dialect: "postgres",
    // The wire protocol counts parameters in 16 bits.
    maxParams: 65535,
    query,
    read: query,
    async transaction(work) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw fail(error);
      }
      const run: Query = async (text, params = []) => {
        try {
          return (await client.query(statement(text, params))).rows as Row[];
        } catch (error) {
          throw fail(error);
        }
      };
      let broken = false;
      try {
        await run("BEGIN");
        const result = await work(run);
        await run("COMMIT");
        return result;
      } catch (error) {
        await run("ROLLBACK").catch(() => {
          broken = true;
        });
        throw error;
      } finally {
        client.release(broken);
      }
    },
    close: () => {
      closed ??= pool.end().catch(() => {});
      return closed;
    },
  };
}

/** Statements with at most this many parameters (point reads and writes) are kept prepared. */
const PREPARED_PARAMS = 8;
/** Statement texts one pool keeps prepared on its connections at most; the rest are parsed each time. */
const PREPARED_TEXTS = 128;

const DML = /^(SELECT|INSERT|UPDATE|DELETE|WITH) /;

/**
 * pg's query config for `text`: a point statement gets a name, so each connection of the pool
 * parses and plans it once and then only binds and executes it (parsing and planning are most
 * of what the server spends on a point read otherwise). Batches vary in length, DDL and
 * BEGIN/COMMIT gain nothing: those stay unnamed.
 */
function preparedNames() {
  const names = new Map<string, string>();
  return (text: string, values: readonly unknown[]): pg.QueryConfig => {
    let name = names.get(text);
    if (name === undefined && values.length <= PREPARED_PARAMS && names.size < PREPARED_TEXTS && DML.test(text)) {
      name = `kvws_${names.size}`;
      names.set(text, name);
    }
    return name === undefined ? { text, values: values as unknown[] } : { name, text, values: values as unknown[] };
  };
}

function scrubbed(error: Error, secrets: ReadonlyArray<string | undefined>): Error {
  error.message = scrub(error.message, secrets);
  return error;
}
