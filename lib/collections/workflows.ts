import { InvalidArgumentError, InvalidNameError, InvalidValueError } from "../errors.js";
import { compileFilter } from "../vectors/filter.js";
import { decodeValue, encodeValue } from "./codec.js";
import { assertMetadata } from "./json.js";
import { checkListOptions, listValues, readable } from "./list.js";
import type { CollectionContext, Embedder, VectorStore, Workflow, WorkflowStore } from "./types.js";
import { checkIfVersion, newVersion, versionOf, writeIf } from "./version.js";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_NAME = 512;

export function validateWorkflowName(name: unknown): string {
  if (typeof name !== "string" || !IDENTIFIER.test(name) || name.length > MAX_NAME) {
    throw new InvalidNameError(
      `invalid workflow name ${JSON.stringify(name)}: use an identifier [A-Za-z_][A-Za-z0-9_]*`,
    );
  }
  return name;
}

function text(value: unknown, field: string): string {
  if (typeof value !== "string") throw new InvalidValueError(`workflow ${field} must be a string`);
  return value;
}

/**
 * Workflows, searchable by description. Their embeddings live in `index`, a vector
 * store private to this workflows collection (never the user's own `vectors`, whose
 * dimension is the user's choice), so search only ever sees this workspace's workflows. Each index
 * row carries its workflow's metadata, so a filtered search selects rows inside the scan.
 */
export function createWorkflowStore(
  { store }: CollectionContext,
  index: VectorStore,
  embedder: Embedder,
): WorkflowStore {
  const decode = (raw: unknown, name: string) => {
    const workflow = decodeValue(raw, name) as Workflow | undefined;
    return workflow && { ...workflow, version: versionOf(workflow) };
  };
  const get = async (name: string) => decode(await store.get(validateWorkflowName(name)), name);
  const embed = (name: string, description: string) => embedder.embed(`${name.replace(/_/g, " ")} ${description}`);
  const record = (input: Omit<Workflow, "createdAt" | "updatedAt" | "version">, previous: Workflow | undefined) => {
    const now = new Date().toISOString();
    const workflow: Workflow = {
      ...input,
      createdAt: previous?.createdAt ?? now,
      updatedAt: now,
      version: newVersion(),
    };
    return workflow;
  };

  return {
    async add(input, options) {
      const name = validateWorkflowName(input?.name);
      const source = text(input.source, "source");
      const description = text(input.description, "description");
      const metadata = assertMetadata(input.metadata);
      const ifVersion = checkIfVersion(options?.ifVersion, "workflows.add");
      const fields = { name, source, description, metadata };
      if (ifVersion !== undefined) {
        // Checked before the index is touched, so a plain conflict changes nothing at all.
        const seen = await get(name);
        const current = seen ? seen.version : null;
        if (current !== ifVersion) await writeIf(store, name, ifVersion, () => undefined);
      }
      const vector = await embed(name, description);
      // Index first: a crash in between leaves an index entry search skips, never a workflow search cannot find.
      await index.upsert(name, vector, metadata);
      if (ifVersion === undefined) {
        const workflow = record(fields, await get(name));
        await store.set(name, encodeValue(workflow));
        return workflow;
      }
      let written: Workflow | undefined;
      try {
        await writeIf<Workflow>(store, name, ifVersion, (previous) => {
          written = record(fields, previous);
          return { value: encodeValue(written) };
        });
      } catch (error) {
        // Lost a race after indexing: the index goes back to the workflow that won.
        const winner = await get(name).catch(() => undefined);
        if (winner) await index.upsert(name, await embed(name, winner.description), winner.metadata).catch(() => {});
        throw error;
      }
      return written!;
    },
    get,
    async list(options) {
      const checked = checkListOptions(options, "workflows.list");
      return (await listValues<Workflow>(store, checked)).map(([, workflow]) => ({
        ...workflow,
        version: versionOf(workflow),
      }));
    },
    async delete(name) {
      const deleted = await store.delete(validateWorkflowName(name));
      await index.delete(name);
      return deleted;
    },
    async search(query, options = {}) {
      const limit = options?.limit ?? 10;
      if (!Number.isInteger(limit) || limit <= 0)
        throw new InvalidArgumentError(`search limit must be a positive integer, got ${JSON.stringify(limit)}`);
      // Checked before the empty-index shortcut, so a bad query fails the same way in every workspace.
      const q = text(query, "search query");
      const filter = compileFilter(options?.filter);
      const matches = await index.search(await embedder.embed(q), { k: limit, filter: options?.filter });
      if (matches.length === 0) return [];
      const found = await store.getMany(matches.map((m) => m.id));
      return matches.flatMap((match, i) => {
        const stored = readable(store, match.id, found[i]) as Workflow | undefined;
        const workflow = stored && { ...stored, version: versionOf(stored) };
        // The index is written first: after a crash in between it may hold metadata the workflow never got.
        if (!workflow || (filter && !filter.matches(workflow.metadata ?? {}))) return [];
        return [{ ...workflow, score: match.score }];
      });
    },
  };
}
