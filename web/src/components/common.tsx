/** Small shared pieces: images (pixel-exact), job progress with Cancel, dates, errors, infinite lists. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Connection, ImageRef, Job, JobStage } from '../api.ts';
import { cancelJob, FINISHED, useJob } from '../jobs.ts';

export function Pixels({ image, alt, size }: { image: Pick<ImageRef, 'url' | 'width' | 'height'>; alt: string; size?: number }) {
  return <img class="pixels" src={image.url} alt={alt} width={size ?? image.width} height={size ?? image.height} loading="lazy" decoding="async" />;
}

const STAGES: Record<JobStage, string> = {
  QUEUED: 'Waiting in the queue',
  ENCODE: 'Reading the image',
  PREFILL: 'Reading the prompt',
  DECODE: 'Writing tokens',
  DETOKENIZE: 'De-tokenizing',
  VQ_DECODE: 'Drawing pixels',
  DONE: 'Finishing',
};

/** A running job: its stage, a progress bar and Cancel. Live from the shared `jobProgress` subscription. */
export function JobProgress({ job: initial }: { job: Job }) {
  const job = useJob(initial.id) ?? initial;
  const [cancelling, setCancelling] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (FINISHED.has(job.status)) return null;
  const label = `${STAGES[job.stage] ?? job.stage}${job.total > 0 ? ` ${job.done}/${job.total}` : ''}`;
  return (
    <div class="progress" data-job-id={job.id} data-stage={job.stage}>
      <label>
        <span>{label}</span>
        <progress aria-label="Progress" max={job.total > 0 ? job.total : undefined} value={job.total > 0 ? job.done : undefined} />
      </label>
      <button
        type="button"
        disabled={cancelling}
        onClick={async () => {
          setCancelling(true);
          try {
            const problem = await cancelJob(job.id);
            if (problem !== null) setError(problem.message);
          } catch (e) {
            setError(e instanceof Error ? e.message : String(e));
          } finally {
            setCancelling(false);
          }
        }}
      >
        Cancel
      </button>
      {error !== null && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

export function When({ date }: { date: string }) {
  const d = new Date(date);
  return <time dateTime={date} title={d.toISOString()}>{d.toLocaleString()}</time>;
}

export function ErrorNote({ children }: { children: ComponentChildren }) {
  return <p class="notice error" role="alert">{children}</p>;
}

/**
 * A cursor-paginated list that loads its next page as its end scrolls into view (and on "Load more", for the
 * keyboard and for browsers without IntersectionObserver).
 */
export function usePaged<T>(load: (after: string | null) => Promise<Connection<T>>) {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [more, setMore] = useState(true);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const busy = useRef(false);
  const state = useRef({ cursor, more });
  state.current = { cursor, more };
  const loadMore = async () => {
    if (busy.current || !state.current.more) return;
    busy.current = true;
    setLoading(true);
    try {
      const page = await load(state.current.cursor);
      setItems((old) => [...old, ...page.edges.map((e) => e.node)]);
      setCursor(page.pageInfo.endCursor);
      setMore(page.pageInfo.hasNextPage);
      state.current = { cursor: page.pageInfo.endCursor, more: page.pageInfo.hasNextPage };
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setMore(false);
    } finally {
      busy.current = false;
      setLoading(false);
    }
  };
  useEffect(() => {
    void loadMore();
  }, []);
  return { items, more, loading, error, loadMore };
}

export function LoadMore({ more, loading, onMore, label }: { more: boolean; loading: boolean; onMore: () => void; label: string }) {
  const sentinel = useRef<HTMLDivElement>(null);
  const callback = useRef(onMore);
  callback.current = onMore;
  useEffect(() => {
    const element = sentinel.current;
    if (element === null || !more || typeof IntersectionObserver === 'undefined') return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) callback.current();
    }, { rootMargin: '200px' });
    observer.observe(element);
    return () => observer.disconnect();
  }, [more, loading]);
  return (
    <div class="load-more" ref={sentinel}>
      {loading && <span role="status">Loading…</span>}
      {more && !loading && (
        <button type="button" onClick={onMore}>
          {label}
        </button>
      )}
      {!more && !loading && <span class="muted">That is all.</span>}
    </div>
  );
}
