/**
 * Per-process knowledge about prefixes and workspaces (a layout checked, a quota read, a registry
 * entry written) that is only ever learned again at the cost of one command: kept in a Memo, which
 * forgets everything once it holds `limit` keys. A process that serves many tenants over its life
 * then holds what its recent ones need, not something for every tenant it ever served.
 */
export const MEMO_LIMIT = 65_536;

export class Memo<K, V> extends Map<K, V> {
  constructor(readonly limit: number = MEMO_LIMIT) {
    super();
  }

  override set(key: K, value: V): this {
    if (this.size >= this.limit && !this.has(key)) this.clear();
    return super.set(key, value);
  }
}

/** A Memo of keys alone. */
export class MemoSet<K> extends Set<K> {
  constructor(readonly limit: number = MEMO_LIMIT) {
    super();
  }

  override add(key: K): this {
    if (this.size >= this.limit && !this.has(key)) this.clear();
    return super.add(key);
  }
}
