/** Every suite `npm run bench` runs, in order (bench/<name>.ts exports run(opts)). */
export const SUITES = [
  "isolation",
  "scan",
  "file",
  "vectors",
  "load",
  "lifecycle",
  "cluster",
  "sql",
  "sentinel",
  "coldstart",
  "quota-local",
  "quota-redis",
  "quota-sql",
] as const;
