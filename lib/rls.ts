/**
 * Isolation in depth on PostgreSQL: a login role per workspace whose row-level-security policies
 * admit only its own workspace's rows (read/write) and the unscoped collections (read-only
 * unless depsWritable). The library's queries do not change: a role simply sees no foreign rows,
 * and a foreign write or a write to shared data is refused by the server (SQLSTATE 42501 →
 * PermissionDeniedError). See docs/sql.md, also for what trust authentication means here.
 *
 * Roles: `<table>_ws` (NOLOGIN) holds the table grants; each workspace role is a member of it and
 * is named in its own policies, whose bounds are literals so listing stays an index range scan.
 */
import { createHash } from "node:crypto";
import { redact, withCredentials } from "./backends/redis/url.js";
import { quote, type SqlClient } from "./backends/sql/client.js";
import { quotaTableDdl, quotaTableName } from "./backends/sql/quota-ddl.js";
import { InvalidArgumentError, InvalidConfigError } from "./errors.js";
import { changeBase, joinKey, type Keyspace } from "./keys.js";
import { workspacesPrefix } from "./lifecycle/registry.js";

export interface RoleOptions {
  password: string;
  /** Default: workspaceRoleName(table, keyspace). At most 63 bytes (PostgreSQL's limit). */
  role?: string;
  /** Let the role write the unscoped collections too (default: read-only). */
  depsWritable?: boolean;
}

/** PostgreSQL truncates identifiers to 63 bytes; two long names must not become one. */
export const MAX_ROLE_BYTES = 63;

// The PostgreSQL engine loads when a role is provisioned or revoked, not with the package.
const postgres = () => import("./backends/sql/postgres.js");

/**
 * `kvws_<id, lower-cased and cut>_<hash>`: readable, at most 58 bytes, and distinct per
 * (table, root, workspace id) — the hash tells `client_a` from `CLIENT_A` and long ids apart.
 */
export function workspaceRoleName(table: string, keyspace: Keyspace): string {
  const id = workspaceOf(keyspace);
  const readable = id
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_")
    .slice(0, 40);
  const hash = createHash("sha256").update(`${table}\0${keyspace.root}\0${id}`).digest("hex").slice(0, 12);
  return `kvws_${readable}_${hash}`;
}

function workspaceOf(keyspace: Keyspace): string {
  if (keyspace.workspaceId === undefined) {
    throw new InvalidArgumentError("provisionWorkspaceRole needs a keyspace with a workspaceId");
  }
  return keyspace.workspaceId;
}

function checkRole(role: unknown): string {
  if (typeof role !== "string" || role.length === 0 || Buffer.byteLength(role) > MAX_ROLE_BYTES || /[\0"]/.test(role)) {
    throw new InvalidArgumentError(
      `role must be 1-${MAX_ROLE_BYTES} bytes without NUL or '"', got ${JSON.stringify(String(role).slice(0, 80))}`,
    );
  }
  return role;
}

/** Policy names are identifiers too (63 bytes): derived from the role by hash, never cut. */
const policyName = (role: string, what: "rw" | "ro") =>
  `kvws_${createHash("sha256").update(role).digest("hex").slice(0, 24)}_${what}`;

/** A SQL string literal that means the same whatever standard_conforming_strings is. */
function literal(text: string): string {
  if (text.includes("\0")) throw new InvalidArgumentError("text for PostgreSQL may not contain NUL");
  return `E'${text.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** The key range of one prefix and everything under it: `p:` ≤ key < `p;` (byte order). */
const under = (column: string, prefix: string) =>
  `(${column} >= ${literal(joinKey(prefix, ""))} AND ${column} < ${literal(`${prefix};`)})`;

function sharedPrefixes(keyspace: Keyspace): string[] {
  return [...new Set([...keyspace.unscoped, "deps"].map((c) => keyspace.prefix(c)))];
}

async function withAdmin<T>(adminUrl: string, work: (client: SqlClient, table: string) => Promise<T>): Promise<T> {
  if (typeof adminUrl !== "string" || !/^postgres(ql)?:\/\//i.test(adminUrl)) {
    throw new InvalidConfigError(
      "url",
      `adminUrl must be a postgres:// URL, got ${JSON.stringify(redact(String(adminUrl)))}`,
    );
  }
  const { parsePostgresUrl, openPostgresClient } = await postgres();
  const { table } = parsePostgresUrl(adminUrl);
  const client = await openPostgresClient(adminUrl);
  try {
    return await work(client, table);
  } finally {
    await client.close();
  }
}

export async function provisionWorkspaceRole(
  adminUrl: string,
  keyspace: Keyspace,
  options: RoleOptions,
): Promise<{ role: string; url: string }> {
  const id = workspaceOf(keyspace);
  if (typeof options?.password !== "string" || options.password.length === 0) {
    throw new InvalidArgumentError("provisionWorkspaceRole needs a non-empty password");
  }
  const { parsePostgresUrl } = await postgres();
  const { table } = parsePostgresUrl(adminUrl);
  const role = checkRole(options.role ?? workspaceRoleName(table, keyspace));
  const own = joinKey(keyspace.root, `ws:${id}`);
  const registry = workspacesPrefix(keyspace);
  const registryRow = `(prefix = ${literal(registry)} AND key = ${literal(joinKey(registry, id))})`;
  const shared = sharedPrefixes(keyspace);
  const sharedList = shared.map(literal).join(", ");
  // Writes to shared prefixes must also keep key and prefix together, or a row could be listed elsewhere.
  const sharedRows = shared.map((p) => `(prefix = ${literal(p)} AND ${under("key", p)})`).join(" OR ");

  const sharedBases = [...new Set(shared.map(changeBase))].map(literal).join(", ");
  /** Per table: the rows the role reads and writes as its own, and those of the shared collections. */
  const rows = (name: string) => {
    if (name === table) {
      // The main table also admits the workspace's own row of the root's registry (lifecycle), and no other.
      return {
        mine: `(${under("key", own)} OR ${registryRow})`,
        writable: `((${under("key", own)} AND ${under("prefix", own)}) OR ${registryRow})`,
        sharedRead: `prefix IN (${sharedList})`,
        sharedWritable: sharedRows,
      };
    }
    if (name === quotaTableName(table)) {
      // Its own quota it may read (quota()); no quota row it may write: only SELECT is granted.
      return { mine: `base = ${literal(own)}`, writable: "false", sharedRead: "false" };
    }
    if (name === `${table}_watchers`) {
      // Its own scope's registrations; another scope's (the root's, for deps) it may see, never end.
      return {
        mine: `base = ${literal(own)}`,
        writable: `base = ${literal(own)}`,
        sharedRead: `base IN (${sharedBases})`,
      };
    }
    // A change row's base must match its prefix, or a role could wake another scope's watchers with it.
    const changes = name === `${table}_changes`;
    return {
      mine: under("prefix", own),
      writable: changes ? `(${under("prefix", own)} AND base = ${literal(own)})` : under("prefix", own),
      sharedRead: `prefix IN (${sharedList})`,
      sharedWritable: changes
        ? `(prefix IN (${sharedList}) AND base IN (${sharedBases}))`
        : `prefix IN (${sharedList})`,
    };
  };

  await withAdmin(adminUrl, async (client) => {
    await (await import("./backends/sql/schema.js")).ensureSchema(client, table);
    await client.transaction(async (query) => {
      // Roles are cluster-wide and CREATE ROLE has no IF NOT EXISTS: one lock orders provisioners.
      await query("SELECT pg_advisory_xact_lock(hashtext($1))", [`kvws-roles:${table}`]);
      const group = `${table}_ws`;
      const exists = async (name: string) =>
        (await query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name])).length > 0;
      if (!(await exists(group))) await query(`CREATE ROLE ${quote(group)} NOLOGIN`);
      const password = `PASSWORD ${literal(options.password)}`;
      if (await exists(role)) await query(`ALTER ROLE ${quote(role)} LOGIN ${password}`);
      else await query(`CREATE ROLE ${quote(role)} LOGIN ${password}`);
      await query(`GRANT ${quote(group)} TO ${quote(role)}`);

      const [owner] = await query(
        "SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1",
        [table],
      );
      await query(quotaTableDdl("postgres", table));
      const quotas = quotaTableName(table);
      for (const name of [
        table,
        `${table}_versions`,
        `${table}_log`,
        `${table}_changes`,
        `${table}_watchers`,
        quotas,
      ]) {
        const t = quote(name);
        await query(
          `GRANT ${name === quotas ? "SELECT" : "SELECT, INSERT, UPDATE, DELETE"} ON ${t} TO ${quote(group)}`,
        );
        await query(`ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY`);
        // FORCE: the table owner is held to the policies too, so it gets one admitting everything.
        await query(`ALTER TABLE ${t} FORCE ROW LEVEL SECURITY`);
        await query(`DROP POLICY IF EXISTS kvws_owner ON ${t}`);
        await query(
          `CREATE POLICY kvws_owner ON ${t} TO ${quote(String(owner?.tableowner))} USING (true) WITH CHECK (true)`,
        );
        const { mine, writable, sharedRead, sharedWritable } = rows(name);
        const rw = quote(policyName(role, "rw"));
        const ro = quote(policyName(role, "ro"));
        await query(`DROP POLICY IF EXISTS ${rw} ON ${t}`);
        await query(`DROP POLICY IF EXISTS ${ro} ON ${t}`);
        await query(
          options.depsWritable && sharedWritable
            ? `CREATE POLICY ${rw} ON ${t} FOR ALL TO ${quote(role)} USING (${mine} OR ${sharedRead}) WITH CHECK ((${writable}) OR ${sharedWritable})`
            : `CREATE POLICY ${rw} ON ${t} FOR ALL TO ${quote(role)} USING (${mine}) WITH CHECK (${writable})`,
        );
        await query(`CREATE POLICY ${ro} ON ${t} FOR SELECT TO ${quote(role)} USING (${sharedRead})`);
      }
    });
  });
  return { role, url: withCredentials(adminUrl, role, options.password) };
}

/** Drops the role and its policies; false when there was no such role. */
export async function revokeWorkspaceRole(adminUrl: string, role: string): Promise<boolean> {
  checkRole(role);
  return withAdmin(adminUrl, (client) =>
    client.transaction(async (query) => {
      if ((await query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role])).length === 0) return false;
      // Removes the role from (and so drops) its policies and revokes its grants in this database.
      await query(`DROP OWNED BY ${quote(role)}`);
      await query(`DROP ROLE ${quote(role)}`);
      return true;
    }),
  );
}
