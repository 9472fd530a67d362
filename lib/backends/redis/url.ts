/**
 * Credentials in server URLs: they are needed to connect and must never reach a message,
 * a log line or an error's text.
 */

import {
  formatSentinelUrl,
  isSentinelUrl,
  parseSentinelUrl,
  redactSentinel,
  sentinelPasswords,
} from "./sentinel-url.js";

/** The URL with its password replaced by "***" (the user name stays: it is not a secret). */
export function redact(url: string): string {
  if (isSentinelUrl(url)) return redactSentinel(url);
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.href;
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}

/** The decoded password of a URL, if it has one. */
export function urlPassword(url: string): string | undefined {
  if (isSentinelUrl(url)) return sentinelPasswords(url)[0];
  try {
    const { password } = new URL(url);
    return password === "" ? undefined : decodeURIComponent(password);
  } catch {
    return undefined;
  }
}

/** `url` with another user and password (percent-encoded as URLs require). */
export function withCredentials(url: string, username: string, password: string | undefined): string {
  if (isSentinelUrl(url)) {
    const { password: _, ...rest } = parseSentinelUrl(url);
    return formatSentinelUrl({ ...rest, username, ...(password === undefined ? {} : { password }) });
  }
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(username);
  parsed.password = password === undefined ? "" : encodeURIComponent(password);
  return parsed.href;
}

/** Every secret of a URL (a Sentinel URL has two). */
export function urlSecrets(url: string): string[] {
  if (isSentinelUrl(url)) return sentinelPasswords(url);
  const password = urlPassword(url);
  return password === undefined ? [] : [password];
}

/**
 * Removes secrets from text that came from elsewhere (a server's error reply may quote
 * the argument it rejected). Both the raw and the URL-encoded form are removed.
 */
export function scrub(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join("***");
  }
  return out;
}
