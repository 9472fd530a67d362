import type { Backend } from "./driver.js";

// Placeholder until the durable file store lands.
export async function openFileBackend(path: string): Promise<Backend> {
  throw new Error(`file backend not available yet: ${path}`);
}
