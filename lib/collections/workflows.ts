import { InvalidArgumentError, InvalidNameError, InvalidValueError } from "../errors.js";
import { compileFilter } from "../vectors/filter.js";
import { decodeValue, encodeValue } from "./codec.js";
import { assertMetadata } from "./json.js";
import { checkListOptions, listValues, readable } from "./list.js";
import type { CollectionContext, Embedder, VectorStore, Workflow, WorkflowStore } from "./types.js";

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
  const get = async (name: string) =>
    (decodeValue(await store.get(validateWorkflowName(name)), name) as Workflow | undefined) ?? undefined;

  return {
    async add(input) {
      const name = validateWorkflowName(input?.name);
      const source = text(input.source, "source");
      const description = text(input.description, "description");
      const metadata = assertMetadata(input.metadata);
      const vector = await embedder.embed(`${name.replace(/_/g, " ")} ${description}`);
      const now = new Date().toISOString();
      const previous = await get(name);
      const workflow: Workflow = {
        name,
        source,
        description,
        metadata,
        createdAt: previous?.createdAt ?? now,
        updatedAt: now,
      };
      // Index first: a crash in between leaves an index entry search skips, never a workflow search cannot find.
      await index.upsert(name, vector, metadata);
      await store.set(name, encodeValue(workflow));
      return workflow;
    },
    get,
    async list(options) {
      const checked = checkListOptions(options, "workflows.list");
      return (await listValues<Workflow>(store, checked)).map(([, workflow]) => workflow);
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
        const workflow = readable(store, match.id, found[i]) as Workflow | undefined;
        // The index is written first: after a crash in between it may hold metadata the workflow never got.
        if (!workflow || (filter && !filter.matches(workflow.metadata ?? {}))) return [];
        return [{ ...workflow, score: match.score }];
      });
    },
  };
}
