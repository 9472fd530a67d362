/**
 * The SQL that keeps quotas on the library's SQL engines: `<t>_quotas` (one row per workspace
 * with a quota: its limits and what its data rows hold) and row triggers on the data table that
 * keep those counters. SQLite's raise when a row grows a workspace past a limit; PostgreSQL's
 * check runs at commit on the transaction's net change (pgCheck). Either way inside the writing
 * transaction, so a refused write leaves nothing behind, whichever connection or process made it.
 *
 * The triggers exist only while some workspace has a quota (setQuota creates them, removing
 * the last quota drops them): a store without quotas runs its writes exactly as before. While
 * they exist, a row outside every quota costs a check in the trigger's WHEN clause (SQLite: one
 * primary-key probe of the quota table; PostgreSQL: a text search, then the trigger function).
 *
 * A row belongs to workspace base B iff its prefix is B followed by ":" and nothing with "#"
 * (keys.ts quotaBase): the first ":ws:" ends the root (roots have no "ws" segment), the next
 * ":" ends the id. Bookkeeping prefixes (`<B>:#collections`, `<B>:workflows#vectors`) are not counted.
 */
import { type Dialect, quote } from "./client.js";

/** What a refusing trigger raises; quota.ts turns it into QuotaExceededError. */
export const QUOTA_MARKER = "kvws_quota_exceeded";

export const quotaTableName = (table: string) => `${table}_quotas`;

/** The workspace base of a data prefix (keys.ts quotaBase), undefined for any other prefix. */
export function prefixBase(prefix: string): string | undefined {
  const i = prefix.indexOf(":ws:");
  if (i < 0) return undefined;
  const rest = prefix.slice(i + 4);
  const j = rest.indexOf(":");
  if (j < 1 || rest.includes("#", j)) return undefined;
  return prefix.slice(0, i + 4 + j);
}

/** prefixBase as a SQL expression of the text `p` (NULL for a prefix of no workspace's data). */
export function baseSql(d: Dialect, p: string): string {
  const find = d === "postgres" ? "strpos" : "instr";
  const i = `${find}(${p}, ':ws:')`;
  const rest = `substr(${p}, ${i} + 4)`;
  const j = `${find}(${rest}, ':')`;
  return `(CASE WHEN ${i} > 0 AND ${j} > 1 AND ${find}(substr(${rest}, ${j}), '#') = 0 THEN substr(${p}, 1, ${i} + 2 + ${j}) END)`;
}

/** Bytes of a stored value as stats() counts them (UTF-8). */
export const bytesSql = (d: Dialect, v: string) =>
  d === "postgres" ? `octet_length(${v})` : `length(CAST(${v} AS BLOB))`;

export function quotaTableDdl(d: Dialect, table: string): string {
  const text = d === "postgres" ? 'TEXT COLLATE "C"' : "TEXT";
  return (
    `CREATE TABLE IF NOT EXISTS ${quote(quotaTableName(table))} (base ${text} PRIMARY KEY, ` +
    `max_entries BIGINT NULL, max_bytes BIGINT NULL, entries BIGINT NOT NULL, bytes BIGINT NOT NULL${d === "postgres" ? `, ${TX_COLUMNS}` : ""})`
  );
}

/**
 * PostgreSQL: what the workspace held when the current writing transaction first changed it
 * (`tx` names that transaction), so its check at commit compares the transaction's net change,
 * as exceeds() compares a batch's. Tables made before these columns get them from setQuota.
 */
const TX_COLUMNS = "tx xid8 NULL, tx_entries BIGINT NULL, tx_bytes BIGINT NULL";

export function pgTxColumns(schema: string, table: string): string {
  const add = TX_COLUMNS.split(", ").map((column) => `ADD COLUMN IF NOT EXISTS ${column}`);
  return `ALTER TABLE ${quote(schema)}.${quote(quotaTableName(table))} ${add.join(", ")}`;
}

const triggerNames = (table: string) => ["ins", "upd", "del"].map((op) => quote(`${table}_quota_${op}`));

/** SQLite: three triggers; their WHEN clause skips every row of a workspace without a quota. */
export function sqliteTriggers(table: string): string[] {
  const Q = quote(quotaTableName(table));
  const D = quote(table);
  const base = (row: string) => baseSql("sqlite", `${row}.prefix`);
  const len = (row: string) => bytesSql("sqlite", `${row}.value`);
  const has = (row: string) => `EXISTS (SELECT 1 FROM ${Q} WHERE base = ${base(row)})`;
  const add = (row: string, sign: "+" | "-") =>
    `UPDATE ${Q} SET entries = entries ${sign} 1, bytes = bytes ${sign} ${len(row)} WHERE base = ${base(row)};`;
  const refuse = (grewEntries: string, grewBytes: string) =>
    `SELECT RAISE(ABORT, '${QUOTA_MARKER}') FROM ${Q} WHERE base = ${base("NEW")} AND ` +
    `((${grewEntries} AND max_entries IS NOT NULL AND entries > max_entries) OR ` +
    `(${grewBytes} AND max_bytes IS NOT NULL AND bytes > max_bytes));`;
  const moved = `${base("OLD")} IS NOT ${base("NEW")}`;
  const [ins, upd, del] = triggerNames(table);
  return [
    `CREATE TRIGGER IF NOT EXISTS ${ins} AFTER INSERT ON ${D} WHEN ${has("NEW")} BEGIN ` +
      `${add("NEW", "+")} ${refuse("1", `${len("NEW")} > 0`)} END`,
    `CREATE TRIGGER IF NOT EXISTS ${upd} AFTER UPDATE ON ${D} WHEN ${has("NEW")} OR ${has("OLD")} BEGIN ` +
      `${add("OLD", "-")} ${add("NEW", "+")} ` +
      `${refuse(moved, `((${moved} AND ${len("NEW")} > 0) OR ${len("NEW")} > ${len("OLD")})`)} END`,
    `CREATE TRIGGER IF NOT EXISTS ${del} AFTER DELETE ON ${D} WHEN ${has("OLD")} BEGIN ${add("OLD", "-")} END`,
  ];
}

export const functionName = (schema: string, table: string) => `${quote(schema)}.${quote(`${table}_quota`)}`;
const checkName = (schema: string, table: string) => `${quote(schema)}.${quote(`${table}_quota_check`)}`;
const DEFINER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $kvws$\n";

/**
 * PostgreSQL: one trigger function, SECURITY DEFINER (it runs as its owner, the operator that
 * set the quota, so a workspace role's writes keep counters it may not write itself) with a
 * fixed search_path and schema-qualified names, so no caller's path can redirect it. It only
 * counts (and notes what the workspace held before the transaction's first change); the check is
 * pgCheck's, at commit.
 */
export function pgFunction(schema: string, table: string): string {
  const Q = `${quote(schema)}.${quote(quotaTableName(table))}`;
  const count = (entries: string, bytes: string, base: string) =>
    `UPDATE ${Q} SET entries = entries ${entries}, bytes = bytes ${bytes}, ` +
    "tx_entries = CASE WHEN tx IS DISTINCT FROM pg_current_xact_id() THEN entries ELSE tx_entries END, " +
    "tx_bytes = CASE WHEN tx IS DISTINCT FROM pg_current_xact_id() THEN bytes ELSE tx_bytes END, " +
    `tx = pg_current_xact_id() WHERE base = ${base};\n`;
  return (
    `CREATE OR REPLACE FUNCTION ${functionName(schema, table)}() RETURNS trigger ${DEFINER}` +
    "DECLARE nb text; ob text; de bigint := 0; db bigint := 0;\n" +
    "BEGIN\n" +
    `  IF TG_OP <> 'INSERT' THEN ob := ${baseSql("postgres", "OLD.prefix")}; END IF;\n` +
    `  IF TG_OP <> 'DELETE' THEN nb := ${baseSql("postgres", "NEW.prefix")}; END IF;\n` +
    "  IF ob IS NOT NULL AND (TG_OP = 'DELETE' OR ob IS DISTINCT FROM nb) THEN\n" +
    `    ${count("- 1", "- octet_length(OLD.value)", "ob")}` +
    "  END IF;\n" +
    "  IF nb IS NULL THEN RETURN NULL; END IF;\n" +
    "  IF TG_OP = 'UPDATE' AND ob IS NOT DISTINCT FROM nb THEN db := octet_length(NEW.value) - octet_length(OLD.value);\n" +
    "  ELSE de := 1; db := octet_length(NEW.value); END IF;\n" +
    "  IF de = 0 AND db = 0 THEN RETURN NULL; END IF;\n" +
    `  ${count("+ de", "+ db", "nb")}` +
    "  RETURN NULL;\n" +
    "END $kvws$"
  );
}

/**
 * PostgreSQL: the check, a constraint trigger on the quota table deferred to commit (queued only
 * for a row over a limit). It refuses when the committing transaction grew the workspace, in
 * entries or in bytes, and left it over that limit: a statement or transaction is judged by its
 * net change, whatever the order of its rows. The row stays locked from the transaction's first
 * change to its commit, so concurrent writers are judged one after the other.
 */
export function pgCheck(schema: string, table: string): string[] {
  const Q = `${quote(schema)}.${quote(quotaTableName(table))}`;
  const trigger = quote(`${table}_quota_check`);
  return [
    `CREATE OR REPLACE FUNCTION ${checkName(schema, table)}() RETURNS trigger ${DEFINER}` +
      "DECLARE q record;\n" +
      "BEGIN\n" +
      `  SELECT * INTO q FROM ${Q} WHERE base = NEW.base;\n` +
      "  IF FOUND AND q.tx = pg_current_xact_id() AND ((q.entries > q.tx_entries AND q.entries > q.max_entries) OR " +
      "(q.bytes > q.tx_bytes AND q.bytes > q.max_bytes)) THEN\n" +
      `    RAISE EXCEPTION '${QUOTA_MARKER} %', NEW.base;\n` +
      "  END IF;\n" +
      "  RETURN NULL;\n" +
      "END $kvws$",
    `DROP TRIGGER IF EXISTS ${trigger} ON ${Q}`,
    `CREATE CONSTRAINT TRIGGER ${trigger} AFTER UPDATE ON ${Q} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW ` +
      `WHEN (NEW.entries > NEW.max_entries OR NEW.bytes > NEW.max_bytes) EXECUTE FUNCTION ${checkName(schema, table)}()`,
  ];
}

/** Quotas PostgreSQL's triggers name in their WHEN clause; with more, every workspace row calls the function. */
export const LISTED_BASES = 64;

/** A SQL string literal that means the same whatever standard_conforming_strings is. */
const literal = (text: string) => `E'${text.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;

/**
 * PostgreSQL's WHEN may not read a table, so setQuota rewrites it with the bases that have a
 * quota (up to LISTED_BASES): a row of any other workspace, or of none, never calls the
 * function, and neither does an overwrite that keeps the value's size and prefix.
 */
export function pgTriggers(schema: string, table: string, bases: readonly string[]): string[] {
  const D = `${quote(schema)}.${quote(table)}`;
  const fn = functionName(schema, table);
  const list = `ARRAY[${bases.map(literal).join(", ")}]::text[]`;
  const ws = (row: string) =>
    bases.length > LISTED_BASES
      ? `strpos(${row}.prefix, ':ws:') > 0`
      : `(strpos(${row}.prefix, ':ws:') > 0 AND ${baseSql("postgres", `${row}.prefix`)} = ANY (${list}))`;
  const [ins, upd, del] = triggerNames(table);
  return [
    ...triggerNames(table).map((name) => `DROP TRIGGER IF EXISTS ${name} ON ${D}`),
    `CREATE TRIGGER ${ins} AFTER INSERT ON ${D} FOR EACH ROW WHEN (${ws("NEW")}) EXECUTE FUNCTION ${fn}()`,
    `CREATE TRIGGER ${upd} AFTER UPDATE ON ${D} FOR EACH ROW WHEN ((${ws("NEW")} OR ${ws("OLD")}) AND ` +
      `(octet_length(NEW.value) <> octet_length(OLD.value) OR NEW.prefix IS DISTINCT FROM OLD.prefix)) EXECUTE FUNCTION ${fn}()`,
    `CREATE TRIGGER ${del} AFTER DELETE ON ${D} FOR EACH ROW WHEN (${ws("OLD")}) EXECUTE FUNCTION ${fn}()`,
  ];
}

export function dropTriggers(d: Dialect, table: string, schema?: string): string[] {
  const on = d === "postgres" ? ` ON ${quote(schema as string)}.${quote(table)}` : "";
  const drops = triggerNames(table).map((name) => `DROP TRIGGER IF EXISTS ${name}${on}`);
  if (d === "sqlite") return drops;
  const Q = `${quote(schema as string)}.${quote(quotaTableName(table))}`;
  return [
    ...drops,
    `DROP TRIGGER IF EXISTS ${quote(`${table}_quota_check`)} ON ${Q}`,
    `DROP FUNCTION IF EXISTS ${functionName(schema as string, table)}()`,
    `DROP FUNCTION IF EXISTS ${checkName(schema as string, table)}()`,
  ];
}
