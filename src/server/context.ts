/** What every resolver gets: who acts, the server's services, and per-request memos of database reads. */
import type { Database } from '../db/client.ts';
import { getConversation, getTurn, type Conversation, type Turn } from '../db/conversations.ts';
import { getImage, type Image } from '../db/images.ts';
import { getJob, type Job } from '../db/jobs.ts';
import type { Model } from '../model/index.ts';
import type { Principal } from './auth.ts';
import type { Limits } from './config.ts';
import type { ImageUrlSigner } from './images-route.ts';
import type { JobEvents } from './jobs/events.ts';
import type { JobRunner } from './jobs/runner.ts';
import type { TurnService } from './services/turns.ts';

/** The long-lived parts of the server that resolvers reach (one instance per server). */
export interface Services {
  database: Database;
  model: Model;
  runner: JobRunner;
  events: JobEvents;
  turns: TurnService;
  signer: ImageUrlSigner;
  limits: Limits;
}

export interface Context {
  principal: Principal;
  services: Services;
  loaders: Loaders;
}

/** Memoised reads for one request, so a deep selection reads each row once. All are scoped to the acting user. */
export class Loaders {
  readonly #memo = new Map<string, Promise<unknown>>();

  constructor(
    private readonly database: Database,
    private readonly userId: string,
  ) {}

  #once<T>(key: string, load: () => Promise<T>): Promise<T> {
    let value = this.#memo.get(key) as Promise<T> | undefined;
    if (value === undefined) {
      value = load();
      this.#memo.set(key, value);
    }
    return value;
  }

  conversation(id: string): Promise<{ conversation: Conversation; turns: Turn[] }> {
    return this.#once(`c:${id}`, () => getConversation(this.database, this.userId, id));
  }

  turn(id: string): Promise<Turn> {
    return this.#once(`t:${id}`, () => getTurn(this.database, this.userId, id));
  }

  image(id: string): Promise<Image> {
    return this.#once(`i:${id}`, () => getImage(this.database, this.userId, id));
  }

  job(id: string): Promise<Job> {
    return this.#once(`j:${id}`, () => getJob(this.database, this.userId, id));
  }

  /** Remembers a turn or job the request already holds as stored (a mutation's result), so its fields read no row. */
  prime(kind: 't' | 'j', id: string, value: Turn | Job): void {
    this.#memo.set(`${kind}:${id}`, Promise.resolve(value));
  }

  /** Forgets what was read (after a mutation changed it). */
  clear(): void {
    this.#memo.clear();
  }
}
