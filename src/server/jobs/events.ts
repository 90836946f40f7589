/**
 * In-process publish/subscribe of job state. Every event is a whole snapshot of the job, so a slow subscriber only
 * ever holds the latest one (memory stays bounded however fast progress comes), and the terminal snapshot is
 * always delivered before its stream completes.
 */

import type { Turn } from '../../db/conversations.ts';
import type { Job } from '../../db/jobs.ts';

/** Live progress of a job, merged over its stored row by the API. */
export interface JobProgress {
  stage: 'QUEUED' | 'ENCODE' | 'PREFILL' | 'DECODE' | 'DETOKENIZE' | 'VQ_DECODE' | 'DONE';
  done: number;
  total: number;
}

export interface JobEvent {
  jobId: string;
  /** True for the last event of the job (succeeded, failed or cancelled). */
  terminal: boolean;
  progress: JobProgress;
  /** On the terminal event, the job's stored row as it ended (when the runner wrote it). */
  job?: Job;
  /** On the terminal event of a job that this process queued, its turn as stored at the end (no read needed). */
  turn?: Turn;
}

type Listener = (event: JobEvent) => void;

export class JobEvents {
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #latest = new Map<string, JobProgress>();

  publish(event: JobEvent): void {
    if (event.terminal) this.#latest.delete(event.jobId);
    else this.#latest.set(event.jobId, event.progress);
    for (const listener of this.#listeners.get(event.jobId) ?? []) listener(event);
    if (event.terminal) this.#listeners.delete(event.jobId);
  }

  /** The live progress of a job that runs in this process, if any. */
  progress(jobId: string): JobProgress | undefined {
    return this.#latest.get(jobId);
  }

  listen(jobId: string, listener: Listener): () => void {
    let set = this.#listeners.get(jobId);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(jobId, set);
    }
    set.add(listener);
    return () => {
      const current = this.#listeners.get(jobId);
      current?.delete(listener);
      if (current?.size === 0) this.#listeners.delete(jobId);
    };
  }

  /** Resolves with the terminal event of a job (or never, if it never ends: pair with the job's own state). */
  terminal(jobId: string, signal?: AbortSignal): Promise<JobEvent> {
    return new Promise((resolve, reject) => {
      const stop = this.listen(jobId, (event) => {
        if (!event.terminal) return;
        stop();
        resolve(event);
      });
      signal?.addEventListener(
        'abort',
        () => {
          stop();
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** The job's events as an async iterator of the latest snapshot; ends after the terminal event or on `return()`. */
  stream(jobId: string): AsyncIterableIterator<JobEvent> {
    let pending: JobEvent | null = null;
    let wake: (() => void) | null = null;
    let finished = false;
    const stop = this.listen(jobId, (event) => {
      pending = event;
      wake?.();
    });
    const iterator: AsyncIterableIterator<JobEvent> = {
      async next(): Promise<IteratorResult<JobEvent>> {
        while (!finished) {
          if (pending !== null) {
            const event: JobEvent = pending;
            pending = null;
            if (event.terminal) {
              finished = true;
              stop();
            }
            return { value: event, done: false };
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = null;
        }
        return { value: undefined, done: true };
      },
      async return(): Promise<IteratorResult<JobEvent>> {
        finished = true;
        stop();
        wake?.();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
}
