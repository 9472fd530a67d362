/**
 * `redis+sentinel://[user:password@]host:port[,host:port…]/<masterName>[?sentinelUsername=…&sentinelPassword=…]`.
 * WHATWG URL cannot parse a comma-separated host list, so this form has a parser of its own.
 * The credentials before "@" are for the data nodes (master and replicas); the Sentinels are
 * reached without any unless sentinelUsername / sentinelPassword are given.
 */
import { InvalidConfigError } from "../../errors.js";

export const SENTINEL_SCHEME = "redis+sentinel:";
export const DEFAULT_SENTINEL_PORT = 26379;

export interface SentinelAddress {
  host: string;
  port: number;
}

export interface SentinelUrl {
  sentinels: SentinelAddress[];
  masterName: string;
  username?: string;
  password?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
}

const SHAPE = /^redis\+sentinel:\/\/(?:([^@/?#]*)@)?([^/?#@]+)\/([^/?#]+)\/?(?:\?([^#]*))?$/i;
const PARAMS = new Set(["sentinelUsername", "sentinelPassword"]);

export function isSentinelUrl(url: string): boolean {
  return url.slice(0, SENTINEL_SCHEME.length).toLowerCase() === SENTINEL_SCHEME;
}

// No parsing here: it serves the parser's own errors.
const roughRedact = (url: string) =>
  url.replace(/\/\/[^@/]*@/, "//***@").replace(/(sentinelPassword=)[^&#]*/i, "$1***");

const bad = (url: string, why: string) =>
  new InvalidConfigError("url", `invalid Redis Sentinel URL ${JSON.stringify(roughRedact(url))}: ${why}`);

function decode(part: string, url: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw bad(url, `bad %-escape in the ${what}`);
  }
}

function address(text: string, url: string): SentinelAddress {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(text);
  if (!match) throw bad(url, `${JSON.stringify(text)} is not host:port`);
  const port = match[2] === undefined ? DEFAULT_SENTINEL_PORT : Number(match[2]);
  if (port < 1 || port > 65535) throw bad(url, `port ${match[2]} is out of range`);
  const host = (match[1] as string).replace(/^\[(.*)\]$/, "$1");
  return { host, port };
}

export function parseSentinelUrl(url: string): SentinelUrl {
  const match = SHAPE.exec(url);
  if (!match) throw bad(url, "expected redis+sentinel://[user:password@]host:port[,host:port...]/<masterName>");
  const [, userinfo, hosts, name, query] = match;
  const sentinels = (hosts as string).split(",").map((h) => address(h.trim(), url));
  const masterName = decode(name as string, url, "master name");
  if (masterName === "" || /\s/.test(masterName)) throw bad(url, "the master name must be non-empty, without spaces");
  const parsed: SentinelUrl = { sentinels, masterName };
  if (userinfo !== undefined && userinfo !== "") {
    const colon = userinfo.indexOf(":");
    const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), url, "user name");
    const password = colon < 0 ? "" : decode(userinfo.slice(colon + 1), url, "password");
    if (user !== "") parsed.username = user;
    if (password !== "") parsed.password = password;
  }
  for (const [key, value] of new URLSearchParams(query ?? "")) {
    if (!PARAMS.has(key)) throw bad(url, `unknown parameter ${JSON.stringify(key)} (known: ${[...PARAMS].join(", ")})`);
    if (value === "") throw bad(url, `${key} is empty`);
    parsed[key as "sentinelUsername" | "sentinelPassword"] = value;
  }
  return parsed;
}

const hostPort = ({ host, port }: SentinelAddress) => `${host.includes(":") ? `[${host}]` : host}:${port}`;

export function formatSentinelUrl(parsed: SentinelUrl): string {
  const user = parsed.username === undefined ? "" : encodeURIComponent(parsed.username);
  const password = parsed.password === undefined ? "" : `:${encodeURIComponent(parsed.password)}`;
  const auth = user || password ? `${user}${password}@` : "";
  const params = new URLSearchParams();
  if (parsed.sentinelUsername !== undefined) params.set("sentinelUsername", parsed.sentinelUsername);
  if (parsed.sentinelPassword !== undefined) params.set("sentinelPassword", parsed.sentinelPassword);
  const query = params.size > 0 ? `?${params}` : "";
  return `redis+sentinel://${auth}${parsed.sentinels.map(hostPort).join(",")}/${encodeURIComponent(parsed.masterName)}${query}`;
}

/** A data node (master or replica) as a plain redis:// URL with the data credentials. */
export function nodeUrl(parsed: SentinelUrl, node: SentinelAddress): string {
  const user = parsed.username === undefined ? "" : encodeURIComponent(parsed.username);
  const password = parsed.password === undefined ? "" : `:${encodeURIComponent(parsed.password)}`;
  return `redis://${user || password ? `${user}${password}@` : ""}${hostPort(node)}`;
}

/** A Sentinel as a redis:// URL with the Sentinel credentials, if any. */
export function sentinelNodeUrl(parsed: SentinelUrl, node: SentinelAddress): string {
  const user = parsed.sentinelUsername === undefined ? "" : encodeURIComponent(parsed.sentinelUsername);
  const password = parsed.sentinelPassword === undefined ? "" : `:${encodeURIComponent(parsed.sentinelPassword)}`;
  return `redis://${user || password ? `${user}${password}@` : ""}${hostPort(node)}`;
}

/** Both passwords replaced by "***"; falls back to hiding all userinfo when the URL does not parse. */
export function redactSentinel(url: string): string {
  try {
    const parsed = parseSentinelUrl(url);
    return formatSentinelUrl({
      ...parsed,
      ...(parsed.password === undefined ? {} : { password: "***" }),
      ...(parsed.sentinelPassword === undefined ? {} : { sentinelPassword: "***" }),
    }).replace(/%2A%2A%2A/g, "***");
  } catch {
    return roughRedact(url);
  }
}

export function sentinelPasswords(url: string): string[] {
  try {
    const parsed = parseSentinelUrl(url);
    return [parsed.password, parsed.sentinelPassword].filter((p): p is string => p !== undefined);
  } catch {
    return [];
  }
}
