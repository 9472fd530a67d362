#!/usr/bin/env node
import { main } from "./main.js";

/**
 * For a command that runs until interrupted (watch): the first SIGINT or SIGTERM ends it cleanly,
 * a second one is Node's default. Other commands keep the default from the start.
 */
function interrupt(): AbortSignal {
  const controller = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => controller.abort());
  return controller.signal;
}

process.exitCode = await main(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  interrupt,
});
