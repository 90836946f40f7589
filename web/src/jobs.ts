/**
 * Jobs the page is watching: one `jobProgress` subscription per running job, shared by every view (a job keeps
 * its progress across navigation). Views read with `useJob` and hear about finished jobs with `onJobFinished`.
 */
import { useEffect, useState } from 'preact/hooks';
import { CANCEL, gql, type Job, JOB_FIELDS, JOB_PROGRESS, subscribe, type UserError } from './api.ts';

const jobs = new Map<string, Job>();
const watching = new Map<string, () => void>();
const changeListeners = new Set<() => void>();
const finishListeners = new Set<(job: Job) => void>();

export const FINISHED = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

function changed(): void {
  for (const listener of changeListeners) listener();
}

function update(job: Job): void {
  const before = jobs.get(job.id);
  jobs.set(job.id, { ...before, ...job });
  changed();
  if (FINISHED.has(job.status) && (before === undefined || !FINISHED.has(before.status))) {
    watching.get(job.id)?.();
    watching.delete(job.id);
    for (const listener of finishListeners) listener(job);
  }
}

/** Starts following a job (idempotent); a finished job is only recorded. */
export function watchJob(job: Job): void {
  const known = jobs.get(job.id);
  if (known !== undefined && FINISHED.has(known.status)) return;
  if (known === undefined || FINISHED.has(job.status)) update(job);
  if (FINISHED.has(job.status) || watching.has(job.id)) return;
  const stop = subscribe<{ jobProgress: Job }>(JOB_PROGRESS, { id: job.id }, {
    next: (data) => update(data.jobProgress),
    error: () => {
      // The live stream failed (a dropped connection, a restarting server): ask for the job's state each second.
      watching.delete(job.id);
      poll(job.id);
    },
    complete: () => {
      watching.delete(job.id);
    },
  });
  watching.set(job.id, stop);
}

function poll(id: string): void {
  const timer = setInterval(() => {
    gql<{ job: Job | null }>(`query Job($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id })
      .then((data) => {
        if (data.job === null) stop();
        else update(data.job);
      })
      .catch(() => {});
  }, 1000);
  const stop = () => {
    clearInterval(timer);
    watching.delete(id);
  };
  watching.set(id, stop);
}

export async function cancelJob(id: string): Promise<UserError | null> {
  const data = await gql<{ cancelJob: { job: Job | null; errors: UserError[] } }>(CANCEL, { id });
  if (data.cancelJob.job !== null) update(data.cancelJob.job);
  return data.cancelJob.errors[0] ?? null;
}

export function getJob(id: string): Job | undefined {
  return jobs.get(id);
}

export function useJob(id: string | undefined): Job | undefined {
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((n) => n + 1);
    changeListeners.add(listener);
    return () => changeListeners.delete(listener);
  }, []);
  return id === undefined ? undefined : jobs.get(id);
}

export function onJobFinished(listener: (job: Job) => void): () => void {
  finishListeners.add(listener);
  return () => finishListeners.delete(listener);
}
