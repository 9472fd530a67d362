import { afterAll } from "vitest";
import { tempDir } from "../support/env.js";
import { localQuotaSuite } from "./local-suite.js";

// The cases every engine shares, on a fresh SQLite file each: the triggers judge what the
// memory and file engines judge in JS, and must agree with them.
const dir = tempDir();
afterAll(() => dir.remove());
let n = 0;
localQuotaSuite("sqlite (the shared cases)", () => `sqlite:${dir.path}/quota-${n++}.db`);
