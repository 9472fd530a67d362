/**
 * Change messages of one tick, merged per channel before they are published (notify.ts). 128
 * watched writes in flight then send one PUBLISH per channel and burst, not one per write: a
 * message already carries a list of names, so writes of one prefix and op that follow each other
 * on a channel become one message with their names in order, which a watcher reads as the same
 * changes in the same order (changesOf). Old watchers read it too: the format is unchanged.
 * Nothing is merged across another op or prefix on that channel, so per-channel order holds.
 */
export type ChangeOp = "set" | "delete" | "clear";

export interface Message {
  p: string;
  o: ChangeOp;
  n: string[] | null;
  /** The driver that wrote it: its own watchers heard it already, in order, without Redis. */
  s: string;
}

interface Queued<C> {
  client: C;
  channel: string;
  message: Message;
}

export class Outbox<C> {
  #queued: Queued<C>[] = [];
  /** The channel's last message of this tick, while it may still take more names. */
  #open = new Map<string, Queued<C>>();
  #sent: Promise<void> | undefined;

  constructor(private readonly publish: (client: C, channel: string, text: string) => Promise<unknown>) {}

  /** Resolves once the message carrying `message`'s names is published. */
  send(client: C, channel: string, message: Message): Promise<void> {
    const last = this.#open.get(channel);
    if (
      last !== undefined &&
      last.client === client &&
      last.message.p === message.p &&
      last.message.o === message.o &&
      last.message.n !== null &&
      message.n !== null
    ) {
      last.message.n.push(...message.n);
    } else {
      const queued = { client, channel, message: { ...message, n: message.n && [...message.n] } };
      this.#queued.push(queued);
      this.#open.set(channel, queued);
    }
    this.#sent ??= new Promise<void>((resolve, reject) => {
      process.nextTick(() => {
        const queued = this.#queued;
        this.#queued = [];
        this.#open = new Map();
        this.#sent = undefined;
        Promise.all(queued.map((q) => this.publish(q.client, q.channel, JSON.stringify(q.message)))).then(
          () => resolve(),
          reject,
        );
      });
    });
    return this.#sent;
  }
}
