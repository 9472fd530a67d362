/** The SQL engines the sql suites run on: a fresh store per root, removed afterwards. */
import { dropPgTables, pgTable, pgUrl, removeSqlite, sqliteFile } from "../spec/support/sql.js";

export interface Engine {
  name: "sqlite" | "postgres";
  url(root: string): string;
  cleanup(root: string): Promise<void>;
}

export const ENGINES: readonly Engine[] = [
  {
    name: "sqlite",
    url: (root) => `sqlite:${sqliteFile(root)}`,
    cleanup: async (root) => removeSqlite(sqliteFile(root)),
  },
  { name: "postgres", url: pgUrl, cleanup: (root) => dropPgTables(pgTable(root)) },
];
