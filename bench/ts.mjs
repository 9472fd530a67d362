// `node --import ./bench/ts.mjs bench/run.ts`: the bench's loader (ts-hooks.mjs says why not tsx).
import { register } from "node:module";

register("./ts-hooks.mjs", import.meta.url);
